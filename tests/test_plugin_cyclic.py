"""``le.cases(..., choices=..., permute="cyclic")``: every rotation of a case's options is an item
(``q-0~rot1``); the case passes only when every rotation is right (CircularEval); the report counts
the positions chosen; a ranked suite shows calibration figures (ECE, Brier, selective accuracy)
computed from its choices' loglikelihoods, in the terminal and results.json."""

from __future__ import annotations

import json

import pytest
from echo_project import CONFTEST, INI, calls, results, samples

from pytest_llmeval.results.calibration import calibration

pytest_plugins = ["pytester"]

COLOURS = ["red", "green", "blue", "amber"]
LISTED = "{question} Options: {choices[0]}, {choices[1]}, {choices[2]}, {choices[3]}."
"""A prompt that shows the options in their order, so that a model can prefer a position."""

SUITE = """
import pytest_llmeval as le

COLOURS = {colours!r}
CASES = [{{"id": f"q-{{i}}", "question": f"Pick {{COLOURS[i % 4]}}.", "choices": COLOURS, "answer": i % 4}} for i in range(8)]

@le.cases(CASES, prompt={prompt!r}, choices="choices"{extra})
def test_mc(case, ranked):
    le.assert_choice(ranked, case["answer"])
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_mc=SUITE.format(colours=COLOURS, prompt="{question}", extra=', permute="cyclic"'))
    return pytester


def test_each_rotation_is_an_item(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_mc.py::test_mc[[]q-0~rot0[]]", "test_mc.py::test_mc[[]q-0~rot3[]]"])
    assert "32 tests collected" in result.stdout.str()


def test_a_model_that_reads_the_question_passes_every_rotation(project: pytest.Pytester) -> None:
    result = project.runpytest()
    assert result.ret == 0
    suite = results(project.path)["suites"]["test_mc.py::test_mc"]
    assert (suite["n"], suite["passed"]) == (8, 8)  # cases, not rotations
    cyclic = suite["cyclic"]
    assert (cyclic["cases"], cyclic["circular_passed"], cyclic["as_written_passed"]) == (8, 8, 8)
    assert cyclic["counts"] == [8, 8, 8, 8] and cyclic["expected"] == [8, 8, 8, 8]
    rows = samples(project.path)
    assert {r["rotation"] for r in rows.values()} == {0, 1, 2, 3}
    # the answer moved with its option in every rotation
    for (_, cid), row in rows.items():
        assert row["choices"][row["answer_index"]] == COLOURS[int(cid.split("~")[0][2:]) % 4]
    result.stdout.fnmatch_lines(["*CircularEval 100.0%: 8 of 8 cases right under every rotation*",
                                 "*positions chosen over 32 rotations: A 8, B 8, C 8, D 8*"])  # fmt: skip
    # the prompt does not show the options: every rotation asks for the same (context, choice)
    # pairs, so the model ranks each question once, not once per rotation (8 cases, 4 questions:
    # q-0 and q-4 ask the same)
    assert calls(project.path) == [["rank", 4]]


def test_a_model_that_prefers_a_position_fails_circular_eval_and_shows_it(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_RANK", "first")
    project.makepyfile(test_mc=SUITE.format(colours=COLOURS, prompt=LISTED, extra=', permute="cyclic"'))
    project.runpytest()
    assert calls(project.path) == [["rank", 16]]  # the options in the prompt: each rotation of the 4 questions is a prompt
    suite = results(project.path)["suites"]["test_mc.py::test_mc"]
    assert (suite["n"], suite["passed"]) == (8, 0)
    cyclic = suite["cyclic"]
    assert cyclic["as_written_passed"] == 2  # q-0 and q-4 have their answer first as written
    assert cyclic["circular_passed"] == 0 and cyclic["counts"] == [32, 0, 0, 0]
    misses = [r for (_, cid), r in samples(project.path).items() if r["outcome"] == "fail"]
    assert misses  # each rotation keeps its own record and reason


def test_a_ranked_suite_shows_calibration_equal_to_the_module(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_mc=SUITE.format(colours=COLOURS, prompt="{question}", extra=""))
    result = pytester.runpytest()
    suite = results(pytester.path)["suites"]["test_mc.py::test_mc"]
    rows = [r for r in samples(pytester.path).values()]
    expected = calibration([r["loglikelihoods"] for r in rows], [r["answer_index"] for r in rows])
    assert suite["calibration"] == json.loads(json.dumps(expected.as_dict()))
    assert "cyclic" not in suite and "robustness" not in suite
    result.stdout.fnmatch_lines(["*calibration over 8 cases: ECE *(10 bins)*Brier *selective accuracy at 10%*"])


def test_a_generation_suite_has_no_calibration(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_g="""
import pytest_llmeval as le

@le.cases([{"id": "a", "prompt": "x"}])
def test_g(case, completion):
    le.assert_contains(completion, "x")
""")
    result = pytester.runpytest()
    assert "calibration" not in results(pytester.path)["suites"]["test_g.py::test_g"]
    assert "beyond accuracy" not in result.stdout.str()
