"""A reasoning model on a local backend (transformers, llama.cpp): what each row of a batch needs so
that its stop strings apply to the answer only, its thinking budget is enforced, and its finished
tokens become an answer and a reasoning.

:class:`Rows` is made once per batch from the rendered prompts (whether each prompt opened a
reasoning block) and the generation settings; its methods are what the decode loops call:

- :meth:`Rows.stopped` — whether a row's new tokens so far end at a stop string of the answer
  (never inside thinking, finished or not: :func:`~.reasoning.stop_index`);
- :meth:`Rows.force` — a step's logits with every row whose thinking reached
  ``max_reasoning_tokens`` forced to the end-of-thinking token (per row: a row's result never
  depends on its batch);
- :meth:`Rows.finish` — a row's text cut at its first answer stop, split into answer and reasoning.

A model without reasoning delimiters gets no :class:`Rows` (:func:`rows_for` returns ``None``) and
runs exactly as before. Pure Python but for :meth:`Rows.force` (torch, imported when called).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pytest_llmeval.models.reasoning import Delimiters, prompt_opens_thinking, split_reasoning, stop_index

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Finished", "Rows", "rows_for"]

Decode = Callable[[Sequence[int]], str]
"""Token ids to text (the tokenizer's ``decode``, special tokens skipped)."""


@dataclass(frozen=True)
class Finished:
    """A row's outcome: the answer text (empty when the thinking never ended), its finish
    reason, and the reasoning."""

    text: str
    reason: str
    reasoning: str | None
    reasoning_tokens: int | None
    thinking_ended: bool

    def fields(self) -> dict[str, Any]:
        """The reasoning fields of a :class:`~.outputs.Completion`."""
        return {"reasoning": self.reasoning, "reasoning_tokens": self.reasoning_tokens, "thinking_ended": self.thinking_ended}


@dataclass(frozen=True)
class Rows:
    """The rows of one batch of a reasoning model (see the module's docstring)."""

    delimiters: Delimiters
    opened: tuple[bool, ...]
    """Per row: the rendered prompt opened the reasoning block (the row starts thinking)."""
    stops: tuple[str, ...]
    budget: int | None
    decode: Decode

    def thinking(self, row: int, tokens: Sequence[int]) -> bool:
        """Whether row ``row`` opened a reasoning block: in its prompt, or with its first token."""
        return self.opened[row] or bool(tokens) and self.delimiters.start_id is not None and tokens[0] == self.delimiters.start_id

    def stopped(self, row: int, tokens: Sequence[int]) -> bool:
        """Whether row ``row``'s new ``tokens`` reach a stop string of its answer. While the row is
        thinking nothing is decoded; once its end token came, only the text from it is."""
        if not self.stops:
            return False
        tokens = list(tokens)
        end_id = self.delimiters.end_id
        if end_id is not None and self.thinking(row, tokens):
            if end_id not in tokens:
                return False
            text = self.decode(tokens[tokens.index(end_id):])  # the block is open at its start: the answer follows
            return stop_index(text, self.stops, self.delimiters, started_inside=True) is not None
        return stop_index(self.decode(tokens), self.stops, self.delimiters, started_inside=self.opened[row]) is not None

    def force(self, logits: "torch.Tensor", rows: Sequence[int], generated: Sequence[Sequence[int]]) -> "torch.Tensor":
        """``logits`` (one row per entry of ``rows``) with the rows whose thinking reached the
        budget forced to the end-of-thinking token."""
        if self.budget is None or self.delimiters.end_id is None:
            return logits
        from pytest_llmeval.models.reasoning_budget import force_end_of_thinking

        return force_end_of_thinking(
            logits, generated, end_id=self.delimiters.end_id, max_reasoning_tokens=self.budget,
            start_id=self.delimiters.start_id, started_inside=[self.opened[r] for r in rows],
        )  # fmt: skip

    def over_budget(self, row: int, tokens: Sequence[int]) -> bool:
        """Whether row ``row`` has thought ``budget`` tokens and is still thinking (its next token
        must end the thinking); a step of :meth:`force` for one row."""
        if self.budget is None or self.delimiters.end_id is None:
            return False
        from pytest_llmeval.models.reasoning_budget import thinking_tokens

        n = thinking_tokens(tokens, start_id=self.delimiters.start_id, end_id=self.delimiters.end_id, started_inside=self.opened[row])
        return n is not None and n >= self.budget

    def subset(self, rows: Sequence[int]) -> "Rows":
        """These rows only, in this order (a batch of ``model.generate``)."""
        return replace(self, opened=tuple(self.opened[r] for r in rows))

    def stopping_criteria(self, prompt_length: int, eos: Sequence[int]) -> Any:
        """:meth:`stopped` as ``transformers`` stopping criteria for ``model.generate`` on
        left-padded prompts ``prompt_length`` wide."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        rows, ends = self, set(eos)

        class AnswerStops(StoppingCriteria):
            def __call__(self, input_ids: "torch.Tensor", scores: Any, **kwargs: Any) -> "torch.Tensor":
                done = []
                for r, ids in enumerate(input_ids[:, prompt_length:].tolist()):
                    cut = next((k for k, t in enumerate(ids) if t in ends), len(ids))
                    done.append(rows.stopped(r, ids[:cut]))
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([AnswerStops()])

    def budget_processor(self, prompt_length: int) -> Any:
        """:meth:`force` as a ``transformers`` logits processor (:class:`~.reasoning_budget.ReasoningBudget`)."""
        from pytest_llmeval.models.reasoning_budget import ReasoningBudget

        assert self.budget is not None and self.delimiters.end_id is not None
        return ReasoningBudget(prompt_length=prompt_length, end_id=self.delimiters.end_id, max_reasoning_tokens=self.budget,
                               start_id=self.delimiters.start_id, started_inside=list(self.opened))

    def finish(self, row: int, tokens: Sequence[int], reason: str) -> Finished:
        """Row ``row``'s text cut at its first answer stop, and split."""
        text = self.decode(tokens)
        at = stop_index(text, self.stops, self.delimiters, started_inside=self.opened[row]) if self.stops else None
        if at is not None:
            text, reason = text[:at], "stop"
        split = split_reasoning(text, self.delimiters, started_inside=self.opened[row], token_ids=tokens)
        return Finished(split.answer or "", reason, split.reasoning, split.reasoning_tokens, split.thinking_ended)


def rows_for(delimiters: Delimiters | None, prompts: Sequence[str], settings: Any, decode: Decode) -> Rows | None:
    """The :class:`Rows` of a batch of rendered ``prompts`` under generation ``settings`` (their
    ``stop`` and ``max_reasoning_tokens``), or ``None`` for a model without reasoning delimiters."""
    if delimiters is None:
        return None
    opened = tuple(prompt_opens_thinking(p, delimiters) for p in prompts)
    return Rows(delimiters, opened, tuple(getattr(settings, "stop", ()) or ()), getattr(settings, "max_reasoning_tokens", None), decode)
