"""The flags and plugins pytest users already have: pytest-timeout, pytest-rerunfailures,
JUnit XML, an ``llm_settings`` override next to ``--llmeval-*`` options, and a gate line that
agrees with the exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

BACKEND_CONFTEST = '''
import json, os, time
from pytest_llmeval import Completion

LOG = os.path.join(os.path.dirname(__file__), "backend.log")
HANG_ON = {hang_on!r}


class ChunkBackend:
    """Answers each prompt with its last word, {size} requests per call. The first call that
    includes the answer HANG_ON sleeps far past any --timeout (the timeout interrupts it).
    backend.log gets a line per call started and per call done."""

    capabilities = frozenset({{"generate"}})

    def __init__(self, settings):
        self.settings = settings
        self.hung = False

    @property
    def fingerprint(self):
        return {{"model": "chunks"}}

    def describe(self):
        return "chunks"

    def batch_size(self):
        return {size}

    def check(self):
        return None

    def run_generate(self, requests, progress=None):
        ids = [r.text.split()[-1] for r in requests]
        log("started", ids)
        if HANG_ON in ids and not self.hung:
            self.hung = True
            time.sleep(20)
        log("done", ids)
        if progress:
            progress(len(requests))
        return [Completion(i, prompt=r.text) for i, r in zip(ids, requests)]

    def run_rank(self, requests, progress=None):
        raise NotImplementedError


def log(what, ids):
    with open(LOG, "a") as f:
        f.write(json.dumps([what, ids]) + "\\n")


def pytest_llmeval_make_backend(config, settings):
    return ChunkBackend(settings)
'''

NINE_CASES = """
import pytest_llmeval as le

@le.cases([{"id": f"c{i}", "answer": f"w{i}"} for i in range(9)], prompt="say {answer}")
def test_say(case, completion):
    le.assert_exact(completion, case["answer"])
"""


def chunk_project(pytester: pytest.Pytester, *, hang_on: str = "", size: int = 3) -> pytest.Pytester:
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = out\n")
    pytester.makeconftest(BACKEND_CONFTEST.format(hang_on=hang_on, size=size))
    pytester.makepyfile(test_say=NINE_CASES)
    return pytester


def samples(pytester: pytest.Pytester) -> list[dict]:
    return read_samples(pytester.path / "out" / "samples.jsonl")


def backend_calls(pytester: pytest.Pytester, what: str) -> list[list[str]]:
    """The answers of each backend call that started (or finished: ``what="done"``)."""
    lines = [json.loads(line) for line in (pytester.path / "backend.log").read_text().splitlines()]
    return [ids for kind, ids in lines if kind == what]


# pytest-timeout ---------------------------------------------------------------------------


def test_a_batch_that_outlasts_the_timeout_loses_no_work_and_every_item_continues(pytester: pytest.Pytester) -> None:
    """A batch runs off the waiting item's clock (tests/test_plugin_timeout.py): a chunk longer
    than --timeout is computed once, and no item restarts it."""
    pytest.importorskip("pytest_timeout")
    chunk_project(pytester, hang_on="w4")  # the first item's second chunk outlasts the timeout
    result = pytester.runpytest("--timeout=1", "-p", "no:cacheprovider")
    outcomes = {row["id"]: row["outcome"] for row in samples(pytester)}
    assert outcomes == {f"c{i}": "pass" for i in range(9)}
    done, started = backend_calls(pytester, "done"), backend_calls(pytester, "started")
    assert sorted(i for call in done for i in call) == [f"w{i}" for i in range(9)]
    assert sum(map(len, started)) == 9 and all(len(call) <= 3 for call in started)  # each answer computed once
    result.stdout.fnmatch_lines(["*llmeval: 9 completions in batches of up to 3*"])
    assert result.ret == 0


def test_with_reruns_nothing_is_rerun_and_nothing_computed_twice(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    pytest.importorskip("pytest_rerunfailures")
    chunk_project(pytester, hang_on="w4")
    result = pytester.runpytest("--timeout=1", "--reruns=1", "-p", "no:cacheprovider")
    assert result.ret == 0
    rows = samples(pytester)
    assert sorted(row["id"] for row in rows) == [f"c{i}" for i in range(9)]
    assert {row["outcome"] for row in rows} == {"pass"}
    assert sum(map(len, backend_calls(pytester, "started"))) == 9


# pytest-rerunfailures ---------------------------------------------------------------------

RERUN_SUITE = """
import os
import pytest_llmeval as le

