"""A workflow case's data: its earlier ``messages`` and scripted ``user_turns``, checked and normalized.

A case may carry ``messages`` in the usual role/content form::

    [{"role": "system", "content": "You are a support assistant."},
     {"role": "user", "content": "Where is order 42?"},
     {"role": "assistant", "tool_calls": [{"function": {"name": "lookup_order", "arguments": {"order_id": 42}}}]},
     {"role": "tool", "content": "shipped on Monday"}]

Tool calls may be written the OpenAI way (``{"id", "type": "function", "function": {"name",
"arguments"}}``, arguments as a JSON string or an object) or flat (``{"name", "arguments"}``); each
``tool`` message answers the calls of the assistant message before it, by ``tool_call_id`` or in
order. Every problem is one :class:`WorkflowDataError` line that names the case, the message and the fix.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from pytest_llmeval.workflows.conversation import Message

__all__ = ["ROLES", "WorkflowDataError", "check_messages", "check_user_turns", "start_messages"]

ROLES = ("system", "user", "assistant", "tool")
_KEYS = {"role", "content", "tool_calls", "tool_call_id", "name"}


class WorkflowDataError(ValueError):
    """A workflow case whose data cannot be used; the message is one line naming the case and the fix."""


def check_messages(messages: Any, where: str) -> list[Message]:
    """``messages`` normalized (tool calls in the OpenAI form with dict arguments and ids, tool
    results named after their call), or a :class:`WorkflowDataError`. ``where`` names the case,
    e.g. ``"trips.jsonl:3: case 'paris'"``."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise WorkflowDataError(f"{where}: messages must be a list of {{'role': ..., 'content': ...}} objects, got {type(messages).__name__}")
    out: list[Message] = []
    pending: list[Message] = []  # calls of the last assistant message still waiting for a result
    for i, raw in enumerate(messages):
        here = f"{where}: messages[{i}]"
        message = _check_message(raw, here, i)
        role = message["role"]
        if role == "system" and i:
            raise WorkflowDataError(f"{here}: a system message may only come first; move it to the start")
        if role == "tool":
            _answer(message, pending, here)
        elif pending:
            missing = ", ".join(repr(c["function"]["name"]) for c in pending)
            raise WorkflowDataError(f"{here}: the tool call(s) {missing} of the assistant message before have no result; add a 'tool' message for each")
        else:
            pending = []
        if role == "assistant" and "tool_calls" in message:
            pending = list(message["tool_calls"])
        out.append(message)
    if pending:
        missing = ", ".join(repr(c["function"]["name"]) for c in pending)
        raise WorkflowDataError(f"{where}: messages end with tool call(s) {missing} that have no result; add a 'tool' message for each")
    return out


def check_user_turns(turns: Any, where: str) -> tuple[str, ...]:
    """Scripted user turns, sent one after each assistant answer: a list of non-empty strings."""
    if turns is None:
        return ()
    if isinstance(turns, str) or not isinstance(turns, Sequence):
        raise WorkflowDataError(f"{where}: user_turns must be a list of strings (one per turn), got {type(turns).__name__}")
    for k, turn in enumerate(turns):
        if not isinstance(turn, str) or not turn.strip():
            raise WorkflowDataError(f"{where}: user_turns[{k}] must be a non-empty string, got {turn!r:.60}")
    return tuple(turns)


def start_messages(
    messages: Sequence[Message], where: str, *, prompt: str | None = None, system: str | None = None
) -> list[Message]:
    """The messages a conversation starts from: ``system`` first (unless the case has its own
    system message), the case's checked ``messages``, then ``prompt`` as a user message. The model
    must have something to answer: the last message is a user message or a tool result."""
    checked = check_messages(messages, where)
    out: list[Message] = []
    if system is not None and not (checked and checked[0]["role"] == "system"):
        out.append({"role": "system", "content": system})
    out.extend(checked)
    if prompt is not None:
        out.append({"role": "user", "content": prompt})
    if not out or out[-1]["role"] not in ("user", "tool"):
        last = out[-1]["role"] if out else "nothing"
        raise WorkflowDataError(
            f"{where}: the conversation ends with {last if out else 'no message'}, so the model has nothing to answer; "
            "end messages with a user message or a tool result, or give the case a prompt"
        )
    return out


