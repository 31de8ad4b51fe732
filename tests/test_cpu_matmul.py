"""oneDNN's linear for the model's layers on a CPU: same float32 results within rounding, scoped, off for training."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from pytest_llmeval.models.cpu_matmul import kernels_for, onednn_checks_out, onednn_linears  # noqa: E402
from pytest_llmeval.models.kernel_choice import Choice, Regime, fixed  # noqa: E402
from pytest_llmeval.settings import LLMSettings, SettingsError  # noqa: E402

ONEDNN = fixed("onednn")

needs_onednn = pytest.mark.skipif(not onednn_checks_out(), reason="this torch has no usable oneDNN linear")


def _net() -> torch.nn.Module:
    gen = torch.Generator().manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 10, bias=False))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net


@needs_onednn
def test_linear_layers_use_onednn_inside_the_block_only() -> None:
    net = _net()
    x = torch.randn(5, 7, 64, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        want = net(x)
        with onednn_linears(net, ONEDNN) as switched:
            assert switched == 2
            assert all("forward" in vars(m) for m in net if isinstance(m, torch.nn.Linear))
            got = net(x)
    assert not any("forward" in vars(m) for m in net)
    # each output is float32 dot products of length 64 (+ bias), then 48: within twice the float32
    # bound of an unordered sum, K * 2**-24 * sum|terms|, of the exact values (both ways) at each layer
    first, second = net[0], net[2]
    h = torch.relu(x @ first.weight.T + first.bias)
    bound_h = 2 * 65 * 2.0**-24 * (x.abs() @ first.weight.abs().T + first.bias.abs())
    bound = 2 * 48 * 2.0**-24 * (h.abs() @ second.weight.abs().T) + bound_h @ second.weight.abs().T
    assert ((got - want).abs() <= bound).all()
    assert not torch.equal(got, torch.zeros_like(got))


@needs_onednn
def test_training_keeps_torchs_linear_and_its_gradients() -> None:
    net = _net()
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(5))
    with onednn_linears(net, ONEDNN):
        net(x).sum().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_torch_mode_and_other_dtypes_switch_nothing() -> None:
    with onednn_linears(_net(), fixed("torch")) as switched:
        assert switched == 0
    with onednn_linears(_net(), None) as switched:
        assert switched == 0
    with onednn_linears(_net().to(torch.float64), ONEDNN) as switched:
        assert switched == 0
    assert kernels_for(_net().to(torch.float64), "auto", 64) is None
    assert kernels_for(_net(), "torch", 64) == fixed("torch")


def test_an_outer_block_owns_the_layers() -> None:
    net = _net()
    with onednn_linears(net, ONEDNN) as outer:
        with onednn_linears(net, ONEDNN) as inner:
            assert inner == 0
        assert all("forward" in vars(m) for m in net if isinstance(m, torch.nn.Linear)) == bool(outer)
    assert not any("forward" in vars(m) for m in net)


@needs_onednn
def test_each_product_takes_the_kernel_of_its_size() -> None:
    """Decoding-sized products on oneDNN, prefill-sized ones on torch's (a mixed choice)."""
    net = torch.nn.Linear(64, 8)
    choice = Choice(Regime(16, "onednn", {"onednn": 2.0}), Regime(512, "torch", {"onednn": 0.8}))
    calls: list[int] = []
    real = torch.ops.mkldnn._linear_pointwise

    class Spy:
        def __getattr__(self, name):
            def op(x, *args):
                calls.append(x.shape[0])
                return real(x, *args)
            return op if name == "_linear_pointwise" else getattr(torch.ops.mkldnn, name)

    import pytest_llmeval.models.cpu_matmul  # noqa: F401

    with torch.inference_mode(), onednn_linears(net, choice) as switched, pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.ops, "mkldnn", Spy())
        assert switched == 1
        net(torch.randn(8, 64))
        net(torch.randn(300, 64))
    assert calls == [8]


def test_the_setting_takes_auto_torch_or_onednn() -> None:
    assert LLMSettings(cpu_matmul="torch").cpu_matmul == "torch"
    assert LLMSettings(cpu_matmul="onednn").cpu_matmul == "onednn"
    with pytest.raises(SettingsError, match="cpu_matmul"):
        LLMSettings(cpu_matmul="mkl")



def _within_rounding(got: torch.Tensor, x: torch.Tensor, layer: torch.nn.Linear) -> bool:
    # one float32 dot product of length K (+ bias) per element, in any order: within twice the bound
    # of an unordered sum, (K + 1) * 2**-24 * sum|terms|, of the exact value
    exact = x.double() @ layer.weight.double().T + (0 if layer.bias is None else layer.bias.double())
    terms = x.abs().double() @ layer.weight.abs().double().T + (0 if layer.bias is None else layer.bias.abs().double())
    return bool(((got.double() - exact).abs() <= 2 * (x.shape[-1] + 1) * 2.0**-24 * terms).all())


@needs_onednn
@pytest.mark.parametrize("rows", [1, 2, 9])
def test_products_of_several_rows_use_the_weight_packed_once(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net()
    x = torch.randn(rows, 64, generator=torch.Generator().manual_seed(7))
    layouts: list[object] = []
    real = torch.ops.mkldnn._linear_pointwise

    class Spy:
        def __getattr__(self, name):
            def op(x, w, *args):
                layouts.append(w.layout)
                return real(x, w, *args)
            return op if name == "_linear_pointwise" else getattr(torch.ops.mkldnn, name)

    with torch.inference_mode(), onednn_linears(net, ONEDNN):
        monkeypatch.setattr(torch.ops, "mkldnn", Spy())
        hidden = net[0](x)
        got = net[2](torch.relu(hidden))
    assert _within_rounding(hidden, x, net[0]) and _within_rounding(got, torch.relu(hidden), net[2])
    # a single row: the layer's own weight (there the packed kernel's last bits differ); more: oneDNN's layout
    assert layouts == ([torch.strided] * 2 if rows == 1 else [torch._mkldnn] * 2)


@needs_onednn
def test_packed_weights_are_kept_and_rebuilt_when_the_weights_change() -> None:
    from pytest_llmeval.models import cpu_matmul

    net = _net()
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        with onednn_linears(net, ONEDNN):
            first = cpu_matmul._PACKS[net[0]]
        with onednn_linears(net, ONEDNN):
            assert cpu_matmul._PACKS[net[0]] is first
    with torch.no_grad():
        net[0].weight.mul_(-1)
    with torch.inference_mode(), onednn_linears(net, ONEDNN):
        assert cpu_matmul._PACKS[net[0]] is not first
        got = net[0](x)
    assert _within_rounding(got, x, net[0])
