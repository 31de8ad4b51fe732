"""Workflow suites behave like other suites: repeated sampling, pytest-xdist, shards merged into one
gate, the baseline lifecycle (record, pass, regress), a minimum pass rate, a judge that reads the
whole transcript, and the HTML report's transcript view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workflow_project import call, samples, write_project

from pytest_llmeval.__main__ import main

SUITE = '''
import pytest_llmeval as le
from tools import get_weather

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather], max_turns=3{EXTRA})
def test_trip(case, conversation):
    le.assert_tool_called(conversation, "get_weather", city="Paris")
    le.assert_contains(conversation.final, "sunny")
'''

CASES = [{"id": f"p{i}", "question": call("get_weather", city="Paris") + f" ; say Day {i}: {{result}}."} for i in range(8)]


def project(pytester: pytest.Pytester, model: Path, extra: str = "", ini: str = "") -> None:
    write_project(pytester, model, CASES, SUITE.replace("{EXTRA}", extra), ini=ini)


def break_the_tool(pytester: pytest.Pytester) -> None:
    tools = pytester.path / "tools.py"
    tools.write_text(tools.read_text().replace('"Paris": "sunny, 21 C"', '"Paris": "closed for maintenance"'))


def conversations(out: Path) -> dict[str, list]:
    return {k: v["conversation"]["messages"] for k, v in samples(out).items()}


def test_repeats_are_items_each_with_its_own_conversation(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    project(pytester, scripted_model_dir, extra=", repeats=2", ini="llmeval_do_sample = true\n")
    result = pytester.runpytest("--llmeval-output=out", "-v")
    result.stdout.fnmatch_lines(["*test_trip?p0:r1? PASSED*"])
    assert result.parseoutcomes() == {"passed": 16}
    found = samples(pytester.path / "out")
    assert len(found) == 16 and found["p3:r0"]["conversation"]["turns"] == found["p3:r1"]["conversation"]["turns"] == 2


def test_xdist_workers_give_the_same_conversations(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    pytest.importorskip("xdist")
    project(pytester, scripted_model_dir, ini="llmeval_cache = off\n")
    alone = pytester.runpytest("--llmeval-output=alone")
    workers = pytester.runpytest_subprocess("-n", "2", "--llmeval-output=workers", "-p", "no:cacheprovider")
    assert alone.parseoutcomes() == workers.parseoutcomes() == {"passed": 8}
    assert conversations(pytester.path / "workers") == conversations(pytester.path / "alone")


def test_shards_merge_into_one_gate_with_the_conversations(pytester: pytest.Pytester, scripted_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(pytester, scripted_model_dir, ini="llmeval_baseline = base.json\n")
    assert pytester.runpytest("--llmeval-update-baseline", "--llmeval-output=single").ret == 0
    for i in (1, 2):
        assert pytester.runpytest(f"--llmeval-shard={i}/2", f"--llmeval-output=s{i}").ret == 0
    capsys.readouterr()
    code = main(["merge", str(pytester.path / "merged"), str(pytester.path / "s1"), str(pytester.path / "s2"), "--baseline", str(pytester.path / "base.json")])
    assert code == 0, capsys.readouterr().out
    assert conversations(pytester.path / "merged") == conversations(pytester.path / "single")
    verdict = json.loads((pytester.path / "merged" / "results.json").read_text())["suites"]["test_suite.py::test_trip"]["verdict"]
    assert verdict["verdict"] == "UNCHANGED"


def test_the_gate_records_passes_and_catches_a_regression(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    project(pytester, scripted_model_dir, ini="llmeval_baseline = base.json\n")
    assert pytester.runpytest("--llmeval-update-baseline").ret == 0
    pytester.runpytest().stdout.fnmatch_lines(["*UNCHANGED*", "llmeval gate passed*"])
    break_the_tool(pytester)
    regressed = pytester.runpytest()
    regressed.stdout.fnmatch_lines(["*REGRESSED*"])
    assert regressed.ret == 1 and regressed.parseoutcomes() == {"missed": 8}


def test_a_minimum_pass_rate_gates_a_workflow_suite(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    project(pytester, scripted_model_dir, extra=", min_pass_rate=0.9")
    break_the_tool(pytester)
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_suite.py::test_trip: pass rate 0.0% is under min_pass_rate 90.0%*"])


def test_a_judge_reads_the_whole_transcript(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    from judge_fakes import install_fake_package

    install_fake_package(pytester.path)
    judged = '''
RUBRIC = le.Rubric("The assistant used the tool's result.", labels=("PASS", "FAIL"))

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather], judge=RUBRIC)
def test_judged(case, conversation, judgement):
    le.assert_judged(judgement)
'''
    project(pytester, scripted_model_dir, ini="llmeval_judge_model = fake:rank\n")
    (pytester.path / "test_suite.py").write_text((pytester.path / "test_suite.py").read_text() + judged)
    result = pytester.runpytest("--llmeval-output=out", "-k", "judged")
    assert "passed" in result.parseoutcomes() or "missed" in result.parseoutcomes(), result.stdout.str()
    prompt = samples(pytester.path / "out")["p2"]["judgement"]["judge_prompt"]
    assert '-> call get_weather({"city": "Paris"})' in prompt and "[tool result: get_weather]\nsunny, 21 C" in prompt
    assert "[assistant]\nDay 2: sunny, 21 C." in prompt


def test_the_html_report_shows_the_transcript_with_tool_calls_folded_open(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    cases = [{"id": "x", "question": call("get_weather", city="</script><b>Paris") + " ; say {result}"}]
    write_project(pytester, scripted_model_dir, cases, SUITE.replace("{EXTRA}", ""))
    pytester.runpytest("--llmeval-output=out", "--llmeval-html=report.html")
    page = (pytester.path / "report.html").read_text()
    embedded = page.split('id="llmeval-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(embedded)
    detail = next(c for c in data["cases"] if c["id"] == "x")["d"]
    roles = [t["role"] for t in detail["transcript"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert detail["transcript"][1]["calls"][0]["name"] == "get_weather"
    assert "<b>Paris" not in embedded and "</script><b>" not in page  # the data is escaped in the page
    assert "el('details',{open:''}" in page  # the calls and results are shown folded open
