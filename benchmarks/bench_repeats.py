"""Cost of repeated sampling: the example arithmetic suite on SmolLM2 with k=5 samples per case
against k=1, both sampled (temperature 0.7), each as its own pytest process.

    python benchmarks/bench_repeats.py [--limit 20] [--repeat 1] [--batch-size auto]

Prints the whole-process and generation seconds of each and the ratios k=5 / k=1. The five
samples of a case are adjacent items and have the same prompt length, so they share batches
(length-sorted, stable order); each sample draws its own noise from its seed, so the samples do
not depend on that. Generation cost grows with the rows generated, so on a CPU the ratio of
generation time is near 5 once the batches are full; what is shared is the model load, the
collection and the per-session overhead.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = HERE.parent / "example_suites" / "arithmetic"


def run(k: int, limit: int, batch_size: str) -> tuple[float, float, int]:
    """(whole process seconds, generation seconds, samples) of one run with ``k`` repeats."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            f"--llmeval-repeats={k}", f"--llmeval-limit={limit}", "--llmeval-do-sample", "--llmeval-temperature=0.7",
            f"--llmeval-batch-size={batch_size}", f"--llmeval-baseline={tmp}/none.json", "--llmeval-history=off", "--llmeval-cache=off",
            f"--llmeval-output={tmp}/out",
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=SUITE.parent)
        seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    found = re.findall(r"llmeval: (\d+)/\1 completions in ([0-9.]+)s", proc.stdout)
    return seconds, sum(float(s) for _, s in found), sum(int(n) for n, _ in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="cases of the suite (default 20 of 200)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant (median)")
    parser.add_argument("--batch-size", default="auto")
    args = parser.parse_args()
    run(1, 2, args.batch_size)  # warm the converted-model cache and the file cache
    whole: dict[int, list[float]] = {1: [], 5: []}
    gen: dict[int, list[float]] = {1: [], 5: []}
    samples: dict[int, int] = {}
    for _ in range(args.repeat):
        for k in (1, 5):
            seconds, generating, n = run(k, args.limit, args.batch_size)
            whole[k].append(seconds)
            gen[k].append(generating)
            samples[k] = n
    w = {k: statistics.median(v) for k, v in whole.items()}
    g = {k: statistics.median(v) for k, v in gen.items()}
    print(f"arithmetic suite, {args.limit} cases, SmolLM2-135M-Instruct, sampled (T=0.7), batch size {args.batch_size}, "
          f"{args.repeat} run(s) each (median)")  # fmt: skip
    print(f"{'variant':10} {'samples':>8} {'whole process':>14} {'generation':>11} {'gen per sample':>15}")
    for k in (1, 5):
        print(f"k={k:<8} {samples[k]:8d} {w[k]:13.1f}s {g[k]:10.1f}s {g[k] / max(1, samples[k]):14.3f}s")
    print(f"k=5 / k=1: whole process {w[5] / w[1]:.2f}x, generation {g[5] / g[1]:.2f}x")


if __name__ == "__main__":
    main()
