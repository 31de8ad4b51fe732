"""The committed baseline file: reading, writing, and comparing a run's suites against it.

The file is diff-friendly JSON (sorted keys, 2-space indent, trailing newline, no timestamps)::

    {"schema": 1, "suites": {"evals/test_math.py::test_addition": {
        "fingerprint": {...}, "n": 200, "passed": 128, "failed": 72, "errors": 0,
        "cases": {"add-000": 1, "add-001": 0}}}}

It is written atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping

from pytest_llmeval.files import atomic_write_text
from pytest_llmeval.results.stats import Paired, SuiteResult, paired_comparison

SCHEMA = 1

MUST_MATCH = ("prompt", "generation", "num_fewshot", "dataset")
"""Fingerprint fields that define *which* eval ran: a run that differs in one is not comparable."""

COMPARED = ("model", "tokenizer", "chat_template", "dtype")
"""Fingerprint fields that define *what* is evaluated: differing is what a comparison is for."""


class Verdict(str, Enum):
    REGRESSED = "REGRESSED"
    IMPROVED = "IMPROVED"
    UNCHANGED = "UNCHANGED"
    NEW = "NEW"
    INCOMPARABLE = "INCOMPARABLE"

    def __str__(self) -> str:
        return self.value


class BaselineError(Exception):
    """A baseline file that cannot be used. ``kind`` is ``missing``, ``empty`` or ``corrupt``."""

    def __init__(self, path: Path, kind: str, problem: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class SuiteEntry:
    """One suite as the baseline recorded it; ``cases`` maps case id to 1 (pass) or 0."""

    fingerprint: Mapping[str, Any]
    n: int
    passed: int
    failed: int
    errors: int
    cases: Mapping[str, int]

    @classmethod
    def from_result(cls, result: SuiteResult) -> "SuiteEntry":
        return cls(
            fingerprint=_jsonable(dict(result.fingerprint)),
            n=result.n,
            passed=result.passed,
            failed=result.failed,
            errors=result.errors,
            cases={k: int(v == "pass") for k, v in sorted(result.outcomes.items())},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": dict(self.fingerprint),
            "n": self.n,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "cases": dict(sorted(self.cases.items())),
        }

    @property
    def pass_rate(self) -> float:
        return self.passed / self.n if self.n else 0.0


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline. ``raw`` keeps every suite as stored, so an update leaves the suites
    that did not run byte for byte as they were."""

    path: Path
    suites: Mapping[str, SuiteEntry]
    raw: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- reading


def load_baseline(path: Path) -> Baseline:
    """Read and check a baseline file; raise :class:`BaselineError` saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise BaselineError(path, "missing", "no baseline file yet")
    if path.is_dir():
        raise BaselineError(path, "corrupt", "is a folder, not a baseline file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(path, "corrupt", f"cannot be read ({exc})") from None
    return parse_baseline(text, path)


def parse_baseline(text: str, path: Path) -> Baseline:
    path = Path(path)
    if not text.strip():
        raise BaselineError(path, "empty", "is empty")
    if any(line.startswith(("<<<<<<<", ">>>>>>>")) for line in text.splitlines()):
        raise BaselineError(path, "corrupt", "contains merge-conflict markers (<<<<<<< / >>>>>>>)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(path, "corrupt", f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict):
        raise BaselineError(path, "corrupt", f"must hold a JSON object, found {type(data).__name__}")
    schema = data.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, int) and schema > SCHEMA:
            raise BaselineError(path, "corrupt", f"has schema {schema}, newer than this pytest-llmeval reads ({SCHEMA}); upgrade pytest-llmeval")
        raise BaselineError(path, "corrupt", f'has "schema": {json.dumps(schema)}, expected {SCHEMA}')
    suites = data.get("suites")
    if not isinstance(suites, dict):
        raise BaselineError(path, "corrupt", '"suites" must be an object mapping suite ids to entries')
    entries = {name: _parse_entry(path, name, raw) for name, raw in suites.items()}
    return Baseline(path=path, suites=entries, raw=suites)


def _parse_entry(path: Path, name: str, raw: Any) -> SuiteEntry:
    where = f"suites[{json.dumps(name)}]"

    def bad(problem: str) -> BaselineError:
        return BaselineError(path, "corrupt", f"{where}: {problem}")

    if not isinstance(raw, dict):
        raise bad("must be an object")
    fingerprint = raw.get("fingerprint", {})
    if not isinstance(fingerprint, dict):
        raise bad('"fingerprint" must be an object')
    cases = raw.get("cases")
    if not isinstance(cases, dict):
        raise bad('"cases" must be an object mapping case ids to 1 (pass) or 0')
    for case_id, value in cases.items():
        if value not in (0, 1) or isinstance(value, float):
            raise bad(f"cases[{json.dumps(case_id)}] must be 1 or 0, got {json.dumps(value)}")
    counts = {}
    for key, default in (("n", len(cases)), ("passed", sum(cases.values())), ("errors", 0)):
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f'"{key}" must be a non-negative whole number, got {json.dumps(value)}')
        counts[key] = value
    if counts["passed"] + counts["errors"] > counts["n"]:
        raise bad(f'"passed" ({counts["passed"]}) plus "errors" ({counts["errors"]}) is larger than "n" ({counts["n"]})')
    failed = raw.get("failed", counts["n"] - counts["passed"] - counts["errors"])
    if not isinstance(failed, int) or isinstance(failed, bool) or failed < 0:
        raise bad(f'"failed" must be a non-negative whole number, got {json.dumps(failed)}')
    return SuiteEntry(
        fingerprint=fingerprint,
        n=counts["n"],
        passed=counts["passed"],
        failed=failed,
        errors=counts["errors"],
        cases=cases,
    )


# ---------------------------------------------------------------- writing


def dumps_baseline(suites: Mapping[str, Any]) -> str:
    """The file text for ``suites`` (suite id -> entry JSON): sorted keys, 2-space indent."""
    data = {"schema": SCHEMA, "suites": {k: suites[k] for k in sorted(suites)}}
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


write_atomic = atomic_write_text  # temp file in the same folder, fsync, os.replace


def updated_suites(old: Baseline | None, results: Iterable[SuiteResult]) -> dict[str, Any]:
    """The stored suites after recording ``results``: those suites replaced, all others kept."""
    suites: dict[str, Any] = dict(old.raw) if old is not None else {}
    for result in results:
        suites[result.name] = SuiteEntry.from_result(result).to_json()
    return suites


def write_baseline(path: Path, old: Baseline | None, results: Iterable[SuiteResult]) -> str:
    """Record ``results`` into the baseline at ``path``; returns the text written."""
    text = dumps_baseline(updated_suites(old, results))
    write_atomic(path, text)
    return text


def prune_suites(path: Path, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Remove suites from a baseline file; returns (removed, not found)."""
    baseline = load_baseline(path)
    suites = dict(baseline.raw)
    removed, missing = [], []
    for name in names:
        if name in suites:
            del suites[name]
            removed.append(name)
        else:
            missing.append(name)
    if removed:
        write_atomic(path, dumps_baseline(suites))
    return removed, missing


