"""The shapes of a run's own files, checked where they are read back: ``results.json`` and each
line of ``samples.jsonl`` (``--llmeval-output``).

A file edited by hand (or cut short, or written by another tool) may hold a value of the wrong
type, miss a key, hold NaN, a number too large for a count, or nested junk. Every reader checks
the shape first (:func:`check_results`, :func:`check_sample`), so that ``merge``, ``report``,
``compare`` and ``review`` answer with one line naming the file, the place
(``suites["e/test_a.py::test_a"].cases["c001"]``) and the fix, never with a traceback later on.
Keys this version does not know are kept as they came (any JSON without NaN or infinities).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["FIX", "check_results", "check_sample"]

FIX = "fix or remove that value, or write the folder again with pytest --llmeval-output"
BIG = 10**12
"""The largest count, token number or number of seconds a file may hold."""


MISSING = object()
Problem = tuple[str, str, Any]


class Spec:
    """What a value must be; :meth:`problem` says why a value is not that (None when it is)."""

    what = "a value"

    def problem(self, value: Any, place: str) -> Problem | None:
        """``(place, what was expected, the value found)`` of the first wrong value inside ``value``, or None."""
        return None if self.accepts(value) else (place, self.what, value)

    def accepts(self, value: Any) -> bool:  # pragma: no cover - every Spec below overrides it or problem()
        return True


@dataclass(frozen=True)
class Leaf(Spec):
    test: Callable[[Any], bool]
    what: str = "a value"

    def accepts(self, value: Any) -> bool:
        return self.test(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def num(low: float = -BIG, high: float = BIG, *, integer: bool = False, infinite: bool = False) -> Leaf:
    """A number in ``[low, high]`` (a whole one with ``integer``); never NaN; infinite only with ``infinite``."""
    kind = "a whole number" if integer else "a number"

    def test(v: Any) -> bool:
        if not _number(v) or (integer and not isinstance(v, int)):
            return False
        if isinstance(v, float) and math.isinf(v):
            return infinite
        return not (isinstance(v, float) and math.isnan(v)) and low <= v <= high

    return Leaf(test, f"{kind} from {low:g} to {high:g}")


def opt(spec: Spec) -> Spec:
    """``spec`` or null."""
    return OneOf((NULL, spec))


@dataclass(frozen=True)
class OneOf(Spec):
    options: tuple[Spec, ...]

    @property
    def what(self) -> str:  # type: ignore[override]
        return " or ".join(o.what for o in self.options)

    def problem(self, value: Any, place: str) -> Problem | None:
        found = [o.problem(value, place) for o in self.options]
        if any(f is None for f in found):
            return None
        deeper = [f for f in found if f is not None and f[0] != place]  # the one option whose shape it has
        return deeper[0] if len(deeper) == 1 else (place, self.what, value)


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    length: int | None = None

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"a list of {self.length} ({self.item.what})" if self.length else f"a list ({self.item.what} each)"

    def problem(self, value: Any, place: str) -> Problem | None:
        if not isinstance(value, list) or (self.length is not None and len(value) != self.length):
            return place, self.what, value
        return next((p for i, v in enumerate(value) if (p := self.item.problem(v, f"{place}[{i}]"))), None)


@dataclass(frozen=True)
class Obj(Spec):
    """A JSON object: known ``fields`` (``required`` ones must be there), and any other key's
    value a ``rest`` (by default plain JSON)."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    rest: Spec | None = None
    what: str = "an object"

    def problem(self, value: Any, place: str) -> Problem | None:
        if not isinstance(value, dict):
            return place, self.what, value
        for key in self.required:
            if key not in value:
                return _at(place, key), self.fields[key].what, MISSING
        for key, item in value.items():
            spec = self.fields.get(key, self.rest or JSON)
            found = spec.problem(item, _at(place, key))
            if found:
                return found
        return None


