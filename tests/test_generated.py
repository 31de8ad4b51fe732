"""Cases generated from a strategy or a seeded function: n distinct rows, stable ids, answers from
the oracle, the same rows for the same seed (in another process too), one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import strategies as st

from pytest_llmeval.datasets.casefiles import CaseError, load_cases
from pytest_llmeval.datasets.generated import generated, generated_id

PAIRS = st.fixed_dictionaries({"a": st.integers(0, 999), "b": st.integers(0, 999)})


def add(v):
    return v["a"] + v["b"]


def test_rows_are_distinct_answered_and_read_like_a_list_of_cases() -> None:
    rows = generated(PAIRS, n=50, expected=add, seed=3)
    assert len(rows) == 50 and len({r["id"] for r in rows}) == 50
    for row in rows:
        assert row["answer"] == row["a"] + row["b"]
        assert row["id"] == generated_id({"a": row["a"], "b": row["b"]})
    cases = load_cases(rows)
    assert [c.id for c in cases] == [r["id"] for r in rows] and cases[0]["answer"] == rows[0]["answer"]


def test_the_same_seed_draws_the_same_rows_and_more_rows_keep_the_first() -> None:
    assert generated(PAIRS, n=30, expected=add, seed=3) == generated(PAIRS, n=30, expected=add, seed=3)
    assert generated(PAIRS, n=30, seed=3) != generated(PAIRS, n=30, seed=4)
    assert generated(PAIRS, n=60, seed=3)[:30] == generated(PAIRS, n=30, seed=3)


def test_a_seeded_function_draws_rows_by_index() -> None:
    def draw(rng):
        return {"a": int(rng.random() * 1000), "b": int(rng.random() * 1000)}

    rows = generated(draw, n=40, expected=add, seed=9)
    assert rows == generated(draw, n=40, expected=add, seed=9)
    assert generated(draw, n=80, expected=add, seed=9)[:40] == rows
    # a value that is not a mapping lands in `value`
    assert generated(lambda rng: int(rng.random() * 10**9), n=3)[0].keys() == {"id", "value"}


def test_rows_are_the_same_in_another_process() -> None:
    script = textwrap.dedent(
        """
        import json
        from hypothesis import strategies as st
        from pytest_llmeval.datasets.generated import generated
        pairs = st.fixed_dictionaries({"a": st.integers(0, 999), "b": st.integers(0, 999)})
        print(json.dumps([generated(pairs, n=25, seed=3), generated(lambda r: r.random(), n=5, seed=1)]))
        """
    )
    outs = [json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                      env={"PYTHONHASHSEED": str(h), "PATH": "/usr/bin:/bin"}).stdout)
            for h in (0, 1)]
    assert outs[0] == outs[1]
    assert outs[0][0] == generated(PAIRS, n=25, seed=3)


def test_bad_input_is_one_line() -> None:
    with pytest.raises(CaseError, match=r"gave only 2 distinct cases of the 5 asked"):
        generated(st.booleans(), n=5)
    with pytest.raises(CaseError, match=r"expected\(.*\) raised ZeroDivisionError"):
        generated(PAIRS, n=5, expected=lambda v: 1 / 0)
    with pytest.raises(CaseError, match="cannot draw"):
        generated(st.integers().filter(lambda x: False), n=2)
    with pytest.raises(CaseError, match="takes a hypothesis strategy or a function"):
        generated([1, 2, 3], n=2)
    with pytest.raises(CaseError, match="already has an 'id' field"):
        generated(st.fixed_dictionaries({"id": st.integers()}), n=2)
    with pytest.raises(CaseError, match="n must be a whole number"):
        generated(PAIRS, n=0)
    for bad in (lambda: generated(st.booleans(), n=5), lambda: generated(PAIRS, n=5, expected=lambda v: 1 / 0)):
        with pytest.raises(CaseError) as info:
            bad()
        assert "\n" not in str(info.value)
