"""A suite's robustness and fairness figures from its cases' verdicts on the originals and on each
perturbation's variants: accuracy under each, the worst case, the invariance rate, and a paired
test of each perturbation's drop (exact McNemar, Holm across the perturbations).

Verdicts are ``True`` (pass) and ``False`` (miss) keyed by the original case id; a case whose item
errored has no verdict there (an error is never a pass or a miss), so it leaves the figures that
need it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from pytest_llmeval.results.paired import Paired, paired_comparison
from pytest_llmeval.results.repeats import holm

__all__ = ["PerturbationFigures", "Robustness", "robustness"]


@dataclass(frozen=True)
class PerturbationFigures:
    """One perturbation: its accuracy over the cases it has, the share of those whose verdict
    matches the original's, and the paired test against the originals (``paired.adjusted_p`` is
    Holm's across the suite's perturbations)."""

    name: str
    n: int
    passed: int
    invariant: int
    paired: Paired

    @property
    def accuracy(self) -> float:
        return self.passed / self.n if self.n else 0.0

    @property
    def invariance(self) -> float:
        return self.invariant / self.paired.shared if self.paired.shared else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "passed": self.passed, "accuracy": self.accuracy, "invariance": self.invariance,
            "shared": self.paired.shared, "newly_failing": list(self.paired.newly_failing),
            "newly_passing": list(self.paired.newly_passing), "p": self.paired.p_value, "p_holm": self.paired.adjusted_p,
        }


@dataclass(frozen=True)
class Robustness:
    """A suite's figures. ``worst_case`` counts a case only if it passes as written and under every
    perturbation (HELM's robustness and fairness metrics), over the ``complete`` cases that have
    every verdict; ``invariant`` counts complete cases whose verdict is the same everywhere."""

    n: int
    passed: int
    complete: int
    worst_case_passed: int
    invariant: int
    perturbations: tuple[PerturbationFigures, ...]

    @property
    def accuracy(self) -> float:
        return self.passed / self.n if self.n else 0.0

    @property
    def worst_case(self) -> float:
        return self.worst_case_passed / self.complete if self.complete else 0.0

    @property
    def invariance(self) -> float:
        return self.invariant / self.complete if self.complete else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "passed": self.passed, "accuracy": self.accuracy, "complete": self.complete,
            "worst_case": self.worst_case, "worst_case_passed": self.worst_case_passed,
            "invariance": self.invariance, "perturbations": {p.name: p.as_dict() for p in self.perturbations},
        }


def robustness(original: Mapping[str, bool], variants: Mapping[str, Mapping[str, bool]]) -> Robustness:
    """The figures for verdicts on the ``original`` cases and, per perturbation name, on its
    ``variants`` (keyed by the original case's id)."""
    figures = []
    for name, verdicts in variants.items():
        paired = paired_comparison(original, verdicts)
        shared = set(original) & set(verdicts)
        figures.append(PerturbationFigures(
            name=name,
            n=len(verdicts),
            passed=sum(1 for v in verdicts.values() if v),
            invariant=sum(1 for k in shared if original[k] == verdicts[k]),
            paired=paired,
        ))
    if len(figures) > 1:
        adjusted = holm([f.paired.p_value for f in figures])
        figures = [replace(f, paired=replace(f.paired, adjusted_p=p)) for f, p in zip(figures, adjusted)]
    complete = [k for k in original if all(k in v for v in variants.values())]
    return Robustness(
        n=len(original),
        passed=sum(1 for v in original.values() if v),
        complete=len(complete),
        worst_case_passed=sum(1 for k in complete if original[k] and all(v[k] for v in variants.values())),
        invariant=sum(1 for k in complete if all(v[k] == original[k] for v in variants.values())),
        perturbations=tuple(figures),
    )
