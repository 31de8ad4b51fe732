"""The float32 kernels a CPU linear layer can run on, each as the plugin runs it.

- torch's ``torch.nn.functional.linear`` (its BLAS: MKL in the PyPI wheels), on the layer's own
  weight;
- oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``), a candidate only once
  :func:`onednn_checks_out`, on the weight reordered once into oneDNN's own layout
  (:func:`pack`; :data:`PACK`), except for products of a single row, which keep the plain weight.

:mod:`.kernel_choice` times them, :mod:`.cpu_matmul` runs them: both through :class:`Kernel`, so
what is timed is what runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

PACK = True
"""oneDNN runs on weights reordered once into its layout (False: on the layers' own weights)."""
PACKED_MIN_ROWS = 2
"""Products of fewer rows run oneDNN on the plain weight: at a single row its packed kernel gave
other last bits than the plain one, on the CPU measured."""


@functools.lru_cache(maxsize=1)
def onednn_checks_out() -> bool:
    """Whether oneDNN's linear is there and computes what ``F.linear`` computes, in float32.

    The probe's bound: a float32 dot product of length K, summed in any order, is within
    ``K * u * sum|x_k w_k|`` of the exact value (u = 2**-24); two such results are within twice
    that of each other. A kernel in reduced precision (bfloat16 keeps 8 bits) misses it by orders
    of magnitude."""
    try:
        import torch

        if not torch.backends.mkldnn.is_available():
            return False
        from pytest_llmeval.models.onednn_caches import bound as bound_caches

        bound_caches()  # before the first oneDNN product of the process (see that module)
        op = torch.ops.mkldnn._linear_pointwise
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(7, 96, generator=gen)
        w = torch.randn(40, 96, generator=gen)
        b = torch.randn(40, generator=gen)
        with torch.inference_mode():
            got = op(x, w, b, "none", [], "")
            want = torch.nn.functional.linear(x, w, b)
        k = x.shape[1] + 1  # the bias is one more term
        bound = 2 * k * 2.0**-24 * (x.abs() @ w.abs().T + b.abs())
        return got.shape == want.shape and bool(((got - want).abs() <= bound).all())
    except Exception:  # an old torch, a build without oneDNN, an op with another signature
        return False


def packs() -> bool:
    """Whether oneDNN's weights are reordered into its layout: :data:`PACK`, where this torch can."""
    import torch

    return PACK and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


def pack(weight: Any, rows: int) -> Any:
    """``weight`` reordered into oneDNN's layout for products of about ``rows`` rows."""
    import torch

    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)


@dataclass(frozen=True)
class Kernel:
    """A candidate: ``run(x, weight, bias)``, on the weight ``prepare(weight, rows)`` makes once per
    layer (None: the layer's own weight; ``rows``: the rows of a decoding step, as the plugin packs)."""

    run: Callable[[Any, Any, Any], Any]
    prepare: Callable[[Any, int], Any] | None = None

    def prepared_at(self, rows: int) -> bool:
        """Whether a product of ``rows`` rows runs on the prepared weight (a single row: the plain one)."""
        return self.prepare is not None and rows >= PACKED_MIN_ROWS


def kernel_functions() -> dict[str, Kernel]:
    """The candidates that exist in this torch and agree with torch's kernel (the probe)."""
    import torch

    kernels = {"torch": Kernel(torch.nn.functional.linear)}
    if onednn_checks_out():
        kernels["onednn"] = Kernel(lambda x, w, b: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""),
                                   pack if packs() else None)
    return kernels