RUNS = os.path.join(os.path.dirname(__file__), "runs.log")
CASES = [{"id": f"c{i}", "x": i} for i in range(6)] + [{"id": "broken"}, {"id": "flaky"}]

@le.cases(CASES)
def test_values(case):
    with open(RUNS, "a") as f:
        f.write(case.id + "\\n")
    if case.id == "broken":
        raise KeyError("scorer bug")
    if case.id == "flaky":
        runs = open(RUNS).read().split().count("flaky")
        if runs == 1:
            raise ConnectionError("judge unreachable")
        return
    assert case["x"] % 2 == 0, "odd"
"""


def test_reruns_repeat_errors_only_and_every_case_counts_once(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_rerunfailures")
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = out\n")
    pytester.makepyfile(test_rerun=RERUN_SUITE)
    result = pytester.runpytest("--reruns=2", "-p", "no:cacheprovider")
    runs = (pytester.path / "runs.log").read_text().split()
    assert {cid: runs.count(cid) for cid in set(runs)} == {
        **{f"c{i}": 1 for i in range(6)},  # misses (c1, c3, c5) are data: never rerun
        "broken": 3,
        "flaky": 2,
    }
    outcomes = {row["id"]: row["outcome"] for row in samples(pytester)}
    assert len(samples(pytester)) == 8
    assert outcomes == {"c0": "pass", "c1": "fail", "c2": "pass", "c3": "fail", "c4": "pass", "c5": "fail", "broken": "error", "flaky": "pass"}
    result.stdout.fnmatch_lines(["llmeval: 4 passed, 3 missed, 1 error in 1 suite"])
    assert result.ret == 1  # the error that stayed an error


# reports other tools read -----------------------------------------------------------------

MISSES_ONLY = """
import pytest
import pytest_llmeval as le

@pytest.fixture
def resource(case):
    yield
    if case.id == "td":
        raise RuntimeError("teardown broke")

@le.cases([{"id": f"c{i}", "x": i} for i in range(4)])
def test_values(case):
    assert case["x"] % 2 == 0, f"{case['x']} is odd"

@le.cases([{"id": "td"}])
def test_teardown(case, resource):
    pass
"""


def junit_cases(path: Path) -> dict[str, dict[str, str]]:
    root = ET.parse(path).getroot()
    return {
        tc.get("name", ""): {p.get("name", ""): p.get("value", "") for p in tc.iter("property")}
        for tc in root.iter("testcase")
    }


def test_junit_xml_shows_misses_as_passed_testcases_with_their_outcome(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_misses=MISSES_ONLY)
    result = pytester.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider", "-k", "test_values")
    assert result.ret == 0
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert junit_cases(pytester.path / "junit.xml") == {
        "test_values[c0]": {"llmeval_outcome": "pass"},
        "test_values[c1]": {"llmeval_outcome": "missed", "llmeval_reason": "1 is odd"},
        "test_values[c2]": {"llmeval_outcome": "pass"},
        "test_values[c3]": {"llmeval_outcome": "missed", "llmeval_reason": "3 is odd"},
    }


def test_junit_xml_gets_the_outcome_of_a_teardown_error_not_the_whole_record(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_misses=MISSES_ONLY)
    pytester.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider", "-k", "test_teardown")
    assert junit_cases(pytester.path / "junit.xml") == {"test_teardown[td]": {"llmeval_outcome": "error"}}


ERRORS_TOO = MISSES_ONLY + """

@le.cases([{"id": "boom"}])
def test_broken(case):
    raise KeyError("no such field")
