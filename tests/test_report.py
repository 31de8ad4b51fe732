"""Rendering of the gate report: terminal lines, Markdown, JUnit properties, samples."""

from __future__ import annotations

import pytest

from pytest_llmeval.results.baseline import dumps_baseline, entry_json, parse_baseline
from pytest_llmeval.results.comparison import Verdict, compare_suite
from pytest_llmeval.results.messages import blocking
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.report import GateReport, Message, listing, pct, points, pvalue, sample_json
from pytest_llmeval.results.stats import SuiteResult, aggregate_suites


def make_suite(name: str, n: int, failing: range | set[int], **kw) -> SuiteResult:
    records = [
        CaseRecord(suite=name, case_id=f"c{i:03d}", outcome="fail" if i in failing else "pass", **kw)  # type: ignore[arg-type]
        for i in range(n)
    ]
    (s,) = aggregate_suites(records)
    return s


def recorded(result: SuiteResult) -> SuiteResult:
    """``result`` as a baseline file records it and reads it back."""
    return parse_baseline(dumps_baseline({result.name: entry_json(result)}), "b.json").suites[result.name]


def text_of(report: GateReport) -> list[str]:
    return [t for t, _ in report.lines()]


def test_formatting_helpers():
    assert pct(0.815) == "81.5%"
    assert pct(None) == "-"
    assert pct(0.8, 0) == "80%"
    assert points(-0.15) == "-15.0 pts"
    assert points(0.02) == "+2.0 pts"
    assert pvalue(0.0001) == "p<0.001"
    assert pvalue(0.004) == "p=0.004"
    assert pvalue(0.63) == "p=0.63"
    assert listing([str(i) for i in range(3)]) == "0, 1, 2"
    assert listing([str(i) for i in range(25)]) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 ... and 15 more"


def test_empty_report_prints_nothing():
    assert list(GateReport().lines()) == []
    assert not GateReport().gate_failed


def test_table_shows_counts_rate_interval_and_min():
    s = make_suite("evals/test_math.py::test_add", 200, range(37), min_pass_rate=0.8)
    report = GateReport(suites=(s,))
    lines = text_of(report)
    assert lines[0] == "llmeval: 163 passed, 37 missed in 1 suite"
    header = lines[1].split()
    assert header[:6] == ["suite", "n", "pass", "miss", "err", "rate"]
    row = lines[2].split()
    assert row[:6] == ["evals/test_math.py::test_add", "200", "163", "37", "0", "81.5%"]
    low, high = s.interval()
    assert f"[{low * 100:.1f}," in lines[2] and f"{high * 100:.1f}]" in lines[2]
    assert "80%" in lines[2]
    assert lines[-1].startswith("llmeval gate passed")


def test_failed_gate_lists_each_failure_in_red():
    s = make_suite("f.py::t", 10, range(5))
    report = GateReport(suites=(s,), messages=(blocking("f.py::t: pass rate 50.0% is under min_pass_rate 80.0%"),))
    lines = list(report.lines())
    assert report.gate_failed
    assert lines[-2] == ("llmeval gate FAILED (1):", {"red": True, "bold": True})
    assert lines[-1] == ("  - f.py::t: pass rate 50.0% is under min_pass_rate 80.0%", {"red": True})


def test_rows_of_failing_suites_are_red():
    bad = make_suite("f.py::bad", 10, range(5), min_pass_rate=0.9)
    good = make_suite("f.py::good", 10, range(1))
    rows = dict((t.split()[0], m) for t, m in list(GateReport(suites=(bad, good)).lines())[2:4])
    assert rows == {"f.py::bad": {"red": True}, "f.py::good": {}}
    strict_rows = dict((t.split()[0], m) for t, m in list(GateReport(suites=(good,), strict=True).lines())[2:3])
    assert strict_rows == {"f.py::good": {"red": True}}


def test_regression_detail_names_cases_and_truncates():
    base = make_suite("f.py::t", 200, range(20))
    now = make_suite("f.py::t", 200, range(50))
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.REGRESSED
    report = GateReport(suites=(now,), comparisons={now.name: c})
    lines = text_of(report)
    assert "REGRESSED -15.0 pts (p<0.001)" in lines[2]
    detail = next(line for line in lines if line.startswith("f.py::t: REGRESSED"))
    assert "90.0% -> 75.0% on 200 shared cases" in detail
    failing = next(line for line in lines if "newly failing" in line)
    assert failing.startswith("  newly failing (30): c020, c021,")
    assert failing.endswith("... and 20 more")


def test_recorded_suites_are_marked_and_not_red():
    base = make_suite("f.py::t", 200, range(20))
    now = make_suite("f.py::t", 200, range(50))
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
    report = GateReport(suites=(now,), comparisons={now.name: c}, recorded=frozenset({now.name}))
    row_text, row_markup = list(report.lines())[2]
    assert row_text.endswith(", recorded") and row_markup == {}


