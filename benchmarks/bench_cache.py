"""Time a warm-cache re-run of the example suites against a cold run, whole process each.

Both runs are what ``bash scripts/examples`` runs (``pytest example_suites`` on SmolLM2-135M-
Instruct, with results.json, samples.jsonl and the Markdown summary written), each a fresh
``python -m pytest`` process timed from start to exit:

- cold: an empty completion cache, so the model is loaded and every completion and ranking is
  computed (and stored);
- warm: the same command again, so every output comes from the cache and no model is loaded.

The converted copy of the GGUF and the file-hash cache are warm for both (they are paid once per
machine, not per run). The cache file and the outputs go to a temporary folder; the run history
is off, so the project's files are left as they are. The outcomes of the two runs are compared.

    .venv/bin/python benchmarks/bench_cache.py
    .venv/bin/python benchmarks/bench_cache.py --json out.json -- -k arithmetic
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
GOAL = 0.15


def run(folder: Path, name: str, extra: list[str]) -> dict[str, Any]:
    out = folder / name
    command = [
        sys.executable, "-m", "pytest", "example_suites", "-p", "no:cacheprovider", "-q",
        f"--llmeval-output={out}", f"--llmeval-markdown={out / 'summary.md'}",
        f"--llmeval-cache-path={folder / 'cache.sqlite'}", "--llmeval-history=off", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    results = json.loads((out / "results.json").read_text())
    cache_lines = [line for line in done.stdout.splitlines() if "from the completion cache" in line]
    return {
        "seconds": round(seconds, 2),
        "exit": done.returncode,
        "loaded_model": "llmeval: loaded" in done.stdout,
        "from_cache": results["run"].get("from_cache"),
        "cache_line": cache_lines[0] if cache_lines else "",
        "outcomes": {name: [s["passed"], s["failed"], s["errors"]] for name, s in results["suites"].items()},
        "tail": done.stdout.splitlines()[-3:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        folder = Path(tmp)
        cold = run(folder, "cold", args.pytest_args)
        warm = run(folder, "warm", args.pytest_args)
    ratio = warm["seconds"] / cold["seconds"]
    figures = {
        "cold": cold,
        "warm": warm,
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "same_outcomes": cold["outcomes"] == warm["outcomes"],
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(f"cold run: {cold['seconds']:.1f} s (model loaded: {cold['loaded_model']}; {cold['cache_line']})")
    print(f"warm run: {warm['seconds']:.1f} s (model loaded: {warm['loaded_model']}; {warm['cache_line']})")
    print(f"warm/cold: {ratio:.1%} (goal: under {GOAL:.0%}); same outcomes: {figures['same_outcomes']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["same_outcomes"] and not warm["loaded_model"] else 1


if __name__ == "__main__":
    sys.exit(main())
