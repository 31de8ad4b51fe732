"""How well a judge agrees with people: accuracy, Cohen's kappa with an interval, the confusion matrix.

Cohen's kappa is ``(p_o - p_e) / (1 - p_e)``: the observed agreement ``p_o`` corrected for the
agreement ``p_e`` two raters with these label frequencies would reach by chance.

The interval is the large-sample (asymptotic, normal) 95% interval ``kappa +- 1.96 * SE`` with
the standard error of Fleiss, Cohen and Everitt (1969), the one that does not assume kappa = 0
(``statsmodels.stats.inter_rater.cohens_kappa`` reports the same ``std_kappa``):

    var = (A + B - C) / ((1 - p_e)^2 * n)
    A = sum_i p_ii * (1 - (p_i. + p_.i) * (1 - kappa))^2
    B = (1 - kappa)^2 * sum_{i != j} p_ij * (p_.i + p_j.)^2
    C = (kappa - p_e * (1 - kappa))^2

with ``p_ij`` the share of cases people labelled ``i`` and the judge ``j``, ``p_i.`` and ``p_.j``
the row and column shares. The bounds are clipped to [-1, 1]. With few cases (under about 30)
the normal approximation is rough: read the interval as a hint of its width. When both raters
use a single label and the same one, ``p_e`` is 1 and kappa is undefined (``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Disagreement:
    suite: str
    case_id: str
    human: str
    judge: str


@dataclass(frozen=True)
class Agreement:
    """The judge against people on ``n`` cases both labelled."""

    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    """``confusion[i][j]``: cases people labelled ``labels[i]`` and the judge ``labels[j]``."""
    disagreements: tuple[Disagreement, ...] = ()

    @property
    def n(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float | None:
        return sum(self.confusion[i][i] for i in range(len(self.labels))) / self.n if self.n else None

    def _shares(self) -> tuple[list[list[float]], list[float], list[float], float, float]:
        n = self.n
        p = [[c / n for c in row] for row in self.confusion]
        rows = [math.fsum(row) for row in p]
        cols = [math.fsum(p[i][j] for i in range(len(p))) for j in range(len(p))]
        observed = math.fsum(p[i][i] for i in range(len(p)))
        expected = math.fsum(r * c for r, c in zip(rows, cols))
        return p, rows, cols, observed, expected

    @property
    def kappa(self) -> float | None:
        if not self.n:
            return None
        _, _, _, observed, expected = self._shares()
        if expected >= 1.0 - 1e-12:
            return None
        return (observed - expected) / (1.0 - expected)

    @property
    def kappa_se(self) -> float | None:
        """The large-sample standard error of kappa (Fleiss, Cohen and Everitt 1969)."""
        kappa = self.kappa
        if kappa is None:
            return None
        p, rows, cols, _, expected = self._shares()
        k = len(p)
        a = math.fsum(p[i][i] * (1 - (rows[i] + cols[i]) * (1 - kappa)) ** 2 for i in range(k))
        b = (1 - kappa) ** 2 * math.fsum(p[i][j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j)
        c = (kappa - expected * (1 - kappa)) ** 2
        var = (a + b - c) / ((1 - expected) ** 2 * self.n)
        return math.sqrt(max(var, 0.0))

    @property
    def kappa_interval(self) -> tuple[float, float] | None:
        kappa, se = self.kappa, self.kappa_se
        if kappa is None or se is None:
            return None
        return max(-1.0, kappa - Z95 * se), min(1.0, kappa + Z95 * se)

    def lines(self, limit: int = 20) -> list[str]:
        """The report ``calibrate`` prints."""
        out = [f"cases labelled by both: {self.n}"]
        if not self.n:
            return out
        out.append(f"accuracy: {self.accuracy:.3f}")
        kappa, interval = self.kappa, self.kappa_interval
        if kappa is None or interval is None:
            out.append("Cohen's kappa: undefined (people and judge used one and the same label throughout)")
        else:
            out.append(f"Cohen's kappa: {kappa:.3f} (95% CI {interval[0]:.3f} to {interval[1]:.3f}; large-sample SE {self.kappa_se:.3f})")
            for who, used in (("people", self._used(rows=True)), ("the judge", self._used(rows=False))):
                if len(used) == 1:
                    out.append(f"  {who} gave one label throughout ({used[0]}): kappa is 0 by construction, whatever the other says")
        out += ["", "confusion (rows: people, columns: judge):", *self._matrix_lines()]
        if self.disagreements:
            out += ["", f"disagreements ({len(self.disagreements)}):"]
            out += [f"  {d.suite}::{d.case_id}: people {d.human}, judge {d.judge}" for d in self.disagreements[:limit]]
            if len(self.disagreements) > limit:
                out.append(f"  ... and {len(self.disagreements) - limit} more")
        return out

    def _used(self, *, rows: bool) -> list[str]:
        """The labels people (``rows``) or the judge gave at least once."""
        k = len(self.labels)
        counts = [sum(self.confusion[i][j] for j in range(k)) if rows else sum(self.confusion[j][i] for j in range(k)) for i in range(k)]
        return [label for label, count in zip(self.labels, counts) if count]

    def _matrix_lines(self) -> list[str]:
        width = max(6, *(len(x) for x in self.labels), *(len(str(c)) for row in self.confusion for c in row))
        head = " " * (width + 2) + "  ".join(x.rjust(width) for x in self.labels)
        body = ["  " + x.ljust(width) + "  ".join(str(c).rjust(width) for c in row) for x, row in zip(self.labels, self.confusion)]
        return [head, *body]


def agreement(pairs: Sequence[tuple[str, str, str, str]], labels: Sequence[str] = ()) -> Agreement:
    """The agreement of ``(suite, case_id, human, judge)`` label pairs; ``labels`` orders the
    matrix (labels seen but not listed follow, sorted)."""
    seen = {x for _, _, h, j in pairs for x in (h, j)}
    order = [*dict.fromkeys(labels), *sorted(seen - set(labels))]
    index = {x: i for i, x in enumerate(order)}
    matrix = [[0] * len(order) for _ in order]
    for _, _, human, judge in pairs:
        matrix[index[human]][index[judge]] += 1
    disagreements = tuple(Disagreement(s, c, h, j) for s, c, h, j in pairs if h != j)
    return Agreement(tuple(order), tuple(map(tuple, matrix)), disagreements)
