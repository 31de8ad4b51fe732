"""The start: from the pytest command to the first batch, against ``pytest --co`` of the same suite.

    .venv/bin/python benchmarks/bench_start.py [--suite example_suites/arithmetic] [--runs 5]

Target (a quiet machine): a run reaches its first batch at most 2 s after the moment
``pytest --co`` of the same suite ends, with the model's converted copy cached.

Each figure is a fresh ``python -m pytest`` process started from this script. The collect-only
process runs to its end. The run (completion cache off, run history off) carries the plugin
benchmarks/start_probe.py, which notes the system-wide monotonic clock as torch and
transformers are imported, the model is loaded and the kernel chosen, and ends the process when
the first backend call begins. Both kinds of process alternate, ``--runs`` times each (the first
pair warms the converted copy, the page cache and the kernel choice, and is not counted); the
medians are printed, with the CPU model and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
TARGET_S = 2.0
PHASES = ("plugin", "collected", "load_called", "torch", "transformers", "modeling", "loaded", "kernels", "first_batch")


def collect_only(suite: Path) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", str(suite)],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"collect-only failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds


def to_first_batch(suite: Path) -> dict[str, float]:
    """Seconds from the process's start to each mark of start_probe."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "marks.json"
        env = {**os.environ, "START_PROBE_OUT": str(out),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "start_probe",
                   "--llmeval-cache=off", "-o", "llmeval_history=off", str(suite)]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
        if not out.exists():
            sys.exit(f"the run ended ({proc.returncode}) before its first batch:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        marks = json.loads(out.read_text())
    return {name: marks[name] - started for name in PHASES if name in marks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="example_suites/arithmetic", help="a suite path, relative to the repository")
    parser.add_argument("--runs", type=int, default=5, help="pairs of processes counted (after one warm-up pair)")
    args = parser.parse_args(argv)
    from pytest_llmeval.models.kernel_choice import cpu_model

    suite = ROOT / args.suite
    print(f"cpu: {cpu_model()}, {len(os.sched_getaffinity(0))} cpus; load before: {os.getloadavg()[0]:.2f}")
    collect_only(suite), to_first_batch(suite)  # warm-up: converted copy, page cache, kernel choice
    co, runs = [], []
    for _ in range(args.runs):
        co.append(collect_only(suite))
        runs.append(to_first_batch(suite))
    median = {name: statistics.median(r[name] for r in runs) for name in PHASES if all(name in r for r in runs)}
    previous = 0.0
    for name in PHASES:
        if name in median:
            print(f"  {name:>12}: {median[name]:6.2f} s after start (+{median[name] - previous:.2f} s)")
            previous = median[name]
    co_s = statistics.median(co)
    over = median["first_batch"] - co_s
    print(f"pytest --co, whole process: {co_s:.2f} s (runs: {', '.join(f'{s:.2f}' for s in co)})")
    print(f"first batch: {median['first_batch']:.2f} s, {over:+.2f} s against --co (target: at most +{TARGET_S:.0f} s)")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
