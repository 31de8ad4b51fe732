"""Which float32 kernel a CPU model's linear layers use: the faster one at the model's own shapes.

torch has two float32 kernels for a linear layer on a CPU: its BLAS (MKL in the PyPI wheels)
behind ``torch.nn.functional.linear``, and oneDNN's linear. Which is faster depends on the CPU
and the shapes: on an AMD EPYC with AVX2, oneDNN ran SmolLM2's decoding step about twice as fast
as MKL; on an Intel Xeon with AVX-512 and AMX both ran it at the same speed and MKL was faster
at prefill. So :func:`choose` times the candidates on the model's own weights, at the rows of a
decoding step and at the rows of a prefill, and picks per regime (:class:`Choice`):

- the kernels are timed interleaved (torch, oneDNN, torch, oneDNN, ...), in rounds; a round runs
  every sampled layer once and weights each by how many layers of the model share its shape, so
  a burst of load from another process falls on both kernels alike;
- each kernel is timed as the plugin runs it (:mod:`.cpu_kernels`): oneDNN on weights already
  reordered into its own layout, once per layer before the rounds, as :mod:`.cpu_matmul` keeps
  them (not at a single row, where the plugin keeps the plain weight);
- a candidate replaces torch's kernel only where it was at least :data:`MARGIN` faster in three
  rounds of four or more (the lower quartile of the per-round speed ratio, :func:`decide`); within
  noise torch's stays; with fewer than :data:`MIN_ROUNDS` rounds done, torch's stays;
- the whole timing takes about a second at most (``budget``); its result is kept in the user
  cache dir (``kernels.json``), keyed by the CPU model, torch's version and CPU capability, the
  thread count and the shapes, so each CPU pays it once. A timing that could not finish its rounds,
  or was taken while other processes kept the cores busy (a 1-minute load average above the
  number of usable cores), serves its run but is not kept: the next run times again.

:func:`decide` holds the rule and takes timings as numbers, so it is tested without a clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pytest_llmeval.models.cpu_kernels import Kernel, kernel_functions

MARGIN = 0.05
"""A candidate must beat torch's kernel by this fraction in at least three rounds of four."""
MIN_ROUNDS = 3
MAX_ROUNDS = 9
DECODE_SAMPLE_BYTES = 48 << 20
"""Decoding is timed over consecutive layers holding at least this many bytes of weights (more
than a CPU's last-level cache, as in a real step, where no layer's weights are still cached)."""
PREFILL_ROWS = 512
MAX_ROWS = 1024
"""Products of more rows (a long prefill, a packed scoring pass) keep torch's kernel: the gain is
in the many small products of decoding, and one SmolLM2 pass of 62 x 232 tokens peaked 333 MiB
higher in resident memory with oneDNN than with torch's kernel."""
CACHE_FILE = "kernels.json"
CACHE_ENTRIES = 32
NAMES = {"torch": "torch's", "onednn": "oneDNN"}


@dataclass(frozen=True)
class Regime:
    """The kernel chosen for products of about ``rows`` rows, and each candidate's median speed
    relative to torch's kernel (2.0: twice as fast)."""

    rows: int
    kernel: str = "torch"
    speedups: Mapping[str, float] = field(default_factory=dict)
    rounds: int = 0


