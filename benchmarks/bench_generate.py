"""Whole-process time of 64 SmolLM2 chat completions: the plugin against two plain loops.

    python benchmarks/bench_generate.py [--repeat 3]

(a) the plugin: `pytest benchmarks/generate_suite` (model from the converted-copy cache);
(b) a loop of single `generate` calls; (c) length-sorted batches of 16 — both loading the GGUF,
as a user without the plugin would. Each variant runs as its own process; the figures are
medians over the repeats, and the ratios compare medians of the same run of this script.
It also checks that the plugin's completions equal the single-call loop's.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-single", action="store_true", help="skip (b), the slowest variant")
    args = parser.parse_args()
    py = sys.executable
    # Warm the converted-copy cache once (a first-ever run converts the GGUF, about 25 s).
    timed([py, str(HERE / "baseline_loops.py"), "sorted", "--cached"])
    rows: dict[str, list[float]] = {"plugin": [], "single": [], "sorted16": []}
    gen: dict[str, list[float]] = {"plugin": [], "single": [], "sorted16": []}
    plugin_texts: dict[str, str] = {}
    single_texts: list[str] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as out:
            seconds, stdout = timed(
                [py, "-m", "pytest", str(HERE / "generate_suite"), "-q", "-p", "no:cacheprovider", "--llmeval-cache=off", "--llmeval-output", out]
            )
            rows["plugin"].append(seconds)
            match = re.search(r"llmeval: 64/64 completions in ([0-9.]+)s", stdout)
            gen["plugin"].append(float(match.group(1)) if match else float("nan"))
            for line in Path(out, "samples.jsonl").read_text().splitlines():
                sample = json.loads(line)
                plugin_texts[sample["id"]] = sample["completion"]
        if not args.skip_single:
            seconds, stdout = timed([py, str(HERE / "baseline_loops.py"), "single"])
            rows["single"].append(seconds)
            data = json.loads(stdout.strip().splitlines()[-1])
            gen["single"].append(data["generate_s"])
            single_texts = data["outputs"]
        seconds, stdout = timed([py, str(HERE / "baseline_loops.py"), "sorted"])
        rows["sorted16"].append(seconds)
        gen["sorted16"].append(json.loads(stdout.strip().splitlines()[-1])["generate_s"])

    med = {k: statistics.median(v) for k, v in rows.items() if v}
    gmed = {k: statistics.median(v) for k, v in gen.items() if v}
    print(f"64 chat prompts, SmolLM2-135M-Instruct, max_new_tokens=24, {args.repeat} runs each (median)")
    print(f"{'variant':34} {'whole process':>14} {'generation':>11}")
    names = {"plugin": "(a) pytest-llmeval", "single": "(b) loop of single generate()", "sorted16": "(c) sorted batches of 16"}
    for key, label in names.items():
        if key in med:
            print(f"{label:34} {med[key]:13.1f}s {gmed[key]:10.1f}s")
    if "single" in med:
        print(f"plugin vs (b): {med['single'] / med['plugin']:.1f}x faster whole process, "
              f"{gmed['single'] / gmed['plugin']:.1f}x generation")
    print(f"plugin vs (c): {med['sorted16'] / med['plugin']:.1f}x faster whole process, "
          f"{gmed['sorted16'] / gmed['plugin']:.1f}x generation")
    if single_texts:
        same = sum(plugin_texts[f"p{i:02d}"] == t for i, t in enumerate(single_texts))
        print(f"completions identical to the single-call loop: {same}/64")


if __name__ == "__main__":
    main()
