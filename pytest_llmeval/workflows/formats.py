"""How a local model is shown tools and how its tool calls are read: one format per tokenizer.

- ``response-template``: the chat template takes tools and the tokenizer declares how its replies
  parse (transformers' ``response_template``), so ``tokenizer.parse_response`` reads them.
- ``tagged``: the chat template renders the tools and the model answers in ``<tool_call>`` blocks
  (Qwen2.5, Hermes and other ChatML templates).
- ``llama3-json``: the chat template renders the tools and the model answers with one JSON object
  ``{"name": ..., "parameters": ...}`` (Llama 3.1 and 3.2).
- ``template``: a template that takes tools but matches neither family; replies are read both ways.
- ``generic``: the chat template has no tool support (SmolLM2's, for one). We describe the tools in
  the system message (:data:`GENERIC_INSTRUCTIONS`), ask for ``<tool_call>`` blocks, and pass each
  call and result as plain text turns the template can render: an assistant's calls become its
  text, a tool result becomes a user turn ``<tool_response name="...">...</tool_response>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pytest_llmeval.workflows.conversation import Message
from pytest_llmeval.workflows.parsers import Reply, parse_any, parse_llama3_json, parse_tagged, parse_with_tokenizer

__all__ = [
    "FORMATS",
    "GENERIC_INSTRUCTIONS",
    "RenderError",
    "ToolFormat",
    "choose_format",
    "generic_messages",
    "generic_system",
    "template_supports_tools",
]

GENERIC_INSTRUCTIONS = (
    "You can call tools. Each tool is described by a JSON schema:\n"
    "<tools>\n{tools}\n</tools>\n"
    "To call a tool, reply with one line per call and nothing else:\n"
    '<tool_call>{{"name": "<tool name>", "arguments": {{<the arguments as a JSON object>}}}}</tool_call>\n'
    "Each result comes back in a <tool_response> block. "
    "When you can answer without a tool, reply in plain text."
)
"""The tool instructions of the ``generic`` format (``{tools}``: one JSON schema per line)."""


class RenderError(ValueError):
    """The chat template refused the conversation (one line saying why)."""


@dataclass(frozen=True)
class ToolFormat:
    """How one tokenizer gets tools into its prompt and tool calls out of its replies."""

    name: str
    parse_text: Callable[[str], Reply] | None = None
    """The parser of ours for this format (``None``: the tokenizer's own ``parse_response``)."""

    @property
    def injects_instructions(self) -> bool:
        return self.name == "generic"

    def render(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]) -> str:
        """The prompt text for the model's next assistant message."""
        if self.injects_instructions:
            messages, tools = generic_messages(messages, tools), ()
        try:
            return tokenizer.apply_chat_template(
                [dict(m) for m in messages], tools=list(tools) or None, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # a template's raise_exception(), a missing variable
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RenderError(f"the chat template refused the conversation: {line:.300}") from None

    def parse(self, text: str, *, tokenizer: Any = None, prompt: str = "", tools: Sequence[Mapping[str, Any]] = ()) -> Reply:
        if self.parse_text is not None:
            return self.parse_text(text)
        return parse_with_tokenizer(tokenizer, text, prompt, tools)

    def instructions(self) -> str:
        """What this format adds to a prompt beyond the chat template: part of the prompt version."""
        return GENERIC_INSTRUCTIONS if self.injects_instructions else ""


FORMATS = {
    "response-template": ToolFormat("response-template"),
    "tagged": ToolFormat("tagged", parse_tagged),
    "llama3-json": ToolFormat("llama3-json", parse_llama3_json),
    "template": ToolFormat("template", parse_any),
    "generic": ToolFormat("generic", parse_tagged),
}


def _template_text(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):  # named templates: transformers uses "tool_use" when given tools
        template = template.get("tool_use") or template.get("default") or ""
    return template if isinstance(template, str) else ""


def template_supports_tools(template: str) -> bool:
    """Whether a chat template reads the ``tools`` it is given (it names the variable)."""
    if not template:
        return False
    import jinja2
    from jinja2 import meta

    try:
        names = meta.find_undeclared_variables(jinja2.Environment().parse(template))
    except jinja2.TemplateSyntaxError:
        return False
    return bool({"tools", "custom_tools"} & names)


def choose_format(tokenizer: Any, name: str | None = None) -> ToolFormat:
    """The format for ``tokenizer`` (or the one ``name``\\ d, to override the choice)."""
    if name is not None:
        if name not in FORMATS:
            raise ValueError(f"unknown tool-call format {name!r}; use one of {', '.join(FORMATS)}")
        return FORMATS[name]
    template = _template_text(tokenizer)
    if not template_supports_tools(template):  # the model would never see the tools: describe them ourselves
        return FORMATS["generic"]
    if getattr(tokenizer, "response_template", None):
        return FORMATS["response-template"]
    if "<tool_call>" in template:
        return FORMATS["tagged"]
    if '"parameters"' in template or "<|python_tag|>" in template:
        return FORMATS["llama3-json"]
    return FORMATS["template"]


def generic_system(tools: Sequence[Mapping[str, Any]]) -> str:
    return GENERIC_INSTRUCTIONS.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))


def _call_line(call: Mapping[str, Any]) -> str:
    function = call.get("function", call)
    body = {"name": function.get("name"), "arguments": function.get("arguments", {})}
    return "<tool_call>" + json.dumps(body, ensure_ascii=False) + "</tool_call>"


def generic_messages(messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]) -> list[Message]:
    """``messages`` as turns a template without tool support renders: the tool instructions in the
    system message, calls as assistant text, results as user turns (consecutive user turns merged,
    so templates that insist on alternating roles accept them)."""
    out: list[Message] = []
    instructions = generic_system(tools) if tools else ""
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            role = "user"
            content = f'<tool_response name="{message.get("name", "")}">\n{content}\n</tool_response>'
        elif role == "assistant" and message.get("tool_calls"):
            content = "\n".join(([content] if content else []) + [_call_line(c) for c in message["tool_calls"]])
        elif role == "system" and instructions:
            content, instructions = f"{content}\n\n{instructions}" if content else instructions, ""
        if out and role == "user" and out[-1]["role"] == "user":
            out[-1] = {"role": "user", "content": out[-1]["content"] + "\n\n" + content}
        else:
            out.append({"role": role, "content": content})
    if instructions:
        out.insert(0, {"role": "system", "content": instructions})
    return out
