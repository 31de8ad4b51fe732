"""The HTML report: its data, its escaping, the commands that write it, and the page in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from browser import open_page, start_browser
from html_runs import HOSTILE, chatml, make_records, write_run
from pytest_llmeval.__main__ import main
from pytest_llmeval.results.html import case_rows, chat_turns, compare_page, embed_json, load_run_dir, render_page, run_page

ADD, CAP = "evals/test_a.py::test_add", "evals/test_b.py::test_cap"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """r0 records the baseline; r1 flips cases both ways against it; one r1 completion is hostile markup."""
    base = tmp_path / "baseline.json"
    write_run(tmp_path / "r0", make_records(ADD, 30, failing=[1, 2]) + make_records(CAP, 10, failing=[3]), baseline=base, update=True)
    r1 = make_records(ADD, 30, failing=[2, 5, 6, 7, 8, 9, 10], hostile=5, markers=("slow",)) + make_records(CAP, 10, errors=[4])
    write_run(tmp_path / "r1", r1, baseline=base)
    return tmp_path


def flipped(results: dict) -> set[tuple[str, str]]:
    out = set()
    for name, suite in results["suites"].items():
        v = suite["verdict"]
        out |= {(name, c) for c in v["newly_failing"] + v["newly_passing"]}
    return out


# ---------------------------------------------------------------- data and escaping


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids)))
def test_embedded_json_reads_back_and_holds_no_markup_characters(value: Any) -> None:
    text = embed_json(value)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == value


def test_a_completion_with_script_and_markup_cannot_break_the_page(runs: Path) -> None:
    page = render_page(run_page(*load_run_dir(runs / "r1")))
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data's and the code's, nothing from the data
    assert "onerror" in page and "<img" not in page  # the text is there, escaped
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", page)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # nothing fetched


def test_chat_turns_of_a_message_list_are_kept_and_a_text_prompt_is_kept_once() -> None:
    assert chat_turns([{"role": "user", "content": "yo"}, {"role": "assistant", "content": "hey"}]) == [["user", "yo"], ["assistant", "hey"]]
    assert chat_turns(chatml("Hi")) is None  # the page splits rendered text itself
    rows = case_rows([{"suite": "s::t", "id": "a", "outcome": "pass", "prompt": [{"role": "user", "content": "yo"}]}], ["s::t"])
    assert rows[0]["d"]["turns"] == [["user", "yo"]] and json.loads(rows[0]["d"]["prompt"]) == [{"role": "user", "content": "yo"}]


def test_rows_put_flips_first_and_know_the_baseline_outcome(runs: Path) -> None:
    results, samples = load_run_dir(runs / "r1")
    data = run_page(results, samples)
    rows, names = data["cases"], [s["name"] for s in data["suites"]]
    flips = [(names[r["s"]], r["id"]) for r in rows if r.get("f")]
    assert set(flips) == flipped(results) and len(flips) == len(flipped(results))
    assert all(r.get("f") for r in rows[: len(flips)])
    by_key = {(names[r["s"]], r["id"]): r for r in rows}
    assert by_key[(ADD, "c001")]["b"] == "fail" and by_key[(ADD, "c001")]["f"] == "newly passing"
    assert by_key[(ADD, "c005")]["b"] == "pass" and by_key[(ADD, "c005")]["d"]["completion"] == HOSTILE
    assert by_key[(ADD, "c002")]["b"] == "fail" and "f" not in by_key[(ADD, "c002")]


def test_optional_fields_of_newer_records_are_shown() -> None:
    samples = [
        {"suite": "s::t", "id": "a", "outcome": "pass", "repeat": 0, "cost_usd": 0.002, "tokens_in": 10, "judge_label": "ok", "expected": 4},
        {"suite": "s::t", "id": "a", "outcome": "fail", "repeat": 1, "cost_usd": 0.003, "tokens_in": 12},
        {"suite": "s::t", "id": "b", "outcome": "pass", "repeat": 0},
    ]
    rows = case_rows(samples, ["s::t"])
    assert [(r["id"], r.get("r"), r.get("k")) for r in rows] == [("a", 0, 1), ("a", 1, 1), ("b", 0, None)]
    assert rows[0]["d"]["extra"] == {"cost_usd": 0.002, "judge_label": "ok", "repeat": 0} and rows[0]["d"]["expected"] == "4"
    results = {"suites": {"s::t": {"n": 3, "passed": 2, "pass_rate": 2 / 3, "ci": [0.2, 0.9], "cases": {}}}}
    usage = run_page(results, samples)["suites"][0]["usage"]
    assert usage["cost_usd"] == pytest.approx(0.005) and usage["tokens_in"] == 22


def test_compare_page_shows_both_completions_with_flips_first(runs: Path) -> None:
    a, b = load_run_dir(runs / "r0"), load_run_dir(runs / "r1")
    data = compare_page(a, b, labels=("r0", "r1"))
    assert data["mode"] == "compare" and data["other"] == "r0"
    n_flips = sum(1 for r in data["cases"] if r.get("f"))
    assert n_flips == len(flipped(b[0])) and all(r.get("f") for r in data["cases"][:n_flips])
    first = data["cases"][0]
    assert first["d"]["other_completion"] is not None and first["b"] != first["o"]
    assert {s["name"]: s["verdict"]["verdict"] for s in data["suites"]} == {ADD: "UNCHANGED", CAP: "UNCHANGED"}


# ---------------------------------------------------------------- commands


def test_report_command_writes_one_file(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(runs / "r1"), "--html", str(runs / "out" / "r.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (runs / "out" / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_report_command_on_a_folder_without_results_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path), "--html", str(tmp_path / "r.html")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json: no such file" in err[0] and "--llmeval-output" in err[0]


def test_compare_command_writes_the_side_by_side_page(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare", str(runs / "r0"), str(runs / "r1"), "--html", str(runs / "c.html")])
    assert code == 0 and "wrote" in capsys.readouterr().out
    assert '"mode":"compare"' in (runs / "c.html").read_text()


def test_pytest_option_writes_the_report_with_the_history(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = hist.sqlite\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}", "v": i} for i in range(6)])
        def test_cases(case):
            le.assert_exact("seven" if case["v"] % 3 else "three", "seven")
        """
    )
    for _ in range(2):
        result = pytester.runpytest("--llmeval-html=report.html")
        assert result.ret == 0
    result.stdout.fnmatch_lines(["*HTML report written to*report.html*"])
    text = (pytester.path / "report.html").read_text()
    data = json.loads(re.search(r'id="llmeval-data">(.*?)</script>', text, re.S).group(1))
    assert [(s["n"], s["passed"]) for s in data["suites"]] == [(6, 4)]
    assert [len(v) for v in data["history"].values()] == [2]  # both runs, this one included
    assert sorted(r["id"] for r in data["cases"] if r["o"] == "fail") == ["c0", "c3"]
    assert {r["d"].get("expected") for r in data["cases"] if r["o"] == "fail"} == {"seven"}  # the scorer's expected value


