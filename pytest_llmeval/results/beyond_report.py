"""What the report shows beyond accuracy, per suite: robustness (accuracy as written and under each
perturbation, the worst case, invariance, each perturbation's paired test and baseline verdict),
CircularEval and the positions chosen (``permute="cyclic"``), calibration (ranked suites), and the
smallest breaking changes a search found (``search=``).

:func:`beyond_figures` computes them from a run's records and suites;
:class:`~pytest_llmeval.results.report.GateReport` renders them with :func:`terminal_lines`,
:func:`markdown_lines` and :func:`suite_json`. Texts from cases and models are shown through
:func:`quoted` (``repr``: control characters escaped, never sent raw to a terminal).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from pytest_llmeval.results.beyond import suite_robustness
from pytest_llmeval.results.variant_records import split_records
from pytest_llmeval.results.comparison import Comparison
from pytest_llmeval.results.messages import Markup, pct, plural, points, pvalues
from pytest_llmeval.results.records import CaseRecord, Outcome
from pytest_llmeval.results.robustness import Robustness
from pytest_llmeval.results.stats import SuiteResult, merge_case_records
from pytest_llmeval.results.verdicts import verdict_cell

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval.results.calibration import Calibration  # numpy: imported when a ranked suite has cases to calibrate

__all__ = ["Cyclic", "SuiteBeyond", "beyond_figures", "markdown_lines", "quoted", "suite_json", "terminal_lines"]

SHOWN_FINDINGS = 5
"""Breaking changes listed per suite in the terminal and Markdown (results.json has them all)."""


@dataclass(frozen=True)
class Cyclic:
    """A cyclic suite's figures: cases right under every rotation, right as written (rotation 0),
    and how often each position was chosen over every rotation."""

    cases: int
    circular_passed: int
    as_written: int
    as_written_passed: int
    positions: Any  # pytest_llmeval.datasets.cyclic.PositionCounts

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases, "circular_passed": self.circular_passed,
            "circular_accuracy": self.circular_passed / self.cases if self.cases else 0.0,
            "as_written": self.as_written, "as_written_passed": self.as_written_passed,
            "as_written_accuracy": self.as_written_passed / self.as_written if self.as_written else 0.0,
            **self.positions.as_dict(),
        }  # fmt: skip


@dataclass(frozen=True)
class SuiteBeyond:
    """One suite's figures beyond accuracy (each None when the suite has none)."""

    robustness: Robustness | None = None
    calibration: Calibration | None = None
    cyclic: Cyclic | None = None
    search: Mapping[str, Any] | None = None

    def __bool__(self) -> bool:
        return any(x is not None for x in (self.robustness, self.calibration, self.cyclic, self.search))


def beyond_figures(records: Sequence[CaseRecord], suites: Sequence[SuiteResult]) -> dict[str, SuiteBeyond]:
    """Per suite that has any, its figures beyond accuracy."""
    merged = list(merge_case_records(records).values())
    plain, _ = split_records(merged)
    out = {}
    for s in suites:
        found = SuiteBeyond(
            robustness=suite_robustness(s),
            calibration=_calibration([r for r in plain if r.suite == s.name]),
            cyclic=_cyclic([r for r in merged if r.suite == s.name and r.rotation is not None]),
            search=next((r.search for r in merged if r.suite == s.name and r.search is not None), None),
        )
        if found:
            out[s.name] = found
    return out


def _calibration(records: Sequence[CaseRecord]) -> Calibration | None:
    """Over a ranked suite's cases with a known answer (an errored case has no verdict)."""
    usable = [r for r in records if r.loglikelihoods and r.answer_index is not None and r.outcome in (Outcome.PASS, Outcome.MISS)]
    usable = [r for r in usable if all(x == x and abs(x) != float("inf") for x in r.loglikelihoods or ())]
    if not usable:
        return None
    from pytest_llmeval.results.calibration import calibration

    return calibration([list(r.loglikelihoods or ()) for r in usable], [int(r.answer_index or 0) for r in usable])


