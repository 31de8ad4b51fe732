"""Caps that cannot hide: per suite, how many completions ended at ``max_new_tokens`` and how many
reasoning models' thoughts were cut before an answer, with a suggested cap and a flag above
``llmeval_max_cut_share``.

A cut answer is one whose finish reason is ``length``; cut reasoning is a completion whose thinking
never ended (so it has no answer: a miss, "reasoning cut at N tokens"). The **suggested cap** is the
smallest power of two at least twice the longest completion seen, cut ones counted at the cap:
a cut completion's length beyond the cap is unknown, so doubling is the least change that shows
whether the answers were just over it (re-run, and read the new count). Pure: no pytest, no torch.

:func:`suite_caps` counts a run's case records per suite; :func:`cap_messages` says what the report
says about them. A flagged suite does not fail the gate by itself (a long answer is not a wrong
one), but it never passes as fine: its row in the gate table is marked, the gate's last line says
"passed with N flagged", and under ``--llmeval-strict`` a flag fails the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.results.messages import Message, blocking, pct
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.stats import merge_case_records

__all__ = ["DEFAULT_MAX_CUT_SHARE", "CapCounts", "Ending", "cap_counts", "cap_messages", "suggested_cap", "suite_caps"]

DEFAULT_MAX_CUT_SHARE = 0.05
"""``llmeval_max_cut_share``'s default: a suite with more than 5% of its completions cut is flagged."""


@dataclass(frozen=True)
class Ending:
    """How one completion ended: its new tokens, finish reason, and for a reasoning model its
    thinking tokens and whether the thinking ended."""

    tokens_out: int
    finish_reason: str
    reasoning_tokens: int = 0
    thinking_ended: bool = True


def suggested_cap(longest: int) -> int:
    """The smallest power of two at least ``2 * longest`` (at least 1)."""
    target = max(1, 2 * longest)
    return 1 << (target - 1).bit_length()


@dataclass(frozen=True)
class CapCounts:
    """One suite's cut completions: ``cut`` ended at the cap, ``reasoning_cut`` of them were still
    thinking. A share above ``max_share`` flags the suite (strictly above: 5% of 100 is not flagged)."""

    n: int
    cap: int | None
    cut: int
    reasoning_cut: int
    longest: int
    longest_reasoning: int
    max_share: float = DEFAULT_MAX_CUT_SHARE

    @property
    def share(self) -> float:
        return self.cut / self.n if self.n else 0.0

    @property
    def reasoning_share(self) -> float:
        return self.reasoning_cut / self.n if self.n else 0.0

    @property
    def flagged(self) -> bool:
        return self.share > self.max_share + 1e-12

    @property
    def reasoning_flagged(self) -> bool:
        return self.reasoning_share > self.max_share + 1e-12

    @property
    def suggestion(self) -> int | None:
        """A cap to try, when any completion was cut."""
        return suggested_cap(max(self.longest, self.cap or 0)) if self.cut else None

    @property
    def any_flag(self) -> bool:
        return self.flagged or self.reasoning_flagged

    def cell(self) -> str:
        """The gate table's ``cut`` cell: the count, ``!`` when flagged (``-`` when nothing was cut)."""
        return f"{self.cut}{'!' if self.any_flag else ''}" if self.cut else "-"

    def message(self) -> str | None:
        """The report's line, or ``None`` when nothing was cut."""
        if not self.cut:
            return None
        line = f"{self.cut} of {self.n} answers ({self.share:.0%}) ended at max_new_tokens={self.cap}"
        if self.reasoning_cut:
            line += f", {self.reasoning_cut} of them still thinking (no answer)"
        return line + f"; try max_new_tokens={self.suggestion}"

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "max_new_tokens": self.cap, "cut": self.cut, "share": self.share,
                "reasoning_cut": self.reasoning_cut, "reasoning_share": self.reasoning_share,
                "suggested_max_new_tokens": self.suggestion, "flagged": self.flagged or self.reasoning_flagged}


def cap_counts(endings: Iterable[Ending], cap: int | None, *, max_share: float = DEFAULT_MAX_CUT_SHARE) -> CapCounts:
    """Count a suite's cut completions; ``cap`` is its ``max_new_tokens``."""
    if not 0.0 <= max_share <= 1.0:
        raise ValueError(f"llmeval_max_cut_share must be between 0 and 1, got {max_share}")
    n = cut = reasoning_cut = longest = longest_reasoning = 0
    for e in endings:
        n += 1
        longest = max(longest, e.tokens_out)
        longest_reasoning = max(longest_reasoning, e.reasoning_tokens)
        if e.finish_reason == "length":
            cut += 1
            if not e.thinking_ended:
                reasoning_cut += 1
    return CapCounts(n, cap, cut, reasoning_cut, longest, longest_reasoning, max_share)


def _conversation_endings(conversation: Any) -> list[Ending] | None:
    """A workflow case's endings: one per model call (each message is a completion of its own, cut
    or not); None when the record holds no conversation."""
    steps = conversation.get("steps") if isinstance(conversation, Mapping) else None
    if not isinstance(steps, Sequence):
        return None
    return [
        Ending(s["tokens_out"] if isinstance(s.get("tokens_out"), int) else 0, str(s.get("finish_reason") or "stop"))
        for s in steps
        if isinstance(s, Mapping)
    ]


def suite_caps(records: Sequence[CaseRecord], max_share: float = DEFAULT_MAX_CUT_SHARE) -> dict[str, CapCounts]:
    """Per generation suite (one with completions), its cut completions: every sample counts,
    cached or not, and every model message of a workflow case; the cap is the suite's
    ``max_new_tokens`` from its fingerprint."""
    endings: dict[str, list[Ending]] = {}
    caps: dict[str, int | None] = {}
    for (suite, _, _), r in sorted(merge_case_records(records).items()):
        steps = _conversation_endings(r.conversation)
        if steps is not None:
            endings.setdefault(suite, []).extend(steps)
        elif r.completion is None and r.finish_reason is None:
            continue  # a ranking, or a case whose output never came
        else:
            endings.setdefault(suite, []).append(
                Ending(r.tokens_out or 0, r.finish_reason or "stop", r.reasoning_tokens or 0, r.thinking_ended)
            )
        generation = r.fingerprint.generation or {}
        cap = generation.get("max_new_tokens") if isinstance(generation, Mapping) else None
        caps.setdefault(suite, cap if isinstance(cap, int) and not isinstance(cap, bool) else None)
    return {suite: cap_counts(found, caps.get(suite), max_share=max_share) for suite, found in endings.items()}


def cap_messages(caps: Mapping[str, CapCounts], *, strict: bool = False) -> list[Message]:
    """A note per suite with cut completions (a warning when flagged); under ``strict`` a flag
    fails the gate."""
    out = []
    for suite, c in sorted(caps.items()):
        line = c.message()
        if line is None:
            continue
        if c.any_flag:
            share = c.reasoning_share if c.reasoning_flagged and not c.flagged else c.share
            out.append(Message(
                "warning", f"{suite}: flagged: {line}",
                f"{pct(share, 0)} is above llmeval_max_cut_share {pct(c.max_share, 0)}: the cap, not the model, may decide "
                "these cases; raise max_new_tokens (le.cases(max_new_tokens=) or llmeval_max_new_tokens)"
                + (", or set max_reasoning_tokens" if c.reasoning_cut else ""),
            ))  # fmt: skip
            if strict:
                out.append(blocking(f"{suite}: {pct(share, 0)} of its completions were cut at max_new_tokens (--llmeval-strict)"))
        else:
            out.append(Message("info", f"{suite}: {line}"))
    return out
