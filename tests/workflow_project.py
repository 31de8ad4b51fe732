"""Helpers for pytester runs of workflow suites on the scripted tool-calling model (tiny_tools.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pytest

TESTS = Path(__file__).resolve().parent

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import tiny_tools
tiny_tools.register()
"""

TOOLS = '''
import time

WEATHER = {"Paris": "sunny, 21 C", "Oslo": "snow, -3 C"}


def get_weather(city: str) -> str:
    """Today's weather in a city.

    Args:
        city: the city's name
    """
    return WEATHER.get(city, "unknown city")


def convert(amount: float, currency: str) -> dict:
    """Convert dollars.

    Args:
        amount: how many dollars
        currency: the currency to convert to
    """
    return {"amount": amount / 2, "currency": currency}
'''


def call(name: str, **arguments: Any) -> str:
    """A step of the scripted model's instructions: call ``name`` with ``arguments``."""
    return f"call {name} {json.dumps(arguments)}"


def write_project(pytester: pytest.Pytester, model_dir: Path, cases: Iterable[dict[str, Any]], suite: str, *, ini: str = "") -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(f"[pytest]\nllmeval_model = {model_dir}\nllmeval_max_new_tokens = 120\nllmeval_history = off\n{ini}")
    pytester.makefile(".jsonl", cases="\n".join(json.dumps(c) for c in cases))
    pytester.makepyfile(tools=TOOLS, test_suite=suite)


def samples(out: Path) -> dict[str, dict[str, Any]]:
    """The samples.jsonl lines of a run's output folder, by case id (and sample)."""
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {(r["id"] if r.get("repeats", 1) == 1 else f"{r['id']}:r{r['repeat']}"): r for r in rows}