"""


def cell_text(html: str) -> str:
    """The text a browser shows for an HTML fragment (attributes are not text)."""
    from html.parser import HTMLParser

    parts: list[str] = []
    parser = HTMLParser()
    parser.handle_data = parts.append  # type: ignore[method-assign]
    parser.feed(html)
    return "".join(parts)


def pytest_html_page(pytester: pytest.Pytester, *args: str) -> tuple[str, dict[str, dict]]:
    pytest.importorskip("pytest_html")
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_misses=ERRORS_TOO)
    pytester.runpytest("--html=report.html", "-p", "no:cacheprovider", "-k", "test_values or test_broken", *args)
    page = (pytester.path / "report.html").read_text()
    blob = json.loads(unescape(page.split('data-jsonblob="', 1)[1].split('"', 1)[0]))
    return page, {test_id.split("[")[1].rstrip("]"): rows[0] for test_id, rows in blob["tests"].items()}


def test_pytest_html_reads_missed_and_error_as_the_terminal_does(pytester: pytest.Pytester) -> None:
    """A miss reads Missed, in its own colour, and stays among pytest-html's Passed (its filters
    and counts follow pytest, for which a miss passed); an error in a test's call reads Error."""
    page, tests = pytest_html_page(pytester)
    assert {cid: row["result"] for cid, row in tests.items()} == {"c0": "Passed", "c1": "Passed", "c2": "Passed", "c3": "Passed", "boom": "Failed"}
    shown = {cid: cell_text(row["resultsTableRow"][0]) for cid, row in tests.items()}
    assert shown == {"c0": "Passed", "c1": "Missed", "c2": "Passed", "c3": "Missed", "boom": "Error"}
    assert 'style="color:#b35900">Missed</td>' in tests["c1"]["resultsTableRow"][0]
    assert tests["c1"]["log"].startswith("llmeval: MISSED: 1 is odd")
    assert "MISSED" not in tests["c0"]["log"]
    summary = page.split('<p class="llmeval-summary">', 1)[1].split("</p>", 1)[0]
    assert summary.startswith("llmeval: 2 passed, 2 missed, 1 error in 2 suites (a miss is a wrong answer, not a failed test")


def test_pytest_html_under_strict_keeps_misses_failed(pytester: pytest.Pytester) -> None:
    page, tests = pytest_html_page(pytester, "--llmeval-strict")
    assert tests["c1"]["result"] == "Failed" and "Missed" not in tests["c1"]["resultsTableRow"][0]
    assert "among the Passed" not in page


def test_pytest_html_page_shows_missed_rows_in_a_browser(pytester: pytest.Pytester) -> None:
    from browser import start_browser

    pytest_html_page(pytester)
    for driver in start_browser():
        driver.get((pytester.path / "report.html").resolve().as_uri())
        from selenium.webdriver.support.ui import WebDriverWait

        rows = WebDriverWait(driver, 60).until(lambda d: d.find_elements("css selector", "#results-table tbody.results-table-row") or False)
        cells = {r.find_element("css selector", ".col-testId").text.split("[")[1].rstrip("]"): r.find_element("css selector", ".col-result") for r in rows}
        assert {cid: c.text for cid, c in cells.items()} == {"c0": "Passed", "c1": "Missed", "c2": "Passed", "c3": "Missed", "boom": "Error"}
        assert cells["c1"].value_of_css_property("color") in ("rgba(179, 89, 0, 1)", "rgb(179, 89, 0)")
        assert cells["c0"].value_of_css_property("color") != cells["c1"].value_of_css_property("color")


