"""The work bench_engines.py gives every engine: 128 chat prompts, at most 24 new tokens each."""

from __future__ import annotations

import json
from pathlib import Path

from prompts64 import MAX_NEW_TOKENS, prompts

ARITHMETIC = Path(__file__).resolve().parents[1] / "example_suites" / "arithmetic" / "arithmetic.jsonl"
__all__ = ["MAX_NEW_TOKENS", "arithmetic64", "prompts64", "all_prompts"]


def prompts64() -> list[dict]:
    return prompts()


def arithmetic64() -> list[dict]:
    """The first 64 cases of the example arithmetic suite, with its prompt."""
    rows = [json.loads(line) for line in ARITHMETIC.read_text().splitlines()[:64]]
    return [{"id": r["id"], "prompt": f"{r['question']} Answer with a number.", "answer": r["answer"]} for r in rows]


def all_prompts(limit: int = 64) -> list[dict]:
    return prompts64()[:limit] + arithmetic64()[:limit]