def test_incomparable_detail_lists_fields():
    base = make_suite("f.py::t", 5, set(), fingerprint={"prompt": "sha256:a"})
    now = make_suite("f.py::t", 5, set(), fingerprint={"prompt": "sha256:b"})
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
    lines = text_of(GateReport(suites=(now,), comparisons={now.name: c}))
    assert "INCOMPARABLE (prompt; baseline 100.0%)" in lines[2]
    assert "f.py::t: INCOMPARABLE: prompt differs from the baseline" in lines
    assert "  prompt: sha256:a -> sha256:b" in lines  # a baseline without the prompt's text: its hashes


def test_an_incomparable_prompt_shows_the_baseline_rate_the_change_and_the_prompts_diff():
    """The gate does not judge it, but a person can: the rates on the shared cases, marked as not
    comparable, and the template's text before and after."""
    old = {"prompt": "sha256:a", "prompt_text": "Question: {q}\nAnswer with a number."}
    new = {"prompt": "sha256:b", "prompt_text": "Question: {q}\nReply with the number only."}
    base = make_suite("f.py::t", 10, range(5), fingerprint=old)
    now = make_suite("f.py::t", 10, range(1), fingerprint=new)
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05, pair_incomparable=True)
    report = GateReport(suites=(now,), comparisons={now.name: c})
    lines = list(report.lines())
    texts = [t for t, _ in lines]
    assert texts[2].endswith("INCOMPARABLE (prompt; baseline 50.0%)")
    start = texts.index("f.py::t: INCOMPARABLE: prompt differs from the baseline")
    assert texts[start + 1 : start + 6] == [
        "  not comparable: 50.0% in the baseline, 90.0% now (+40.0 pts on 10 shared cases, p=0.12)",
        "  prompt, baseline -> this run:",
        "     Question: {q}",
        "    -Answer with a number.",
        "    +Reply with the number only.",
    ]
    assert ("    -Answer with a number.", {"red": True, "green": False}) in lines
    assert not any(t.startswith("  prompt: sha256") for t in texts)
    assert c.verdict is Verdict.INCOMPARABLE and not c.tested  # shown, never gated on
    markdown = report.markdown()
    assert "INCOMPARABLE: prompt differs; not comparable: 50.0% in the baseline, 90.0% now" in markdown
    assert "```diff\n Question: {q}\n-Answer with a number.\n+Reply with the number only.\n```" in markdown
    data = report.to_json()["suites"]["f.py::t"]["verdict"]
    assert data["comparable"] is False and data["baseline_rate"] == 0.5 and data["prompt_diff"][1] == "-Answer with a number."


def test_messages_end_with_a_hint_line():
    report = GateReport(messages=(Message("error", "baseline b.json is empty", "re-record it with:", "pytest --llmeval-update-baseline"),))
    lines = list(report.lines())
    assert lines[0] == ("baseline b.json is empty", {"red": True, "bold": True})
    assert lines[1] == ("  re-record it with: pytest --llmeval-update-baseline", {})


def test_metrics_and_marker_groups_are_shown():
    records = [
        CaseRecord("f.py::t", "a", "pass", scores={"f1": 1.0}, markers=("math",)),
        CaseRecord("f.py::t", "b", "fail", scores={"f1": 0.5}, markers=("math",)),
    ]
    from pytest_llmeval.results.stats import aggregate_markers

    report = GateReport(suites=tuple(aggregate_suites(records)), groups=tuple(aggregate_markers(records)))
    lines = text_of(report)
    assert any(line.split()[:2] == ["marker", "n"] for line in lines)
    assert any(line.split()[:4] == ["math", "2", "1", "1"] for line in lines)
    assert "  f.py::t: f1=0.750" in lines


def test_markdown_summary():
    s = make_suite("f.py::t", 10, range(2))
    md = GateReport(suites=(s,), messages=(blocking("f.py::t: boom"),)).markdown()
    assert "gate failed" in md
    assert "| `f.py::t` | 10 | 8 | 2 | 0 | 80.0% |" in md
    assert "- f\\.py\\:\\:t\\: boom" in md  # free text is escaped Markdown: it renders as written
    assert "gate passed" in GateReport(suites=(s,)).markdown()


def test_junit_properties():
    s = make_suite("f.py::t", 10, range(2), min_pass_rate=0.5)
    props = dict(GateReport(suites=(s,)).junit_properties())
    assert props["llmeval.gate"] == "passed"
    assert props["llmeval.f.py::t.n"] == "10"
    assert props["llmeval.f.py::t.passed"] == "8"
    assert props["llmeval.f.py::t.pass_rate"] == "0.8000"
    assert float(props["llmeval.f.py::t.ci_low"]) == pytest.approx(s.interval()[0], abs=1e-4)
    assert props["llmeval.f.py::t.min_pass_rate"] == "0.5000"
    assert all(isinstance(v, str) for v in props.values())


def test_results_json_carries_per_case_outcomes_and_verdicts():
    base = make_suite("f.py::t", 20, range(2))
    now = make_suite("f.py::t", 20, range(4))
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
    data = GateReport(suites=(now,), comparisons={now.name: c}).to_json()
    suite = data["suites"]["f.py::t"]
    assert suite["cases"]["c000"] == "fail" and suite["cases"]["c019"] == "pass"
    assert suite["verdict"]["verdict"] == "UNCHANGED"
    assert suite["verdict"]["newly_failing"] == ["c002", "c003"]
    assert suite["ci"] == list(now.interval())
    assert data["summary"] == {"passed": 16, "failed": 4, "errors": 0, "skipped": 0, "xfailed": 0, "suites": 1}


