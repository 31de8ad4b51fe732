"""What produced a suite's results (:class:`Fingerprint`): the fields that must match for two runs
to be comparable, those a comparison is for, and how two fingerprints differ, in words
(:class:`FingerprintDiff`). Every result file carries one per suite."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

__all__ = ["ABOUT", "COMPARED", "MUST_MATCH", "Fingerprint", "FingerprintDiff", "version_changes"]

_MUST_MATCH = {"role": "must_match"}
_COMPARED = {"role": "compared"}
_ABOUT = {"role": "about"}


@dataclass(frozen=True)
class Fingerprint:
    """What produced a suite's results.

    Fields that *must match* define which eval ran (the prompt template, the generation
    settings, the few-shot count, the dataset, whether the chat template was applied): runs
    that differ in one are not comparable. Fields that are *compared* define what was
    evaluated (weights, tokenizer, chat template, dtype, the versions of the software that
    computed the scores): a difference there is what a comparison is for, and is reported.
    ``prompt_text`` says in words what ``prompt`` hashes (the template's text, and the other
    prompt settings that are set), so a changed prompt can be shown as a diff; it is never
    compared (the hash is); ``model_name`` names the model as the settings did. ``None`` means
    not recorded. ``chat`` and ``versions`` came later than the others: a side
    that does not record them (an older baseline) is not a difference. ``versions`` is
    compared name by name (``transformers``, ``torch``...), on the names both sides record.
    Keys this version does not know are kept in ``extra`` and written back unchanged.
    """

    prompt: str | None = field(default=None, metadata=_MUST_MATCH)
    generation: Mapping[str, Any] | None = field(default=None, metadata=_MUST_MATCH)
    num_fewshot: int | None = field(default=None, metadata=_MUST_MATCH)
    dataset: str | None = field(default=None, metadata=_MUST_MATCH)
    chat: bool | None = field(default=None, metadata=_MUST_MATCH)
    model: str | None = field(default=None, metadata=_COMPARED)
    tokenizer: str | None = field(default=None, metadata=_COMPARED)
    chat_template: str | None = field(default=None, metadata=_COMPARED)
    dtype: str | None = field(default=None, metadata=_COMPARED)
    versions: Mapping[str, str] | None = field(default=None, metadata=_COMPARED)
    judge: Mapping[str, Any] | None = field(default=None, metadata=_MUST_MATCH)
    """A judged suite's judge: its model, how it scores labels, the rubric's hash."""
    prompt_text: str | None = field(default=None, metadata=_ABOUT)
    model_name: str | None = field(default=None, metadata=_ABOUT)
    """The model as ``llmeval_model`` (or an ``llm_settings`` fixture) names it, for people."""
    tools: Mapping[str, Any] | None = field(default=None, metadata=_MUST_MATCH)
    """A workflow suite's tools: a hash of each tool's schema (what its signature and docstring
    say), the tool instructions and format they are shown in, the turn limit."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: "Fingerprint | Mapping[str, Any] | None") -> "Fingerprint":
        if isinstance(data, Fingerprint):
            return data
        try:
            text = json.dumps(dict(data or {}), sort_keys=True, default=str)
        except (TypeError, ValueError):
            return cls._made(dict(data or {}))
        made = _MADE.get((cls, text))
        if made is None:  # every case of a suite has the same fingerprint: made once, shared (it is frozen)
            made = cls._made(json.loads(text))
            if len(_MADE) >= 64:
                _MADE.pop(next(iter(_MADE)))
            _MADE[(cls, text)] = made
        return made

    @classmethod
    def _made(cls, values: dict[str, Any]) -> "Fingerprint":
        known = {k: values.pop(k) for k in (*MUST_MATCH, *COMPARED, *ABOUT) if k in values}
        return cls(**known, extra=values)

    def to_json(self) -> dict[str, Any]:
        """The stored form: the fields that are set, and the unknown keys as they came."""
        stored = self.__dict__.get("_stored")
        if stored is None:  # made once: every case of a suite writes the same fingerprint
            data = dict(self.extra)
            for name in (*MUST_MATCH, *COMPARED, *ABOUT):
                value = getattr(self, name)
                if value is not None:
                    data[name] = value
            stored = dict(sorted(data.items()))
            object.__setattr__(self, "_stored", stored)
        return dict(stored)

    def __bool__(self) -> bool:
        return bool(self.to_json())

    def get(self, key: str, default: Any = None) -> Any:
        """A field or an extra key by name (as the stored JSON would give it)."""
        return self.to_json().get(key, default)

    def diff(self, after: "Fingerprint") -> "FingerprintDiff":
        """How ``after`` differs from this fingerprint."""
        differing: list[str] = []
        details: list[str] = []
        for key in MUST_MATCH:
            a, b = getattr(self, key), getattr(after, key)
            if key in _RECORDED_LATER and (a is None or b is None):
                continue
            if a != b:
                differing.append(key)
                details.extend(_describe(key, a, b))
        changed = version_changes(self.versions, after.versions)
        across = [k for k in COMPARED if k != "versions" and getattr(self, k) != getattr(after, k)]
        across += ["versions"] if changed else []
        return FingerprintDiff(tuple(differing), tuple(details), tuple(sorted(across)), tuple(changed))