def _cyclic(rotations: Sequence[CaseRecord]) -> Cyclic | None:
    if not rotations:
        return None
    from pytest_llmeval.datasets.cyclic import position_counts

    by_case: dict[str, list[CaseRecord]] = {}
    for r in rotations:
        by_case.setdefault(r.original_id or r.case_id, []).append(r)
    picks: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    for case_id, group in by_case.items():
        scored = [r for r in group if r.loglikelihoods]
        if scored:
            picks[case_id] = [max(range(len(r.loglikelihoods or ())), key=lambda j, r=r: (r.loglikelihoods[j], -j)) for r in scored]  # type: ignore[index]
            sizes[case_id] = max(len(r.loglikelihoods or ()) for r in scored)
    counted = {k: g for k, g in by_case.items() if all(r.outcome.counted for r in g) and not any(r.outcome is Outcome.ERROR for r in g)}
    first = [r for g in counted.values() for r in g if r.rotation == 0]
    return Cyclic(
        cases=len(counted),
        circular_passed=sum(all(r.outcome is Outcome.PASS for r in g) for g in counted.values()),
        as_written=len(first),
        as_written_passed=sum(r.outcome is Outcome.PASS for r in first),
        positions=position_counts(picks, sizes),
    )


# ---------------------------------------------------------------- text


def quoted(text: Any, limit: int = 80) -> str:
    """A text from a case or a model, safe to print: ``repr`` of it (quotes, control characters
    escaped), its middle elided past ``limit`` characters."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 20] + " ... " + value[-15:]
    return repr(value)


def _change(finding: Mapping[str, Any]) -> str:
    """``question 'a' -> 'b'; answer 'x' -> 'y'`` of one breaking change."""
    fields = finding.get("changed") or {}
    parts = [f"{name} {quoted(before)} -> {quoted(after)}" for name, (before, after) in sorted(fields.items())]
    parts.append(f"answer {quoted(finding.get('answer'), 60)} -> {quoted(finding.get('variant_answer'), 60)}")
    return "; ".join(parts)


def _robustness_rows(s: SuiteResult, r: Robustness, comparisons: Mapping[str, Comparison], recorded: bool,
                     tolerance: float, alpha: float) -> list[list[str]]:  # fmt: skip
    rows = [["", "n", "rate", "against as written", "baseline"], ["as written", str(r.n), pct(r.accuracy if r.n else None), "", ""]]
    for p in r.perturbations:
        vs = f"{points(p.paired.delta)} ({pvalues(p.paired.p_value, p.paired.adjusted_p)})" if p.paired.shared else "-"
        cell = verdict_cell(comparisons.get(f"{s.name}~{p.name}"), recorded=recorded, tolerance=tolerance, alpha=alpha)
        rows.append([f"~{p.name}", str(p.n), pct(p.accuracy if p.n else None), vs, cell])
    return rows


def _worst_case_line(s: SuiteResult, r: Robustness) -> str:
    if not r.complete:
        return "worst case -: no case ran as written and under every perturbation"
    gate = f" (min {pct(s.min_worst_case)})" if s.min_worst_case is not None else ""
    return (f"worst case {pct(r.worst_case)}{gate}: {r.worst_case_passed} of {plural(r.complete, 'case')} right as written "
            f"and under every perturbation; invariance {pct(r.invariance)}")  # fmt: skip


def _table(rows: list[list[str]], indent: str) -> Iterator[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.rjust(w) if i in (1, 2) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        yield indent + "  ".join(cells).rstrip()


def terminal_lines(
    suites: Sequence[SuiteResult], beyond: Mapping[str, SuiteBeyond], comparisons: Mapping[str, Comparison],
    recorded: frozenset[str], *, tolerance: float, alpha: float,
) -> Iterator[tuple[str, Markup]]:  # fmt: skip
    """The terminal's beyond-accuracy section (nothing when no suite has such figures)."""
    if not beyond:
        return
    yield "beyond accuracy:", {"bold": True}
    for s in suites:
        b = beyond.get(s.name)
        if not b:
            continue
        yield f"  {s.name}", {"bold": True}
        if b.robustness is not None:
            r = b.robustness
            bad = s.min_worst_case is not None and r.complete and r.worst_case < s.min_worst_case - 1e-12
            yield f"    {_worst_case_line(s, r)}", {"red": True} if bad else {}
            for line in _table(_robustness_rows(s, r, comparisons, s.name in recorded, tolerance, alpha), "    "):
                yield line, {}
        if b.cyclic is not None:
            yield from ((line, {}) for line in _cyclic_lines(b.cyclic))
        if b.calibration is not None:
            yield f"    {_calibration_line(b.calibration)}", {}
        if b.search is not None:
            yield from _search_lines(b.search)


def _cyclic_lines(c: Cyclic) -> list[str]:
    p = c.positions
    chosen = ", ".join(f"{letter} {n}" for letter, n in zip(p.as_dict()["positions"], p.counts))
    even = ", ".join(f"{e:g}" for e in p.expected)
    return [
        f"    CircularEval {pct(c.circular_passed / c.cases if c.cases else 0.0)}: {c.circular_passed} of {plural(c.cases, 'case')} "
        f"right under every rotation of the options; as written {pct(c.as_written_passed / c.as_written if c.as_written else 0.0)}",
        f"    positions chosen over {plural(p.total, 'rotation')}: {chosen} (without a preference for a position: {even})",
    ]


