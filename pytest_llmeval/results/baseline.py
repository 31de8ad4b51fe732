"""The committed baseline file: reading it and recording into it (comparing with it is
:mod:`~pytest_llmeval.results.comparison`'s).

The file is diff-friendly JSON (sorted keys, 2-space indent, trailing newline, no timestamps)::

    {"schema": 1, "suites": {"evals/test_math.py::test_addition": {
        "fingerprint": {...}, "n": 200, "passed": 128, "failed": 72, "errors": 0,
        "cases": {"add-000": 1, "add-001": 0}}}}

``cases`` holds 1 for a pass and 0 for a miss or an error, or for a suite sampled several times
per case ``[passes, samples]`` (``[3, 5]``); skipped and xfailed cases are not
written (a suite with some adds ``"skipped"`` / ``"xfailed"`` counts, which older readers ignore).
Recording takes ``<file>.lock`` beside the file, re-reads the file under it, and replaces it
atomically; a file that cannot be read is never rewritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.files import atomic_write_text
from pytest_llmeval.jsonfiles import json_text
from pytest_llmeval.results.locking import LOCK_TIMEOUT_S, locked
from pytest_llmeval.results.fingerprint import COMPARED, MUST_MATCH, Fingerprint
from pytest_llmeval.results.records import Outcome
from pytest_llmeval.results.stats import SuiteResult

SCHEMA = 1

__all__ = [
    "COMPARED", "MUST_MATCH", "SCHEMA", "Baseline", "BaselineError", "Recorded", "dumps_baseline", "entry_json", "load_baseline",
    "parse_baseline", "prune_suites", "record_suites", "updated_suites", "write_atomic", "write_baseline",
]  # fmt: skip

_FIX_JSON = "fix the file"


class BaselineError(Exception):
    """A baseline file that cannot be used. ``kind`` is ``missing``, ``empty`` or ``corrupt``;
    ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, path: Path, kind: str, problem: str, fix: str = _FIX_JSON) -> None:
        self.path = Path(path)
        self.kind = kind
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}; {fix}")


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline: each suite as a :class:`SuiteResult` (a case's 1 / 0 read as a pass /
    a miss). ``raw`` keeps every suite as stored, so recording leaves the suites that did not
    run byte for byte as they were."""

    path: Path
    suites: Mapping[str, SuiteResult]
    raw: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- reading


def load_baseline(path: Path) -> Baseline:
    """Read and check a baseline file; raise :class:`BaselineError` saying what is wrong."""
    path = Path(path)
    text = _read(path)
    if text is None:
        raise BaselineError(path, "missing", "no baseline file yet", "record one with --llmeval-update-baseline")
    return parse_baseline(text, path)


def _read(path: Path) -> str | None:
    """The file's text, or ``None`` when there is no file."""
    if path.is_dir():
        raise BaselineError(path, "corrupt", "is a folder, not a baseline file", "point llmeval_baseline at a file")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(path, "corrupt", f"cannot be read ({exc})", "check the file and its permissions") from None


def parse_baseline(text: str, path: Path) -> Baseline:
    path = Path(path)
    if not text.strip():
        raise BaselineError(path, "empty", "is empty", "record it with --llmeval-update-baseline")
    if any(line.startswith(("<<<<<<<", ">>>>>>>")) for line in text.split("\n")):
        raise BaselineError(
            path, "corrupt", "contains merge-conflict markers (<<<<<<< / >>>>>>>)",
            "resolve the merge conflict (keep the suites of both sides)",
        )  # fmt: skip
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(path, "corrupt", f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict):
        raise BaselineError(path, "corrupt", f"must hold a JSON object, found {type(data).__name__}")
    schema = data.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA:
            raise BaselineError(
                path, "corrupt", f"has schema {schema}, newer than this pytest-llmeval reads ({SCHEMA})",
                "upgrade pytest-llmeval (pip install -U pytest-llmevals)",
            )  # fmt: skip
        raise BaselineError(path, "corrupt", f'has "schema": {json.dumps(schema)}, expected {SCHEMA}')
    suites = data.get("suites")
    if not isinstance(suites, dict):
        raise BaselineError(path, "corrupt", '"suites" must be an object mapping suite ids to entries')
    entries = {name: _parse_entry(path, name, raw) for name, raw in suites.items()}
    return Baseline(path=path, suites=entries, raw=suites)


