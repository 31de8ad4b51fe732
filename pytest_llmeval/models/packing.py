"""Packed rows for loglikelihood scoring, and the forward passes that score them.

Requests that share a prefix (all choices of one question) go into one row: the prefix once, then
each continuation as a segment that sees the prefix and itself only (a block attention mask and
restarted position ids). Logits are computed only at the scored positions and turned into
log-probabilities in float32.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch

_ROW_TOKEN_CAP = 1024
"""A packed row holds at most this many tokens (or one prefix plus one segment if longer)."""

# ----------------------------------------------------------------------------- packing


@dataclass
class _Scored:
    """One request after truncation: the model input and the tokens it must predict."""

    seq: list[int]
    targets: list[int]

    @property
    def first(self) -> int:  # the input position predicting the first target
        return len(self.seq) - len(self.targets)


@dataclass
class _Row:
    """One sequence of a batch: a shared prefix, then one segment per request."""

    tokens: list[int]
    positions: list[int]
    segments: list[int]  # 0: the shared prefix, k > 0: the k-th request's own segment
    # per request: (request index, row indices of its scored positions, targets)
    scored: list[tuple[int, list[int], list[int]]]
    owner: int  # the group (item) the row belongs to

    def __len__(self) -> int:
        return len(self.tokens)


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        i = 0
        while i < n and s[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


def _pack_group(group: Sequence[int], scored: Sequence[_Scored], owner: int, share: bool) -> list[_Row]:
    """Rows for requests that may share a prefix: one row (or a few, if long) per prefix."""
    prefix = _common_prefix([scored[i].seq for i in group]) if share and len(group) > 1 else 0
    # a shared prefix must leave every request's scored positions either inside it or after it
    if prefix == 0:
        return [_single_row(i, scored[i], owner) for i in group]
    rows: list[_Row] = []
    base = scored[group[0]].seq[:prefix]
    row = _new_row(base, owner)
    for i in group:
        req = scored[i]
        tail = req.seq[prefix:]
        if len(row.scored) and len(row) + len(tail) > max(_ROW_TOKEN_CAP, prefix + len(tail)):
            rows.append(row)
            row = _new_row(base, owner)
        segment = len(row.scored) + 1
        start = len(row.tokens)
        row.tokens.extend(tail)
        row.positions.extend(range(prefix, prefix + len(tail)))
        row.segments.extend([segment] * len(tail))
        where = [p if p < prefix else start + (p - prefix) for p in range(req.first, len(req.seq))]
        row.scored.append((i, where, req.targets))
    rows.append(row)
    return rows


def _new_row(prefix: list[int], owner: int) -> _Row:
    return _Row(list(prefix), list(range(len(prefix))), [0] * len(prefix), [], owner)


def _single_row(i: int, req: _Scored, owner: int) -> _Row:
    n = len(req.seq)
    return _Row(list(req.seq), list(range(n)), [0] * n, [(i, list(range(req.first, n)), req.targets)], owner)


# ----------------------------------------------------------------------------- the model


_KEEP_MODES: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def _can_pack(model: Any) -> bool:
    """Whether the model takes a custom 4D additive mask and explicit position ids."""
    import inspect

    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    if impl not in ("sdpa", "eager"):
        return False
    if getattr(config, "sliding_window", None) or getattr(config, "attention_chunk_size", None):
        return False  # per-layer masks of their own; a custom mask would override them
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "position_ids" in params and "attention_mask" in params


def _model_device(model: Any) -> "torch.device":
    import torch

    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(model.parameters()).device


def _model_dtype(model: Any) -> "torch.dtype":
    import torch

    dtype = getattr(model, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    for p in model.parameters():
        if p.dtype.is_floating_point:
            return p.dtype
    return torch.float32


def _kept_logits(model: Any, kwargs: dict[str, Any], keep: "torch.Tensor") -> "torch.Tensor":
    """Logits at the ``keep`` positions (a (batch, seq) bool mask), flattened row-major to (n, vocab).

    Asks the model for those positions only (``logits_to_keep`` as a boolean mask); models
    that cannot do that get the shortest tail of positions (an int), or all of them.
    """
    n = int(keep.sum())
    mode = _KEEP_MODES.get(model)
    if mode in (None, "mask"):
        try:
            logits = model(**kwargs, logits_to_keep=keep).logits
            if logits.ndim == 3 and logits.shape[0] == 1 and keep.shape[0] != 1:
                logits = logits[0]
            if logits.ndim == 2 and logits.shape[0] == n:
                _KEEP_MODES[model] = "mask"
                return logits
            if mode == "mask":
                raise RuntimeError(f"logits_to_keep returned shape {tuple(logits.shape)}, expected ({n}, vocab)")
        except (TypeError, ValueError, IndexError, RuntimeError):
            if mode == "mask":
                raise
        mode = "tail"
    seq_len = keep.shape[1]
    cols = keep.any(dim=0).nonzero()
    first = int(cols[0]) if len(cols) else seq_len - 1
    if mode == "tail":
        try:
            logits = model(**kwargs, logits_to_keep=seq_len - first).logits
            if logits.ndim == 3 and logits.shape[1] == seq_len - first:
                _KEEP_MODES[model] = "tail"
                return logits[keep[:, first:]]
        except TypeError:
            pass
        _KEEP_MODES[model] = "full"
    logits = model(**kwargs).logits
    return logits[keep]


def shared_prefix(rows: Sequence[_Row]) -> int:
    """How many leading tokens every row of a batch shares and may take from one cached prefix:
    tokens of each row's own prefix (segment 0, positions from 0) before its first scored position."""
    if len(rows) < 2:
        return 0
    n = min(min(w for _, where, _ in r.scored for w in where) for r in rows)
    for row in rows:
        own = next((k for k, seg in enumerate(row.segments) if seg != 0), len(row))
        n = min(n, own)
    first = rows[0].tokens
    for row in rows[1:]:
        i = 0
        while i < n and row.tokens[i] == first[i]:
            i += 1
        n = i
    return n


