"""The failure type every scorer raises."""

from __future__ import annotations

from typing import Any

from pytest_llmeval.escaping import terminal


class EvalFailure(AssertionError):
    """A case the model got wrong: an ``AssertionError`` with the evidence attached.

    ``score`` is the graded value the scorer computed (0.0 for a plain miss), ``expected`` and
    ``actual`` are what was compared, and ``reason`` is one line a person can read in a report.
    """

    def __init__(
        self,
        reason: str,
        *,
        score: float = 0.0,
        expected: Any = None,
        actual: Any = None,
        scorer: str = "",
    ) -> None:
        self.reason = reason
        self.score = float(score)
        self.expected = expected
        self.actual = actual
        self.scorer = scorer
        super().__init__(self._message())

    def _message(self) -> str:
        lines = [terminal(self.reason)]  # what pytest shows; the record keeps the reason itself
        if self.expected is not None:
            lines.append(f"expected: {_short(self.expected)}")
        if self.actual is not None:
            lines.append(f"actual:   {_short(self.actual)}")
        return "\n".join(lines)


def hide_misses(excinfo: Any) -> bool:
    """A scorer module's ``__tracebackhide__`` (pytest reads it from a frame's globals): a miss
    (:class:`EvalFailure`) shows the test's line and the reason, not the scorer's own code; any
    other exception (bad arguments, a bug) keeps the scorer's frames."""
    return isinstance(getattr(excinfo, "value", None), EvalFailure)


__tracebackhide__ = hide_misses


def _short(value: Any, limit: int = 300) -> str:
    if isinstance(value, str):
        text = repr(value[: limit + 1])  # a prefix: a 10 MB completion need not be copied whole
    else:
        try:
            text = repr(value)
        except Exception as exc:  # an int past the int-to-str limit, a nest too deep for repr
            text = f"<{type(value).__name__} that cannot be shown: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
