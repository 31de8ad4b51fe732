"""A reasoning budget enforced locally: once a row has thought ``max_reasoning_tokens`` tokens,
its next token is the end-of-thinking token.

:func:`force_end_of_thinking` works on one step's logits rows and each row's generated token ids,
so the decode loop can call it whatever the batch; :class:`ReasoningBudget` is the same as a
``transformers`` logits processor (``__call__(input_ids, scores)``) for ``model.generate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ReasoningBudget", "force_end_of_thinking", "forced_rows", "thinking_tokens"]


def thinking_tokens(generated: Sequence[int], *, start_id: int | None, end_id: int, started_inside: bool) -> int | None:
    """How many thinking tokens a row has generated, or ``None`` when it is not thinking (no block,
    or the block ended)."""
    ids = list(generated)
    if not started_inside:
        if not ids or start_id is None or ids[0] != start_id:
            return None
        ids = ids[1:]
    if end_id in ids:
        return None
    return len(ids)


def force_end_of_thinking(
    scores: "torch.Tensor",
    generated: Sequence[Sequence[int]],
    *,
    end_id: int,
    max_reasoning_tokens: int,
    start_id: int | None = None,
    started_inside: Sequence[bool] | bool = False,
) -> "torch.Tensor":
    """``scores`` (one row per sequence, one column per token) with every row whose thinking has
    reached ``max_reasoning_tokens`` forced to ``end_id``: its other columns ``-inf``, ``end_id``'s 0,
    so greedy decoding and sampling both pick it. Changed in place and returned;
    :func:`forced_rows` says which rows."""
    rows = forced_rows(generated, end_id=end_id, max_reasoning_tokens=max_reasoning_tokens, start_id=start_id,
                       started_inside=started_inside)
    if rows:
        import torch

        index = torch.tensor(rows, dtype=torch.long, device=scores.device)
        scores[index] = float("-inf")
        scores[index, end_id] = 0.0
    return scores


def forced_rows(generated: Sequence[Sequence[int]], *, end_id: int, max_reasoning_tokens: int, start_id: int | None = None,
                started_inside: Sequence[bool] | bool = False) -> list[int]:
    """The rows whose thinking has reached the budget (still thinking, ``max_reasoning_tokens``
    thinking tokens or more)."""
    if max_reasoning_tokens < 0:
        raise ValueError(f"max_reasoning_tokens must be at least 0, got {max_reasoning_tokens}")
    inside = [started_inside] * len(generated) if isinstance(started_inside, bool) else list(started_inside)
    if len(inside) != len(generated):
        raise ValueError(f"started_inside has {len(inside)} rows for {len(generated)} sequences")
    rows = []
    for r, (ids, opened) in enumerate(zip(generated, inside)):
        n = thinking_tokens(ids, start_id=start_id, end_id=end_id, started_inside=opened)
        if n is not None and n >= max_reasoning_tokens:
            rows.append(r)
    return rows


class ReasoningBudget:
    """A ``transformers`` logits processor: rows are the generated part of ``input_ids`` (after the
    ``prompt_length`` columns of the left-padded prompt)."""

    def __init__(self, *, prompt_length: int, end_id: int, max_reasoning_tokens: int, start_id: int | None = None,
                 started_inside: Sequence[bool] | bool = False) -> None:
        self.prompt_length = prompt_length
        self.end_id = end_id
        self.max_reasoning_tokens = max_reasoning_tokens
        self.start_id = start_id
        self.started_inside = started_inside

    def __call__(self, input_ids: "torch.Tensor", scores: "torch.Tensor") -> "torch.Tensor":
        generated = input_ids[:, self.prompt_length:].tolist()
        return force_end_of_thinking(scores, generated, end_id=self.end_id, max_reasoning_tokens=self.max_reasoning_tokens,
                                     start_id=self.start_id, started_inside=self.started_inside)