def _calibration_line(c: Calibration) -> str:
    return (f"calibration over {plural(c.n, 'case')}: ECE {c.ece_10_bin:.3f} (10 bins), {c.ece_10_bin_equal_mass:.3f} "
            f"(10 equal-mass bins, HELM); Brier {c.brier:.3f}; selective accuracy at 10% {pct(c.selective_accuracy_at_10)}; "
            f"mean confidence {pct(c.mean_confidence)}, accuracy {pct(c.accuracy)}")  # fmt: skip


def _search_summary(search: Mapping[str, Any]) -> str:
    found = [f for f in search.get("searched") or () if f.get("broken")]
    searched = search.get("searched") or ()
    remembered = sum(bool(f.get("remembered")) for f in found)
    errors = sum(bool(f.get("error")) for f in searched)
    extra = [f"{remembered} remembered from earlier runs"] if remembered else []
    extra += [plural(errors, "search", "searches") + " errored"] if errors else []
    extra += [plural(int(search.get("rounds") or 0), "batched round")]
    return (f"search={search.get('max_examples')}: {len(found)} of {plural(len(searched), 'search', 'searches')} found a change "
            f"that breaks a passing case ({'; '.join(extra)})")  # fmt: skip


def _search_lines(search: Mapping[str, Any]) -> Iterator[tuple[str, Markup]]:
    yield f"    {_search_summary(search)}", {}
    found = [f for f in search.get("searched") or () if f.get("broken")]
    for f in found[:SHOWN_FINDINGS]:
        yield f"      {f.get('case')}~{f.get('perturbation')}: {_change(f)}", {"yellow": True}
    if len(found) > SHOWN_FINDINGS:
        yield f"      ... and {len(found) - SHOWN_FINDINGS} more (results.json lists them all)", {}
    for f in [f for f in search.get("searched") or () if f.get("error")][:SHOWN_FINDINGS]:
        yield f"      {f.get('case')}~{f.get('perturbation')}: error: {f.get('error')}", {"red": True}


# ---------------------------------------------------------------- Markdown and results.json


def _md(text: str) -> str:
    """Text in a Markdown table cell or list item: no markup, no table break."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("`", "'")


def markdown_lines(suites: Sequence[SuiteResult], beyond: Mapping[str, SuiteBeyond], comparisons: Mapping[str, Comparison],
                   recorded: frozenset[str], *, tolerance: float, alpha: float) -> list[str]:  # fmt: skip
    """The Markdown summary's beyond-accuracy section."""
    out: list[str] = []
    for s in suites:
        b = beyond.get(s.name)
        if not b:
            continue
        out += [f"**Beyond accuracy** `{_md(s.name)}`", ""]
        if b.robustness is not None:
            r = b.robustness
            out += [_worst_case_line(s, r), ""]
            rows = _robustness_rows(s, r, comparisons, s.name in recorded, tolerance, alpha)
            out.append("| perturbation | n | rate | against as written | baseline |")
            out.append("|---|--:|--:|---|---|")
            out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows[1:]]
            out.append("")
        out += [f"- {_md(line.strip())}" for line in (_cyclic_lines(b.cyclic) if b.cyclic else [])]
        if b.calibration is not None:
            out.append(f"- {_calibration_line(b.calibration)}")
        if b.search is not None:
            out.append(f"- {_md(_search_summary(b.search))}")
            found = [f for f in b.search.get("searched") or () if f.get("broken")]
            out += [f"  - `{_md(str(f.get('case')))}~{_md(str(f.get('perturbation')))}`: {_md(_change(f))}" for f in found[:SHOWN_FINDINGS]]
        out.append("")
    return out


def suite_json(b: SuiteBeyond | None) -> dict[str, Any]:
    """What a suite's entry in results.json adds: ``robustness``, ``cyclic``, ``calibration``, ``search``."""
    if not b:
        return {}
    data: dict[str, Any] = {}
    if b.robustness is not None:
        data["robustness"] = b.robustness.as_dict()
    if b.cyclic is not None:
        data["cyclic"] = b.cyclic.as_dict()
    if b.calibration is not None:
        data["calibration"] = b.calibration.as_dict()
    if b.search is not None:
        data["search"] = dict(b.search)
    return data
