"""Each case's outcome is what the table says: misses are data, errors are errors in every phase."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

EVALS = """
import pytest
import pytest_llmeval as le

@le.cases([{"id": f"c{i}", "x": i} for i in range(6)])
def test_values(case):
    assert case["x"] % 2 == 0, "odd"

def test_plain_after():
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = out\n")
    pytester.makepyfile(test_evals=EVALS)
    return pytester


def outcomes(pytester: pytest.Pytester) -> dict[str, str]:
    rows = read_samples(pytester.path / "out" / "samples.jsonl")
    return {row["id"]: row["outcome"] for row in rows}


@pytest.mark.parametrize("flag", ["-x", "--maxfail=1", "--sw"])
def test_misses_do_not_stop_the_run(project: pytest.Pytester, flag: str) -> None:
    result = project.runpytest(flag)
    assert result.ret == 0
    counts = result.parseoutcomes()
    assert counts["passed"] == 4 and counts["missed"] == 3  # 3 even cases + the plain test; 3 odd ones
    assert len(outcomes(project)) == 6


def test_an_error_still_stops_x(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}"} for i in range(4)])
        def test_values(case):
            raise KeyError("broken scorer")
        """
    )
    result = pytester.runpytest("-x")
    assert result.ret == 1
    result.assert_outcomes(errors=1)  # stopped after the first: an error is not data


def test_strict_misses_are_failures_and_count_for_x(project: pytest.Pytester) -> None:
    result = project.runpytest("-x", "--llmeval-strict")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)


def test_a_teardown_error_makes_the_case_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = out\n")
    pytester.makepyfile(
        """
        import pytest
        import pytest_llmeval as le

        @pytest.fixture
        def resource():
            yield
            raise RuntimeError("teardown broke")

        @le.cases([{"id": "a"}, {"id": "b"}])
        def test_values(case, resource):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == 1
    assert outcomes(pytester) == {"a": "error", "b": "error"}
    result.stdout.no_fnmatch_line("*gate passed*")


def test_leaving_training_mode_is_an_error_even_when_the_answer_is_wrong(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\nllmeval_output = out\nllmeval_max_new_tokens = 2\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}, {"id": "b", "q": "y"}], prompt="{q}")
        def test_gen(case, completion, llm):
            if case.id == "a":
                llm.model.train()
                assert False, "wrong answer"
        """
    )
    result = pytester.runpytest()
    assert result.ret == 1
    assert outcomes(pytester) == {"a": "error", "b": "pass"}
    result.stdout.fnmatch_lines(["*left the model in training mode*"])


def test_xdist_misses_do_not_stop_maxfail(project: pytest.Pytester) -> None:
    result = project.runpytest("-n", "2", "--maxfail=1")
    assert result.ret == 0
    assert len(outcomes(project)) == 6


def test_lf_reruns_the_misses(project: pytest.Pytester) -> None:
    project.runpytest()
    result = project.runpytest("--lf")
    assert result.parseoutcomes()["missed"] == 3 and "passed" not in result.parseoutcomes()
    assert sorted(outcomes(project)) == ["c1", "c3", "c5"]


def test_prompts_cut_to_fit_the_context_are_counted_once_per_suite(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytester.makeini(
        f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\nllmeval_output = out\n"
        "llmeval_max_new_tokens = 2\nllmeval_max_length = 12\n"
    )
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        CASES = [{"id": "long1", "q": "word " * 40}, {"id": "long2", "q": "word " * 30}, {"id": "short", "q": "hi"}]

        @le.cases(CASES, prompt="{q}")
        def test_gen(case, completion):
            assert (completion.truncated > 0) == case.id.startswith("long")
        """
    )
    result = pytester.runpytest()
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_*.py::test_gen: 2 prompts longer than the model's context, cut from the left (by up to * tokens)*"])
    assert len([line for line in result.stdout.lines if "longer than the model's context" in line]) == 1
    rows = read_samples(pytester.path / "out" / "samples.jsonl")
    assert {row["id"] for row in rows} == {"long1", "long2", "short"}


REPORT_TEXT = """
import pytest

LONGREPRS = {}

@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if report.when == "call":
        LONGREPRS[report.nodeid] = report.longreprtext

def pytest_sessionfinish(session):
    import json, pathlib
    pathlib.Path("longreprs.json").write_text(json.dumps(LONGREPRS))
"""


@pytest.mark.parametrize("strict", [False, True])
def test_a_miss_report_carries_its_reason_and_a_strict_one_the_traceback(project: pytest.Pytester, strict: bool) -> None:
    """A miss that shows as MISSED gets its one-line reason, not pytest's traceback (building that reads
    and parses the test's source for every miss: most of a large cached re-run's time); a strict miss
    is a failure and keeps the traceback that shows the test's line."""
    import json

    project.makeconftest(REPORT_TEXT)
    result = project.runpytest(*(["--llmeval-strict"] if strict else []))
    assert result.ret == (1 if strict else 0)
    texts = json.loads((project.path / "longreprs.json").read_text())
    missed = {nodeid: text for nodeid, text in texts.items() if "test_values" in nodeid and text}
    assert len(missed) == 3
    for text in missed.values():
        if strict:
            assert 'assert case["x"] % 2 == 0, "odd"' in text
        else:
            assert text == "odd"
