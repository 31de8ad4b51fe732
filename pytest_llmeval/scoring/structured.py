"""Structured output: JSON, optionally checked against a JSON Schema."""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from pytest_llmeval.scoring.bounded_regex import DEFAULT_TIMEOUT, check_timeout, compile_bounded
from pytest_llmeval.scoring.failures import EvalFailure, hide_misses
from pytest_llmeval.scoring.text import check_text

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

__all__ = ["assert_json"]

# Deeper JSON is a miss, not a RecursionError: Python's parser and the schema check both recurse
# once per level. 100 is Ruby's JSON max_nesting; serde_json stops at 128.
MAX_DEPTH = 100

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_OPENERS = re.compile(r"[\[{]")
# a JSON string (escapes included) or a bracket: what decides the nesting depth
_DEPTH_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_DECODER = json.JSONDecoder()
_WINDOW = 4096
_MISSING = object()


class _NotJSON(Exception):
    """Why a candidate is not readable JSON; ``resume`` is where to look for the next candidate
    after one nested too deep (the end of its value)."""

    def __init__(self, reason: str, resume: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.resume = resume


_TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels"


def _too_deep(text: str, pos: int) -> int | None:
    """If the JSON value at ``pos`` nests deeper than MAX_DEPTH: the end of that value, or of
    the text when it never closes; else None."""
    depth = 0
    deep = False
    for token in _DEPTH_TOKENS.finditer(text, pos):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            deep = deep or depth > MAX_DEPTH
        elif bracket in ("]", "}"):
            depth -= 1
            if depth <= 0:
                return token.end() if deep else None
    return len(text) if deep else None


def _nesting(value: Any) -> int:
    """How deep lists and dicts nest in a parsed value, counted without recursion up to
    MAX_DEPTH + 1."""
    deepest = 0
    stack = [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _decode(text: str, pos: int = 0, *, whole: bool) -> Any:
    """The JSON value at ``pos`` (``whole``: the value that is all of ``text``), or ``_NotJSON``."""
    try:
        value, end = (_DECODER.decode(text), len(text)) if whole else _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise _NotJSON(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError:  # int() refuses a literal longer than sys.get_int_max_str_digits()
        raise _NotJSON(f"a JSON integer has more than {sys.get_int_max_str_digits()} digits") from None
    except RecursionError:  # far deeper than MAX_DEPTH (or the caller's stack is nearly full)
        resume = _too_deep(text, pos)
        raise _NotJSON(_TOO_DEEP if resume is not None else "JSON nested too deeply to parse here", resume) from None
    if _nesting(value) > MAX_DEPTH:
        raise _NotJSON(_TOO_DEEP, end)
    return value


def _extract_json(text: str, *, extract: bool = True) -> tuple[Any, str | None]:
    """Parse ``text`` as JSON; with ``extract`` also look inside a fenced code block or at the
    first ``{...}`` / ``[...]`` span. Returns ``(value, None)``, or ``(missing, error)``."""
    stripped = text.strip()
    try:
        return _decode(stripped, whole=True), None
    except _NotJSON as exc:
        error = exc.reason if _too_deep(stripped, 0) is None else _TOO_DEEP
    if not extract:
        return _MISSING, error
    for block in _FENCE.finditer(text):
        try:
            return _decode(block.group(1).strip(), whole=True), None
        except _NotJSON:
            continue
    resume = 0  # candidates inside a value found too deep are skipped: each is looked at once
    base, window = 0, text  # a JSONDecodeError counts lines from the start: keep that short
    for m in _OPENERS.finditer(text):
        if m.start() < resume:
            continue
        if m.start() - base > _WINDOW:
            base, window = m.start(), text[m.start():]
        try:
            return _decode(window, m.start() - base, whole=False), None
        except _NotJSON as exc:
            if exc.resume is not None:
                resume, error = base + exc.resume, exc.reason
    return _MISSING, error


# -- JSON Schema


def _unresolvable() -> tuple[type[BaseException], ...]:
    try:
        from referencing.exceptions import Unresolvable
    except ImportError:  # jsonschema < 4.18
        import jsonschema

        return (jsonschema.RefResolutionError,)
    return (Unresolvable,)


@functools.lru_cache(maxsize=None)
def _bounded_class(cls: type, timeout: float | None) -> type:
    """``cls`` with ``pattern`` and ``patternProperties`` matched under a time limit."""
    from jsonschema import ValidationError
    from jsonschema.validators import extend

    scorer = "assert_json"

    def matches(pattern: str, text: str) -> bool:
        return compile_bounded(pattern, 0, scorer).matches(text, timeout, scorer=scorer, keyword="pattern_timeout")

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not matches(patrn, instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    def pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        for patrn, subschema in patterns.items():
            for key, value in instance.items():
                if matches(patrn, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=patrn)

    return extend(cls, {"pattern": pattern, "patternProperties": pattern_properties})


def _validator(schema: object, scorer: str, timeout: float | None) -> Any:
    if not isinstance(schema, (Mapping, bool)):
        raise TypeError(
            f"{scorer}() schema must be a JSON Schema (a dict), got {type(schema).__name__}; "
            "pass e.g. {'type': 'object'}"
        )
    import jsonschema  # lazy: only suites that check schemas pay for the import
    from jsonschema.validators import validator_for

    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ValueError(f"{scorer}() got an invalid JSON Schema at {where}: {exc.message}; fix the schema") from None
    bounded = _bounded_class(cls, timeout)
    return bounded(schema, format_checker=cls.FORMAT_CHECKER)


_room_lock = threading.Lock()
_room = {"active": 0, "saved": 0}


@contextmanager
def _stack_room(frames: int) -> Iterator[None]:
    """Let the schema check recurse ``frames`` more levels than the caller has left; the
    recursion limit is restored when the last concurrent check ends."""
    with _room_lock:
        if _room["active"] == 0:
            _room["saved"] = sys.getrecursionlimit()
            sys.setrecursionlimit(_room["saved"] + frames)
        _room["active"] += 1
    try:
        yield
    finally:
        with _room_lock:
            _room["active"] -= 1
            if _room["active"] == 0 and sys.getrecursionlimit() == _room["saved"] + frames:
                sys.setrecursionlimit(_room["saved"])


def _schema_errors(validator: Any, value: Any, scorer: str) -> list[Any]:
    """Every schema violation of ``value``; a schema that cannot be applied is a ValueError."""
    try:
        # the checker recurses several frames per JSON level; MAX_DEPTH levels fit in this room
        with _stack_room(40 * MAX_DEPTH):
            return list(validator.iter_errors(value))
    except RecursionError:
        raise ValueError(
            f"{scorer}() schema check recursed without end; look for a $ref cycle such as "
            "{'$ref': '#'} that reaches itself without going into the JSON, and fix the schema"
        ) from None
    except _unresolvable() as exc:
        raise ValueError(
            f"{scorer}() schema has a $ref it cannot resolve ({str(exc).splitlines()[0]}); "
            "refer only within the schema, e.g. '#/$defs/item'"
        ) from None


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def assert_json(
    text: str,
    schema: Mapping[str, Any] | bool | None = None,
    *,
    extract: bool = True,
    pattern_timeout: float | None = DEFAULT_TIMEOUT,
) -> Any:
    """Pass when ``text`` is valid JSON (with ``extract``, JSON inside a ```json block or the
    first ``{...}``/``[...]`` span counts) that matches ``schema`` when given.

    The schema is a JSON Schema (Draft 2020-12 unless its ``$schema`` says otherwise; ``format``
    keywords are checked). Returns the parsed value. JSON nested deeper than ``MAX_DEPTH`` (100)
    levels is a miss. A schema ``pattern`` that runs past ``pattern_timeout`` seconds on the
    model's text raises ``TimeoutError``.
    """
    scorer = "assert_json"
    t = check_text(text, scorer)
    limit = check_timeout(pattern_timeout, scorer, "pattern_timeout")
    validator = None if schema is None else _validator(schema, scorer, limit)
    value, error = _extract_json(t, extract=extract)
    if value is _MISSING:
        where = "the text" if not extract else "the text, a ```json block or a {...}/[...] span"
        raise EvalFailure(f"no valid JSON in {where}: {error}", expected="JSON", actual=t, scorer=scorer)
    if validator is not None:
        import jsonschema

        errors = _schema_errors(validator, value, scorer)
        if errors:
            best = jsonschema.exceptions.best_match(errors)
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise EvalFailure(
                f"JSON does not match the schema at {best.json_path}: {_clip(best.message)}{more}",
                expected=dict(schema) if isinstance(schema, Mapping) else schema,
                actual=value,
                scorer=scorer,
            )
    return value