def test_pytest_option_with_an_unwritable_path_fails_the_run_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile("import pytest_llmeval as le\n\n@le.cases([{'id': 'a'}])\ndef test_a(case):\n    pass\n")
    (pytester.path / "blocker").write_text("a file, not a folder")
    result = pytester.runpytest("--llmeval-html=blocker/report.html")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*could not write the HTML report*check --llmeval-html*"])


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from start_browser()


def _page(runs: Path, name: str = "r.html") -> tuple[Path, dict]:
    results, samples = load_run_dir(runs / "r1")
    path = runs / name
    path.write_text(render_page(run_page(results, samples)), encoding="utf-8")
    return path, results


def _visible_cases(browser: Any) -> set[tuple[str, str]]:
    rows = browser.find_elements("css selector", "#cases .row")
    return {(r.get_attribute("data-suite"), r.get_attribute("data-case")) for r in rows}


def test_page_loads_without_console_errors_and_nothing_injected(browser: Any, runs: Path) -> None:
    path, _ = _page(runs)
    logs = open_page(browser, path)
    assert [e for e in logs if e["level"] in ("SEVERE", "WARNING")] == []
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.title == "pytest-llmeval report"


def test_suite_table_shows_the_runs_numbers(browser: Any, runs: Path) -> None:
    path, results = _page(runs)
    open_page(browser, path)
    shown = {}
    for row in browser.find_elements("css selector", "#suites tbody tr"):
        cells = [c.text for c in row.find_elements("tag name", "td")]
        shown[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]), int(cells[4]), cells[5], cells[8])
    expected = {
        name: (s["n"], s["passed"], s["failed"], s["errors"], f"{100 * s['pass_rate']:.1f}%", s["verdict"]["verdict"])
        for name, s in results["suites"].items()
    }
    assert shown == expected
    assert "gate failed" in browser.find_element("id", "gate").text  # r1 has an error


def test_filtering_to_flipped_cases_shows_exactly_the_flipped_cases(browser: Any, runs: Path) -> None:
    from selenium.webdriver.support.ui import Select

    path, results = _page(runs)
    open_page(browser, path)
    assert browser.find_element("id", "count").text == "40 of 40 cases"  # (rows beyond the view are not drawn)
    Select(browser.find_element("id", "f-flip")).select_by_value("any")
    assert _visible_cases(browser) == flipped(results)
    assert browser.find_element("id", "count").text == f"{len(flipped(results))} of 40 cases"
    Select(browser.find_element("id", "f-flip")).select_by_value("newly passing")
    assert _visible_cases(browser) == {(ADD, "c001"), (CAP, "c003")}