def _parse_entry(path: Path, name: str, raw: Any) -> SuiteResult:
    def bad(problem: str) -> BaselineError:
        return BaselineError(path, "corrupt", f"suites[{json.dumps(name)}]: {problem}")

    if not isinstance(raw, dict):
        raise bad("must be an object")
    fingerprint = raw.get("fingerprint", {})
    if not isinstance(fingerprint, dict):
        raise bad('"fingerprint" must be an object')
    cases = raw.get("cases")
    if not isinstance(cases, dict):
        raise bad('"cases" must be an object mapping case ids to 1 (pass) or 0')
    counts_of: dict[str, tuple[int, int]] = {}
    for case_id, value in cases.items():
        pair = _case_counts(value)
        if pair is None:
            raise bad(f"cases[{json.dumps(case_id)}] must be 1 or 0, or [passes, samples], got {json.dumps(value)}")
        counts_of[str(case_id)] = pair
    counts_of, variants = _split_variants(name, counts_of, fingerprint.get("perturb"))
    repeated = any(k > 1 for _, k in counts_of.values())
    outcomes = {k: Outcome.PASS if c == n else Outcome.MISS for k, (c, n) in sorted(counts_of.items())}
    all_pass = sum(o is Outcome.PASS for o in outcomes.values())
    defaults = {"n": len(counts_of), "passed": all_pass, "errors": 0, "skipped": 0, "xfailed": 0}
    counts = {}
    for key, default in defaults.items():
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f'"{key}" must be a non-negative whole number, got {json.dumps(value)}')
        counts[key] = value
    if counts["passed"] + counts["errors"] > counts["n"]:
        raise bad(f'"passed" ({counts["passed"]}) plus "errors" ({counts["errors"]}) is larger than "n" ({counts["n"]})')
    failed = raw.get("failed", counts["n"] - counts["passed"] - counts["errors"])
    if not isinstance(failed, int) or isinstance(failed, bool) or failed < 0:
        raise bad(f'"failed" must be a non-negative whole number, got {json.dumps(failed)}')
    return SuiteResult(
        name=name,
        failed=failed,
        outcomes=outcomes,
        fingerprint=Fingerprint.from_json(fingerprint),
        case_passes=counts_of if repeated else {},
        variants=variants,
        **counts,
    )


def _split_variants(
    suite: str, counts_of: dict[str, tuple[int, int]], perturb: Any
) -> tuple[dict[str, tuple[int, int]], dict[str, SuiteResult]]:
    """The stored cases as written, and per perturbation its variants (``qa-007~typos``) as a
    suite keyed by the original ids; only the perturbations the fingerprint names are split off."""
    names = set(perturb) if isinstance(perturb, dict) else set()
    if not names:
        return counts_of, {}
    own: dict[str, tuple[int, int]] = {}
    by_name: dict[str, dict[str, tuple[int, int]]] = {}
    for case_id, pair in counts_of.items():
        original, sep, name = case_id.rpartition("~")
        if sep and name in names:
            by_name.setdefault(name, {})[original] = pair
        else:
            own[case_id] = pair
    variants = {}
    for name, found in sorted(by_name.items()):
        repeated = any(k > 1 for _, k in found.values())
        outcomes = {k: Outcome.PASS if c == n else Outcome.MISS for k, (c, n) in sorted(found.items())}
        variants[name] = SuiteResult.from_outcomes(f"{suite}~{name}", outcomes, case_passes=found if repeated else {})
    return own, variants


