"""What the gate says: :class:`Message`, and the small formatters every report uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pytest_llmeval.escaping import markdown_code, markdown_text

MAX_LISTED = 10

Markup = dict[str, bool]


@dataclass(frozen=True)
class Message:
    """One thing the gate found.

    A *blocking* message (``blocks=True``) fails the gate: its ``text`` is one line of the
    "llmeval gate FAILED" list. The others are notes printed above the verdict: what happened,
    then one actionable hint (and a command to copy). A failure that needs explaining comes as
    a blocking line plus a note with the fix.
    """

    level: str  # "error", "warning" or "info"
    text: str
    hint: str = ""
    command: str = ""
    blocks: bool = False

    def terminal_lines(self) -> list[tuple[str, Markup]]:
        markup: Markup = {"error": {"red": True, "bold": True}, "warning": {"yellow": True}}.get(self.level, {})
        out = [(self.text, markup)]
        if self.hint or self.command:
            out.append(("  " + " ".join(p for p in (self.hint, self.command) if p), {}))
        return out

    def markdown(self) -> str:
        """One Markdown list item: the text and hint escaped as text, the command as code."""
        icon = {"error": "❌", "warning": "⚠️"}.get(self.level, "ℹ️")
        tail = " ".join(p for p in (markdown_text(self.hint) if self.hint else "", markdown_code(self.command) if self.command else "") if p)
        return f"- {icon} {markdown_text(self.text)}" + (f" — {tail}" if tail else "")

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "text": self.text, "hint": self.hint, "command": self.command}


def blocking(text: str) -> Message:
    """A line of the failed-gate list."""
    return Message("error", text, blocks=True)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 case``, ``2 cases`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def points(delta: float) -> str:
    return f"{delta * 100:+.1f} pts"


def pvalue(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def pvalues(p: float, adjusted: float | None) -> str:
    """``p=0.012`` and, when several suites were gated at once, ``Holm p=0.036`` (what decides)."""
    return pvalue(p) if adjusted is None else f"{pvalue(p)}, Holm {pvalue(adjusted)}"


def listing(items: Sequence[str], limit: int = MAX_LISTED, code: bool = False) -> str:
    """``a, b, c ... and 4 more``; with ``code``, each a Markdown code span (:func:`~pytest_llmeval.escaping.markdown_code`)."""
    shown = [markdown_code(i) if code else i for i in items[:limit]]
    more = len(items) - limit
    return ", ".join(shown) + (f" ... and {more} more" if more > 0 else "")
