"""Greedy decoding with a shared prompt prefix computed once and finished rows dropped.

``model.generate`` runs every row of a batch from its first token to the batch's last step. Here:

- **a shared prefix is computed once.** The rows of a batch usually start with the same tokens
  (the chat template's header and system prompt, the same few-shot examples). Their key/value
  cache is computed once, at batch 1, and copied to every row. Each row is laid out as
  ``prefix | padding | own tokens``; the padding has attention-mask zeros and the position ids
  come from the mask's running count, so every token sits at the position it has without the
  sharing (that of left padding).
- **finished rows stop computing.** A row that produced an end-of-sequence token, completed a
  stop string or reached ``max_new_tokens`` leaves the batch: its cache rows are dropped once
  enough rows have finished (:data:`COMPACT_FRACTION`), so later steps run only the live rows.

Greedy semantics are those of ``model.generate(do_sample=False)``: the float32 argmax of the last
position's logits (first index on ties), the end-of-sequence ids and transformers' own
``StopStringCriteria`` (same stopping step), ``max_new_tokens`` steps at most.

The hook: ``logits_hook(logits, rows, step)`` gets the float32 logits of the live rows
(``[B, V]``), the index of each of those rows in the caller's list, and the step (0 for the
first new token; every live row is at the same step). It returns the logits to take the argmax
of, e.g. per-row sampling noise derived from each row's seed and the step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch

LogitsHook = Callable[["torch.Tensor", Sequence[int], int], "torch.Tensor"]
COMPACT_FRACTION = 0.125
"""Drop finished rows from the batch once they are at least this share of it."""


@dataclass
class Decoded:
    """One row's new tokens (end-of-sequence token excluded) and why it stopped."""

    tokens: list[int]
    reason: str  # "stop" (end of sequence or stop string) or "length"


@dataclass
class PrefixCache:
    """Key/value caches of shared prefixes, computed at batch 1 and reused across batches of one call."""

    entries: dict[tuple[int, ...], Any] = field(default_factory=dict)
    computed_tokens: int = 0  # prefix tokens run through the model (for the benchmarks)


def can_decode(model: Any) -> bool:
    """Whether this loop can drive ``model``: a decoder-only model with full attention in every
    layer, taking position ids, ``logits_to_keep`` and a transformers ``DynamicCache`` made of layers."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
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
    return takes and ("cache" in params or "past_key_values" in params) and _layered_cache()


def _layered_cache() -> bool:
    try:
        from transformers import DynamicCache

        return "config" in inspect.signature(DynamicCache.__init__).parameters and hasattr(DynamicCache(), "layers")
    except Exception:  # an older transformers: its cache has another shape
        return False


def _cache_kwarg(model: Any) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row shares, leaving each row one token of its own."""
    n = min(len(r) for r in rows) - 1
    first = rows[0]
    for row in rows[1:]:
        i = 0
        while i < n and row[i] == first[i]:
            i += 1
        n = i
    return max(n, 0)


def _prefix_kv(model: Any, prefix: tuple[int, ...], store: PrefixCache) -> list[tuple[Any, Any]]:
    """The key/values of ``prefix`` at batch 1: a stored longer prefix's first positions, or a
    stored shorter prefix extended by the tokens it lacks, or computed from scratch."""
    import torch

    if prefix in store.entries:
        return store.entries[prefix]
    n = len(prefix)
    for key, kv in store.entries.items():
        if len(key) > n and key[:n] == prefix:
            store.entries[prefix] = [(k[:, :, :n], v[:, :, :n]) for k, v in kv]
            return store.entries[prefix]
    base = max((key for key in store.entries if key == prefix[: len(key)]), key=len, default=())
    device = next(model.parameters()).device
    ids = torch.tensor([list(prefix[len(base) :])], dtype=torch.long, device=device)
    kwargs: dict[str, Any] = {}
    if base:
        kwargs[_cache_kwarg(model)] = _batch_cache(model, store.entries[base], 1)
    out = model(
        input_ids=ids,
        attention_mask=torch.ones((1, n), dtype=torch.long, device=device),
        position_ids=torch.arange(len(base), n, device=device)[None],
        use_cache=True,
        logits_to_keep=1,
        **kwargs,
    )
    cache = _returned_cache(out)
    store.entries[prefix] = [(layer.keys, layer.values) for layer in cache.layers]
    store.computed_tokens += n - len(base)
    return store.entries[prefix]


def _returned_cache(out: Any) -> Any:
    """The cache a forward pass returned (``cache`` in recent transformers, ``past_key_values`` before)."""
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else out.past_key_values


def _batch_cache(model: Any, kv: list[tuple[Any, Any]], batch: int) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for i, (k, v) in enumerate(kv):
        cache.update(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1), i)
    return cache


