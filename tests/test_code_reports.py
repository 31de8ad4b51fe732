"""The verdicts of ``le.assert_code`` in the results: a record keeps them, results.json sums them up
per suite (which sandbox, which protections), the HTML report shows each run as text."""

from __future__ import annotations

from pytest_llmeval.results.code_runs import code_summary
from pytest_llmeval.results.html import case_rows
from pytest_llmeval.results.html_assets import SCRIPT
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.report import sample_json
from pytest_llmeval.scoring.code import Verdict

BWRAP = ("network-namespace", "pid-namespace", "rlimits")
NONE = ("private-tmpdir", "rlimits")


def verdict(status: str, sandbox: str = "bwrap", protections: tuple[str, ...] = BWRAP, **more) -> dict:
    return Verdict(status, sandbox=sandbox, protections=protections, **more).as_dict()


def test_a_record_keeps_its_verdicts_through_json():
    runs = (verdict("failed", reason="assertion failed: tests line 2: assert f(1) == 2", exit_status=1, duration_s=0.25),)
    record = CaseRecord(suite="t.py::test_code", case_id="a", outcome="fail", code=runs)
    data = record.to_json()
    assert data["code"][0]["status"] == "failed" and data["code"][0]["exit_status"] == 1
    assert CaseRecord.from_json(data) == record
    assert sample_json(record)["code"] == list(runs)  # its samples.jsonl line
    assert "code" not in sample_json(CaseRecord(suite="t.py::t", case_id="b", outcome="pass"))
    assert CaseRecord.from_json({**data, "code": "not a list"}).code is None  # a hand-edited file still reads


def test_results_say_per_suite_which_sandbox_ran_and_what_was_in_force():
    records = [
        CaseRecord(suite="s::t", case_id="a", outcome="pass", code=(verdict("passed"),)),
        CaseRecord(suite="s::t", case_id="b", outcome="fail", code=(verdict("timeout"), verdict("passed", "none", NONE))),
        CaseRecord(suite="s::other", case_id="c", outcome="pass"),
    ]
    summary = code_summary(records)
    assert list(summary) == ["s::t"]  # a suite that ran no program says nothing
    assert summary["s::t"] == {
        "sandboxes": ["bwrap", "none"],
        "protections": ["network-namespace", "pid-namespace", "private-tmpdir", "rlimits"],
        "protections_in_all": ["rlimits"],
        "runs": 3,
        "statuses": {"passed": 2, "timeout": 1},
    }


def test_the_html_report_shows_each_run_as_text():
    tail = "".join(f"line {i}\n" for i in range(30)) + "<script>alert(1)</script>\n"
    samples = [
        {"suite": "s::t", "id": "a", "outcome": "fail", "code": [verdict("raised", reason="ValueError: no", exit_status=1, duration_s=1.5, output_tail=tail, output_bytes=10**9)]},
        {"suite": "s::t", "id": "b", "outcome": "fail", "code": [{"status": "exploded"}]},  # hand-edited
        {"suite": "s::t", "id": "c", "outcome": "pass"},
    ]
    rows = {r["id"]: r["d"] for r in case_rows(samples, ["s::t"])}
    shown = rows["a"]["code"]
    assert shown.startswith("raised (exit status 1, 1.50 s, sandbox bwrap)\nValueError: no\noutput (last 20 lines of 1000000000 bytes):")
    assert shown.endswith("  <script>alert(1)</script>") and "line 9\n" not in shown
    assert "code" not in rows["a"].get("extra", {})
    assert "exploded" in rows["b"]["code"]
    assert "code" not in rows["c"]
    assert "section('Program run',el('pre',{cls:'code-run',text:d.code}))" in SCRIPT  # as text, never markup
