"""Values worked out from an object, kept for the last few objects by identity (:class:`IdentityMemo`).

Several hot paths see the same object many times in a row (a batch's settings, a report's record
mapping, a suite's generation settings) and would work the same thing out each time. A memo keyed
by ``id()`` must hold the object itself, or a new object could take a dead one's id and be given its
value: each entry holds its object, and is used only while that object is the one asked about.
"""

from __future__ import annotations

from typing import Any, Hashable

__all__ = ["IdentityMemo"]

_MISSING = object()


class IdentityMemo:
    """At most ``size`` values, by the identity of the object each was worked out from (and an
    optional hashable ``key`` beside it); the oldest entry goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._held: dict[tuple[int, Hashable], tuple[Any, Any]] = {}

    def get(self, obj: Any, key: Hashable = (), default: Any = None) -> Any:
        """The value kept for ``obj`` (and ``key``), or ``default``; raises TypeError for an
        unhashable ``key``."""
        held = self._held.get((id(obj), key), _MISSING)
        return held[1] if held is not _MISSING and held[0] is obj else default

    def put(self, obj: Any, value: Any, key: Hashable = ()) -> Any:
        """Keep ``value`` for ``obj`` (and ``key``); returns ``value``."""
        if len(self._held) >= self.size:
            self._held.pop(next(iter(self._held)))
        self._held[(id(obj), key)] = (obj, value)
        return value
