"""Calibration of ranked (multiple-choice) suites, from each case's choice probabilities (a
softmax over the choices' loglikelihoods): expected calibration error, Brier score, selective
accuracy, and the bins of a reliability diagram.

Definitions (each checked against ``uncertainty-calibration``, the package HELM uses, in tests):

- **confidence** of a case: the probability of the choice the model ranks first (the highest
  loglikelihood, ties to the first choice, as ``Ranked.pred``); **correct**: that choice is the
  answer.
- **ECE** with ``B`` bins: ``sum_b (n_b / n) * |mean confidence_b - accuracy_b|`` over the
  non-empty bins. Bins are right-closed: bin ``b`` holds ``edge_{b-1} < c <= edge_b`` (a confidence
  of 0 falls in the first). Equal-width bins have edges ``b / B``
  (``calibration.get_ece(conf, correct, num_bins=B)``); HELM's ``ece_10_bin`` uses equal-mass bins:
  the sorted confidences split into ``B`` runs as even as can be (the first ``n mod B`` one longer),
  an edge halfway between neighbouring runs, the last edge 1 (``calibration.get_ece_em``).
- **Brier score**: the mean over cases of ``sum_j (p_j - [j is the answer])^2`` over all choices
  (the original multi-class score, between 0 and 2).
- **selective accuracy at coverage c**: the accuracy of the ``int(c * n) + 1`` most confident cases,
  as HELM's ``selective_acc@10`` (``calibration.get_selective_stats``); equal confidences keep the
  cases' order.

Pure numpy: no pytest, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

__all__ = [
    "Calibration",
    "ReliabilityBin",
    "brier_score",
    "calibration",
    "choice_probabilities",
    "confidence_and_correct",
    "ece",
    "equal_mass_edges",
    "equal_width_edges",
    "reliability_bins",
    "selective_accuracy",
]

Binning = Literal["equal_width", "equal_mass"]


def choice_probabilities(loglikelihoods: Sequence[float]) -> np.ndarray:
    """The softmax of one case's choice loglikelihoods (float64, stable for large magnitudes)."""
    x = np.asarray(loglikelihoods, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"need finite loglikelihoods for at least one choice, got {list(loglikelihoods)!r}")
    e = np.exp(x - x.max())
    return e / e.sum()


def confidence_and_correct(probabilities: Sequence[Sequence[float]], answers: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each case's top probability and whether its top choice is the answer (1) or not (0)."""
    if len(probabilities) != len(answers):
        raise ValueError(f"{len(probabilities)} probability rows for {len(answers)} answers")
    conf = np.empty(len(answers), dtype=np.float64)
    correct = np.empty(len(answers), dtype=np.int64)
    for i, (row, answer) in enumerate(zip(probabilities, answers)):
        p = np.asarray(row, dtype=np.float64)
        if not 0 <= answer < p.size:
            raise ValueError(f"case {i}: answer index {answer} is out of range for {p.size} choices")
        top = int(np.argmax(p))  # the first of equal maxima, as Ranked.pred
        conf[i] = p[top]
        correct[i] = int(top == answer)
    return np.clip(conf, 0.0, 1.0), correct


def equal_width_edges(bins: int) -> np.ndarray:
    """Upper edges ``b / B`` for ``b = 1..B``."""
    return np.array([b * 1.0 / bins for b in range(1, bins + 1)], dtype=np.float64)


def equal_mass_edges(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Upper edges of equal-mass bins: halfway between neighbouring runs of the sorted confidences,
    then 1 (repeated edges merged, so ties can make fewer bins)."""
    ordered = np.sort(np.asarray(confidence, dtype=np.float64))
    runs = np.array_split(ordered, min(bins, ordered.size))
    edges = [(runs[k][-1] + runs[k + 1][0]) / 2.0 for k in range(len(runs) - 1)] + [1.0]
    return np.array(sorted(set(edges)), dtype=np.float64)


def _edges(confidence: np.ndarray, bins: int, binning: Binning) -> np.ndarray:
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if binning == "equal_width":
        return equal_width_edges(bins)
    if binning == "equal_mass":
        return equal_mass_edges(confidence, bins)
    raise ValueError(f"binning must be 'equal_width' or 'equal_mass', got {binning!r}")


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram: its range, how many cases, their mean confidence and
    accuracy (``None`` for an empty bin)."""

    lower: float
    upper: float
    count: int
    confidence: float | None
    accuracy: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "count": self.count,
                "confidence": self.confidence, "accuracy": self.accuracy}


def reliability_bins(confidence: Sequence[float], correct: Sequence[int], *, bins: int = 10,
                     binning: Binning = "equal_width") -> list[ReliabilityBin]:
    """The bins ECE is computed over, empty ones included."""
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=np.float64)
    if conf.shape != right.shape or conf.ndim != 1:
        raise ValueError(f"confidence and correct must be 1-D and alike, got {conf.shape} and {right.shape}")
    edges = _edges(conf, bins, binning)
    index = np.minimum(np.searchsorted(edges, conf, side="left"), edges.size - 1)
    out = []
    for b, upper in enumerate(edges):
        members = index == b
        count = int(members.sum())
        lower = 0.0 if b == 0 else float(edges[b - 1])
        out.append(ReliabilityBin(lower, float(upper), count,
                                  float(conf[members].mean()) if count else None,
                                  float(right[members].mean()) if count else None))
    return out


