"""Float32 matrix products on the CPU through oneDNN: the model's linear layers, about twice as fast.

torch's CPU ``linear`` hands float32 products to the BLAS it was built with (MKL in the PyPI
wheels). Where that BLAS does not use the processor's widest vector units (MKL on AMD
processors), oneDNN, which torch also ships, runs the same products about twice as fast at the
shapes of a small model (``benchmarks/bench_flops.py`` measures both). Both compute and
accumulate in float32, no reduced precision; their results differ in the last bits, as those of
two batch sizes do.

:func:`onednn_linears` gives every plain ``torch.nn.Linear`` of a CPU float32 model oneDNN's
linear for the duration of a ``with`` block, and only where no gradient is recorded (the plugin
runs the model under ``torch.inference_mode()``); the modules are left as they were afterwards.
It does so only once :func:`onednn_checks_out`: the op exists in this torch and agrees with
``torch.nn.functional.linear`` within float32 rounding on a probe.
``llmeval_cpu_matmul = torch`` turns it off.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator


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


MAX_ROWS = 1024
"""Products of more rows (a long prefill, a packed scoring pass) keep torch's kernel: the gain is
in the many small products of decoding, and one SmolLM2 pass of 62 x 232 tokens peaked 333 MiB
higher in resident memory with oneDNN than with torch's kernel."""


def _forward(module: Any, x: Any) -> Any:
    import torch

    weight, bias = module.weight, module.bias
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return torch.nn.functional.linear(x, weight, bias)  # training: autograd needs torch's op
    if x.dtype != torch.float32 or x.device.type != "cpu" or x.numel() > MAX_ROWS * x.shape[-1]:
        return torch.nn.functional.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


@contextlib.contextmanager
def onednn_linears(model: Any, mode: str = "auto") -> Iterator[int]:
    """Within the block, the model's plain CPU float32 ``nn.Linear`` layers use oneDNN (``mode``
    ``auto``, when :func:`onednn_checks_out`); yields how many layers it switched. Layers with a
    ``forward`` of their own (hooks of accelerate, an outer block already switched) are left alone."""
    switched: list[Any] = []
    if uses_onednn(model, mode):
        import torch

        for module in model.modules():
            if type(module) is torch.nn.Linear and "forward" not in vars(module) and _float32_cpu_param(module.weight):
                module.forward = functools.partial(_forward, module)
                switched.append(module)
    try:
        yield len(switched)
    finally:
        for module in switched:
            vars(module).pop("forward", None)


def uses_onednn(model: Any, mode: str = "auto") -> bool:
    """Whether :func:`onednn_linears` switches ``model``'s layers: ``mode`` auto, a CPU float32
    model, and oneDNN's linear checks out."""
    return mode == "auto" and _float32_cpu(model) and onednn_checks_out()


def _float32_cpu(model: Any) -> bool:
    try:
        first = next(model.parameters())
    except (StopIteration, AttributeError, TypeError):
        return False
    return _float32_cpu_param(first)


def _float32_cpu_param(p: Any) -> bool:
    import torch

    return p.dtype == torch.float32 and p.device.type == "cpu"
