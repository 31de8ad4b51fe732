"""One self-contained HTML report of a run (or of two runs side by side).

The page needs no network: its CSS, JavaScript and SVG are inline, and the run's data is embedded
as one JSON document that the script reads with ``JSON.parse`` and renders with ``textContent``
only, so a completion holding ``</script>`` or markup shows as text and never runs. The cases
table renders only the rows in view, so a run of 10,000 cases stays quick.

Sources: a run's ``results.json`` and ``samples.jsonl`` (``--llmeval-output``), the run history
(SQLite) for the trend charts. Fields that newer records carry (cost, repeats, judge output) are
read with defaults and shown when present. The cases table's rows and the detail each shows are
:mod:`~pytest_llmeval.results.html_cases` (``case_rows`` and ``chat_turns`` are importable from here too).
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.jsonfiles import json_document, json_text
from pytest_llmeval.results.compare import compare_runs
from pytest_llmeval.results.comparison import Verdict
from pytest_llmeval.results.html_assets import CSS, SCRIPT
from pytest_llmeval.results.html_cases import as_text, case_rows, chat_turns
from pytest_llmeval.results.samplefile import SamplesError, read_samples
from pytest_llmeval.results.shapes import check_results
from pytest_llmeval.results.stats import SuiteResult

__all__ = [
    "ReportError", "case_rows", "chat_turns", "compare_page", "embed_json", "history_series", "load_run_dir", "render_page",
    "run_page", "write_page",
]  # fmt: skip

_HINT = "pass the folder written by pytest --llmeval-output=DIR (it holds results.json and samples.jsonl)"

_COST_KEYS = ("cost_usd", "cost")


class ReportError(Exception):
    """A run folder the report cannot read; the message names the file and the fix."""


# ---------------------------------------------------------------- reading


def load_run_dir(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(results.json, samples.jsonl lines)`` of a run folder (or of the folder of a results.json)."""
    path = Path(path)
    folder = path.parent if path.name == "results.json" else path
    results_path = folder / "results.json"
    try:
        text = results_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{results_path}: no such file; {_HINT}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{results_path}: cannot be read ({exc}); {_HINT}") from None
    results = json_document(text, str(results_path), ReportError, _HINT)
    if not isinstance(results, dict) or "suites" not in results:
        raise ReportError(f'{results_path}: no "suites" object, so not a pytest-llmeval results file; {_HINT}')
    check_results(results, str(results_path), ReportError)
    samples: list[dict[str, Any]] = []
    samples_path = folder / "samples.jsonl"
    if samples_path.is_file():
        try:
            samples = read_samples(samples_path)
        except SamplesError as exc:
            raise ReportError(str(exc)) from None
    return results, samples


# ---------------------------------------------------------------- building the page's data