@dataclass(frozen=True)
class Choice:
    """Kernels for a model's linear layers: ``decoding`` for products of up to ``small_rows`` rows,
    ``prefill`` for larger ones up to :data:`MAX_ROWS`, torch's beyond."""

    decoding: Regime
    prefill: Regime
    how: str = "timed"  # "timed", "cached" (timed before on this CPU), "setting", or "only" (nothing to time)

    @property
    def small_rows(self) -> int:
        return int(math.sqrt(self.decoding.rows * self.prefill.rows))

    def kernel_for(self, rows: int) -> str:
        if rows <= self.small_rows:
            return self.decoding.kernel
        return self.prefill.kernel if rows <= MAX_ROWS else "torch"

    @property
    def switches(self) -> bool:
        """Whether any product leaves torch's kernel."""
        return self.decoding.kernel != "torch" or self.prefill.kernel != "torch"

    def describe(self) -> str:
        """For the header line: which kernel, and why (``oneDNN matmul: 1.93x torch's at decoding
        shapes, 2.10x at prefill``)."""
        if self.how == "setting":
            return f"{NAMES[self.decoding.kernel]} matmul: llmeval_cpu_matmul = {self.decoding.kernel}"
        said = self._why()
        return f"{said} (timed earlier on this CPU)" if self.how == "cached" else said

    def _why(self) -> str:
        d, p = self.decoding, self.prefill
        if d.kernel == p.kernel == "torch":
            others = [f"{NAMES[k]} {v:.2f}x at decoding shapes" for k, v in d.speedups.items()]
            others += [f"{v:.2f}x at prefill" if others else f"{NAMES[k]} {v:.2f}x at prefill" for k, v in p.speedups.items()]
            if self.how == "only":
                return "torch's matmul: no other kernel checks out"
            if not others:
                return "torch's matmul (timing unfinished: a busy machine)"
            return f"torch's matmul: {', '.join(others)}, not faster" + _unfinished(d, p)
        if d.kernel == p.kernel:
            return (f"{NAMES[d.kernel]} matmul: {d.speedups[d.kernel]:.2f}x torch's at decoding shapes, "
                    f"{p.speedups[p.kernel]:.2f}x at prefill")
        return f"{_part(d, 'decoding')}, {_part(p, 'prefill')}"


def _unfinished(*regimes: Regime) -> str:
    return " (timing unfinished: a busy machine)" if any(r.rounds < MIN_ROUNDS for r in regimes) else ""


def _part(regime: Regime, name: str) -> str:
    if regime.kernel == "torch":
        others = ", ".join(f"{NAMES[k]} {v:.2f}x" for k, v in regime.speedups.items())
        return f"torch's matmul for {name} ({others})"
    return f"{NAMES[regime.kernel]} matmul for {name} ({regime.speedups[regime.kernel]:.2f}x torch's)"


def fixed(kernel: str) -> Choice:
    """The choice a setting makes (``llmeval_cpu_matmul = torch`` or ``onednn``)."""
    return Choice(Regime(0, kernel), Regime(0, kernel), how="setting")


# ----------------------------------------------------------------------------- the rule


def decide(times: Mapping[str, Sequence[float]], margin: float = MARGIN) -> tuple[str, dict[str, float]]:
    """The kernel to use from interleaved timings (``times[kernel][i]``: round ``i``'s seconds;
    ``"torch"`` is the default) and each other candidate's median speedup over torch's.

    A candidate qualifies when the lower quartile of its per-round ratio (torch's seconds over
    its own) is at least ``1 + margin``: faster by the margin in three rounds of four. Among those
    the one with the highest median wins; none: torch's. Fewer than :data:`MIN_ROUNDS` paired
    rounds prove nothing: torch's."""
    base = list(times.get("torch", ()))
    speedups: dict[str, float] = {}
    best, best_median = "torch", 0.0
    for kernel, seconds in times.items():
        if kernel == "torch":
            continue
        ratios = [b / s for b, s in zip(base, seconds) if s > 0 and b > 0]
        if not ratios:
            continue
        median = statistics.median(ratios)
        speedups[kernel] = median
        if len(ratios) < MIN_ROUNDS:
            continue
        low = statistics.quantiles(ratios, n=4, method="inclusive")[0]
        if low >= 1 + margin and median > best_median:
            best, best_median = kernel, median
    return best, speedups


# ----------------------------------------------------------------------------- timing


@dataclass
class _Layer:
    weight: Any
    bias: Any
    factor: float  # how many of the model's layers this one stands for


