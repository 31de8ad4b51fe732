"""Executing code in parallel: HumanEval's 164 canonical solutions and their tests, each in its own
sandbox, run by the pool (as many at once as the process may use CPUs) against one after another.

    python benchmarks/bench_code.py [--sandbox bwrap] [--workers N] [--repeat 3]

Prints the seconds of each way (the median of ``--repeat`` runs), the ratio, the mean duration of
one run as the verdicts report it, and the machine's load average before and after: the runs
share the cores with whatever else runs, so say how busy the machine was when quoting a figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmeval.datasets.code_tasks import humaneval  # noqa: E402
from pytest_llmeval.scoring.code import CodePool, Job, Limits, get_sandbox  # noqa: E402


def jobs() -> list[Job]:
    limits = Limits(timeout=60)  # the comparison is about throughput; no solution should hit it
    return [Job(r["prompt"] + r["canonical_solution"], r["test"], r["entry_point"], limits) for r in humaneval()]


def parallel(sandbox, work: list[Job], workers: int | None) -> tuple[float, list]:
    pool = CodePool(workers)
    try:
        start = time.perf_counter()
        verdicts = pool.map(sandbox, work)
        return time.perf_counter() - start, verdicts
    finally:
        pool.shutdown()


def serial(sandbox, work: list[Job]) -> tuple[float, list]:
    start = time.perf_counter()
    verdicts = [sandbox.run(job) for job in work]
    return time.perf_counter() - start, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sandbox", default="bwrap", help="bwrap (default) or none")
    parser.add_argument("--workers", type=int, default=None, help="parallel runs (default: the usable CPUs)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way (median)")
    args = parser.parse_args()
    sandbox = get_sandbox(args.sandbox)
    work = jobs()
    workers = args.workers or CodePool().workers
    load_before = os.getloadavg()
    serial(sandbox, work[:8])  # warm the file cache
    times: dict[str, list[float]] = {"parallel": [], "serial": []}
    durations: list[float] = []
    for _ in range(args.repeat):
        for way in ("parallel", "serial"):
            seconds, verdicts = parallel(sandbox, work, workers) if way == "parallel" else serial(sandbox, work)
            failed = [v.reason for v in verdicts if not v.passed]
            if failed:
                sys.exit(f"{len(failed)} canonical solutions did not pass ({way}): {failed[:3]}")
            times[way].append(seconds)
            durations += [v.duration_s for v in verdicts]
    load_after = os.getloadavg()
    par, ser = statistics.median(times["parallel"]), statistics.median(times["serial"])
    print(f"sandbox {sandbox.name}, {len(work)} programs, {workers} workers, {os.cpu_count()} CPUs")
    print(f"parallel {par:.1f} s, one after another {ser:.1f} s: {ser / par:.2f}x")
    print(f"one run: mean {statistics.mean(durations):.3f} s, max {max(durations):.3f} s")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
