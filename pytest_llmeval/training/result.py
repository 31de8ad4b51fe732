"""What ``evaluate()`` returns: the suites' results of one inline evaluation, and short names
for them (``test_addition``) for a training logger's keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.stats import SuiteResult

__all__ = ["EvalResult", "short_names"]


@dataclass(frozen=True)
class EvalResult:
    """What one inline evaluation found.

    ``suites`` are the per-suite aggregates (pass rate, Wilson interval, graded metrics, case
    outcomes) exactly as the terminal report and ``results.json`` compute them; ``records`` are
    the per-case records; ``gate_failures`` the gate lines of the run (a suite under its
    ``min_pass_rate``, a regression against the baseline, an error); ``exit_code`` is pytest's.
    """

    suites: tuple[SuiteResult, ...]
    records: tuple[CaseRecord, ...] = ()
    gate_failures: tuple[str, ...] = ()
    exit_code: int = 0
    seconds: float = 0.0
    output: str = ""
    output_dir: Path | None = None
    history_run: str | None = None
    label: str | None = None
    step: int | None = None
    non_eval_failures: int = 0
    names: Mapping[str, str] = field(default_factory=dict)
    """Short suite names (``test_addition``) to full suite ids, for logging keys."""

    @property
    def passed_gates(self) -> bool:
        return not self.gate_failures and self.non_eval_failures == 0

    @property
    def n(self) -> int:
        return sum(s.n for s in self.suites)

    def suite(self, name: str) -> SuiteResult:
        """A suite by full id, short name, or a unique part of its id."""
        full = self.names.get(name, name)
        for s in self.suites:
            if s.name == full:
                return s
        matches = [s for s in self.suites if name in s.name]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(self.names) or "none"
        if not matches:
            raise KeyError(f"no suite {name!r} in this result (suites: {known})")
        raise KeyError(f"{name!r} matches {len(matches)} suites ({', '.join(s.name for s in matches)}); use the full id")

    def pass_rate(self, name: str | None = None) -> float:
        """One suite's pass rate, or (no name) the pass rate over every case of every suite."""
        if name is not None:
            return self.suite(name).pass_rate
        n = self.n
        return sum(s.passed for s in self.suites) / n if n else 0.0

    def pass_rates(self) -> dict[str, float]:
        """``{short name: pass rate}`` for every suite."""
        return {short: self.suite(full).pass_rate for short, full in self.names.items()}

    def log_dict(self, prefix: str = "eval") -> dict[str, float]:
        """Flat figures for a training logger: ``eval/<suite>/pass_rate``, ``.../ci_low``,
        ``.../ci_high``, ``.../n``, ``.../errors`` and each graded metric ``.../<metric>``."""
        out: dict[str, float] = {}
        for short, full in self.names.items():
            s = self.suite(full)
            low, high = s.interval()
            key = f"{prefix}/{short}"
            out[f"{key}/pass_rate"] = s.pass_rate
            out[f"{key}/ci_low"] = low
            out[f"{key}/ci_high"] = high
            out[f"{key}/n"] = float(s.n)
            out[f"{key}/errors"] = float(s.errors)
            for metric, value in s.metrics.items():
                out[f"{key}/{metric}"] = float(value)
        return out

    def summary(self) -> str:
        """One line per suite: ``test_addition: 64.0% [59.7, 68.1] n=500``."""
        lines = []
        for short, full in self.names.items():
            s = self.suite(full)
            low, high = s.interval()
            extra = f" errors={s.errors}" if s.errors else ""
            lines.append(f"{short}: {s.pass_rate:.1%} [{low * 100:.1f}, {high * 100:.1f}] n={s.n}{extra}")
        for failure in self.gate_failures:
            lines.append(f"gate failed: {failure}")
        return "\n".join(lines)


def short_names(suites: Sequence[str]) -> dict[str, str]:
    """Map each suite id to the shortest unambiguous name: the test function's name
    (``test_addition``), else ``file_stem/function``, else the full id."""
    def func(s: str) -> str:
        return s.rsplit("::", 1)[-1]

    def stem_func(s: str) -> str:
        path, _, name = s.partition("::")
        return f"{Path(path).stem}/{name.replace('::', '/')}"

    out: dict[str, str] = {}
    for s in suites:
        for candidate in (func(s), stem_func(s), s):
            if sum(1 for other in suites if candidate in (func(other), stem_func(other), other)) == 1:
                out[candidate] = s
                break
        else:  # pragma: no cover - ids are unique, so the full id always works
            out[s] = s
    return out
