"""The benchmarks' own solutions pass in the sandbox, and a wrong one does not.

All 164 canonical HumanEval solutions run (in parallel) under ``none`` everywhere and under
``bwrap`` where bubblewrap can run; the MBPP-format sample's solutions under both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from humaneval_official import problems
from sandboxes import sandbox_named

import pytest_llmeval as le
from pytest_llmeval.scoring.code import CodePool, Job, Limits

MBPP_SAMPLE = Path(__file__).parent / "data" / "mbpp_sample.jsonl"
# A generous limit: 164 programs share the machine's cores with whatever else runs there; the
# slowest canonical solution needs well under a second of CPU.
LIMITS = Limits(timeout=60)


@pytest.fixture(params=["bwrap", "none"])
def sandbox(request):
    return sandbox_named(request.param)


def run_all(sandbox, jobs):
    pool = CodePool()
    try:
        return pool.map(sandbox, jobs)
    finally:
        pool.shutdown()


def test_all_164_canonical_humaneval_solutions_pass(sandbox):
    rows = problems()
    jobs = [Job(r["prompt"] + r["canonical_solution"], r["test"], r["entry_point"], LIMITS) for r in rows]
    verdicts = run_all(sandbox, jobs)
    failing = {r["id"]: v.reason for r, v in zip(rows, verdicts) if not v.passed}
    assert failing == {} and len(verdicts) == 164


def test_a_solution_to_another_problem_fails(sandbox):
    rows = problems()
    wrong = [Job(rows[i]["prompt"] + rows[i + 1]["canonical_solution"], rows[i]["test"], rows[i]["entry_point"], LIMITS) for i in range(0, 20, 2)]
    assert not any(v.passed for v in run_all(sandbox, wrong))


def test_the_mbpp_sample_solutions_pass(sandbox):
    rows = le.formats.mbpp(MBPP_SAMPLE)
    verdicts = run_all(sandbox, [Job(r["code"], r["test"], None, LIMITS) for r in rows])
    assert [v.status for v in verdicts] == ["passed"] * 3
    broken = run_all(sandbox, [Job(rows[0]["code"].replace("n * n", "n + n"), rows[0]["test"], None, LIMITS)])
    assert broken[0].status == "failed" and "sum_squares([1, 2, 3]) == 14" in broken[0].reason