def _baseline_outcomes(results: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """The baseline's outcome of each case a suite shares with it (pass or fail: the baseline
    keeps one bit), from the verdict's flips and the run's own outcomes."""
    out: dict[tuple[str, str], str] = {}
    for name, suite in results.get("suites", {}).items():
        verdict = suite.get("verdict") or {}
        if verdict.get("shared") is None:
            continue
        newly_failing, newly_passing = set(verdict.get("newly_failing") or ()), set(verdict.get("newly_passing") or ())
        unknown = set(verdict.get("not_in_baseline") or ())
        for case_id, outcome in (suite.get("cases") or {}).items():
            if case_id in unknown:
                continue
            if case_id in newly_failing:
                out[(name, case_id)] = "pass"
            elif case_id in newly_passing:
                out[(name, case_id)] = "fail"
            else:
                out[(name, case_id)] = "pass" if outcome == "pass" else "fail"
    return out


def _usage(samples: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per suite: tokens in and out, model latency, and cost where the records carry them."""
    out: dict[str, dict[str, float]] = {}
    for s in samples:
        totals = out.setdefault(str(s.get("suite")), {})
        for key in ("tokens_in", "tokens_out", "latency_s", *_COST_KEYS):
            value = s.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    return out


def _suite_rows(results: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    usage = _usage(samples)
    rows = []
    for name, s in sorted(results.get("suites", {}).items()):
        v = s.get("verdict") or {}
        row = {
            "name": name, "n": s.get("n", 0), "passed": s.get("passed", 0), "failed": s.get("failed", 0),
            "errors": s.get("errors", 0), "skipped": (s.get("skipped") or 0) + (s.get("xfailed") or 0),
            "rate": s.get("pass_rate", 0.0), "ci": s.get("ci") or [0.0, 0.0], "min": s.get("min_pass_rate"),
            "metrics": s.get("metrics") or {}, "usage": usage.get(name, {}),
        }  # fmt: skip
        if v:
            diff = [str(line) for line in v.get("prompt_diff") or []]
            details = [str(d) for d in v.get("details") or v.get("differing") or [] if not (diff and str(d).startswith("prompt: "))]
            row["verdict"] = {
                "verdict": v.get("verdict"), "rate": v.get("baseline_rate"), "delta": v.get("delta"), "p": v.get("p_value"),
                "comparable": v.get("comparable", v.get("verdict") != "INCOMPARABLE"),
                "shared": v.get("shared"), "differing": details + (["prompt: " + " ".join(diff)] if diff else []),
                "across": [f for f in v.get("compared_across") or [] if f != "versions"],
                "versions": list(v.get("versions_changed") or []), "recorded": bool(v.get("recorded")),
                "failing": len(v.get("newly_failing") or []), "passing": len(v.get("newly_passing") or []),
            }  # fmt: skip
        found = _beyond(s)
        if found:
            row["beyond"] = found
        rows.append(row)
    return rows


_BEYOND = ("robustness", "cyclic", "calibration", "search")
"""A suite's figures beyond accuracy in results.json (:mod:`~pytest_llmeval.results.beyond_report`)."""


def _beyond(suite: Mapping[str, Any]) -> dict[str, Any]:
    """What the page's beyond-accuracy section shows of a suite: its figures, its ``min_worst_case``
    and each perturbation's baseline verdict."""
    found = {k: suite[k] for k in _BEYOND if suite.get(k)}
    if not found:
        return {}
    variants = suite.get("variants") or {}
    found["verdicts"] = {name: (v.get("verdict") or {}).get("verdict") for name, v in sorted(variants.items()) if isinstance(v, Mapping)}
    found["min_worst_case"] = suite.get("min_worst_case")
    return found


def _groups(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    markers = (results.get("groups") or {}).get("markers") or {}
    return [
        {"name": name, "n": g.get("n", 0), "passed": g.get("passed", 0), "rate": g.get("pass_rate", 0.0), "ci": g.get("ci") or [0.0, 0.0]}
        for name, g in sorted(markers.items())
    ]


def _message(m: Any) -> str:
    """A note of results.json as one line: its level, text, hint and command."""
    if not isinstance(m, Mapping):
        return str(m)
    parts = [f"{m.get('level', 'note')}: {m.get('text', '')}"] + [str(m[k]) for k in ("hint", "command") if m.get(k)]
    return "; ".join(parts)


def history_series(path: Path | None, suites: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Per suite, the pass rate and its interval in each run of the history file (oldest first)."""
    if path is None or not Path(path).is_file():
        return {}
    from pytest_llmeval.results.history import HistoryError, suite_trend

    wanted = set(suites)
    try:
        points = suite_trend(path)
    except HistoryError:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        if p.suite in wanted and p.n:
            label = p.label or (p.git_commit or "")[:8] or p.run_id
            out.setdefault(p.suite, []).append(
                {"run": p.run_id, "at": p.created_at, "label": label, "n": p.n, "rate": p.pass_rate, "ci": [p.ci_low, p.ci_high]}
            )
    return out


def run_page(
    results: Mapping[str, Any], samples: Sequence[Mapping[str, Any]], *, title: str = "pytest-llmeval report", history: Path | None = None
) -> dict[str, Any]:
    """The page's data for one run, compared with its baseline where it had one."""
    suites = _suite_rows(results, samples)
    names = [s["name"] for s in suites]
    gate = results.get("gate") or {}
    baseline = results.get("baseline") or {}
    return {
        "mode": "run",
        "title": title,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gate": {"failed": bool(gate.get("failed")), "failures": list(gate.get("failures") or []), "flagged": list(gate.get("flagged") or [])},
        "summary": results.get("summary") or {},
        "baseline": {"path": baseline.get("path"), "state": baseline.get("state")},
        "messages": [_message(m) for m in results.get("messages") or []],
        "versions": results.get("versions") or {},
        "timings": results.get("timings") or {},
        "settings": results.get("settings") or {},
        "suites": suites,
        "groups": _groups(results),
        "cases": case_rows(samples, names, _baseline_outcomes(results)),
        "history": history_series(history, names),
        "other": "baseline",
    }


_COMPARE_WORDS = {Verdict.REGRESSED: "WORSE", Verdict.IMPROVED: "BETTER", Verdict.UNCHANGED: "UNCHANGED", Verdict.INCOMPARABLE: "INCOMPARABLE"}
"""The compare view's words for each verdict of :mod:`~pytest_llmeval.results.comparison`."""


def compare_page(
    a: tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]],
    b: tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]],
    *, labels: tuple[str, str] = ("A", "B"), tolerance: float = 0.02, alpha: float = 0.05, force: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The page's data for run B against run A: B's cases with A's outcome and completion, flips first."""
    suites_a = {k: SuiteResult.from_json(k, v) for k, v in a[0].get("suites", {}).items()}
    suites_b = {k: SuiteResult.from_json(k, v) for k, v in b[0].get("suites", {}).items()}
    result = compare_runs(suites_a, suites_b, tolerance=tolerance, alpha=alpha, force=force)
    page = run_page(b[0], b[1], title=f"pytest-llmeval: {labels[1]} against {labels[0]}")
    by_name = {s["name"]: s for s in page["suites"]}
    for d in (*result.deltas, *result.incomparable):
        row = by_name.get(d.suite)
        if row is not None:
            row["verdict"] = {
                "verdict": _COMPARE_WORDS[d.verdict], "rate": d.paired.before_rate, "delta": d.paired.delta, "p": d.paired.p_value,
                "shared": d.paired.shared, "differing": list(d.details), "across": [], "versions": [], "recorded": False,
                "failing": len(d.paired.newly_failing), "passing": len(d.paired.newly_passing),
            }  # fmt: skip
    outcomes_a = {(str(s.get("suite")), str(s.get("id"))): str(s.get("outcome")) for s in a[1]}
    completions_a = {(str(s.get("suite")), str(s.get("id"))): as_text(s.get("completion")) for s in a[1]}
    names = [s["name"] for s in page["suites"]]
    page["cases"] = case_rows(b[1], names, outcomes_a)
    for row in page["cases"]:
        key = (names[row["s"]] if row["s"] < len(names) else "", row["id"])
        if key in completions_a:
            row["d"]["other_completion"] = completions_a[key]
    page.update(mode="compare", other=labels[0], labels=list(labels), verdict=result.verdict, history={})
    page["only"] = {"a": list(result.only_before), "b": list(result.only_after)}
    return page


# ---------------------------------------------------------------- rendering


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>``, ``&`` or line separators
    appear literally, so no text in the data can close the element or start markup (and a
    lone surrogate, which UTF-8 cannot hold, is escaped: :func:`~pytest_llmeval.jsonfiles.json_text`)."""
    text = json_text(data, separators=(",", ":"), allow_nan=False, default=str)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text


def _finite(value: Any) -> Any:
    """NaN and infinities (not JSON) as None, recursively."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render_page(data: Mapping[str, Any]) -> str:
    """The whole HTML document for the page's data."""
    title = html.escape(str(data.get("title", "pytest-llmeval report")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{title}</title><style>{CSS}</style></head>\n<body><div id=\"app\"><noscript>This report needs JavaScript."
        "</noscript></div>\n"
        f"<script type=\"application/json\" id=\"llmeval-data\">{embed_json(_finite(dict(data)))}</script>\n"
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )


def write_page(path: Path, data: Mapping[str, Any]) -> int:
    """Write the page atomically; returns its size in bytes."""
    from pytest_llmeval.files import atomic_write_text

    text = render_page(data)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), text)
    return len(text.encode("utf-8"))