def _check_message(raw: Any, here: str, index: int) -> Message:
    if not isinstance(raw, Mapping):
        raise WorkflowDataError(f"{here}: must be an object like {{'role': 'user', 'content': '...'}}, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        raise WorkflowDataError(f"{here}: unknown key(s) {', '.join(map(repr, unknown))}; a message has {', '.join(sorted(_KEYS))}")
    role = raw.get("role")
    if role not in ROLES:
        raise WorkflowDataError(f"{here}: role must be one of {', '.join(ROLES)}, got {role!r:.40}")
    content = raw.get("content")
    calls = raw.get("tool_calls")
    if role == "assistant" and calls is not None:
        if content is not None and not isinstance(content, str):
            raise WorkflowDataError(f"{here} (assistant): content must be a string or absent, got {type(content).__name__}")
        message: Message = {"role": role, "content": content or ""}
        message["tool_calls"] = _check_calls(calls, f"{here} (assistant)", index)
        return message
    if calls is not None:
        raise WorkflowDataError(f"{here} ({role}): only an assistant message may have tool_calls")
    if role == "tool" and isinstance(content, (Mapping, list)):
        content = json.dumps(content, ensure_ascii=False)
    if not isinstance(content, str):
        raise WorkflowDataError(f"{here} ({role}): content must be a string, got {type(content).__name__}")
    message = {"role": role, "content": content}
    if role == "tool":
        for key in ("tool_call_id", "name"):
            if key in raw:
                if not isinstance(raw[key], str) or not raw[key]:
                    raise WorkflowDataError(f"{here} (tool): {key} must be a non-empty string, got {raw[key]!r:.40}")
                message[key] = raw[key]
    return message


def _check_calls(calls: Any, here: str, index: int) -> list[Message]:
    if isinstance(calls, (str, bytes, Mapping)) or not isinstance(calls, Sequence) or not calls:
        raise WorkflowDataError(f"{here}: tool_calls must be a non-empty list of calls like {{'function': {{'name': ..., 'arguments': {{...}}}}}}")
    out = []
    for k, call in enumerate(calls):
        where = f"{here}: tool_calls[{k}]"
        if not isinstance(call, Mapping):
            raise WorkflowDataError(f"{where} must be an object, got {type(call).__name__}")
        function = call.get("function", call)
        if not isinstance(function, Mapping):
            raise WorkflowDataError(f"{where}.function must be an object with a name and arguments")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise WorkflowDataError(f"{where}: the call has no name; write {{'function': {{'name': 'tool_name', 'arguments': {{...}}}}}}")
        arguments = _arguments(function.get("arguments", {}), where)
        call_id = call.get("id", f"call_{index}_{k}")
        if not isinstance(call_id, str) or not call_id:
            raise WorkflowDataError(f"{where}: id must be a non-empty string, got {call_id!r:.40}")
        out.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
    return out


def _arguments(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise WorkflowDataError(f"{where}: arguments are not JSON ({exc}); write them as a JSON object") from None
    if not isinstance(value, Mapping):
        raise WorkflowDataError(f"{where}: arguments must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _answer(message: Message, pending: list[Message], here: str) -> None:
    """Match a tool result to the call it answers (by id, else the first unanswered), naming it."""
    if not pending:
        raise WorkflowDataError(f"{here} (tool): a tool result must follow an assistant message with tool_calls, and one per call")
    wanted = message.get("tool_call_id")
    match = next((c for c in pending if c["id"] == wanted), None) if wanted else pending[0]
    if match is None:
        ids = ", ".join(repr(c["id"]) for c in pending)
        raise WorkflowDataError(f"{here} (tool): tool_call_id {wanted!r} matches no waiting call; waiting: {ids}")
    name = match["function"]["name"]
    if message.get("name", name) != name:
        raise WorkflowDataError(f"{here} (tool): name {message['name']!r} differs from its call's name {name!r}")
    pending.remove(match)
    message["tool_call_id"] = match["id"]
    message["name"] = name
