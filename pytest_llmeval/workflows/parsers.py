"""Reading tool calls out of a local model's text.

Three ways, chosen per tokenizer by :func:`pytest_llmeval.workflows.formats.choose_format`:

- the tokenizer's own response parsing, where the model declares one (a ``response_template``
  that transformers' ``tokenizer.parse_response`` follows): :func:`parse_with_tokenizer`;
- the ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` form of Qwen2.5, Hermes and
  many ChatML models, also the generic format we give models whose template has no tools:
  :func:`parse_tagged`;
- Llama 3.1's JSON form, the whole reply one object ``{"name": ..., "parameters": {...}}``
  (optionally after ``<|python_tag|>``): :func:`parse_llama3_json`.

A call that cannot be read (not JSON, no name) is kept as a :class:`CallRequest` with a
``problem``: the loop records it as a malformed call and shows the model the problem.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["CallRequest", "Reply", "parse_any", "parse_llama3_json", "parse_tagged", "parse_with_tokenizer"]

END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "</s>")
_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True)
class CallRequest:
    """A tool call as the model wrote it: a name and arguments (a dict when they parsed, else the raw
    text), and ``problem`` when it could not be read."""

    name: str
    arguments: Mapping[str, Any] | str
    problem: str | None = None


@dataclass(frozen=True)
class Reply:
    """One assistant message: its text without the call markup, and the calls it makes.

    A served model's answer arrives as a ``Reply`` already (its ``tool_calls`` field); a local
    model's text is parsed into one. The usage fields come from the backend's output."""

    content: str
    calls: tuple[CallRequest, ...] = ()
    raw: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"


def _strip_end(text: str) -> str:
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for marker in END_MARKERS:
            if text.endswith(marker):
                text, changed = text[: -len(marker)].rstrip(), True
    return text


def call_from_object(value: Any, raw: str) -> CallRequest:
    """A parsed JSON call object (``name`` and ``arguments`` or ``parameters``) as a :class:`CallRequest`."""
    if not isinstance(value, Mapping):
        return CallRequest("", raw, "the tool call is not a JSON object with a name and arguments")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return CallRequest("", raw, "the tool call has no name")
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            return CallRequest(name, arguments, f"the arguments are not JSON ({exc})")
    if not isinstance(arguments, Mapping):
        return CallRequest(name, json.dumps(arguments), "the arguments are not a JSON object")
    return CallRequest(name, dict(arguments))


def _read_call(body: str) -> CallRequest:
    body = body.strip()
    try:
        value = json.loads(body)
    except ValueError as exc:
        found = _NAME.search(body)
        return CallRequest(found.group(1) if found else "", body, f"the tool call is not JSON ({exc})")
    return call_from_object(value, body)


def parse_tagged(text: str) -> Reply:
    """``<tool_call>`` blocks (Qwen2.5, Hermes, the generic format); an unclosed last block (a reply
    cut at the token limit) is read to the end of the text."""
    text = _strip_end(text)
    calls = tuple(_read_call(m.group(1)) for m in _TAGGED.finditer(text))
    content = _TAGGED.sub("", text).strip() if calls else text
    return Reply(content=content, calls=calls, raw=text)


def parse_llama3_json(text: str) -> Reply:
    """Llama 3.1's JSON tool calls: the reply is ``{"name": ..., "parameters": {...}}`` (several
    may follow each other, separated by ``;`` or white space). Any other reply is plain text."""
    text = _strip_end(text)
    body = text[len("<|python_tag|>") :].lstrip() if text.startswith("<|python_tag|>") else text
    if not body.startswith("{"):
        return Reply(content=text, raw=text)
    decoder = json.JSONDecoder()
    calls: list[CallRequest] = []
    position = 0
    while position < len(body):
        try:
            value, end = decoder.raw_decode(body, position)
        except ValueError as exc:
            if calls:
                return Reply(content=body[position:].strip(), calls=tuple(calls), raw=text)
            found = _NAME.search(body)
            if found:  # it meant to call a tool
                return Reply(content="", calls=(CallRequest(found.group(1), body, f"the tool call is not JSON ({exc})"),), raw=text)
            return Reply(content=text, raw=text)
        if not (isinstance(value, Mapping) and "name" in value and ("parameters" in value or "arguments" in value)):
            if calls:
                return Reply(content=body[position:].strip(), calls=tuple(calls), raw=text)
            return Reply(content=text, raw=text)  # a JSON answer, not a call
        calls.append(call_from_object(value, body[position:end]))
        position = end
        while position < len(body) and (body[position].isspace() or body[position] == ";"):
            position += 1
    return Reply(content="", calls=tuple(calls), raw=text)


def parse_any(text: str) -> Reply:
    """For a template with tools whose family we do not know: ``<tool_call>`` blocks, else Llama 3's JSON."""
    reply = parse_tagged(text)
    return reply if reply.calls else parse_llama3_json(text)


def parse_with_tokenizer(tokenizer: Any, text: str, prompt: str = "", tools: Sequence[Mapping[str, Any]] = ()) -> Reply:
    """The tokenizer's own response parsing (``tokenizer.parse_response`` following its
    ``response_template``). A reply it cannot parse is one malformed call carrying its reason."""
    try:
        parsed = tokenizer.parse_response(text, prefix=prompt, tools=list(tools) or None)
    except Exception as exc:  # its parser refuses the text (bad JSON in a call, an unclosed region)
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        found = _NAME.search(text)
        return Reply(content="", calls=(CallRequest(found.group(1) if found else "", text, f"the reply could not be parsed ({line:.200})"),), raw=text)
    content = parsed.get("content") or ""
    calls = []
    for entry in parsed.get("tool_calls") or ():
        function = entry.get("function", entry) if isinstance(entry, Mapping) else entry
        calls.append(call_from_object(function, json.dumps(function, default=repr)))
    return Reply(content=str(content).strip(), calls=tuple(calls), raw=text)
