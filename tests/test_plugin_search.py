"""``le.cases(..., perturb=[...], search=N)``: after the cases as written, the item ``[~search]``
searches every passing case for its smallest breaking change, all cases at once (one batched model
call per round), scoring each variant with the test itself; the report shows the original, the
change and both answers; the change is remembered in the project's ``.hypothesis/`` folder and
tried first next run."""

from __future__ import annotations

import pytest
from echo_project import CONFTEST, INI, calls, results

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le

CASES = [{{"id": f"s-{{i}}", "question": f"Name the capital city of country number {{i}}.", "answer": "capital"}} for i in range({n})]

@le.cases(CASES, prompt="{{question}}", perturb=[le.perturb.typos(rate=0.1)], search=20)
def test_s(case, completion{args}):
{body}
"""

BODY = '    le.assert_contains(completion, case["answer"])'


def make_project(pytester: pytest.Pytester, n: int = 6, args: str = "", body: str = BODY, conftest: str = CONFTEST) -> pytest.Pytester:
    """The echo model's project with the suite ``test_s`` of ``n`` cases (its test's extra
    arguments ``args`` and its ``body``)."""
    pytester.makeini(INI)
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_s=SUITE.format(n=n, args=args, body=body))
    return pytester


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester)


def search_of(path, out: str = "out") -> dict:
    return results(path, out)["suites"]["test_s.py::test_s"]["search"]


def test_the_search_finds_the_smallest_breaking_change_in_batched_rounds(project: pytest.Pytester) -> None:
    result = project.runpytest()
    assert result.ret == 0
    found = search_of(project.path)
    assert [f["case"] for f in found["searched"]] == [f"s-{i}" for i in range(6)]
    for f in found["searched"]:
        assert f["broken"] and not f["remembered"]
        (field, (before, after)), = f["changed"].items()
        assert field == "question" and len(before) == len(after)
        assert sum(a != b for a, b in zip(before, after)) == 1  # shrunk to one typo, in "capital"
        assert "capital" in before and "capital" not in after
        assert f["answer"] == before and f["variant_answer"] == after  # the echo model answers with the prompt
    # one backend call per round, holding every search still running: never one call per variant
    generate = [n for kind, n in calls(project.path) if kind == "generate"]
    assert generate[0] == 12  # the cases as written and their variants, one batch
    assert len(generate) - 1 == found["rounds"] and sum(generate[1:]) == found["judged"]
    assert generate[1] == 6 and max(generate[1:]) == 6
    result.stdout.fnmatch_lines(["*search=20: 6 of 6 searches found a change that breaks a passing case*",
                                 "      s-0~typos: question 'Name the capital*' -> 'Name the *; answer *"])  # fmt: skip


def test_a_found_change_is_tried_first_next_run(project: pytest.Pytester) -> None:
    project.runpytest("--llmeval-output=first")
    assert (project.path / ".hypothesis" / "examples").is_dir()
    project.runpytest("--llmeval-output=second")
    first, second = search_of(project.path, "first"), search_of(project.path, "second")
    assert all(f["remembered"] for f in second["searched"])
    assert [f["changed"] for f in second["searched"]] == [f["changed"] for f in first["searched"]]
    assert second["judged"] < first["judged"]
    assert second["rounds"] == 1  # the remembered changes, in one batch


def test_the_search_is_the_same_under_xdist(project: pytest.Pytester) -> None:
    project.runpytest("--llmeval-output=serial")
    (project.path / ".hypothesis").rename(project.path / "hypothesis-serial")
    project.runpytest("-n", "2", "--llmeval-output=xdist")
    # the finding must be the same; how many evaluations hypothesis spent on it is not compared:
    # its shrinking stops on wall-clock limits, so on a loaded machine the count can differ
    strip = lambda s: [{k: v for k, v in f.items() if k not in ("remembered", "evaluations")} for f in s["searched"]]  # noqa: E731
    assert strip(search_of(project.path, "xdist")) == strip(search_of(project.path, "serial"))


def test_only_passing_cases_are_searched_and_the_search_counts_in_no_rate(pytester: pytest.Pytester) -> None:
    body = '    assert not case.id.startswith("s-1"), "no"\n' + BODY
    make_project(pytester, n=4, body=body)
    result = pytester.runpytest("-k", "not ~typos")
    suite = results(pytester.path)["suites"]["test_s.py::test_s"]
    assert suite["n"] == 4 and suite["passed"] == 3
    assert suite["search"]["not_passing"] == ["s-1"]
    assert [f["case"] for f in suite["search"]["searched"]] == ["s-0", "s-2", "s-3"]
    result.stdout.fnmatch_lines(["*3 passed, 1 missed in 1 suite*"])


def test_an_error_on_a_variant_is_an_error_never_a_miss(pytester: pytest.Pytester) -> None:
    body = '    if "capital" not in completion:\n        raise KeyError("scorer bug")\n' + BODY
    make_project(pytester, n=3, body=body)
    result = pytester.runpytest("-k", "not ~typos")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["llmeval: 3 of 3 searches errored; first s-0~typos: KeyError: 'scorer bug'",
                                 "*test_s.py::test_s: its search errored: 3 of 3 searches errored*"])  # fmt: skip
    found = search_of(pytester.path)["searched"]
    assert all(f["error"] == "KeyError: 'scorer bug'" for f in found)
    assert "Traceback" not in result.stdout.str()


def test_a_fixture_that_depends_on_the_case_is_refused(pytester: pytest.Pytester) -> None:
    conftest = CONFTEST + '''

import pytest

@pytest.fixture
def expected(case):
    return case["answer"]
'''
    make_project(pytester, n=2, args=", expected, tmp_path", body="    le.assert_contains(completion, expected)", conftest=conftest)
    result = pytester.runpytest("-k", "~search")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*search= calls the test once per variant, but fixture 'expected' depends on the case*"])
