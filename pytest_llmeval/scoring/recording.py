"""Graded metrics recorded by the test that is running now (``le.score``)."""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Iterator
from contextlib import contextmanager

_scores: ContextVar[dict[str, float] | None] = ContextVar("llmeval_scores", default=None)


@contextmanager
def collecting_scores() -> Iterator[dict[str, float]]:
    """Collect the ``score()`` calls made inside the block into the yielded dict."""
    scores: dict[str, float] = {}
    token = _scores.set(scores)
    try:
        yield scores
    finally:
        _scores.reset(token)


def score(name: str, value: float) -> float:
    """Record a graded metric for the current eval case; the report shows its mean per suite.

    Outside an eval case (no item running) it only checks its arguments and returns ``value``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("score name must be a non-empty string")
    if isinstance(value, bool):
        value = float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"score {name!r} must be a number, got {type(value).__name__}") from None
    if math.isnan(number):
        raise ValueError(f"score {name!r} is NaN")
    scores = _scores.get()
    if scores is not None:
        scores[name] = number
    return number
