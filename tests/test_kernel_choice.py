"""The float32 CPU kernel chosen by timing: the rule on given timings, the rounds on a fake clock, the cache file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.models import kernel_choice as kc
from pytest_llmeval.models.kernel_choice import MIN_ROUNDS, Choice, Regime, decide, fixed


# ----------------------------------------------------------------------------- the rule


def test_a_kernel_twice_as_fast_in_every_round_is_chosen() -> None:
    kernel, speedups = decide({"torch": [2.0, 2.1, 1.9, 2.0, 2.2], "onednn": [1.0, 1.0, 1.0, 1.0, 1.1]})
    assert kernel == "onednn"
    assert speedups["onednn"] == pytest.approx(2.0)


def test_within_noise_torchs_kernel_stays() -> None:
    kernel, speedups = decide({"torch": [1.00, 1.03, 0.99, 1.02, 1.01], "onednn": [0.99, 1.00, 1.00, 0.98, 1.00]})
    assert kernel == "torch"
    assert 1.0 < speedups["onednn"] < 1.05


def test_a_slower_kernel_is_not_chosen() -> None:
    kernel, speedups = decide({"torch": [1.0] * 5, "onednn": [1.12] * 5})
    assert kernel == "torch"
    assert speedups["onednn"] == pytest.approx(1 / 1.12)


def test_one_round_hit_by_load_does_not_make_a_kernel_look_faster() -> None:
    """Equal kernels; in one round of seven another process stalled torch's kernel 5x."""
    torch_times = [1.0, 1.0, 5.0, 1.0, 1.0, 1.0, 1.0]
    assert decide({"torch": torch_times, "onednn": [1.0] * 7})[0] == "torch"


def test_a_faster_kernel_stays_chosen_when_load_hits_some_of_its_rounds() -> None:
    """1.6x faster; load stalled oneDNN's kernel in one round of seven."""
    onednn = [0.625] * 7
    onednn[3] = 3.0
    assert decide({"torch": [1.0] * 7, "onednn": onednn})[0] == "onednn"


def test_too_few_rounds_prove_nothing() -> None:
    kernel, speedups = decide({"torch": [2.0] * (MIN_ROUNDS - 1), "onednn": [1.0] * (MIN_ROUNDS - 1)})
    assert kernel == "torch"
    assert speedups == {"onednn": 2.0}


def test_the_fastest_qualifying_candidate_wins() -> None:
    times = {"torch": [3.0] * 5, "onednn": [2.0] * 5, "other": [1.0] * 5}
    assert decide(times) == ("other", {"onednn": 1.5, "other": 3.0})


@given(
    st.lists(st.tuples(st.floats(0.01, 10), st.floats(0.01, 10), st.integers(-4, 6).map(lambda e: 2.0**e)),
             min_size=1, max_size=12),
)
def test_load_that_slows_a_whole_round_changes_nothing(rounds: list[tuple[float, float, float]]) -> None:
    """The rule reads per-round ratios: a round slowed for both kernels alike (load on the machine
    during that round) gives the same decision. (Factors are powers of two, so scaling is exact.)"""
    plain = {"torch": [a for a, _, _ in rounds], "onednn": [b for _, b, _ in rounds]}
    loaded = {"torch": [a * f for a, _, f in rounds], "onednn": [b * f for _, b, f in rounds]}
    assert decide(plain)[0] == decide(loaded)[0]


# ----------------------------------------------------------------------------- the choice


def test_products_take_the_kernel_of_their_size() -> None:
    choice = Choice(Regime(64, "onednn", {"onednn": 1.9}), Regime(512, "torch", {"onednn": 0.9}))
    assert choice.small_rows == 181
    assert [choice.kernel_for(n) for n in (1, 64, 181, 182, 1024, 1025)] == ["onednn"] * 3 + ["torch"] * 3
    assert choice.switches
    both = Choice(Regime(64, "onednn", {"onednn": 1.9}), Regime(512, "onednn", {"onednn": 2.1}))
    assert [both.kernel_for(n) for n in (64, 1024, 1025)] == ["onednn", "onednn", "torch"]
    assert not Choice(Regime(64), Regime(512)).switches
    assert fixed("onednn").kernel_for(1000) == "onednn" and fixed("onednn").kernel_for(2000) == "torch"


def test_the_header_says_which_kernel_and_why() -> None:
    both = Choice(Regime(64, "onednn", {"onednn": 1.93}, 9), Regime(512, "onednn", {"onednn": 2.1}, 9))
    assert both.describe() == "oneDNN matmul: 1.93x torch's at decoding shapes, 2.10x at prefill"
    none = Choice(Regime(64, "torch", {"onednn": 1.01}, 9), Regime(512, "torch", {"onednn": 0.89}, 9))
    assert none.describe() == "torch's matmul: oneDNN 1.01x at decoding shapes, 0.89x at prefill, not faster"
    mixed = Choice(Regime(64, "onednn", {"onednn": 1.4}, 9), Regime(512, "torch", {"onednn": 0.89}, 9))
    assert mixed.describe() == "oneDNN matmul for decoding (1.40x torch's), torch's matmul for prefill (oneDNN 0.89x)"
    busy = Choice(Regime(64, "torch", {"onednn": 1.5}, 1), Regime(512, "torch", {}, 0))
    assert busy.describe().endswith("(timing unfinished: a busy machine)")
    no_round = Choice(Regime(64, "torch", {}, 0), Regime(512, "torch", {}, 0))  # not one round within the budget
    assert no_round.describe() == "torch's matmul (timing unfinished: a busy machine)"
    assert Choice(Regime(64), Regime(512), how="only").describe() == "torch's matmul: no other kernel checks out"
    assert fixed("torch").describe() == "torch's matmul: llmeval_cpu_matmul = torch"
    cached = Choice(both.decoding, both.prefill, how="cached")
    assert cached.describe() == both.describe() + " (timed earlier on this CPU)"