def test_sample_json_completion_and_choices():
    gen = sample_json(CaseRecord("f.py::t", "a", "fail", reason="wrong", prompt="2+2?", completion="5", tokens_in=3, tokens_out=1, latency_s=0.1))
    assert gen["completion"] == "5" and "choices" not in gen and gen["reason"] == "wrong"
    assert (gen["id"], gen["suite"], gen["outcome"], gen["prompt"]) == ("a", "f.py::t", "fail", "2+2?")
    assert (gen["tokens_in"], gen["tokens_out"], gen["latency_s"]) == (3, 1, 0.1)
    mc = sample_json(CaseRecord("f.py::t", "b", "pass", choices=("x", "y"), loglikelihoods=(-1.0, -2.0)))
    assert mc["choices"] == ["x", "y"] and mc["loglikelihoods"] == [-1.0, -2.0] and "completion" not in mc
    assert mc["reason"] is None


# ---------------------------------------------------------------- what a verdict cannot say


def test_a_suite_too_small_for_the_tolerance_says_so_next_to_its_verdict():
    base = make_suite("f.py::small", 20, range(2))
    now = make_suite("f.py::small", 20, range(4))
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
    report = GateReport(suites=(now,), comparisons={now.name: c}, tolerance=0.02, alpha=0.05)
    row = text_of(report)[2]
    assert row.endswith("UNCHANGED -10.0 pts (p=0.50; n=20 can only detect drops of 30+ pts at alpha 0.05)")
    assert "n=20 can only detect" in report.markdown()
    verdict = report.to_json()["suites"]["f.py::small"]["verdict"]
    assert verdict["too_small"] is True and verdict["min_detectable_drop"] == pytest.approx(0.3)


def test_a_large_enough_suite_and_a_regression_say_nothing_about_size():
    base = make_suite("f.py::big", 400, range(40))
    same = make_suite("f.py::big", 400, range(41))
    worse = make_suite("f.py::big", 400, range(80))
    for now, verdict in ((same, "UNCHANGED"), (worse, "REGRESSED")):
        c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
        report = GateReport(suites=(now,), comparisons={now.name: c})
        assert c.verdict.value == verdict and "detect" not in text_of(report)[2]
    tiny = make_suite("f.py::t", 5, set())
    c = compare_suite(tiny, recorded(tiny), tolerance=0.02, alpha=0.05)
    row = text_of(GateReport(suites=(tiny,), comparisons={tiny.name: c}))[2]
    assert row.endswith("(p=1.00; n=5 cannot detect any drop at alpha 0.05)")


@pytest.mark.parametrize(
    "n,tolerance,alpha,note",
    [
        (20, 0.02, 0.05, "n=20 can only detect drops of 30+ pts at alpha 0.05"),
        (33, 0.02, 0.05, "n=33 can only detect drops of 18.1+ pts at alpha 0.05"),  # 6/33 = 18.18..., rounded down
        (100, 0.02, 0.01, "n=100 can only detect drops of 8+ pts at alpha 0.01"),
        (300, 0.02, 0.05, ""),
        (20, 0.25, 0.05, ""),  # the smallest drop beyond 25 points 20 cases can show, 30, is detectable
        (7, 0.02, 0.0, "n=7 cannot detect any drop at alpha 0"),
    ],
)
def test_detection_note(n: int, tolerance: float, alpha: float, note: str):
    from pytest_llmeval.results.verdicts import detection_note

    assert detection_note(n, tolerance, alpha) == note


def test_a_verdict_across_versions_says_which_changed():
    versions = {"pytest-llmeval": "0.1.0", "transformers": "4.57.0", "torch": "2.8.0"}
    base = make_suite("f.py::t", 200, range(20), fingerprint={"prompt": "sha256:a", "versions": versions})
    now = make_suite("f.py::t", 200, range(50), fingerprint={"prompt": "sha256:a", "versions": dict(versions, transformers="4.58.1")})
    c = compare_suite(now, recorded(base), tolerance=0.02, alpha=0.05)
    report = GateReport(suites=(now,), comparisons={now.name: c})
    lines = text_of(report)
    assert "  versions changed since the baseline: transformers 4.57.0 -> 4.58.1" in lines
    assert not any("compared across a different" in line for line in lines)
    assert report.to_json()["suites"]["f.py::t"]["verdict"]["versions_changed"] == ["transformers 4.57.0 -> 4.58.1"]
    assert "- versions changed since the baseline: transformers 4\\.57\\.0 \\-\\> 4\\.58\\.1" in report.markdown()
    unchanged = compare_suite(recorded(base), recorded(base), tolerance=0.02, alpha=0.05)
    report = GateReport(suites=(base,), comparisons={base.name: unchanged})
    assert not any("versions" in line for line in text_of(report))
