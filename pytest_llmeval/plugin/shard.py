"""``--llmeval-shard=I/N``: run one deterministic part of the tests, for a CI matrix.

Every test belongs to exactly one of the N shards: an eval case by a stable hash of
(suite id, case id), any other test by a stable hash of its node id. A case's shard depends on
nothing else, so adding or removing cases never moves the others. The shards' outputs are
combined by ``python -m pytest_llmeval merge``, which gates the whole run.
"""

from __future__ import annotations

import hashlib

import pytest

from pytest_llmeval.options import parse_shard
from pytest_llmeval.plugin.identity import eval_item

__all__ = ["item_key", "parse_shard", "select", "shard_of"]


def shard_of(key: str, total: int) -> int:
    """The shard (1..total) that ``key`` belongs to: a stable hash, the same on every machine."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def item_key(item: pytest.Item) -> str:
    """What decides an item's shard: (suite, case id) for an eval case, else the node id."""
    found = eval_item(item)
    if found is None:
        return item.nodeid
    suite, case = found
    return f"{suite}\x00{case.original_id or case.id}"  # a case's variants and rotations go with it


def select(config: pytest.Config, items: list[pytest.Item], shard: tuple[int, int]) -> None:
    """Keep the items of ``shard`` in ``items``; report the others as deselected."""
    index, total = shard
    keep, drop = [], []
    for item in items:
        (keep if shard_of(item_key(item), total) == index else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