def linear_layers(model: Any) -> tuple[list[Any], Any]:
    """The model's plain CPU float32 ``nn.Linear`` layers in order, and its output layer (the
    one computing logits, if it is one of them)."""
    import torch

    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.dtype == torch.float32
              and m.weight.device.type == "cpu"]
    head = None
    try:
        out = model.get_output_embeddings()
        head = out if any(out is m for m in layers) else None
    except (AttributeError, NotImplementedError, TypeError):
        pass
    return layers, head


def _shape(m: Any) -> tuple[int, int, bool]:
    return (m.weight.shape[0], m.weight.shape[1], m.bias is not None)


def sample(layers: Sequence[Any], min_bytes: int) -> list[_Layer]:
    """Consecutive layers holding at least ``min_bytes`` of weights (all of them, if fewer), plus
    the first of each shape not among them; each weighted by its shape's count over the sampled."""
    total: dict[tuple[int, int, bool], int] = {}
    for m in layers:
        total[_shape(m)] = total.get(_shape(m), 0) + 1
    picked, seen, size = [], set(), 0
    for m in layers:
        if size < min_bytes or _shape(m) not in seen:
            picked.append(m)
            seen.add(_shape(m))
            size += m.weight.numel() * m.weight.element_size()
    counts: dict[tuple[int, int, bool], int] = {}
    for m in picked:
        counts[_shape(m)] = counts.get(_shape(m), 0) + 1
    return [_Layer(m.weight, m.bias, total[_shape(m)] / counts[_shape(m)]) for m in picked]


def weights_for(layers: Sequence[_Layer], rows: int, kernels: Mapping[str, Kernel], pack_rows: int,
                made: dict[tuple[str, int], Any]) -> dict[str, list[Any]]:
    """Each kernel's weight for each layer in products of ``rows`` rows, as the plugin runs it: the
    layer's own, or the one ``prepare`` makes for ``pack_rows`` (a decoding step's rows, as
    :mod:`.cpu_matmul` packs), made once per layer and kernel in ``made``."""
    weights: dict[str, list[Any]] = {}
    for name, kernel in kernels.items():
        weights[name] = []
        for layer in layers:
            if not kernel.prepared_at(rows):
                weights[name].append(layer.weight)
                continue
            if (name, id(layer.weight)) not in made:
                made[name, id(layer.weight)] = kernel.prepare(layer.weight, pack_rows)  # type: ignore[misc]
            weights[name].append(made[name, id(layer.weight)])
    return weights


def time_rounds(layers: Sequence[_Layer], rows: int, kernels: Mapping[str, Kernel], deadline: float,
                clock: Callable[[], float] = time.perf_counter, *, pack_rows: int | None = None,
                made: dict[tuple[str, int], Any] | None = None) -> dict[str, list[float]]:
    """Weighted seconds per round of each kernel over ``layers`` at ``rows`` rows, interleaved, each
    on the weights it runs on (:func:`weights_for`, prepared before the rounds and not timed); a
    first round of each is a warm-up (oneDNN builds its primitives then) and is not counted."""
    import torch

    gen = torch.Generator().manual_seed(0)
    inputs = {w: torch.randn(rows, w, generator=gen) for w in {layer.weight.shape[1] for layer in layers}}
    times: dict[str, list[float]] = {k: [] for k in kernels}
    with torch.inference_mode():
        weights = weights_for(layers, rows, kernels, pack_rows or rows, {} if made is None else made)
        for round_ in range(MAX_ROUNDS + 1):
            for name, kernel in kernels.items():
                spent = 0.0
                for layer, weight in zip(layers, weights[name]):
                    started = clock()
                    kernel.run(inputs[layer.weight.shape[1]], weight, layer.bias)
                    ended = clock()
                    spent += (ended - started) * layer.factor
                    if ended > deadline and round_ < MIN_ROUNDS:  # a busy machine: stop, within a product
                        return times
                if round_:
                    times[name].append(spent)
            if clock() > deadline:
                break
    return times