_MADE: dict[tuple[type, str], Fingerprint] = {}
"""The fingerprints made lately, by their canonical JSON text (a few: the session's suites)."""

MUST_MATCH: tuple[str, ...] = tuple(f.name for f in fields(Fingerprint) if f.metadata.get("role") == "must_match")
"""Fingerprint fields that define *which* eval ran: a run that differs in one is not comparable."""

COMPARED: tuple[str, ...] = tuple(f.name for f in fields(Fingerprint) if f.metadata.get("role") == "compared")
"""Fingerprint fields that define *what* is evaluated: differing is what a comparison is for."""

ABOUT: tuple[str, ...] = tuple(f.name for f in fields(Fingerprint) if f.metadata.get("role") == "about")
"""Fingerprint fields that only describe another field (``prompt_text``): never compared."""


@dataclass(frozen=True)
class FingerprintDiff:
    """``differing``: must-match fields that differ; ``details``: how
    (``generation.max_new_tokens: 32 -> 64``); ``compared_across``: compared fields that differ;
    ``versions_changed``: which versions differ (``transformers 4.57.0 -> 4.58.1``)."""

    differing: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    compared_across: tuple[str, ...] = ()
    versions_changed: tuple[str, ...] = ()


_RECORDED_LATER = frozenset({"chat"})
"""Must-match fields older files lack: not recorded on one side is not a difference."""


def version_changes(before: Any, after: Any) -> list[str]:
    """``name old -> new`` for each version both sides record and that differs, by name; nothing
    when a side records none (an older baseline) or holds something that is not a mapping."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    return [f"{name} {before[name]} -> {after[name]}" for name in sorted(set(before) & set(after)) if before[name] != after[name]]


def _describe(key: str, a: Any, b: Any) -> list[str]:
    if key == "tools" and isinstance(a, Mapping) and isinstance(b, Mapping):
        return _describe_tools(a, b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for sub in sorted(set(a) | set(b)):
            if a.get(sub) != b.get(sub):
                out.extend(_describe(f"{key}.{sub}", a.get(sub), b.get(sub)))
        return out
    return [f"{key}: {_short(a)} -> {_short(b)}"]


def _describe_tools(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """How a workflow suite's tools differ, naming each tool (``tools: get_weather (changed)``)."""
    from pytest_llmeval.workflows.fingerprint import changed_tools

    out = [f"tools: {phrase}" for phrase in changed_tools(a, b)]
    for sub in ("format", "max_turns"):
        if a.get(sub) != b.get(sub):
            out.append(f"tools.{sub}: {_short(a.get(sub))} -> {_short(b.get(sub))}")
    return out or ["tools: (changed)"]


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 24 else text[:20] + "..."

