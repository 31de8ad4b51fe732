"""Write arithmetic.jsonl: 200 deterministic two-operand problems (run once; the file is committed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

OPS = {"+": ("plus", lambda a, b: a + b), "-": ("minus", lambda a, b: a - b), "*": ("times", lambda a, b: a * b)}


def main() -> None:
    rng = random.Random(20261122)
    rows = []
    for i in range(200):
        op = "+" if i < 100 else "-" if i < 160 else "*"
        if op == "*":
            a, b = rng.randint(2, 12), rng.randint(2, 12)
        else:
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            if op == "-" and b > a:
                a, b = b, a
        word, fn = OPS[op]
        style = i % 2
        question = f"What is {a} {op} {b}?" if style == 0 else f"What is {a} {word} {b}?"
        rows.append({"id": f"{ {'+': 'add', '-': 'sub', '*': 'mul'}[op]}-{i:03d}", "question": question, "answer": fn(a, b)})
    out = Path(__file__).with_name("arithmetic.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