# ----------------------------------------------------------------------------- timing, on a fake clock

torch = pytest.importorskip("torch")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _model() -> "torch.nn.Module":
    """Four layers of two shapes and an output layer, like a (very) small decoder."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.ModuleList([torch.nn.Linear(32, 32), torch.nn.Linear(32, 96),
                                             torch.nn.Linear(32, 32), torch.nn.Linear(32, 96)])
            self.head = torch.nn.Linear(32, 100, bias=False)

        def get_output_embeddings(self) -> "torch.nn.Module":
            return self.head

    return Net()


def _fake_kernels(monkeypatch: pytest.MonkeyPatch, clock: Clock, cost: dict[str, float], calls: list[str]) -> None:
    """Kernels that take ``cost[name]`` seconds per row and output feature on the fake clock."""

    def kernel(name: str):
        def run(x, w, b):
            calls.append(name)
            clock.now += cost[name] * x.shape[0] * w.shape[0] * 1e-9

        return run

    monkeypatch.setattr(kc, "kernel_functions", lambda: {name: kc.Kernel(kernel(name)) for name in cost})


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kc, "busy", lambda: False)


def test_the_faster_kernel_is_chosen_at_each_size_and_remembered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock, calls = Clock(), []
    _fake_kernels(monkeypatch, clock, {"torch": 2.0, "onednn": 1.0}, calls)
    choice = kc.choose(_model(), 64, cache=tmp_path, clock=clock)
    assert (choice.decoding.kernel, choice.prefill.kernel, choice.how) == ("onednn", "onednn", "timed")
    assert choice.decoding.speedups["onednn"] == pytest.approx(2.0)
    assert choice.decoding.rounds >= MIN_ROUNDS and choice.prefill.rounds >= MIN_ROUNDS
    assert calls[:2] == ["torch"] * 2 and "onednn" in calls[:10]  # interleaved by round: each kernel over the sample
    saved = json.loads((tmp_path / "kernels.json").read_text())
    assert len(saved) == 1 and next(iter(saved.values()))["decoding"]["kernel"] == "onednn"

    calls.clear()
    again = kc.choose(_model(), 64, cache=tmp_path, clock=clock)
    assert calls == []  # remembered: nothing timed
    assert again.how == "cached" and again.decoding == choice.decoding and again.prefill == choice.prefill


def test_other_shapes_or_rows_are_timed_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock, calls = Clock(), []
    _fake_kernels(monkeypatch, clock, {"torch": 1.0, "onednn": 1.0}, calls)
    kc.choose(_model(), 64, cache=tmp_path, clock=clock)
    kc.choose(_model(), 16, cache=tmp_path, clock=clock)
    wider = _model()
    wider.body[0] = torch.nn.Linear(32, 48)
    kc.choose(wider, 64, cache=tmp_path, clock=clock)
    assert len(json.loads((tmp_path / "kernels.json").read_text())) == 3


def test_the_timing_keeps_to_its_budget_and_an_unfinished_one_is_not_remembered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each product costs a second (a very busy machine): the rounds stop at the budget, too few
    to prove anything, so torch's kernel stays and the next run times again."""
    clock, calls = Clock(), []
    _fake_kernels(monkeypatch, clock, {"torch": 1e9, "onednn": 1e8}, calls)
    choice = kc.choose(_model(), 1, budget=1.0, cache=tmp_path, clock=clock)
    assert choice.decoding.kernel == choice.prefill.kernel == "torch"
    assert choice.decoding.rounds < MIN_ROUNDS
    assert calls == ["torch", "torch"]  # one product past the budget ends each regime's timing, not a whole round
    assert not (tmp_path / "kernels.json").exists()


def test_a_timing_on_a_busy_machine_serves_its_run_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock, calls = Clock(), []
    _fake_kernels(monkeypatch, clock, {"torch": 2.0, "onednn": 1.0}, calls)
    monkeypatch.setattr(kc, "busy", lambda: True)
    assert kc.choose(_model(), 64, cache=tmp_path, clock=clock).decoding.kernel == "onednn"
    assert not (tmp_path / "kernels.json").exists()


def test_busy_reads_the_load_against_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real busy(), with a given load
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 0.5, 0.0, 0.0))
    assert kc.busy()
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))
    assert not kc.busy()