def choose(model: Any, decode_rows: int, *, budget: float = 1.0, cache: Path | None = None,
           clock: Callable[[], float] = time.perf_counter) -> Choice:
    """The kernels for ``model``'s CPU float32 linear layers (see the module docstring):
    remembered for this CPU, or timed within about ``budget`` seconds and remembered."""
    layers, head = linear_layers(model)
    kernels = kernel_functions()
    decode_rows = max(1, min(decode_rows, MAX_ROWS))
    prefill_rows = max(PREFILL_ROWS, decode_rows)
    if not layers or len(kernels) == 1:
        return Choice(Regime(decode_rows), Regime(prefill_rows), how="only")
    body = [m for m in layers if m is not head]
    key = cache_key(
        {"layers": sorted({_shape(m) for m in body}), "head": _shape(head) if head is not None else None,
         "count": len(body), "rows": [decode_rows, prefill_rows], "kernels": sorted(kernels),
         "packed": sorted(k for k, v in kernels.items() if v.prepare is not None)}
    )
    path = (cache if cache is not None else _default_cache()) / CACHE_FILE
    known = _read(path).get(key)
    if known is not None:
        try:
            return Choice(Regime(**known["decoding"]), Regime(**known["prefill"]), how="cached")
        except (KeyError, TypeError):
            pass
    deadline = clock() + budget
    decoding = sample(body, DECODE_SAMPLE_BYTES) + ([_Layer(head.weight, head.bias, 1.0)] if head is not None else [])
    made: dict[tuple[str, int], Any] = {}  # the prefill's sampled layers are among the decoding's
    d_times = time_rounds(decoding, decode_rows, kernels, clock() + budget * 0.6, clock, pack_rows=decode_rows, made=made)
    p_times = time_rounds(sample(body, 0), prefill_rows, kernels, deadline, clock, pack_rows=decode_rows, made=made)
    regimes = []
    for rows, times in ((decode_rows, d_times), (prefill_rows, p_times)):
        kernel, speedups = decide(times)
        regimes.append(Regime(rows, kernel, speedups, min(len(t) for t in times.values())))
    choice = Choice(regimes[0], regimes[1])
    if all(r.rounds >= MIN_ROUNDS for r in regimes) and not busy():
        _remember(path, key, choice)
    return choice


# ----------------------------------------------------------------------------- the cache file


def busy() -> bool:
    """Whether other processes keep this machine's cores busy: the 1-minute load average is above
    the number of cores this process may use (unknown: not busy)."""
    try:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return os.getloadavg()[0] > cores
    except OSError:
        return False


def cpu_model() -> str:
    """The CPU's model name, family/model/stepping and a digest of its feature flags (Linux), or
    what ``platform`` knows elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if not name and fields:
            break  # the first processor's block is enough
        fields.setdefault(name, value.strip())
    flags = hashlib.sha256(" ".join(sorted(fields.get("flags", "").split())).encode()).hexdigest()[:12]
    ident = "/".join(fields.get(k, "?") for k in ("cpu family", "model", "stepping"))
    return f"{fields.get('model name', platform.machine())} ({ident}, flags {flags})"


def cache_key(shapes: Mapping[str, Any]) -> str:
    import torch

    parts = {
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **shapes,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _default_cache() -> Path:
    from pytest_llmeval.files import cache_dir

    return cache_dir()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, key: str, choice: Choice) -> None:
    from dataclasses import asdict

    from pytest_llmeval.files import atomic_write_text

    table = _read(path)
    table.pop(key, None)
    table[key] = {"decoding": asdict(choice.decoding), "prefill": asdict(choice.prefill),
                  "cpu": cpu_model(), "timed": time.strftime("%Y-%m-%dT%H:%M:%S")}
    table = dict(list(table.items())[-CACHE_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(table, indent=1) + "\n")
    except OSError:
        pass  # a read-only cache dir only costs a timing next time
