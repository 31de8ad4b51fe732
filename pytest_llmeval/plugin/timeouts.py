"""pytest-timeout and the batched run: a batch is computed for many items while one of them
waits, so it must not run on that item's clock. With a per-test timeout shorter than a batch,
every item would stop the batch and the next one start it again, and none would ever finish.

pytest-timeout arms a timer per test through its ``pytest_timeout_set_timer`` hook; the plugin
notes the settings it was armed with, stops the timer while a batch runs, and arms it again, in
full, for the item's own work. So ``--timeout`` no longer stops a batch that hangs; a served
model's request timeout still ends each request.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import pytest

__all__ = ["TIMER", "note_timer", "off_the_clock"]

TIMER = pytest.StashKey[Any]()
"""The settings pytest-timeout armed an item's timer with."""


def note_timer(item: pytest.Item, settings: Any) -> None:
    item.stash[TIMER] = settings


@contextmanager
def off_the_clock(item: pytest.Item) -> Iterator[None]:
    """Within: the item's pytest-timeout timer stopped (when one is armed); armed again after."""
    settings = item.stash.get(TIMER, None)
    if settings is None:
        yield
        return
    hooks = item.config.pluginmanager.hook
    hooks.pytest_timeout_cancel_timer(item=item)
    try:
        yield
    finally:
        hooks.pytest_timeout_set_timer(item=item, settings=settings)
