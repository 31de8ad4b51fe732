"""``le.cases(le.generated(strategy, n=, expected=))``: cases drawn from a strategy are items with
stable ids (the same in every run and on every xdist worker), a new seed draws a new suite, the
held-out check flags a drawn case found in the training data, and a strategy that cannot draw is one
collection line."""

from __future__ import annotations

import json

import pytest
from echo_project import CONFTEST, INI, samples

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le
from hypothesis import strategies as st

SUMS = st.fixed_dictionaries({{"a": st.integers(10, 99), "b": st.integers(10, 99)}})

@le.cases(le.generated({source}, n=12, expected=lambda v: v["a"] + v["b"], seed={seed}), prompt="{{a}}+{{b}}=")
def test_sums(case, completion):
    assert case["answer"] == case["a"] + case["b"]
    le.assert_contains(completion, f"{{case['a']}}+")
"""


def project(pytester: pytest.Pytester, source: str = "SUMS", seed: int = 0) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sums=SUITE.format(source=source, seed=seed))
    return pytester


def ids(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("[", 1)[1].rstrip("]") for line in result.stdout.lines if line.startswith("test_sums.py::test_sums["))


def test_generated_cases_are_items_with_stable_ids(pytester: pytest.Pytester) -> None:
    project(pytester)
    first = ids(pytester.runpytest("--collect-only", "-q"))
    assert len(first) == 12 and all(i.startswith("gen-") for i in first)
    assert ids(pytester.runpytest("--collect-only", "-q")) == first
    result = pytester.runpytest("-n", "2")  # xdist fails when its workers collect other ids
    result.stdout.fnmatch_lines(["*12 passed*"])
    assert sorted(cid for _, cid in samples(pytester.path)) == first
    other = ids(project(pytester, seed=1).runpytest("--collect-only", "-q"))
    assert len(other) == 12 and other != first


def test_a_function_source_draws_the_same_rows_everywhere(pytester: pytest.Pytester) -> None:
    source = 'lambda rng: {"a": 10 + int(rng.random() * 90), "b": 10 + int(rng.random() * 90)}'
    project(pytester, source=source)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*12 passed*"])
    rows = samples(pytester.path)
    assert all(row["prompt"].endswith("=") for row in rows.values())


def test_the_held_out_check_flags_a_drawn_case_found_in_training_data(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.runpytest()
    prompt = next(iter(samples(pytester.path).values()))["prompt"]
    a, b = (int(x) for x in prompt.rstrip("=").split("+"))
    pytester.makefile(".jsonl", train=json.dumps({"prompt": prompt, "completion": str(a + b)}) + "\n")
    result = pytester.runpytest("--llmeval-train-data", "train.jsonl", "-W", "always")
    result.stdout.fnmatch_lines(["*1 of 12 cases of test_sums.py::test_sums appear in the training data*"])


def test_a_strategy_that_cannot_draw_is_one_line(pytester: pytest.Pytester) -> None:
    project(pytester, source="st.nothing()")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["llmeval: le.generated: the strategy cannot draw (Unsatisfiable: *); check it"])
    assert "Traceback" not in result.stdout.str()
