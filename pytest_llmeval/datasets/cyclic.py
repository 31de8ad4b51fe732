"""Cyclic permutation of a multiple-choice case's options (CircularEval): every rotation of the
options with the answer's new position, and how often the model picks each position.

A case with ``n`` options has ``n`` rotations; rotation ``s`` puts original option ``(j + s) % n``
at position ``j``. The case passes only when every rotation is right (MMBench's CircularEval).
A model without position bias that is always right picks each position exactly once per case, so
per-position counts far from even show a preference for, say, "A".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["PositionCounts", "Rotation", "circular_pass", "position_counts", "rotation_id", "rotations"]


@dataclass(frozen=True)
class Rotation:
    """One rotation of a case's options: ``shift``, the options in their new order, where the
    answer now is, and ``order[j]``, the original index of the option at position ``j``."""

    shift: int
    choices: tuple[Any, ...]
    answer: int
    order: tuple[int, ...]

    def original_index(self, position: int) -> int:
        """The original index of the option the model picked at ``position``."""
        return self.order[position]


def rotations(choices: Sequence[Any], answer: int) -> list[Rotation]:
    """Every rotation of ``choices`` (shift 0 first: the case as written), with ``answer`` (an
    index into ``choices``) mapped to its position in each."""
    n = len(choices)
    if n == 0:
        raise ValueError("a multiple-choice case needs at least one choice to rotate")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < n:
        raise ValueError(f"the answer index {answer!r} is out of range for {n} choices")
    out = []
    for shift in range(n):
        order = tuple((j + shift) % n for j in range(n))
        out.append(Rotation(shift, tuple(choices[i] for i in order), (answer - shift) % n, order))
    return out


def rotation_id(case_id: str, shift: int) -> str:
    """The id of a rotation's item: ``case~rot0`` is the case as written."""
    return f"{case_id}~rot{shift}"


def circular_pass(outcomes: Iterable[bool]) -> bool:
    """CircularEval's verdict: right under every rotation (and at least one rotation)."""
    seen = False
    for outcome in outcomes:
        seen = True
        if not outcome:
            return False
    return seen


@dataclass(frozen=True)
class PositionCounts:
    """How often each position was chosen, over every rotation of every case; ``expected`` is what
    a model that picks positions in proportion to how often they exist would show."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def shares(self) -> tuple[float, ...]:
        total = self.total
        return tuple(c / total if total else 0.0 for c in self.counts)

    def as_dict(self) -> dict[str, Any]:
        letters = [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(self.counts))]
        return {"positions": letters, "counts": list(self.counts), "expected": [round(e, 6) for e in self.expected]}


def position_counts(picks: Mapping[str, Sequence[int]], sizes: Mapping[str, int]) -> PositionCounts:
    """Per-position counts from ``picks`` (case id -> the position the model chose in each rotation)
    and ``sizes`` (case id -> its number of options). ``expected[j]`` is the number of rotations
    whose case has a position ``j``, shared evenly over each case's positions."""
    width = max(sizes.values(), default=0)
    counts = [0] * width
    expected = [0.0] * width
    for case_id, chosen in picks.items():
        n = sizes[case_id]
        for position in chosen:
            if not 0 <= position < n:
                raise ValueError(f"case {case_id!r}: position {position} is out of range for {n} choices")
            counts[position] += 1
        for j in range(n):
            expected[j] += len(chosen) / n
    return PositionCounts(tuple(counts), tuple(expected))
