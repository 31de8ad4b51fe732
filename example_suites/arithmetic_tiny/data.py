"""Data for the tiny arithmetic model: two-digit additions ``"a+b=c"``, with a held-out eval set.

The eval set holds out whole unordered pairs: when ``12+34`` is an eval case, neither ``12+34``
nor ``34+12`` is trained on, so ``--llmeval-train-data`` finds no overlap.

    python example_suites/arithmetic_tiny/data.py            # rewrite cases.jsonl (500 cases)
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases.jsonl"
EVAL_SEED = 20240501
EVAL_SIZE = 500
MAX_OPERAND = 99


def all_pairs() -> list[tuple[int, int]]:
    return [(a, b) for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1)]


def eval_pairs(size: int = EVAL_SIZE, seed: int = EVAL_SEED) -> list[tuple[int, int]]:
    """``size`` held-out additions, one order of each of ``size`` distinct unordered pairs."""
    rng = random.Random(seed)
    unordered = sorted({(min(a, b), max(a, b)) for a, b in all_pairs()})
    chosen = rng.sample(unordered, size)
    return [(a, b) if rng.random() < 0.5 else (b, a) for a, b in chosen]


def train_pairs(held_out: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Every addition whose unordered pair is not held out."""
    held = {(min(a, b), max(a, b)) for a, b in (held_out if held_out is not None else eval_pairs())}
    return [(a, b) for a, b in all_pairs() if (min(a, b), max(a, b)) not in held]


def text_of(a: int, b: int) -> str:
    return f"{a}+{b}={a + b}"


def case_rows(pairs: list[tuple[int, int]]) -> list[dict[str, object]]:
    return [{"id": f"add-{a:02d}-{b:02d}", "a": a, "b": b, "answer": a + b} for a, b in pairs]


def write_cases(path: Path = CASES, size: int = EVAL_SIZE) -> Path:
    rows = case_rows(eval_pairs(size))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_train_jsonl(path: Path, pairs: list[tuple[int, int]] | None = None) -> Path:
    """The training texts, as ``--llmeval-train-data`` reads them."""
    pairs = train_pairs() if pairs is None else pairs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": text_of(a, b)}) + "\n" for a, b in pairs), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=EVAL_SIZE)
    parser.add_argument("--out", type=Path, default=CASES)
    args = parser.parse_args()
    print(write_cases(args.out, args.size))


if __name__ == "__main__":
    main()