def _at(place: str, key: str) -> str:
    """``place`` and then ``key``, as jq writes a path: ``.suites["e/t.py::test_a"].cases``."""
    return f"{place}.{key}" if key.isidentifier() else f"{place}[{json.dumps(key)}]"


class _Json(Spec):
    """Plain JSON: no NaN or infinity, no number beyond 64 bits, nested at most 64 deep."""

    what = "plain JSON (no NaN, no infinity, no number beyond 64 bits)"

    def problem(self, value: Any, place: str, depth: int = 0) -> Problem | None:
        if depth > 64:
            return place, "JSON nested at most 64 deep", value
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return None
        if isinstance(value, int):
            return None if -(2**63) <= value < 2**64 else (place, self.what, value)
        if isinstance(value, float):
            return None if math.isfinite(value) else (place, self.what, value)
        if isinstance(value, list):
            return next((p for i, v in enumerate(value) if (p := self.problem(v, f"{place}[{i}]", depth + 1))), None)
        if isinstance(value, dict):
            return next((p for k, v in value.items() if (p := self.problem(v, _at(place, k), depth + 1))), None)
        return place, self.what, value


JSON = _Json()
NULL = Leaf(lambda v: v is None, "null")
TEXT = Leaf(lambda v: isinstance(v, str), "a string")
FLAG = Leaf(lambda v: isinstance(v, bool), "true or false")
COUNT = num(0, BIG, integer=True)
RATE = num(0, 1)
SECONDS = num(0, BIG)
SCORE = num(infinite=True)


def one_of(*values: Any) -> Leaf:
    return Leaf(lambda v: any(v == x and type(v) is type(x) for x in values), " or ".join(json.dumps(x) for x in values))


