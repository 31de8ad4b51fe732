"""Key/value caches for the decoding loop and the scoring passes.

:func:`batch_cache` puts given keys and values in a transformers ``DynamicCache`` (a shared
prefix's, expanded over a batch). :func:`roomy_cache` makes one whose layers are preallocated
buffers: a decoding step writes its token's keys and values into a free column instead of
concatenating, which copies the whole cache at every step. Rows are right-aligned: each row's
tokens end in the last filled column, zeros (masked) before them.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch


def layered_cache() -> bool:
    try:
        from transformers import DynamicCache

        return "config" in inspect.signature(DynamicCache.__init__).parameters and hasattr(DynamicCache(), "layers")
    except Exception:  # an older transformers: its cache has another shape
        return False


def cache_kwarg(model: Any) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(out: Any) -> Any:
    """The cache a forward pass returned (``cache`` in recent transformers, ``past_key_values`` before)."""
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else out.past_key_values


def batch_cache(model: Any, kv: Sequence[tuple[Any, Any]], batch: int) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for i, (k, v) in enumerate(kv):
        cache.update(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1), i)
    return cache


def roomy_cache(model: Any, buffers: Sequence[tuple[Any, Any]], length: int, room: int) -> Any:
    """A ``DynamicCache`` over preallocated key/value buffers (``[batch, heads, capacity, dim]``
    per layer, the first ``length`` columns filled) whose layers write new tokens into the free
    columns instead of concatenating, which would copy the whole cache at every step."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    cache.layers[:] = [roomy_layer(k, v, length, room) for k, v in buffers]
    return cache


def roomy_layer(k_buf: Any, v_buf: Any, length: int, room: int) -> Any:
    from transformers.cache_utils import DynamicLayer

    global _RoomyLayer
    if _RoomyLayer is None:

        class RoomyLayer(DynamicLayer):  # type: ignore[misc, valid-type]
            """A cache layer over buffers with room for more tokens; ``keys``/``values`` are views."""

            def __init__(self, k_buf: Any, v_buf: Any, length: int, room: int) -> None:
                super().__init__()
                self.device, self.is_initialized = k_buf.device, True
                self.k_buf, self.v_buf, self.length, self.room = k_buf, v_buf, length, room
                self._view()

            def _view(self) -> None:
                self.keys, self.values = self.k_buf[:, :, : self.length], self.v_buf[:, :, : self.length]

            def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
                n = key_states.shape[2]
                if self.length + n > self.k_buf.shape[2]:  # out of room: a bigger buffer
                    size = self.length + n + self.room
                    self.k_buf, self.v_buf = (new_buffer(t, t.shape[2], size) for t in (self.keys, self.values))
                self.k_buf[:, :, self.length : self.length + n] = key_states
                self.v_buf[:, :, self.length : self.length + n] = value_states
                self.length += n
                self._view()
                return self.keys, self.values

            def batch_select_indices(self, indices: Any) -> None:
                self.k_buf, self.v_buf = self.k_buf[indices], self.v_buf[indices]
                self._view()

        _RoomyLayer = RoomyLayer
    return _RoomyLayer(k_buf, v_buf, length, room)


_RoomyLayer: Any = None


def new_buffer(t: "torch.Tensor", width: int, capacity: int, rows: int | None = None) -> "torch.Tensor":
    """A ``[rows, heads, capacity, dim]`` buffer holding ``t`` (``[n, heads, T, dim]``) right-aligned
    in its first ``width`` columns, zeros before it (``rows`` > n: the rest is filled by the caller)."""
    buf = t.new_empty((rows or t.shape[0], t.shape[1], capacity, t.shape[3]))
    place_right(buf[: t.shape[0]], t, width)
    return buf


def place_right(dst: "torch.Tensor", src: "torch.Tensor", width: int) -> None:
    """``src`` into ``dst``'s columns ``width - T .. width``, zeros before (masked, but must be finite)."""
    pad = width - src.shape[2]
    dst[:, :, :pad].zero_()
    dst[:, :, pad:width] = src
