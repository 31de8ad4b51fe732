"""Structured output: JSON, optionally checked against a JSON Schema."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.scoring.text import check_text

__all__ = ["assert_json"]

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_MISSING = object()


def _loads(candidate: str) -> tuple[Any, str | None]:
    try:
        return json.loads(candidate), None
    except json.JSONDecodeError as exc:
        return _MISSING, f"{exc.msg} at line {exc.lineno} column {exc.colno}"


def _extract_json(text: str, *, extract: bool = True) -> tuple[Any, str | None]:
    """Parse ``text`` as JSON; with ``extract`` also look inside a fenced code block or at the
    first ``{...}`` / ``[...]`` span. Returns ``(value, None)``, or ``(missing, error)``."""
    value, error = _loads(text.strip())
    if value is not _MISSING or not extract:
        return value, error
    for block in _FENCE.finditer(text):
        found, _ = _loads(block.group(1).strip())
        if found is not _MISSING:
            return found, None
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", text):
        try:
            found, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        return found, None
    return _MISSING, error


def _validator(schema: object, scorer: str) -> Any:
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
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_json(text: str, schema: Mapping[str, Any] | bool | None = None, *, extract: bool = True) -> Any:
    """Pass when ``text`` is valid JSON (with ``extract``, JSON inside a ```json block or the
    first ``{...}``/``[...]`` span counts) that matches ``schema`` when given.

    The schema is a JSON Schema (Draft 2020-12 unless its ``$schema`` says otherwise; ``format``
    keywords are checked). Returns the parsed value.
    """
    scorer = "assert_json"
    t = check_text(text, scorer)
    validator = None if schema is None else _validator(schema, scorer)
    value, error = _extract_json(t, extract=extract)
    if value is _MISSING:
        where = "the text" if not extract else "the text, a ```json block or a {...}/[...] span"
        raise EvalFailure(f"no valid JSON in {where}: {error}", expected="JSON", actual=t, scorer=scorer)
    if validator is not None:
        import jsonschema

        errors = list(validator.iter_errors(value))
        if errors:
            best = jsonschema.exceptions.best_match(errors)
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise EvalFailure(
                f"JSON does not match the schema at {best.json_path}: {best.message}{more}",
                expected=dict(schema) if isinstance(schema, Mapping) else schema,
                actual=value,
                scorer=scorer,
            )
    return value
