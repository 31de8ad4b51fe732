"""Greedy decoding: the prompts' shared tokens computed once, finished rows replaced by waiting ones.

``model.generate`` runs every row of a batch from its first token to the batch's last step, and
computes every prompt token of every row. Here:

- **shared prompt tokens are computed once.** Prompts are taken in token order, so neighbours
  share their longest prefixes (the chat template's header, a few-shot block, a question's
  template). The tokens every admitted prompt shares come from a key/value cache computed once
  at batch 1 (:class:`PrefixCache`, kept for the call). The remaining tokens of the admitted
  prompts form prefix trees of at most :data:`TREE_TOKENS` tokens, each run as one sequence: each token is one node, at the
  position it has in its prompt, and attends to the shared tokens and its ancestors only (a 4D
  additive mask). Each prompt then takes its path's keys and values, right-aligned.
- **finished rows make room.** A row that produced an end-of-sequence token, completed a stop
  string or reached ``max_new_tokens`` leaves the batch; once at least :data:`REFILL_FRACTION`
  of the ``slots`` are free, waiting prompts are prefilled and join the rows being decoded
  (continuous batching). Each row keeps its own positions, so rows at different steps share a
  forward pass.

Greedy semantics are those of ``model.generate(do_sample=False)``: the float32 argmax of the last
position's logits (first index on ties), the end-of-sequence ids and transformers' own
``StopStringCriteria`` (same stopping step), ``max_new_tokens`` steps at most.

The hook: ``logits_hook(logits, rows, steps)`` gets the float32 logits of the rows choosing a
token (``[B, V]``), the index of each of those rows in the caller's list, and each row's step
(0 for its first new token). It returns the logits to take the argmax of, e.g. per-row sampling
noise derived from each row's seed and step.

For a reasoning model two more callables come in (:mod:`.thinking`): ``stop_rule(row, tokens)``
replaces the stop-string criteria (stop strings apply to the answer, never inside thinking), and
``force(logits, rows, generated)`` is applied after the hook with each row's new tokens (a
thinking budget forces the end-of-thinking token); both work row by row, so a row's result
never depends on its batch.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pytest_llmeval.models.kv_cache import cache_kwarg, layered_cache, new_buffer, place_right, returned_cache, roomy_cache
from pytest_llmeval.models.prefill import PrefixCache, common_prefix, prefill, tree_groups

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Decoded", "PrefixCache", "can_decode", "common_prefix", "greedy_decode"]

LogitsHook = Callable[["torch.Tensor", Sequence[int], Sequence[int]], "torch.Tensor"]
StopRule = Callable[[int, Sequence[int]], bool]
"""``(row, its new tokens) -> whether it stops here``."""
Force = Callable[["torch.Tensor", Sequence[int], Sequence[Sequence[int]]], "torch.Tensor"]
"""``(logits, rows, each row's new tokens) -> logits``."""
REFILL_FRACTION = 0.25
"""Admit waiting prompts once at least this share of the slots is free."""
COMPACT_FRACTION = 0.125
"""Drop finished rows from the batch once they are at least this share of it."""
TREE_TOKENS = 2048
"""Most prompt tokens in one prefill pass (its mask grows with their square); a longer prompt runs alone."""
ROOM = 16
"""Cache columns allocated ahead of the rows' new tokens (a layer's buffer grows by as many when full)."""


@dataclass
class Decoded:
    """One row's new tokens (end-of-sequence token excluded) and why it stopped."""

    tokens: list[int]
    reason: str  # "stop" (end of sequence or stop string) or "length"


def can_decode(model: Any) -> bool:
    """Whether this loop can drive ``model``: a decoder-only model with full attention in every
    layer, an attention that takes a custom 4D mask (sdpa, eager), position ids,
    ``logits_to_keep`` and a transformers ``DynamicCache`` made of layers."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    if getattr(config, "sliding_window", None) or getattr(config, "attention_chunk_size", None):
        return False
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        return False
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    takes = "position_ids" in params and "logits_to_keep" in params
    return takes and ("cache" in params or "past_key_values" in params) and layered_cache()


def _stop_criteria(tokenizer: Any, stop: Sequence[str]) -> Any:
    if not stop:
        return None
    from transformers.generation.stopping_criteria import StopStringCriteria

    return StopStringCriteria(tokenizer=tokenizer, stop_strings=list(stop))


# ----------------------------------------------------------------------------- decoding


class _Batch:
    """The rows being decoded: their cache, mask (cache columns), next input, and bookkeeping."""

    def __init__(self, pad_id: int, eos: Sequence[int], room: int) -> None:
        import torch

        self.room = room  # cache columns to allocate ahead of the rows' new tokens
        self.pad_id = pad_id
        self.eos = torch.tensor(sorted(set(eos)), dtype=torch.long) if eos else None
        self.cache: Any = None
        self.mask = torch.zeros((0, 0), dtype=torch.long)
        self.next_ids = torch.zeros(0, dtype=torch.long)
        self.next_pos = torch.zeros(0, dtype=torch.long)
        self.alive = torch.zeros(0, dtype=torch.bool)
        self.live: list[int] = []  # the caller's index of each row
        self.steps: list[int] = []  # each row's next step
        self.history: list[list[int]] = []  # each row's prompt and new tokens: what the stop criteria read

    def __len__(self) -> int:
        return len(self.live)

    def running(self) -> int:
        return int(self.alive.sum())

    def add(self, model: Any, buffers: Sequence[tuple[Any, Any]], mask: "torch.Tensor", rows: Sequence[Sequence[int]],
            index: Sequence[int]) -> None:
        """Join prefilled rows (``buffers`` and ``mask`` from :func:`.prefill.prefill`); their first
        token is chosen next, by :meth:`advance`."""
        import torch

        n = len(index)
        positions = torch.tensor([len(r) for r in rows], dtype=torch.long)
        width = mask.shape[1]
        if self.cache is not None:  # one new buffer: the running rows, then the new ones, right-aligned
            old = self.mask[:, int((self.mask.cumsum(1) == 0).sum(1).min()) :]  # columns no running row uses: gone
            width = max(old.shape[1], width)
            merged = []
            for layer, new in zip(self.cache.layers, list(buffers)):
                pair = []
                for held, added in ((layer.keys, new[0]), (layer.values, new[1])):
                    buf = new_buffer(held[:, :, held.shape[2] - old.shape[1] :], width, width + self.room, len(self) + n)
                    place_right(buf[len(self) :], added[:, :, : mask.shape[1]], width)
                    pair.append(buf)
                merged.append((pair[0], pair[1]))
                layer.k_buf = layer.v_buf = layer.keys = layer.values = None  # free as we go: one layer's copy at a time
            buffers, mask = merged, torch.cat([_pad_left(old, width), _pad_left(mask, width)])
        self.cache, self.mask = roomy_cache(model, buffers, width, self.room), mask
        self.next_pos = torch.cat([self.next_pos, positions])
        self.next_ids = torch.cat([self.next_ids, torch.full((n,), self.pad_id, dtype=torch.long)])
        self.alive = torch.cat([self.alive, torch.ones(n, dtype=torch.bool)])
        self.live += list(index)
        self.steps += [0] * n
        self.history += [list(r) for r in rows]

    def step(self, model: Any) -> "torch.Tensor":
        """One forward pass of every row's next token; the last position's logits."""
        import torch

        device = next(model.parameters()).device
        self.mask = torch.cat([self.mask, torch.ones((len(self), 1), dtype=torch.long)], dim=1)
        out = model(
            input_ids=self.next_ids[:, None].to(device),
            attention_mask=self.mask.to(device),
            position_ids=self.next_pos[:, None].to(device),
            use_cache=True,
            logits_to_keep=1,
            **{cache_kwarg(model): self.cache},
        )
        self.cache = returned_cache(out)
        self.next_pos = self.next_pos + 1
        return out.logits[:, -1, :]

    def advance(self, which: Sequence[int], tokens: "torch.Tensor", criteria: Any, max_new: int,
                out: list[list[int]], reasons: list[str | None], stop_rule: StopRule | None = None) -> list[int]:
        """Take ``tokens`` for the batch rows ``which``; returns the caller's indices that finished."""
        import torch

        for b, token in zip(which, tokens.tolist()):
            self.history[b].append(token)
            self.steps[b] += 1
        is_eos = torch.isin(tokens, self.eos) if self.eos is not None else torch.zeros(len(which), dtype=torch.bool)
        stopped = None
        if criteria is not None:
            width = max(len(self.history[b]) for b in which)
            ids = torch.full((len(which), width), self.pad_id, dtype=torch.long)
            for k, b in enumerate(which):
                ids[k, width - len(self.history[b]) :] = torch.tensor(self.history[b], dtype=torch.long)
            stopped = criteria(ids, None).to("cpu")
        finished = []
        for k, b in enumerate(which):
            r = self.live[b]
            if bool(is_eos[k]):
                reasons[r] = "stop"
            else:
                out[r].append(self.history[b][-1])
                if stopped is not None and bool(stopped[k]) or stop_rule is not None and stop_rule(r, out[r]):
                    reasons[r] = "stop"
                elif self.steps[b] >= max_new:
                    reasons[r] = "length"
            if reasons[r] is not None:
                self.alive[b] = False
                finished.append(r)
        self.next_ids[list(which)] = tokens
        self.next_ids = self.next_ids.masked_fill(~self.alive, self.pad_id)
        return finished

    def compact(self, model: Any) -> None:
        """Drop finished rows from the batch."""
        keep = self.alive.nonzero().flatten()
        if len(keep) == len(self):
            return
        if len(keep) == 0:
            self.cache, self.mask = None, self.mask[:0, :0]
        else:
            self.cache.batch_select_indices(keep.to(next(model.parameters()).device))
            self.mask = self.mask[keep]
        self.next_ids, self.next_pos, self.alive = self.next_ids[keep], self.next_pos[keep], self.alive[keep]
        kept = keep.tolist()
        self.live = [self.live[i] for i in kept]
        self.steps = [self.steps[i] for i in kept]
        self.history = [self.history[i] for i in kept]


def _pad_left(mask: "torch.Tensor", width: int) -> "torch.Tensor":
    import torch

    return torch.cat([torch.zeros((mask.shape[0], width - mask.shape[1]), dtype=mask.dtype), mask], dim=1)


def greedy_decode(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos: Sequence[int],
    pad_id: int,
    stop: Sequence[str] = (),
    prefixes: PrefixCache | None = None,
    share_prefix: bool = True,
    logits_hook: LogitsHook | None = None,
    slots: int | None = None,
    on_done: Callable[[int], None] | None = None,
    stop_rule: StopRule | None = None,
    force: Force | None = None,
) -> list[Decoded]:
    """Greedy continuations of token ``rows`` (see the module docstring); call under inference mode.

    ``slots``: at most this many rows in a forward pass (default: all). ``on_done(i)`` is called
    when row ``i`` has finished. ``stop_rule`` replaces the criteria of ``stop``; ``force`` comes
    after ``logits_hook`` (see the module docstring)."""
    import torch

    n = len(rows)
    out: list[list[int]] = [[] for _ in range(n)]
    reasons: list[str | None] = [None] * n
    if max_new_tokens <= 0:
        return [Decoded([], "length") for _ in range(n)]
    store = prefixes if prefixes is not None else PrefixCache()
    slots = max(1, slots or n)
    criteria = _stop_criteria(tokenizer, stop) if stop_rule is None else None
    waiting = deque(sorted(range(n), key=lambda i: list(rows[i])))  # token order: neighbours share prefixes
    batch = _Batch(pad_id, eos, room=min(max_new_tokens + 1, ROOM))

    def choose(logits: "torch.Tensor", which: list[int]) -> None:
        logits = logits.to(dtype=torch.float32)
        if logits_hook is not None:
            logits = logits_hook(logits, [batch.live[b] for b in which], [batch.steps[b] for b in which])
        if force is not None:
            live = [batch.live[b] for b in which]
            logits = force(logits, live, [out[r] for r in live])
        tokens = logits.argmax(dim=-1).to("cpu")
        for r in batch.advance(which, tokens, criteria, max_new_tokens, out, reasons, stop_rule):
            if on_done is not None:
                on_done(r)

    while waiting or batch.running():
        free = slots - batch.running()
        if waiting and (not batch.running() or free >= max(1, REFILL_FRACTION * slots)):
            batch.compact(model)
            take = [waiting.popleft() for _ in range(min(free, len(waiting)))]
            _admit(model, batch, rows, take, store, share_prefix, choose)
        if batch.running():
            _step(model, batch, choose)
    return [Decoded(tokens, reason or "length") for tokens, reason in zip(out, reasons)]


def _admit(
    model: Any, batch: _Batch, rows: Sequence[Sequence[int]], take: list[int], store: PrefixCache, share_prefix: bool,
    choose: Callable[[Any, list[int]], None],
) -> None:  # fmt: skip
    """Prefill the rows ``take`` (indices into ``rows``) in groups that share a prefix, add them to
    the batch, and choose each one's first token."""
    for group in tree_groups([rows[i] for i in take], TREE_TOKENS, share_prefix):
        admitted = [take[g] for g in group]
        buffers, mask, logits = prefill(model, [rows[i] for i in admitted], store, share_prefix, batch.room)
        start = len(batch)
        batch.add(model, buffers, mask, [rows[i] for i in admitted], admitted)
        choose(logits, list(range(start, len(batch))))


def _step(model: Any, batch: _Batch, choose: Callable[[Any, list[int]], None]) -> None:
    """One forward pass of the running rows and the choice of their next tokens; the batch is
    compacted once enough of its rows have finished."""
    running = batch.alive.nonzero().flatten()
    logits = batch.step(model)
    choose(logits[running.to(logits.device)], running.tolist())
    if len(batch) - batch.running() >= max(1, COMPACT_FRACTION * len(batch)):
        batch.compact(model)
