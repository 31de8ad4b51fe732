"""One round of a workflow case at a backend: a conversation in, an assistant message out.

A workflow round is a :class:`~pytest_llmeval.datasets.suite.Request` with ``messages`` (the
conversation so far) and ``tools`` (their JSON schemas). A backend answers it with a
:class:`~pytest_llmeval.models.outputs.Completion` that also carries what the message says, as
JSON data in its ``reply`` attribute::

    {"format": "generic", "content": "text without the call markup",
     "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "problem": null}]}

so that a cached round is read back without the model (the completion cache stores every
attribute of a completion).

- A local model (:func:`render`, :func:`attach_parsed`) is shown the tools in the way of its
  tokenizer's format (:func:`pytest_llmeval.workflows.choose_format`) and its calls are parsed from
  the text it generates.
- A served model (:func:`wire_messages`, :func:`attach_native`) gets the messages and tools as the
  OpenAI API takes them and answers with ``tool_calls``: format ``"native"``.

:func:`reply_of` turns such a completion back into the engine's
:class:`~pytest_llmeval.workflows.Reply`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.models.protocol import OutputError
from pytest_llmeval.workflows.parsers import CallRequest, Reply, call_from_object

__all__ = ["NATIVE", "attach_native", "attach_parsed", "backend_format", "format_for", "render", "reply_of", "wire_messages"]

NATIVE = "native"
"""The format of a served model: tools and calls in the API's own fields."""


_FORMATS: dict[tuple[str, bool], Any] = {}


def format_for(tokenizer: Any) -> Any:
    """The :class:`~pytest_llmeval.workflows.ToolFormat` of ``tokenizer`` (chosen once per
    tokenizer and chat template)."""
    from pytest_llmeval.workflows.formats import choose_format

    key = (str(getattr(tokenizer, "chat_template", None)), bool(getattr(tokenizer, "response_template", None)))
    if key not in _FORMATS:
        _FORMATS[key] = choose_format(tokenizer)
    return _FORMATS[key]


def backend_format(backend: Any) -> str | None:
    """The format a loaded backend shows tools in: its tokenizer's, ``"native"`` for a backend that
    answers workflow rounds without one (a served model); ``None`` when not loaded or not able to."""
    from pytest_llmeval.models.protocol import CONVERSE, capabilities

    if backend is None or CONVERSE not in capabilities(backend):
        return None
    tokenizer = getattr(backend, "tokenizer", None)
    return format_for(tokenizer).name if tokenizer is not None else NATIVE


def render(tokenizer: Any, request: Request) -> str | OutputError:
    """The prompt text of a workflow round for a local model, or why it cannot be built."""
    from pytest_llmeval.workflows.formats import RenderError

    if not getattr(tokenizer, "chat_template", None):
        return OutputError("the tokenizer has no chat template, so a conversation cannot be rendered; use a chat model for workflow suites")
    try:
        return format_for(tokenizer).render(tokenizer, list(request.messages or ()), list(request.tools))
    except RenderError as exc:
        return OutputError(str(exc))


def attach_parsed(completion: Completion, tokenizer: Any, request: Request) -> Completion:
    """``completion`` (a local model's text) with the assistant message it says: calls parsed."""
    fmt = format_for(tokenizer)
    try:
        reply = fmt.parse(completion.text, tokenizer=tokenizer, prompt=completion.prompt, tools=list(request.tools))
    except Exception as exc:  # a parser bug: the round fails, not the batch
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reply = Reply(content="", calls=(CallRequest("", completion.text, f"the reply could not be parsed ({line:.200})"),))
    completion.reply = _reply_json(fmt.name, reply.content, reply.calls)  # type: ignore[attr-defined]
    return completion


def _reply_json(fmt: str, content: str, calls: Sequence[CallRequest]) -> dict[str, Any]:
    return {
        "format": fmt,
        "content": content,
        "calls": [{"name": c.name, "arguments": _plain(c.arguments), "problem": c.problem} for c in calls],
    }


def _plain(arguments: Any) -> Any:
    return dict(arguments) if isinstance(arguments, Mapping) else arguments


def wire_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the OpenAI API takes them: a call's ``arguments`` as a JSON string."""
    out = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [_wire_call(c) for c in message["tool_calls"]]
            message["content"] = message.get("content") or None
        out.append(message)
    return out


def _wire_call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        function["arguments"] = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return {"id": call.get("id"), "type": "function", "function": function}


def attach_native(completion: Completion, tool_calls: Any) -> Completion:
    """``completion`` (a served model's content) with its native ``tool_calls`` read."""
    calls = []
    for entry in tool_calls or ():
        function = entry.get("function", entry) if isinstance(entry, Mapping) else entry
        calls.append(call_from_object(function, json.dumps(function, ensure_ascii=False, default=repr)))
    completion.reply = _reply_json(NATIVE, completion.text.strip(), calls)  # type: ignore[attr-defined]
    return completion


def reply_of(output: Any) -> Any:
    """The engine's :class:`Reply` for a backend's output: a completion with its ``reply`` data
    (usage kept), the exception that stands for a failed round, or plain text to be parsed."""
    data = getattr(output, "reply", None)
    if isinstance(output, BaseException) or not isinstance(data, Mapping):
        return output
    calls = tuple(
        CallRequest(str(c.get("name") or ""), c.get("arguments") if c.get("arguments") is not None else {}, c.get("problem"))
        for c in data.get("calls") or ()
        if isinstance(c, Mapping)
    )
    return Reply(
        content=str(data.get("content") or ""),
        calls=calls,
        raw=str.__str__(output) if isinstance(output, str) else str(output),
        tokens_in=int(getattr(output, "tokens_in", 0) or 0),
        tokens_out=int(getattr(output, "tokens_out", 0) or 0),
        latency_s=float(getattr(output, "latency_s", 0.0) or 0.0),
        finish_reason=str(getattr(output, "finish_reason", "stop") or "stop"),
    )