def _stop_criteria(tokenizer: Any, stop: Sequence[str]) -> Any:
    if not stop:
        return None
    from transformers.generation.stopping_criteria import StopStringCriteria

    return StopStringCriteria(tokenizer=tokenizer, stop_strings=list(stop))


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
) -> list[Decoded]:
    """Greedy continuations of token ``rows`` (see the module docstring); call under inference mode."""
    import torch

    device = next(model.parameters()).device
    n = len(rows)
    store = prefixes if prefixes is not None else PrefixCache()
    shared = common_prefix(rows) if share_prefix and n else 0
    cache = None
    if shared:
        cache = _batch_cache(model, _prefix_kv(model, tuple(rows[0][:shared]), store), n)
    width = max(len(r) - shared for r in rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, shared + width), dtype=torch.long)
    mask[:, :shared] = 1
    for j, row in enumerate(rows):  # own tokens right-aligned: padding sits between prefix and them
        own = list(row[shared:])
        ids[j, width - len(own) :] = torch.tensor(own, dtype=torch.long)
        mask[j, shared + width - len(own) :] = 1
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, shared:]
    state = _Rows(rows, pad_id, eos)
    criteria = _stop_criteria(tokenizer, stop)
    key = _cache_kwarg(model)
    step_ids, step_pos = ids, positions
    for step in range(max_new_tokens):
        out = model(
            input_ids=step_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=step_pos.to(device),
            use_cache=True,
            logits_to_keep=1,
            **{key: cache},
        )
        cache = _returned_cache(out)
        logits = out.logits[:, -1, :].to(dtype=torch.float32)
        if logits_hook is not None:
            logits = logits_hook(logits, list(state.live), step)
        nxt = logits.argmax(dim=-1).to("cpu")
        state.advance(nxt, criteria, last=step + 1 == max_new_tokens)
        if not bool(state.alive.any()) or step + 1 == max_new_tokens:
            break
        mask = torch.cat([mask, torch.ones((len(state.live), 1), dtype=torch.long)], dim=1)
        step_ids, step_pos = nxt.masked_fill(~state.alive, pad_id)[:, None], step_pos[:, -1:] + 1
        finished = int((~state.alive).sum())
        if finished >= max(1, COMPACT_FRACTION * len(state.live)):
            keep = state.alive.nonzero().flatten()
            cache.batch_select_indices(keep.to(device))
            state.select(keep)
            mask, step_ids, step_pos = mask[keep], step_ids[keep], step_pos[keep]
    return state.results()


class _Rows:
    """The rows of a batch being decoded: which are still running, their tokens, why they stopped."""

    def __init__(self, rows: Sequence[Sequence[int]], pad_id: int, eos: Sequence[int]) -> None:
        import torch

        n = len(rows)
        width = max(len(r) for r in rows)
        # what the stop criteria read: each row's whole prompt (left padded), then its new tokens
        self.history = torch.full((n, width), pad_id, dtype=torch.long)
        for j, row in enumerate(rows):
            self.history[j, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
        self.pad_id = pad_id
        self.eos = torch.tensor(sorted(set(eos)), dtype=torch.long) if eos else None
        self.live = list(range(n))  # the caller's index of each batch row
        self.alive = torch.ones(n, dtype=torch.bool)
        self.generated: list[list[int]] = [[] for _ in range(n)]
        self.reasons: list[str | None] = [None] * n

    def advance(self, nxt: "torch.Tensor", criteria: Any, *, last: bool) -> None:
        import torch

        tokens = nxt.masked_fill(~self.alive, self.pad_id)
        self.history = torch.cat([self.history, tokens[:, None]], dim=1)
        is_eos = torch.isin(tokens, self.eos) if self.eos is not None else torch.zeros_like(self.alive)
        stopped = criteria(self.history, None).to("cpu") if criteria is not None else torch.zeros_like(self.alive)
        for b in self.alive.nonzero().flatten().tolist():
            r = self.live[b]
            if bool(is_eos[b]):
                self.reasons[r] = "stop"
            else:
                self.generated[r].append(int(tokens[b]))
                if bool(stopped[b]):
                    self.reasons[r] = "stop"
                elif last:
                    self.reasons[r] = "length"
            if self.reasons[r] is not None:
                self.alive[b] = False

    def select(self, keep: "torch.Tensor") -> None:
        self.history, self.alive = self.history[keep], self.alive[keep]
        self.live = [self.live[int(i)] for i in keep]

    def results(self) -> list[Decoded]:
        return [Decoded(tokens, reason or "length") for tokens, reason in zip(self.generated, self.reasons)]
