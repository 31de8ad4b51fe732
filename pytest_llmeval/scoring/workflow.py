"""Workflow scorers: which tools a conversation called, with which arguments, in which order, in how many turns.

Each takes the ``conversation`` fixture (a :class:`~pytest_llmeval.workflows.Conversation`).
``assert_tool_called`` returns the matching call (its ``result`` can be checked next); the others
return 1.0. A malformed call (an unknown tool, arguments that do not fit the schema) was never run:
it does not count as a call of the tool for ``assert_tool_called`` and ``assert_tool_order``, but
it does for ``assert_tool_not_called`` (the model tried).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.workflows.conversation import ToolCall

__all__ = ["assert_tool_called", "assert_tool_not_called", "assert_tool_order", "assert_turns"]

_MISSING = object()


def _calls(conversation: Any, scorer: str) -> tuple[ToolCall, ...]:
    calls = getattr(conversation, "tool_calls", None)
    if calls is None or isinstance(conversation, (str, bytes, Mapping)):
        raise TypeError(f"{scorer}() needs the conversation fixture, got {type(conversation).__name__}; pass conversation")
    return tuple(calls)


def _name(name: Any, scorer: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{scorer}() needs the tool's name as a non-empty str, got {name!r:.60}")
    return name


def _shown(expected: Any) -> str:
    if isinstance(expected, type):
        return f"<any {expected.__name__}>"
    if callable(expected):
        name = getattr(expected, "__name__", type(expected).__name__)
        return "<a predicate>" if name == "<lambda>" else f"<{name}(...)>"
    return repr(expected)


def _mismatch(call: ToolCall, expected: Mapping[str, Any]) -> str | None:
    """Why ``call``'s arguments do not match ``expected`` (a subset), or ``None`` when they do."""
    if not isinstance(call.arguments, Mapping):
        return "its arguments are not a JSON object"
    for key, want in expected.items():
        got = call.arguments.get(key, _MISSING)
        if got is _MISSING:
            return f"no argument {key!r}"
        if isinstance(want, type):
            ok = isinstance(got, want)
        elif callable(want):
            try:
                ok = bool(want(got))
            except Exception as exc:  # the model's value broke the predicate: not a match, said plainly
                return f"{key}={got!r:.60}: {_shown(want)} raised {type(exc).__name__}"
        else:
            ok = got == want
        if not ok:
            return f"{key}={got!r:.60} (expected {_shown(want)})"
    return None


def _listing(calls: Sequence[ToolCall], limit: int = 6) -> str:
    shown = ", ".join(c.describe() + (" [malformed]" if c.malformed else "") for c in calls[:limit])
    return shown + (f" (+{len(calls) - limit} more)" if len(calls) > limit else "")


def assert_tool_called(conversation: Any, name: str, /, **expected_args: Any) -> ToolCall:
    """Pass when some well-formed call of tool ``name`` has arguments that include ``expected_args``.

    A subset match: other arguments are ignored. An expected value may be a plain value (compared
    with ``==``), a type (``isinstance``), or a predicate (``city=lambda c: c.lower() == "paris"``).
    Returns the first matching call."""
    scorer = "assert_tool_called"
    calls = _calls(conversation, scorer)
    name = _name(name, scorer)
    named = [c for c in calls if c.name == name]
    for call in named:
        if not call.malformed and _mismatch(call, expected_args) is None:
            return call
    wanted = f"{name}({', '.join(f'{k}={_shown(v)}' for k, v in expected_args.items())})"
    if not named:
        others = f"; it called: {_listing(calls)}" if calls else "; the model called no tool"
        reason = f"{name} was never called{others}"
    else:
        why = "; ".join(
            f"call {k + 1}: " + ("malformed: " + (c.error or "") if c.malformed else _mismatch(c, expected_args) or "")
            for k, c in enumerate(named[:4])
        )
        reason = f"{name} was called {len(named)} time(s), never as {wanted}: {why}"
    raise EvalFailure(reason[:600], expected=wanted, actual=_listing(calls) or "no tool calls", scorer=scorer)


def assert_tool_not_called(conversation: Any, name: str, /, **args: Any) -> float:
    """Pass when no call of tool ``name`` (malformed ones included) has arguments that include
    ``args`` (with no ``args``: no call of ``name`` at all)."""
    scorer = "assert_tool_not_called"
    calls = _calls(conversation, scorer)
    name = _name(name, scorer)
    hits = [c for c in calls if c.name == name and (not args or _mismatch(c, args) is None)]
    if not hits:
        return 1.0
    step = hits[0].step
    reason = f"{name} was called {len(hits)} time(s) (first at turn {step + 1}): {_listing(hits)}"
    raise EvalFailure(reason, expected=f"no call of {name}", actual=_listing(hits), scorer=scorer)


def assert_tool_order(conversation: Any, names: Sequence[str], *, exact: bool = False) -> float:
    """Pass when the well-formed calls name ``names`` in this order: other calls may come between
    (``exact=True``: the calls are exactly ``names``, nothing else). On a miss the score is the
    fraction of ``names`` found in order."""
    scorer = "assert_tool_order"
    calls = _calls(conversation, scorer)
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise TypeError(f"{scorer}() needs a non-empty list of tool names, got {names!r:.60}; pass e.g. ['search', 'book']")
    wanted = [_name(n, scorer) for n in names]
    actual = [c.name for c in calls if not c.malformed]
    if exact:
        if actual == wanted:
            return 1.0
        same = next((k for k, (a, w) in enumerate(zip(actual, wanted)) if a != w), min(len(actual), len(wanted)))
        raise EvalFailure(
            f"the tool calls were {actual}, not exactly {wanted}", score=same / len(wanted), expected=wanted, actual=actual, scorer=scorer
        )
    found = 0
    for called in actual:
        if found < len(wanted) and called == wanted[found]:
            found += 1
    if found == len(wanted):
        return 1.0
    reason = f"{wanted[found]!r} was not called after {wanted[:found]}" if found else f"{wanted[0]!r} was never called"
    raise EvalFailure(
        f"tools not called in the order {wanted}: {reason}; calls in order: {actual}",
        score=found / len(wanted), expected=wanted, actual=actual, scorer=scorer,
    )


def assert_turns(conversation: Any, max: int | None = None, *, min: int | None = None) -> float:  # noqa: A002
    """Pass when the conversation took at most ``max`` (and at least ``min``) assistant turns."""
    scorer = "assert_turns"
    turns = getattr(conversation, "turns", None)
    if not isinstance(turns, int):
        raise TypeError(f"{scorer}() needs the conversation fixture, got {type(conversation).__name__}; pass conversation")
    for label, bound in (("max", max), ("min", min)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 0):
            raise ValueError(f"{scorer}() {label}= must be a whole number >= 0, got {bound!r}")
    if max is None and min is None:
        raise ValueError(f"{scorer}() needs max= or min=; pass e.g. max=3")
    ending = getattr(conversation, "ending", "")
    note = " (it was stopped at max_turns)" if ending == "max_turns" else ""
    if max is not None and turns > max:
        raise EvalFailure(f"the conversation took {turns} turns, more than {max}{note}", expected=f"<= {max}", actual=turns, scorer=scorer)
    if min is not None and turns < min:
        raise EvalFailure(f"the conversation took {turns} turns, fewer than {min}", expected=f">= {min}", actual=turns, scorer=scorer)
    return 1.0
