"""Float32 matrix products on the CPU: the model's linear layers on the faster of torch's kernels.

torch's CPU ``linear`` hands float32 products to the BLAS it was built with (MKL in the PyPI
wheels); oneDNN, which torch also ships, has a linear of its own. Both compute and accumulate in
float32, no reduced precision; their results differ in the last bits, as those of two batch
sizes do. Which is faster depends on the CPU and the shapes (:mod:`.kernel_choice` times them at
the model's shapes and picks).

:func:`kernels_for` turns the ``llmeval_cpu_matmul`` setting into a :class:`~.kernel_choice.Choice`:
``auto`` times the kernels (once per CPU, remembered), ``torch`` keeps torch's, ``onednn`` forces
oneDNN's. :func:`onednn_linears` gives every plain ``torch.nn.Linear`` of a CPU float32 model the
chosen kernel for the duration of a ``with`` block, and only where no gradient is recorded (the
plugin runs the model under ``torch.inference_mode()``); the modules are left as they were
afterwards. oneDNN is a candidate only once :func:`onednn_checks_out`: the op exists in this torch
and agrees with ``torch.nn.functional.linear`` within float32 rounding on a probe.

On oneDNN a layer's weight is reordered once into oneDNN's own layout (:class:`_Packed`, kept as
long as the layer and rebuilt when its weight changes) instead of oneDNN reordering it at every
product. Each output element is still one float32 dot product over the same input row and weight
row; on the CPU measured (AMD EPYC with AVX-512) the results were bit for bit those of the
unpacked weights from 2 to 1024 rows. A product of a single row keeps the unpacked weight (there
oneDNN's packed kernel gave other last bits).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import TYPE_CHECKING, Any, Iterator

from pytest_llmeval.models.cpu_kernels import PACKED_MIN_ROWS, onednn_checks_out, pack, packs
from pytest_llmeval.models.kernel_choice import choose, fixed

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval.models.kernel_choice import Choice

__all__ = ["kernels_for", "onednn_checks_out", "onednn_linears"]


def kernels_for(model: Any, mode: str, decode_rows: int) -> "Choice | None":
    """What the setting ``mode`` means for ``model``: None for a model that is not CPU float32,
    else the kernel per size of product (``onednn`` where oneDNN does not check out: torch's)."""
    if not _float32_cpu(model):
        return None
    if mode == "torch" or (mode == "onednn" and not onednn_checks_out()):
        return fixed("torch")
    if mode == "onednn":
        return fixed("onednn")
    return choose(model, decode_rows)


class _Packed:
    """A layer's weight in oneDNN's layout; ``key`` tells whether it is still the layer's weight."""

    def __init__(self, module: Any, rows: int) -> None:
        self.key = _weight_key(module)
        self.weight = pack(module.weight, rows)


_PACKS: "weakref.WeakKeyDictionary[Any, _Packed]" = weakref.WeakKeyDictionary()


def _weight_key(module: Any) -> tuple[Any, ...]:
    t = module.weight
    try:
        return (t.data_ptr(), t._version, tuple(t.shape))
    except RuntimeError:  # an inference tensor has no version counter
        return (t.data_ptr(), tuple(t.shape))


def _packed(module: Any, rows: int) -> _Packed:
    """The packed weight of ``module``: built once and kept while the weight stays the same."""
    held = _PACKS.get(module)
    if held is None or held.key != _weight_key(module):
        held = _PACKS[module] = _Packed(module, rows)
    return held


def _forward(module: Any, choice: "Choice", x: Any, packed: "_Packed | None" = None) -> Any:
    import torch

    weight, bias = module.weight, module.bias
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return torch.nn.functional.linear(x, weight, bias)  # training: autograd needs torch's op
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() == 0:
        return torch.nn.functional.linear(x, weight, bias)
    rows = x.numel() // max(1, x.shape[-1])
    if choice.kernel_for(rows) != "onednn":
        return torch.nn.functional.linear(x, weight, bias)
    if packed is not None and rows >= PACKED_MIN_ROWS:
        weight = packed.weight
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


@contextlib.contextmanager
def onednn_linears(model: Any, choice: "Choice | None") -> Iterator[int]:
    """Within the block, the model's plain CPU float32 ``nn.Linear`` layers use the kernels of
    ``choice`` (None, or a choice that keeps torch's everywhere: nothing changes); yields how many
    layers it switched. Layers with a ``forward`` of their own (hooks of accelerate, an outer block
    already switched) are left alone."""
    switched: list[Any] = []
    if choice is not None and choice.switches and _float32_cpu(model):
        import torch

        packing = packs()
        for module in model.modules():
            if type(module) is torch.nn.Linear and "forward" not in vars(module) and _float32_cpu_param(module.weight):
                packed = _packed(module, choice.decoding.rows or 64) if packing else None
                module.forward = functools.partial(_forward, module, choice, packed=packed)
                switched.append(module)
    try:
        yield len(switched)
    finally:
        for module in switched:
            vars(module).pop("forward", None)


def _float32_cpu(model: Any) -> bool:
    try:
        first = next(model.parameters())
    except (StopIteration, AttributeError, TypeError):
        return False
    return _float32_cpu_param(first)


def _float32_cpu_param(p: Any) -> bool:
    import torch

    return p.dtype == torch.float32 and p.device.type == "cpu"