TEXTS = ListOf(TEXT)
OUTCOME = one_of("pass", "fail", "error", "skipped", "xfailed")
REQUIRE = opt(one_of("all", "majority"))
FINGERPRINT = Obj(
    {
        "prompt": opt(TEXT), "generation": opt(Obj()), "num_fewshot": opt(COUNT), "dataset": opt(TEXT), "chat": opt(FLAG),
        "model": opt(TEXT), "tokenizer": opt(TEXT), "chat_template": opt(TEXT), "dtype": opt(TEXT),
        "versions": opt(Obj(rest=TEXT)), "judge": opt(Obj()),
    }  # fmt: skip
)
VERDICT = Obj(
    {
        "verdict": opt(TEXT), "baseline_rate": opt(RATE), "differing": TEXTS, "details": TEXTS, "compared_across": TEXTS,
        "versions_changed": TEXTS, "recorded": FLAG, "shared": opt(COUNT), "delta": opt(num(-1, 1)), "p_value": opt(RATE),
        "newly_failing": TEXTS, "newly_passing": TEXTS, "not_in_baseline": TEXTS, "not_run": TEXTS,
    }  # fmt: skip
)
SUITE = Obj(
    {
        "cases": Obj(rest=OneOf((one_of("pass", "fail", "error"), one_of(0, 1)))), "not_counted": Obj(rest=one_of("skipped", "xfailed")),
        "fingerprint": opt(FINGERPRINT), "metrics": Obj(rest=SCORE), "min_pass_rate": opt(RATE), "limited": FLAG,
        "samples": Obj(rest=ListOf(COUNT, 2)), "require": REQUIRE, "n": COUNT, "passed": COUNT, "failed": COUNT, "errors": COUNT,
        "skipped": COUNT, "xfailed": COUNT, "pass_rate": RATE, "ci": ListOf(RATE, 2), "duration_s": SECONDS, "under_min": FLAG,
        "verdict": opt(VERDICT),
    },  # fmt: skip
    required=("cases",),
    what="a suite object",
)
GROUP = Obj({"n": COUNT, "passed": COUNT, "pass_rate": RATE, "ci": ListOf(RATE, 2)})
RESULTS = Obj(
    {
        "suites": Obj(rest=SUITE, what='an object of suites ({"SUITE": {"cases": ...}})'),
        "run": Obj({
            "shard": ListOf(num(1, BIG, integer=True), 2), "narrowed_by": TEXTS, "interrupted": FLAG, "stopped_early": FLAG,
            "limit": opt(num(1, BIG, integer=True)), "invocation": TEXTS, "rootdir": TEXT, "from_cache": Obj(rest=COUNT),
        }),  # fmt: skip
        "settings": Obj({"strict": FLAG, "tolerance": RATE, "alpha": RATE, "confidence": RATE}),
        "interrupted": FLAG,
        "gate": Obj({"failed": FLAG, "failures": TEXTS}),
        "summary": Obj(rest=COUNT),
        "baseline": Obj({"path": opt(TEXT), "state": opt(TEXT), "recorded": TEXTS, "stale": TEXTS}),
        "versions": Obj(rest=TEXT),
        "timings": Obj(rest=OneOf((SECONDS, TEXT))),
        "groups": Obj({"markers": Obj(rest=GROUP)}),
        "messages": ListOf(OneOf((TEXT, Obj(rest=OneOf((TEXT, NULL)))))),
    },
    required=("suites",),
    what="a pytest-llmeval results object",
)
JUDGEMENT = Obj(
    {
        "label": OneOf((TEXT, num(integer=True))), "labels": ListOf(OneOf((TEXT, num(integer=True)))),
        "probabilities": Obj(rest=RATE), "score": opt(SCORE), "reference": opt(TEXT), "min_kappa": opt(num(-1, 1)),
        "labels_file": opt(TEXT),
    },  # fmt: skip
    required=("label",),
)
MESSAGES = ListOf(Obj(rest=JSON))
SAMPLE = Obj(
    {
        "suite": TEXT, "id": TEXT, "outcome": TEXT, "repeat": num(0, BIG, integer=True), "repeats": num(1, BIG, integer=True),
        "prompt": OneOf((NULL, TEXT, MESSAGES)), "completion": opt(TEXT), "choices": TEXTS, "loglikelihoods": ListOf(opt(num())),
        "scores": Obj(rest=SCORE), "reason": opt(TEXT), "latency_s": opt(SECONDS), "tokens_in": opt(COUNT), "tokens_out": opt(COUNT),
        "duration_s": SECONDS, "markers": TEXTS, "limited": FLAG, "suite_size": opt(COUNT), "truncated": COUNT, "cached": FLAG,
        "require": REQUIRE, "judgement": opt(JUDGEMENT), "unused_chat_template": FLAG, "identical_repeats": FLAG,
        "cost_usd": opt(SECONDS), "cost": opt(SECONDS), "min_pass_rate": opt(RATE), "fingerprint": opt(FINGERPRINT),
    },  # fmt: skip
    required=("suite", "id"),
    what="a JSON object (one case a line)",
)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_results(data: Any, where: str, error: type[Exception]) -> dict[str, Any]:
    """``data`` (a parsed ``results.json``) when it has the shape this version reads; else
    ``error("FILE: PLACE: expected ..., got ...; fix")``."""
    found = RESULTS.problem(data, "")
    if found:
        raise error(_message(where, found, data))
    return data


def check_sample(row: Any, where: str, error: type[Exception]) -> dict[str, Any]:
    """One ``samples.jsonl`` line (``where``: ``FILE:LINE``) when it has the shape this version
    reads; else ``error`` naming the line, the key and the fix."""
    found = SAMPLE.problem(row, "")
    if found:
        raise error(_message(where, found, row))
    if row.get("repeat", 0) >= row.get("repeats", 1):
        raise error(f"{where}: .repeat: expected a sample number below .repeats ({row.get('repeats', 1)}), got {row['repeat']}; {FIX}")
    return row


def _message(where: str, found: Problem, data: Any) -> str:
    place, what, value = found
    got = "the key is missing" if value is MISSING else f"got {_shown(value)}"
    return f"{where}: {place or 'the whole file'}: expected {what}, {got}; {FIX}"
