"""The batched search for the smallest breaking change against the same search run case by case.

    python benchmarks/bench_search.py [--cases 64] [--max-examples 20] [--evaluator fake|tiny]
                                      [--call-ms 50] [--item-ms 2]

Both runs search the same cases (typos, rate 0.1) with the same seeds, so they judge the same
variants and find the same counterexamples; what differs is how the variants reach the model: one
``evaluate_batch`` call per round for all cases, or one call per variant. The evaluator:

- ``fake`` (default): a case breaks once its question has 3 or more typos; each call costs
  ``call-ms`` plus ``item-ms`` per variant (slept), the shape of a batched model's cost on a CPU;
- ``tiny``: a random two-layer Llama built as the tests build it (no weights to download); a variant
  passes when its greedy 8-token answer equals the original's, one left-padded ``generate`` per call.

Prints, for each run, the seconds, the evaluator calls and the variants judged, then the ratio.
The run on SmolLM2 through the plugin comes with the plugin's ``search=`` option.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--evaluator", choices=("fake", "tiny"), default="fake")
    parser.add_argument("--call-ms", type=float, default=50.0, help="fake evaluator: cost of one call")
    parser.add_argument("--item-ms", type=float, default=2.0, help="fake evaluator: cost of one variant")
    args = parser.parse_args()
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
