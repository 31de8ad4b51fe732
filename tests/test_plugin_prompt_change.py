"""A changed prompt, as a user meets it: INCOMPARABLE with the baseline's rate and the change
(not judged), the template's text as a diff, accepted with one command; the baseline keeps the
prompt's text, and a baseline recorded before it did still reads and compares."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le

CASES = [{{"id": f"c{{i}}", "q": i}} for i in range(8)]

@le.cases(CASES, prompt={prompt!r})
def test_math(case):
    assert case["q"] < {passing}
"""
OLD = "Question: {q}\nAnswer with a number."
NEW = "Question: {q}\nReply with the number only."


def write(pytester: pytest.Pytester, prompt: str, passing: int) -> None:
    pytester.makepyfile(test_math=SUITE.format(prompt=prompt, passing=passing))


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nllmeval_baseline = baseline.json\nllmeval_history = off\n")
    write(pytester, OLD, passing=4)
    assert pytester.runpytest("--llmeval-update-baseline", "-p", "no:cacheprovider").ret == 0
    return pytester


def test_a_changed_prompt_shows_the_rates_and_the_diff_and_is_accepted_with_one_command(project: pytest.Pytester) -> None:
    stored = json.loads((project.path / "baseline.json").read_text())["suites"]["test_math.py::test_math"]
    assert stored["fingerprint"]["prompt_text"] == OLD
    write(project, NEW, passing=7)
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "test_math.py::test_math  8 *INCOMPARABLE (prompt; baseline 50.0%)",
            "test_math.py::test_math: INCOMPARABLE: prompt differs from the baseline",
            "  not comparable: 50.0% in the baseline, 87.5% now (+37.5 pts on 8 shared cases, p=0.25)",
            "  prompt, baseline -> this run:",
            "     Question: {q}",
            "    -Answer with a number.",
            "    +Reply with the number only.",
            "1 suite ran with a different prompt than the baseline records: test_math.py::test_math",
            "  if the change is intended, re-record with: pytest *test_math.py::test_math --llmeval-update-baseline",
        ]
    )
    result.stdout.no_fnmatch_line("*sha256:*")
    accepted = project.runpytest("test_math.py::test_math", "--llmeval-update-baseline", "-p", "no:cacheprovider")
    assert accepted.ret == 0
    assert json.loads((project.path / "baseline.json").read_text())["suites"]["test_math.py::test_math"]["fingerprint"]["prompt_text"] == NEW
    assert project.runpytest("-p", "no:cacheprovider").ret == 0


def test_a_baseline_recorded_without_the_prompts_text_still_compares(project: pytest.Pytester) -> None:
    path = project.path / "baseline.json"
    data = json.loads(path.read_text())
    del data["suites"]["test_math.py::test_math"]["fingerprint"]["prompt_text"]  # as an older version wrote it
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert project.runpytest("-p", "no:cacheprovider").ret == 0  # the same prompt: nothing to say
    write(project, NEW, passing=4)
    result = project.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "test_math.py::test_math: INCOMPARABLE: prompt differs from the baseline",
            "  not comparable: 50.0% in the baseline, 50.0% now (+0.0 pts on 8 shared cases, p=1.00)",
            "  prompt: sha256:* -> sha256:*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