def _case_counts(value: Any) -> tuple[int, int] | None:
    """A stored case as (passes, samples): 1 / 0 is one sample; ``[c, k]`` is c passes of k."""
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return (value, 1)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if 0 <= value[0] <= value[1] and value[1] >= 1:
            return (value[0], value[1])
    return None


# ---------------------------------------------------------------- writing


def entry_json(result: SuiteResult) -> dict[str, Any]:
    """A suite as the baseline stores it: counts, fingerprint and 1 / 0 per counted case."""
    data: dict[str, Any] = {
        "fingerprint": result.fingerprint.to_json(),
        "n": result.n,
        "passed": result.passed,
        "failed": result.failed,
        "errors": result.errors,
        "cases": {k: o.to_bit() for k, o in sorted(result.outcomes.items()) if o.counted},
    }
    if result.repeated:  # passes out of samples per case
        data["cases"] = {k: [c, n] for k, (c, n) in sorted(result.case_passes.items())}
    for name, variant in sorted(result.variants.items()):  # stored like cases: qa-007~typos
        found = entry_json(variant)["cases"]
        data["cases"].update({f"{k}~{name}": v for k, v in found.items()})
    data["cases"] = dict(sorted(data["cases"].items()))
    for key in ("skipped", "xfailed"):  # written only when there are some: older files stay as they are
        if getattr(result, key):
            data[key] = getattr(result, key)
    return data


def dumps_baseline(suites: Mapping[str, Any]) -> str:
    """The file text for ``suites`` (suite id -> entry JSON): sorted keys, 2-space indent."""
    data = {"schema": SCHEMA, "suites": {k: suites[k] for k in sorted(suites)}}
    return json_text(data, sort_keys=True, indent=2) + "\n"


write_atomic = atomic_write_text  # temp file in the same folder, fsync, os.replace, mode kept


def updated_suites(old: Baseline | None, results: Iterable[SuiteResult]) -> dict[str, Any]:
    """The stored suites after recording ``results``: those suites replaced, all others kept."""
    suites: dict[str, Any] = dict(old.raw) if old is not None else {}
    for result in results:
        suites[result.name] = entry_json(result)
    return suites


def write_baseline(path: Path, old: Baseline | None, results: Iterable[SuiteResult]) -> str:
    """Write ``old`` with ``results`` recorded into it to ``path`` (no lock, no re-read: use
    :func:`record_suites` for a file others may write too); returns the text written."""
    text = dumps_baseline(updated_suites(old, results))
    write_atomic(path, text)
    return text


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_suites` did: suites added, suites replaced, whether the file changed."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    written: bool


def record_suites(path: Path, results: Sequence[SuiteResult], *, timeout: float = LOCK_TIMEOUT_S) -> Recorded:
    """Record ``results`` into the baseline at ``path``, keeping every other suite.

    Holds ``<path>.lock`` while it re-reads the file and replaces it, so runs recording other
    suites at the same time lose nothing. Raises :class:`BaselineError` for a file that cannot
    be read (nothing is written: the suites it holds would be lost), ``OSError`` when the file
    cannot be written (:class:`~pytest_llmeval.files.ReadOnlyFileError` for a read-only one),
    :class:`~pytest_llmeval.results.locking.LockTimeout` when another run holds the lock too long.
    """
    path = Path(path)
    with locked(path, timeout=timeout):
        current = _read(path)
        old = parse_baseline(current, path) if current is not None and current.strip() else None
        text = dumps_baseline(updated_suites(old, results))
        names = [r.name for r in results]
        added = tuple(n for n in names if old is None or n not in old.suites)
        updated = tuple(n for n in names if n not in added)
        if text == current:
            return Recorded(added, updated, written=False)
        write_atomic(path, text)
    return Recorded(added, updated, written=True)


def prune_suites(path: Path, names: Iterable[str], *, timeout: float = LOCK_TIMEOUT_S) -> tuple[list[str], list[str]]:
    """Remove suites from a baseline file (under its lock); returns (removed, not found)."""
    path = Path(path)
    with locked(path, timeout=timeout):
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