def _run_batch(
    model: Any, rows: Sequence[_Row], packed: bool, pad_id: int, prefixes: Any = None
) -> list[tuple[int, float, bool]]:
    """Forward one batch of rows; ``(request index, total logprob, is_greedy)`` per request.

    With ``prefixes`` (a :class:`~pytest_llmeval.models.decode.PrefixCache`) and packed rows, the
    tokens all rows share (:func:`shared_prefix`) come from a key/value cache computed once at
    batch 1; the rows run only their remaining tokens.
    """
    import torch

    device = _model_device(model)
    shared = shared_prefix(rows) if packed and prefixes is not None else 0
    if shared:
        from pytest_llmeval.models.decode import can_decode

        shared = shared if can_decode(model) else 0
    width = max(len(r) for r in rows) - shared
    batch = len(rows)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    keep = torch.zeros((batch, width), dtype=torch.bool)
    for b, row in enumerate(rows):
        ids[b, : len(row) - shared] = torch.tensor(row.tokens[shared:], dtype=torch.long)
        for _, where, _ in row.scored:
            keep[b, [w - shared for w in where]] = True
    kwargs: dict[str, Any] = {"input_ids": ids.to(device), "use_cache": False}
    if packed:
        kwargs.update(_packed_inputs(model, rows, shared, width, device))
    if shared:
        from pytest_llmeval.models.kv_cache import batch_cache, cache_kwarg
        from pytest_llmeval.models.prefill import prefix_kv

        kv = prefix_kv(model, tuple(rows[0].tokens[:shared]), prefixes)
        kwargs[cache_kwarg(model)] = batch_cache(model, kv, batch)
        kwargs["use_cache"] = True
    logits = _kept_logits(model, kwargs, keep.to(device))
    # flat index of every kept (row, position), in the row-major order of the logits
    flat = torch.full((batch, width), -1, dtype=torch.long)
    flat[keep] = torch.arange(int(keep.sum()), dtype=torch.long)
    wanted: list[tuple[int, list[int], list[int]]] = []  # (request, logit rows, target tokens)
    for b, row in enumerate(rows):
        for index, where, targets in row.scored:
            wanted.append((index, flat[b, [w - shared for w in where]].tolist(), list(targets)))
    at = torch.tensor([a for _, rows_at, _ in wanted for a in rows_at], dtype=torch.long)
    tgt = torch.tensor([t for _, _, targets in wanted for t in targets], dtype=torch.long)
    picked, greedy = _log_softmax_at(logits, at, tgt)
    results = []
    start = 0
    for index, rows_at, targets in wanted:
        end = start + len(targets)
        total = float(picked[start:end].double().sum())
        results.append((index, total, bool((greedy[at[start:end]] == tgt[start:end]).all())))
        start = end
    return results


LOG_SOFTMAX_ROWS = 256
"""Logit rows turned into log-probabilities at once: a [rows, vocab] float32 copy, not one of all."""


def _log_softmax_at(logits: "torch.Tensor", at: "torch.Tensor", tgt: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """``log_softmax(logits)[at, tgt]`` (float32) and every row's argmax of it, a chunk of rows
    at a time (each row's values are those of the whole tensor's ``log_softmax``)."""
    import torch

    picked = torch.empty(len(at), dtype=torch.float32)
    greedy = torch.empty(logits.shape[0], dtype=torch.long)
    at_cpu = at.cpu()
    for first in range(0, logits.shape[0], LOG_SOFTMAX_ROWS):
        chunk = torch.log_softmax(logits[first : first + LOG_SOFTMAX_ROWS].float(), dim=-1)
        greedy[first : first + chunk.shape[0]] = chunk.argmax(dim=-1).cpu()
        inside = ((at_cpu >= first) & (at_cpu < first + chunk.shape[0])).nonzero().flatten()
        if len(inside):
            rows_in = (at_cpu[inside] - first).to(chunk.device)
            picked[inside] = chunk[rows_in, tgt[inside].to(chunk.device)].float().cpu()
    return picked, greedy


def _packed_inputs(model: Any, rows: Sequence[_Row], shared: int, width: int, device: Any) -> dict[str, Any]:
    """The block attention mask (every row sees the ``shared`` cached prefix, its own prefix and
    each segment itself) and the position ids of the rows' tokens after ``shared``."""
    import torch

    batch = len(rows)
    positions = torch.zeros((batch, width), dtype=torch.long)
    # segment ids: 0 the shared prefix, k the k-th segment, a unique negative id per pad slot
    segs = -torch.arange(1, width + 1, dtype=torch.long).repeat(batch, 1)
    for b, row in enumerate(rows):
        positions[b, : len(row) - shared] = torch.tensor(row.positions[shared:], dtype=torch.long)
        segs[b, : len(row) - shared] = torch.tensor(row.segments[shared:], dtype=torch.long)
    allowed = (segs[:, None, :] == 0) | (segs[:, None, :] == segs[:, :, None])
    allowed &= torch.ones((width, width), dtype=torch.bool).tril()
    allowed = torch.cat([torch.ones((batch, width, shared), dtype=torch.bool), allowed], dim=2)
    dtype = _model_dtype(model)
    mask = torch.zeros((batch, 1, width, shared + width), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return {"attention_mask": mask.to(device), "position_ids": positions.to(device)}
