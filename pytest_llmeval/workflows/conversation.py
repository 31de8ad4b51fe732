"""What a workflow case produced: the conversation, its steps and its tool calls.

Messages are plain dicts in the chat form transformers' chat templates and OpenAI-compatible
servers read: ``{"role": ..., "content": ...}``; an assistant message that calls tools carries
``"tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}]`` (arguments as a
dict) and each result is a ``{"role": "tool", "tool_call_id", "name", "content"}`` message.

Everything here is frozen and JSON-able (:meth:`Conversation.to_record`), so a conversation can
travel between processes and into ``samples.jsonl`` unchanged.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

__all__ = ["Conversation", "Ending", "Step", "ToolCall"]

Message = dict[str, Any]
Ending = Literal["answered", "max_turns", "error"]
"""Why a conversation stopped: the model answered with no tool call and no scripted user turn was
left; it reached ``max_turns`` model calls; or a generation failed (``Conversation.error`` says how)."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model made, and what came of it.

    ``result`` is the text the model was shown (``None`` when the call failed). ``error`` is one line
    saying why it failed: the tool raised or ran out of time, returned what is not text, or the call
    itself was ``malformed`` (an unknown tool, arguments that are not a JSON object or do not fit the
    tool's schema); a malformed call is never run. ``arguments`` is the parsed JSON object, or the raw
    text the model wrote when it was not one.
    """

    id: str
    name: str
    arguments: Mapping[str, Any] | str
    result: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    step: int = 0
    """The index of the assistant step (model call) that made this call."""
    malformed: bool = False
    truncated: bool = False
    """The result was longer than the runner's limit and was cut (``result`` says so at its end)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        """``name(city='Paris')``: the call as a person reads it in a failure message."""
        if isinstance(self.arguments, Mapping):
            args = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        else:
            args = f"<not a JSON object: {self.arguments!r:.60}>"
        text = f"{self.name or '<no name>'}({args})"
        return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class Step:
    """One model call of a conversation: the assistant message it produced and what it cost."""

    index: int
    content: str
    """The assistant's text, tool-call markup removed."""
    raw: str
    """The output exactly as generated (for a served model: its content)."""
    calls: tuple[ToolCall, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Conversation:
    """A whole workflow case: every message, every step, every tool call.

    ``turns`` counts the model's assistant messages (model calls), the quantity ``max_turns`` caps.
    ``final`` is the text of the last assistant message (empty when that message only called tools).
    """

    messages: tuple[Message, ...]
    steps: tuple[Step, ...] = ()
    ending: Ending = "answered"
    error: str | None = None
    start: int = 0
    """How many of ``messages`` were given (the case's earlier turns and prompt), not generated."""
    user_turns_left: tuple[str, ...] = field(default=())
    tool_format: str | None = None
    """How the tools were shown to the model and its calls read (``"generic"``, ``"tagged"``,
    ``"native"`` for a served model...: :mod:`.formats`), when the runner knows it."""

    @property
    def turns(self) -> int:
        return len(self.steps)

    @property
    def final(self) -> str:
        return self.steps[-1].content if self.steps else ""

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(call for step in self.steps for call in step.calls)

    @property
    def tokens_in(self) -> int:
        return sum(step.tokens_in for step in self.steps)

    @property
    def tokens_out(self) -> int:
        return sum(step.tokens_out for step in self.steps)

    @property
    def latency_s(self) -> float:
        """Model time: the sum of the steps' latencies (tool time is in each call's ``duration_s``)."""
        return sum(step.latency_s for step in self.steps)

    def called(self, name: str) -> tuple[ToolCall, ...]:
        """The calls of tool ``name``, in order."""
        return tuple(call for call in self.tool_calls if call.name == name)

    def transcript(self, *, limit: int = 2000) -> str:
        """The conversation as plain text, one block per message (for judges and reports);
        each message's text is cut at ``limit`` characters."""
        blocks = []
        for message in self.messages:
            role = str(message.get("role", "?"))
            content = _cut(str(message.get("content") or ""), limit)
            if role == "tool":
                blocks.append(f"[tool result: {message.get('name', '?')}]\n{content}")
                continue
            lines = [f"[{role}]"] + ([content] if content else [])
            for call in message.get("tool_calls") or ():
                function = call.get("function", call)
                arguments = function.get("arguments")
                shown = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False, default=repr)
                lines.append(f"-> call {function.get('name', '?')}({_cut(shown, limit)})")
            blocks.append("\n".join(lines))
        if self.error:
            blocks.append(f"[error] {self.error}")
        return "\n\n".join(blocks)

    def to_record(self) -> dict[str, Any]:
        """JSON-able data (messages, steps with tokens and latency, tool calls) for traces."""
        return {
            "messages": [copy.deepcopy(m) for m in self.messages],
            "start": self.start,
            "ending": self.ending,
            "error": self.error,
            "turns": self.turns,
            "user_turns_left": list(self.user_turns_left),
            "tool_format": self.tool_format,
            "steps": [
                {
                    "index": s.index,
                    "content": s.content,
                    "raw": s.raw,
                    "tokens_in": s.tokens_in,
                    "tokens_out": s.tokens_out,
                    "latency_s": s.latency_s,
                    "finish_reason": s.finish_reason,
                    "calls": [_call_record(c) for c in s.calls],
                }
                for s in self.steps
            ],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Conversation":
        steps = tuple(
            Step(
                index=s["index"],
                content=s["content"],
                raw=s["raw"],
                calls=tuple(ToolCall(**c) for c in s["calls"]),
                tokens_in=s["tokens_in"],
                tokens_out=s["tokens_out"],
                latency_s=s["latency_s"],
                finish_reason=s["finish_reason"],
            )
            for s in record["steps"]
        )
        return cls(
            messages=tuple(record["messages"]),
            steps=steps,
            ending=record["ending"],
            error=record["error"],
            start=record["start"],
            user_turns_left=tuple(record.get("user_turns_left", ())),
            tool_format=record.get("tool_format"),
        )


def _call_record(call: ToolCall) -> dict[str, Any]:
    arguments = dict(call.arguments) if isinstance(call.arguments, Mapping) else call.arguments
    return {
        "id": call.id,
        "name": call.name,
        "arguments": arguments,
        "result": call.result,
        "error": call.error,
        "duration_s": call.duration_s,
        "step": call.step,
        "malformed": call.malformed,
        "truncated": call.truncated,
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters]"


def freeze_messages(messages: Sequence[Message]) -> tuple[Message, ...]:
    """Deep copies of ``messages``: a conversation never shares a dict with its caller."""
    return tuple(copy.deepcopy(dict(m)) for m in messages)