def ece(confidence: Sequence[float], correct: Sequence[int], *, bins: int = 10, binning: Binning = "equal_width") -> float:
    """Expected calibration error (see the module's definitions); 0.0 for no cases."""
    n = len(confidence)
    if n == 0:
        return 0.0
    total = 0.0
    for b in reliability_bins(confidence, correct, bins=bins, binning=binning):
        if b.count:
            assert b.confidence is not None and b.accuracy is not None
            total += (b.count / n) * abs(b.confidence - b.accuracy)
    return float(total)


def brier_score(probabilities: Sequence[Sequence[float]], answers: Sequence[int]) -> float:
    """The multi-class Brier score (cases may have different numbers of choices)."""
    if len(probabilities) != len(answers):
        raise ValueError(f"{len(probabilities)} probability rows for {len(answers)} answers")
    if not answers:
        return 0.0
    total = 0.0
    for row, answer in zip(probabilities, answers):
        p = np.asarray(row, dtype=np.float64)
        target = np.zeros_like(p)
        target[answer] = 1.0
        total += float(np.sum((p - target) ** 2))
    return total / len(answers)


def selective_accuracy(confidence: Sequence[float], correct: Sequence[int], coverage: float = 0.1) -> float:
    """Accuracy of the ``int(coverage * n) + 1`` most confident cases (HELM's ``selective_acc@10``
    for ``coverage=0.1``); equal confidences keep the cases' order. 0.0 for no cases."""
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be between 0 and 1, got {coverage}")
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0
    order = np.argsort(-conf, kind="stable")
    k = min(int(coverage * conf.size) + 1, conf.size)
    return float(right[order][:k].mean())


@dataclass(frozen=True)
class Calibration:
    """A ranked suite's calibration figures (what the report and results.json show)."""

    n: int
    accuracy: float
    mean_confidence: float
    ece_10_bin: float
    """Equal-width, 10 bins."""
    ece_10_bin_equal_mass: float
    """Equal-mass, 10 bins: HELM's ``ece_10_bin``."""
    brier: float
    selective_accuracy_at_10: float
    bins: tuple[ReliabilityBin, ...]
    """The equal-width bins: the reliability diagram."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "accuracy": self.accuracy, "mean_confidence": self.mean_confidence,
            "ece_10_bin": self.ece_10_bin, "ece_10_bin_equal_mass": self.ece_10_bin_equal_mass,
            "brier": self.brier, "selective_accuracy_at_10": self.selective_accuracy_at_10,
            "reliability": [b.as_dict() for b in self.bins],
        }


def calibration(loglikelihoods: Sequence[Sequence[float]], answers: Sequence[int]) -> Calibration:
    """All calibration figures of a suite from its cases' choice loglikelihoods and answer indices."""
    probabilities = [choice_probabilities(row) for row in loglikelihoods]
    conf, correct = confidence_and_correct(probabilities, answers)
    n = len(answers)
    return Calibration(
        n=n,
        accuracy=float(correct.mean()) if n else 0.0,
        mean_confidence=float(conf.mean()) if n else 0.0,
        ece_10_bin=ece(conf, correct, bins=10),
        ece_10_bin_equal_mass=ece(conf, correct, bins=10, binning="equal_mass") if n else 0.0,
        brier=brier_score(probabilities, answers),
        selective_accuracy_at_10=selective_accuracy(conf, correct, 0.1),
        bins=tuple(reliability_bins(conf, correct, bins=10)),
    )
