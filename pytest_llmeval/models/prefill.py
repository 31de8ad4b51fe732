"""Prompts through the model with every shared token computed once: a prefix cache and a prefix tree.

The prefix all prompts of a group share comes from :class:`PrefixCache` (computed at batch 1,
sliced or extended from a stored neighbour). The rest of the group's prompts runs as one prefix
tree in one pass: each distinct token is one position, at the position it has in its prompt,
attending to the shared prefix and its ancestors only (a 4D additive mask). Each prompt then
takes its path's keys and values, right-aligned in a buffer with room for new tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from pytest_llmeval.models.kv_cache import batch_cache, cache_kwarg, new_buffer, returned_cache

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class PrefixCache:
    """Key/value caches of shared prefixes, computed at batch 1 and reused across batches of one call."""

    entries: dict[tuple[int, ...], Any] = field(default_factory=dict)
    computed_tokens: int = 0  # prefix tokens run through the model (for the benchmarks)
    prompt_tokens: int = 0  # prompt tokens run through the model after the shared prefixes


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


def prefix_kv(model: Any, prefix: tuple[int, ...], store: PrefixCache) -> list[tuple[Any, Any]]:
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
        kwargs[cache_kwarg(model)] = batch_cache(model, store.entries[base], 1)
    out = model(
        input_ids=ids,
        attention_mask=torch.ones((1, n), dtype=torch.long, device=device),
        position_ids=torch.arange(len(base), n, device=device)[None],
        use_cache=True,
        logits_to_keep=1,
        **kwargs,
    )
    cache = returned_cache(out)
    store.entries[prefix] = [(layer.keys, layer.values) for layer in cache.layers]
    store.computed_tokens += n - len(base)
    return store.entries[prefix]


@dataclass
class _Tree:
    """The prompts' tokens after their shared prefix as a prefix tree, nodes in insertion order."""

    tokens: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    paths: list[list[int]] = field(default_factory=list)  # each prompt's nodes, first to last


def _tree(rows: Sequence[Sequence[int]], start: int, share: bool) -> _Tree:
    tree = _Tree()
    index: dict[tuple[int, int], int] = {}
    for j, row in enumerate(rows):
        node, path = -1, []
        for d, token in enumerate(row[start:]):
            key = (node, token)
            child = index.get(key) if share else None
            if child is None:
                child = len(tree.tokens)
                tree.tokens.append(int(token))
                tree.parent.append(node)
                tree.depth.append(start + d)
                if share:
                    index[key] = child
            node = child
            path.append(node)
        tree.paths.append(path)
    return tree


def _tree_mask(tree: _Tree, shared: int, dtype: Any) -> "torch.Tensor":
    """The additive mask ``[1, 1, nodes, shared + nodes]``: every node sees the shared prefix,
    its ancestors and itself."""
    import torch

    n = len(tree.tokens)
    allowed = torch.zeros((n, shared + n), dtype=torch.bool)
    allowed[:, :shared] = True
    for i, p in enumerate(tree.parent):
        if p >= 0:
            allowed[i, shared : shared + i] = allowed[p, shared : shared + i]
        allowed[i, shared + i] = True
    mask = torch.zeros((1, 1, n, shared + n), dtype=dtype)
    return mask.masked_fill_(~allowed[None, None], torch.finfo(dtype).min)


def tree_groups(rows: Sequence[Sequence[int]], limit: int, share: bool = True) -> list[list[int]]:
    """Consecutive groups of ``rows`` (in token order) whose prefix trees have at most ``limit``
    nodes each (a longer prompt alone): sorted rows' trees have ``sum(len - lcp(previous))``
    nodes (``share`` false: ``sum(len)``)."""
    groups: list[list[int]] = []
    nodes = 0
    for i, row in enumerate(rows):
        new = len(row) - (_lcp(rows[i - 1], row) if groups and share else 0)
        if groups and nodes + new <= limit:
            groups[-1].append(i)
            nodes += new
        else:
            groups.append([i])
            nodes = len(row)
    return groups


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefill(
    model: Any, rows: Sequence[Sequence[int]], store: PrefixCache, share: bool, room: int
) -> tuple[list[tuple[Any, Any]], "torch.Tensor", "torch.Tensor"]:
    """Run ``rows`` (prompts) through the model: the shared prefix from ``store``, the rest as one
    prefix tree. Returns each row's keys and values per layer (right-aligned, in buffers with
    ``room`` more columns), its mask and its last position's logits. The tree's mask is
    ``nodes x (shared + nodes)``: keep the nodes few (:func:`tree_groups`)."""
    import torch

    device = next(model.parameters()).device
    dtype = next(p.dtype for p in model.parameters() if p.dtype.is_floating_point)
    shared = common_prefix(rows) if share else 0
    tree = _tree(rows, shared, share)
    kwargs: dict[str, Any] = {}
    if shared:
        kwargs[cache_kwarg(model)] = batch_cache(model, prefix_kv(model, tuple(rows[0][:shared]), store), 1)
    leaves = sorted({path[-1] for path in tree.paths})
    if len(rows) == 1:  # a chain: the model's own causal mask
        attention = torch.ones((1, shared + len(tree.tokens)), dtype=torch.long)
    else:
        attention = _tree_mask(tree, shared, dtype)
    out = model(
        input_ids=torch.tensor([tree.tokens], dtype=torch.long, device=device),
        attention_mask=attention.to(device),
        position_ids=torch.tensor([tree.depth], dtype=torch.long, device=device),
        use_cache=True,
        logits_to_keep=torch.tensor(leaves, dtype=torch.long, device=device),
        **kwargs,
    )
    store.prompt_tokens += len(tree.tokens)
    at = {leaf: k for k, leaf in enumerate(leaves)}
    logits = out.logits[0, [at[path[-1]] for path in tree.paths]]
    width = max(len(r) for r in rows)
    columns = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, path in enumerate(tree.paths):  # prefix | the path's nodes, right-aligned
        cols = list(range(shared)) + [shared + node for node in path]
        columns[j, width - len(cols) :] = torch.tensor(cols, dtype=torch.long)
        mask[j, width - len(cols) :] = 1
    flat = columns.flatten().to(device)
    buffers = []
    for layer in returned_cache(out).layers:  # [1, heads, shared + nodes, dim] -> [rows, heads, width + room, dim]
        k, v = (new_buffer(t[0][:, flat].unflatten(1, (len(rows), width)).transpose(0, 1), width, width + room)
                for t in (layer.keys, layer.values))
        buffers.append((k, v))
    return buffers, mask, logits