def test_a_case_opens_and_shows_its_prompt_as_turns_and_markup_as_text(browser: Any, runs: Path) -> None:
    path, _ = _page(runs)
    open_page(browser, path)
    browser.find_element("css selector", f'#cases .row[data-case="c005"][data-suite="{ADD}"]').click()
    detail = browser.find_element("id", "detail")
    turns = [t.text for t in detail.find_elements("css selector", ".turn")]
    assert turns[1] == "USER\nWhat is 5 plus one? <tag>&amp;"
    assert detail.find_element("css selector", "pre.completion").text == HOSTILE
    assert browser.execute_script("return window.pwned === undefined")
    assert "expected 5 in the answer" in detail.text and "newly failing" in detail.text


LLAMA3 = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


@pytest.mark.parametrize(
    "prompt, turns",
    [
        (chatml("Hi <b>"), [["system", "You are terse."], ["user", "Hi <b>"], ["assistant", "(the model's turn)"]]),
        (LLAMA3, [["user", "What is 2+2?"], ["assistant", "(the model's turn)"]]),
        ("<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n", [["user", "hello"], ["model", "(the model's turn)"]]),
        ("Question: plain\nAnswer:", None),
    ],
)
def test_the_page_splits_chat_templates_into_turns(browser: Any, runs: Path, prompt: str, turns: Any) -> None:
    path, _ = _page(runs)
    open_page(browser, path)
    assert browser.execute_script("return window.llmevalTurns(arguments[0])", prompt) == turns


def test_compare_page_loads_with_flips_first_and_both_completions(browser: Any, runs: Path) -> None:
    path = runs / "c.html"
    path.write_text(render_page(compare_page(load_run_dir(runs / "r0"), load_run_dir(runs / "r1"), labels=("r0", "r1"))))
    assert [e for e in open_page(browser, path) if e["level"] in ("SEVERE", "WARNING")] == []
    rows = browser.find_elements("css selector", "#cases .row")
    n_flips = len(flipped(load_run_dir(runs / "r1")[0]))
    assert [bool(r.find_element("css selector", ".flip").text) for r in rows[: n_flips + 1]] == [True] * n_flips + [False]
    browser.find_element("css selector", f'#cases .row[data-case="c005"][data-suite="{ADD}"]').click()
    detail = browser.find_element("id", "detail").text
    assert "Completion in r0\nThe answer is 6." in detail and HOSTILE in detail


def test_search_finds_cases_by_prompt_text(browser: Any, runs: Path) -> None:
    path, _ = _page(runs)
    open_page(browser, path)
    box = browser.find_element("id", "f-search")
    box.send_keys("what is 17 plus")
    browser.implicitly_wait(0)
    import time

    for _ in range(50):  # the search waits for typing to pause
        if browser.find_element("id", "count").text.startswith("1 of"):
            break
        time.sleep(0.05)
    assert _visible_cases(browser) == {(ADD, "c017")}


def test_ten_thousand_cases_render_only_the_rows_in_view(browser: Any, tmp_path: Path) -> None:
    records = make_records(ADD, 10_000, failing=range(0, 10_000, 7))
    write_run(tmp_path / "big", records)
    path = tmp_path / "big.html"
    path.write_text(render_page(run_page(*load_run_dir(tmp_path / "big"))), encoding="utf-8")
    logs = open_page(browser, path)
    assert [e for e in logs if e["level"] == "SEVERE"] == []
    assert browser.find_element("id", "count").text == "10000 of 10000 cases"
    assert 10 < len(browser.find_elements("css selector", "#cases .row")) < 100
    first = _visible_cases(browser)
    browser.execute_script("document.getElementById('cases').scrollTop = 28 * 9000")
    browser.execute_script("document.getElementById('cases').dispatchEvent(new Event('scroll'))")
    tops = [int(r.get_attribute("style").split("top:")[1].split("px")[0]) for r in browser.find_elements("css selector", "#cases .row")]
    assert min(tops) <= 28 * 9000 <= max(tops) and len(tops) < 100  # the rows at the new position, and only those
    assert not _visible_cases(browser) & first


def test_a_case_sampled_once_is_shown_by_its_id_alone() -> None:
    samples = [
        {"suite": "s::t", "id": "add-001", "outcome": "pass", "repeat": 0, "repeats": 1},
        {"suite": "s::r", "id": "add-001", "outcome": "pass", "repeat": 2, "repeats": 3},
    ]
    rows = case_rows(samples, ["s::t", "s::r"])
    assert [(r["id"], r.get("r")) for r in rows] == [("add-001", None), ("add-001", 2)]