def test_a_real_timing_runs_within_its_budget_and_names_the_kernels(tmp_path: Path) -> None:
    """On the real kernels (no claim about which wins: that is the machine's)."""
    import time

    started = time.perf_counter()
    choice = kc.choose(_model(), 8, budget=0.5, cache=tmp_path)
    assert time.perf_counter() - started < 30  # generous: the machine may be busy; the budget bounds the rounds
    assert choice.decoding.kernel in ("torch", "onednn") and choice.prefill.kernel in ("torch", "onednn")
    assert "matmul" in choice.describe()


def test_sampled_layers_stand_for_all_layers_of_their_shape() -> None:
    layers, head = kc.linear_layers(_model())
    assert head is not None and len(layers) == 5
    body = [m for m in layers if m is not head]
    sampled = kc.sample(body, 0)
    assert [tuple(s.weight.shape) for s in sampled] == [(32, 32), (96, 32)]
    assert [s.factor for s in sampled] == [2.0, 2.0]
    everything = kc.sample(body, 1 << 30)
    assert len(everything) == 4 and all(s.factor == 1.0 for s in everything)


def test_the_cpu_is_named_with_its_features() -> None:
    name = kc.cpu_model()
    assert name and name == kc.cpu_model()
    if Path("/proc/cpuinfo").exists():
        assert "flags" in name


def test_each_kernel_is_timed_on_the_weights_it_runs_on_prepared_once_per_layer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """oneDNN runs on weights reordered once per layer (cpu_matmul keeps them so): its timing must
    run on those too, prepared before the rounds, never reordering inside a timed product; at a
    single row the plugin keeps the plain weight, and so does the timing."""
    clock, seen, prepared = Clock(), {"torch": set(), "onednn": set()}, []

    def prepare(weight, rows):
        prepared.append((tuple(weight.shape), rows))
        return ("packed", id(weight), rows)

    def run(name: str):
        def kernel(x, w, b):
            seen[name].add(w[0] if isinstance(w, tuple) else "plain")
            clock.now += (1.0 if name == "onednn" else 2.0) * x.shape[0] * 1e-6

        return kernel

    monkeypatch.setattr(kc, "kernel_functions", lambda: {"torch": kc.Kernel(run("torch")),
                                                         "onednn": kc.Kernel(run("onednn"), prepare)})
    choice = kc.choose(_model(), 64, cache=tmp_path, clock=clock)
    assert choice.decoding.kernel == "onednn" and choice.decoding.rounds >= MIN_ROUNDS
    assert seen == {"torch": {"plain"}, "onednn": {"packed"}}
    # once per sampled layer, for the decoding step's rows (as cpu_matmul packs): the prefill's two
    # sampled layers are among the decoding's five and reuse theirs
    assert [rows for _, rows in prepared] == [64] * 5
    saved = json.loads((tmp_path / "kernels.json").read_text())
    assert len(saved) == 1

    prepared.clear()
    seen["onednn"].clear()
    kc.choose(_model(), 1, cache=tmp_path / "single", clock=clock)
    assert [rows for _, rows in prepared] == [1] * 2  # decoding a single row: the plain weight; prefill: packed
    assert seen["onednn"] == {"plain", "packed"}


def test_timings_on_plain_weights_are_not_taken_for_packed_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Clock()

    def run(x, w, b):
        clock.now += 1e-6

    plain = {"torch": kc.Kernel(run), "onednn": kc.Kernel(run)}
    packed = {"torch": kc.Kernel(run), "onednn": kc.Kernel(run, lambda w, rows: w)}
    monkeypatch.setattr(kc, "kernel_functions", lambda: plain)
    kc.choose(_model(), 64, cache=tmp_path, clock=clock)
    monkeypatch.setattr(kc, "kernel_functions", lambda: packed)
    assert kc.choose(_model(), 64, cache=tmp_path, clock=clock).how == "timed"
    assert len(json.loads((tmp_path / "kernels.json").read_text())) == 2


def test_the_real_onednn_candidate_runs_on_packed_weights_and_computes_the_same_products() -> None:
    """Where this torch has oneDNN and can reorder, the candidate timed is the packed one, and its
    products agree with torch's within float32 rounding (the probe's bound: 2 K u sum|x w|)."""
    from pytest_llmeval.models import cpu_kernels

    kernels = cpu_kernels.kernel_functions()
    if "onednn" not in kernels:
        pytest.skip("this torch has no usable oneDNN linear")
    onednn = kernels["onednn"]
    assert (onednn.prepare is not None) == cpu_kernels.packs()
    gen = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(16, 64, generator=gen), torch.randn(48, 64, generator=gen), torch.randn(48, generator=gen)
    with torch.inference_mode():
        weight = onednn.prepare(w, 16) if onednn.prepared_at(16) else w
        got = onednn.run(x, weight, b)
        want = torch.nn.functional.linear(x, w, b)
    assert not onednn.prepared_at(1)  # a single row keeps the plain weight
    bound = 2 * 65 * 2.0**-24 * (x.abs() @ w.abs().T + b.abs())
    assert bool(((got - want).abs() <= bound).all())
