"""Running tool calls: a time limit, every failure captured, results as text, calls in parallel.

What the model sees is always text. A tool's ``str`` result is passed as is; ``None`` is an empty
result; numbers, booleans, lists and dicts are sent as JSON. Anything else (bytes, an object), an
exception, or running past the time limit becomes an error result (``error: ...``) that the model
sees and the trace records; a result longer than ``max_result_chars`` is cut, and says so.

Calls are independent by construction: the calls of one round come from different conversations,
or from one assistant message whose calls the model wrote before seeing any result. So a round's
calls run at once, up to ``max_workers`` at a time, each in its own daemon thread. A Python function
cannot be stopped from outside: a call past its time limit is abandoned (its thread may keep running
in the background, and never keeps the process from exiting) and its slot goes to the next call.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pytest_llmeval.workflows.tools import Tool, ToolFailure

__all__ = ["DEFAULT_TIMEOUT", "MAX_RESULT_CHARS", "CallOutcome", "ToolRunner", "result_text", "run_parallel"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a tool call may run."""
MAX_RESULT_CHARS = 20_000
"""How much of one result a model is shown: a tool returning 10 MB must not flood its context."""


@dataclass(frozen=True)
class CallOutcome:
    """What one tool call produced: ``result`` text or a one-line ``error``, and how long it took."""

    result: str | None
    error: str | None
    duration_s: float = 0.0
    truncated: bool = False


class _Failed(Exception):
    """A tool result that is not usable (not text); the message says why."""


def result_text(value: Any, *, limit: int = MAX_RESULT_CHARS) -> tuple[str, bool]:
    """``value`` as the text a model is shown, and whether it was cut at ``limit`` characters."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, (bool, int, float, list, tuple, dict)):
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise _Failed(f"returned a {type(value).__name__} that is not JSON data ({_line(exc)}); return a str") from None
    else:
        raise _Failed(f"returned a {type(value).__name__}, not text; return a str (or JSON data: a dict, a list, a number)")
    if len(text) <= limit:
        return text, False
    return text[:limit] + f"\n[... cut: the result has {len(text)} characters, the first {limit} are shown]", True


def _line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _call(tool: Tool, arguments: Mapping[str, Any]) -> Any:
    value = tool.function(**dict(arguments))
    if inspect.isawaitable(value):
        async def wait() -> Any:
            return await value

        value = asyncio.run(wait())  # this worker thread has no running loop
    return value


class _Slot:
    __slots__ = ("done", "value", "error", "started", "ended")

    def __init__(self) -> None:
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.started = 0.0
        self.ended = 0.0


def run_parallel(thunks: Sequence[Callable[[], Any]], *, max_workers: int, timeout: float) -> list[tuple[bool, Any, float]]:
    """Run every thunk, up to ``max_workers`` at once, each in a daemon thread for at most
    ``timeout`` seconds. Per thunk: ``(finished, value or exception, seconds)``; a thunk past its
    time limit is ``(False, None, seconds)`` and is not waited for."""
    max_workers = max(1, max_workers)
    slots = [_Slot() for _ in thunks]
    changed = threading.Condition()

    def work(thunk: Callable[[], Any], slot: _Slot) -> None:
        try:
            slot.value = thunk()
        except BaseException as exc:  # a tool's SystemExit is the tool's failure, not ours
            slot.error = exc
        with changed:
            slot.ended = time.perf_counter()
            slot.done = True
            changed.notify_all()

    waiting = list(range(len(thunks)))
    running: list[int] = []
    out: list[tuple[bool, Any, float] | None] = [None] * len(thunks)
    with changed:
        while waiting or running:
            while waiting and len(running) < max_workers:
                i = waiting.pop(0)
                slots[i].started = time.perf_counter()
                threading.Thread(target=work, args=(thunks[i], slots[i]), name="llmeval-tool", daemon=True).start()
                running.append(i)
            now = time.perf_counter()
            for i in list(running):
                slot = slots[i]
                if slot.done:
                    out[i] = (True, slot.error if slot.error is not None else slot.value, slot.ended - slot.started)
                    running.remove(i)
                elif now - slot.started >= timeout:
                    out[i] = (False, None, now - slot.started)
                    running.remove(i)
            if running and not (waiting and len(running) < max_workers):
                first_deadline = min(slots[i].started for i in running) + timeout
                changed.wait(timeout=max(0.0, first_deadline - time.perf_counter()) + 0.001)
    return [o for o in out if o is not None]


class ToolRunner:
    """Runs tool calls by name, with a time limit per call and a cap on what a result may hold."""

    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_workers: int = 8,
        max_result_chars: int = MAX_RESULT_CHARS,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"tool timeout must be a positive number of seconds, got {timeout!r}")
        self.tools = {tool.name: tool for tool in tools}
        self.timeout = float(timeout)
        self.max_workers = max_workers
        self.max_result_chars = max_result_chars

    def run(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> list[CallOutcome]:
        """Run ``(tool name, arguments)`` calls, checked beforehand (see
        :func:`~pytest_llmeval.workflows.tools.argument_problem`), all at once."""
        thunks = [self._thunk(name, arguments) for name, arguments in calls]
        outcomes = []
        for finished, value, seconds in run_parallel(thunks, max_workers=self.max_workers, timeout=self.timeout):
            if not finished:
                outcomes.append(CallOutcome(None, f"timed out after {self.timeout:g} s", seconds))
            elif isinstance(value, (_Failed, ToolFailure)):
                outcomes.append(CallOutcome(None, str(value)[:1000] or "the tool failed", seconds))
            elif isinstance(value, BaseException):
                outcomes.append(CallOutcome(None, _line(value), seconds))
            else:
                text, truncated = value
                outcomes.append(CallOutcome(text, None, seconds, truncated))
        return outcomes

    def _thunk(self, name: str, arguments: Mapping[str, Any]) -> Callable[[], tuple[str, bool]]:
        def thunk() -> tuple[str, bool]:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolFailure(f"this runner has no tool {name!r}")
            return result_text(_call(tool, arguments), limit=self.max_result_chars)

        return thunk