def test_junit_xml_has_an_error_for_an_error_and_no_failure_for_a_miss(pytester: pytest.Pytester) -> None:
    """The terminal's words: a miss passes (its outcome a property), an error in the test's call is
    an <error> (pytest would write <failure>), a miss under --llmeval-strict is a <failure>."""
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_misses=ERRORS_TOO)
    result = pytester.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider", "-k", "test_values or test_broken")
    result.stdout.fnmatch_lines(["ERROR test_misses.py::test_broken[[]boom] - KeyError*"])
    root = ET.parse(pytester.path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None and (suite.get("errors"), suite.get("failures"), suite.get("tests")) == ("1", "0", "5")
    [case] = [tc for tc in root.iter("testcase") if tc.get("name") == "test_broken[boom]"]
    assert [child.tag for child in case if child.tag in ("error", "failure")] == ["error"]
    assert case.find("error").get("message", "").startswith("error in the test's call: KeyError")  # type: ignore[union-attr]
    strict = pytester.runpytest("--junitxml=strict.xml", "-p", "no:cacheprovider", "-k", "test_values", "--llmeval-strict")
    strict.stdout.fnmatch_lines(["FAILED test_misses.py::test_values[[]c1]*"])
    suite = ET.parse(pytester.path / "strict.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("errors"), suite.get("failures")) == ("0", "2")


# an llm_settings override next to --llmeval-* options --------------------------------------

SETTINGS_SUITE = """
import pytest_llmeval as le

@le.cases([{"id": f"c{i}", "answer": f"w{i}"} for i in range(3)], prompt="say {answer}")
def test_say(case, completion, llm):
    le.assert_exact(completion, case["answer"])
"""


@pytest.mark.parametrize(
    "override,args,ignored",
    [
        ("return {'model': 'from-fixture', 'seed': 7}", ["--llmeval-model=cli", "--llmeval-seed=5"], "--llmeval-model, --llmeval-seed"),
        ("return llm_settings.replace(model='from-fixture')", ["--llmeval-model=cli", "--llmeval-max-new-tokens=9"], "--llmeval-model"),
        ("return llm_settings.replace(model='from-fixture')", ["--llmeval-max-new-tokens=9"], None),
        ("return {'model': 'from-fixture'}", [], None),
        (None, ["--llmeval-model=cli", "--llmeval-seed=5"], None),
    ],
    ids=["replaced", "extended", "extended-follows-cli", "no-cli-options", "no-override"],
)
def test_model_options_an_llm_settings_fixture_ignores_are_named_once(
    pytester: pytest.Pytester, override: str | None, args: list[str], ignored: str | None
) -> None:
    chunk_project(pytester)
    pytester.makepyfile(test_say=SETTINGS_SUITE)
    if override is not None:
        conftest = (pytester.path / "conftest.py").read_text()
        fixture = f"\n\nimport pytest\n\n@pytest.fixture(scope='session')\ndef llm_settings({'llm_settings' if 'replace' in override else ''}):\n    {override}\n"
        (pytester.path / "conftest.py").write_text(conftest + fixture)
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    if ignored is None:
        assert "LLMEvalIgnoredOptionsWarning" not in text
    else:
        assert text.count("LLMEvalIgnoredOptionsWarning") == 1
        result.stdout.fnmatch_lines([f"*llmeval: an llm_settings fixture overrides the plugin's * so {ignored} given on the command line ha* no effect*"])


# the gate line and the exit status -------------------------------------------------------

PASSING_EVALS = """
import pytest
import pytest_llmeval as le

@le.cases([{"id": f"c{i}"} for i in range(3)])
def test_evals(case):
    pass

def test_plain():
    assert PLAIN

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_plain_error(broken):
    pass

@le.cases([{"id": f"d{i}"} for i in range(2)])
def test_evals_after(case):
    pass
"""


@pytest.mark.parametrize(
    "plain,args,ret,reasons",
    [
        ("False", ["-k", "not error"], 1, "1 failed test"),
        ("True", ["-x"], 1, "1 error outside the eval cases; pytest stopped early (stopping after 1 failures), so later tests did not run"),
        ("False", [], 1, "1 failed test; 1 error outside the eval cases"),
    ],
    ids=["plain-failure", "x-stops-on-an-error", "failure-and-error"],
)
def test_a_passing_gate_says_when_the_run_fails_for_other_reasons(
    pytester: pytest.Pytester, plain: str, args: list[str], ret: int, reasons: str
) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_mixed=PASSING_EVALS.replace("PLAIN", plain))
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret == ret
    result.stdout.fnmatch_lines(["llmeval gate passed: *", f"llmeval: the gate passed, but the run failed for other reasons: {reasons}"])


def test_a_collection_error_elsewhere_is_named_next_to_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_evals=PASSING_EVALS.replace("PLAIN", "True"), test_broken="import nosuchmodule_xyz\n")
    result = pytester.runpytest("--continue-on-collection-errors", "-k", "not error", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["llmeval: the gate passed, but the run failed for other reasons: 1 collection error"])


def test_a_clean_run_has_no_other_reasons_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_mixed=PASSING_EVALS.replace("PLAIN", "True"))
    result = pytester.runpytest("-k", "not error", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["llmeval gate passed: 5 passed, 0 missed in 2 suites"])
    result.stdout.no_fnmatch_line("*other reasons*")