# ---------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Comparison:
    """One suite of this run against its baseline entry.

    ``differing`` names the must-match fingerprint fields that differ (INCOMPARABLE);
    ``details`` says how (``generation.max_new_tokens: 32 -> 64``); ``compared_across``
    names the other fingerprint fields that differ (a different model is what one compares).
    """

    suite: str
    verdict: Verdict
    paired: Paired | None = None
    baseline_rate: float | None = None
    differing: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    compared_across: tuple[str, ...] = ()
    note: str = ""


def fingerprint_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(must-match fields that differ, how they differ, other fields that differ)."""
    before, after = _jsonable(dict(before)), _jsonable(dict(after))
    differing: list[str] = []
    details: list[str] = []
    for key in MUST_MATCH:
        a, b = before.get(key), after.get(key)
        if a != b:
            differing.append(key)
            details.extend(_describe(key, a, b))
    others = sorted(k for k in set(before) | set(after) if k not in MUST_MATCH and before.get(k) != after.get(k))
    return differing, details, others


def _describe(key: str, a: Any, b: Any) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for sub in sorted(set(a) | set(b)):
            if a.get(sub) != b.get(sub):
                out.extend(_describe(f"{key}.{sub}", a.get(sub), b.get(sub)))
        return out
    return [f"{key}: {_short(a)} -> {_short(b)}"]


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 24 else text[:20] + "..."


def compare_suite(result: SuiteResult, entry: SuiteEntry | None, *, tolerance: float, alpha: float) -> Comparison:
    """The verdict for one suite of this run against its baseline entry (``None``: NEW)."""
    if entry is None:
        return Comparison(result.name, Verdict.NEW)
    differing, details, others = fingerprint_diff(entry.fingerprint, result.fingerprint)
    across = tuple(o for o in others if o in COMPARED)
    if differing:
        return Comparison(
            result.name,
            Verdict.INCOMPARABLE,
            baseline_rate=entry.pass_rate,
            differing=tuple(differing),
            details=tuple(details),
            compared_across=across,
        )
    paired = paired_comparison(
        {k: bool(v) for k, v in entry.cases.items()},
        {k: v == "pass" for k, v in result.outcomes.items()},
    )
    if paired.shared == 0:
        return Comparison(
            result.name,
            Verdict.INCOMPARABLE,
            paired=paired,
            baseline_rate=entry.pass_rate,
            compared_across=across,
            note="no case ids in common with the baseline",
        )
    direction = paired.direction(tolerance, alpha)
    verdict = {-1: Verdict.REGRESSED, 1: Verdict.IMPROVED, 0: Verdict.UNCHANGED}[direction]
    return Comparison(result.name, verdict, paired=paired, baseline_rate=entry.pass_rate, compared_across=across)


def _jsonable(value: Any) -> Any:
    """Normalise tuples to lists (and so on) the way a JSON round trip would."""
    try:
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return value
