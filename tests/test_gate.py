"""The gate's pure functions: which runs may record a baseline, and what a short run lacks."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.baseline import BaselineError
from pytest_llmeval.results.gate import GateOptions, RunStatus, shortfalls, update_refusal
from pytest_llmeval.results.records import CaseRecord, Outcome
from pytest_llmeval.results.stats import aggregate_suites

SUITE = "evals/test_a.py::test_a"


@st.composite
def runs(draw):
    """A suite of ``size`` cases; some deselected, some of the selected ones ran."""
    size = draw(st.integers(1, 30))
    selected = draw(st.sets(st.integers(0, size - 1)))
    ran = draw(st.sets(st.sampled_from(sorted(selected)))) if selected else set()
    outcomes = draw(st.lists(st.sampled_from(list(Outcome)), min_size=len(ran), max_size=len(ran)))
    records = [CaseRecord(SUITE, f"c{i:02d}", o, suite_size=size) for i, o in zip(sorted(ran), outcomes)]
    status = RunStatus(interrupted=draw(st.booleans()), selected={SUITE: len(selected)} if selected else {})
    return size, selected, ran, records, status


@given(runs())
def test_a_shortfall_accounts_for_every_case_the_suite_has(run):
    size, selected, ran, records, status = run
    gaps = shortfalls(aggregate_suites(records), records, status)
    if len(ran) == size:
        assert gaps == []
        return
    if not ran and not selected:
        assert gaps == []  # nothing selected, nothing ran: the suite was not part of this run
        return
    if not ran:  # no record tells the suite's size: the selection is all that is known
        size = len(selected)
    (gap,) = gaps
    assert (gap.suite, gap.ran, gap.size) == (SUITE, len(ran), size)
    assert gap.deselected == size - len(selected)
    text = gap.describe(status)
    assert text.startswith(f"{SUITE} ({len(ran)} of {size} case")
    unrun = len(selected) - len(ran)
    assert (f"{unrun} interrupted" in text) == (status.interrupted and unrun > 0)
    assert (f"{unrun} not run" in text) == (not status.interrupted and unrun > 0)
    assert (f"{size - len(selected)} deselected" in text) == (size > len(selected))


def test_a_suite_without_a_known_size_is_taken_as_complete():
    records = [CaseRecord(SUITE, "a", "pass")]
    assert shortfalls(aggregate_suites(records), records, RunStatus()) == []


@given(
    narrowed=st.booleans(),
    errors=st.booleans(),
    short=st.booleans(),
    stopped=st.booleans(),
    interrupted=st.booleans(),
    corrupt=st.booleans(),
    force=st.booleans(),
)
def test_what_force_can_and_cannot_override(
    narrowed: bool, errors: bool, short: bool, stopped: bool, interrupted: bool, corrupt: bool, force: bool
):
    outcomes = [Outcome.ERROR if errors else Outcome.PASS, Outcome.PASS]
    records = [CaseRecord(SUITE, f"c{i}", o, suite_size=3 if short else 2) for i, o in enumerate(outcomes)]
    suites = aggregate_suites(records)
    status = RunStatus(interrupted=interrupted, stopped_early=stopped)
    opts = GateOptions(rootdir=Path("."), update_baseline=True, force=force, narrowed_by=("-k",) if narrowed else ())
    problem = BaselineError(Path("b.json"), "corrupt", "is not valid JSON") if corrupt else None
    messages = update_refusal(opts, suites, shortfalls(suites, records, status), status, problem, "b.json")
    refused = bool(messages)
    assert refused == (corrupt or interrupted or (not force and (narrowed or errors or short or stopped)))
    if refused:
        assert sum(m.blocks for m in messages) == 1 and messages[0].hint  # one gate line, one note with the fix


def test_a_regression_across_versions_names_the_upgrade():
    from pytest_llmeval.results.comparison import compare_suite
    from pytest_llmeval.results.gate import verdict_messages

    def suite(failing: int, transformers: str):
        fp = {"prompt": "sha256:p", "versions": {"torch": "2.8.0", "transformers": transformers}}
        records = [CaseRecord("f.py::t", f"c{i:02d}", "fail" if i < failing else "pass", fingerprint=fp) for i in range(40)]
        (s,) = aggregate_suites(records)
        return s

    before, after = suite(0, "4.57.0"), suite(12, "4.58.1")
    c = compare_suite(after, before, tolerance=0.02, alpha=0.05)
    (line,) = [m.text for m in verdict_messages([after], {after.name: c}, "b.json", lambda s: "cmd") if m.blocks]
    assert line.startswith("f.py::t: REGRESSED 100.0% -> 70.0%")
    assert line.endswith("12 newly failing; versions changed since the baseline: transformers 4.57.0 -> 4.58.1)")
    same = compare_suite(after, suite(0, "4.58.1"), tolerance=0.02, alpha=0.05)
    (line,) = [m.text for m in verdict_messages([after], {after.name: same}, "b.json", lambda s: "cmd") if m.blocks]
    assert "versions" not in line


def test_the_chat_template_warning_comes_once_per_suite_that_did_not_say():
    from pytest_llmeval.results.gate import chat_template_messages

    records = [
        CaseRecord("a.py::t", "1", "pass", unused_chat_template=True),
        CaseRecord("a.py::t", "2", "fail", unused_chat_template=True),
        CaseRecord("b.py::t", "1", "pass"),
        CaseRecord("c.py::t", "1", "pass", unused_chat_template=True),
    ]
    messages = chat_template_messages(records)
    assert [m.text.split(": ")[0] for m in messages] == ["a.py::t", "c.py::t"]
    assert all(m.level == "warning" and not m.blocks for m in messages)
    assert "chat=True" in messages[0].hint and "chat=False" in messages[0].hint
    again = CaseRecord.from_json(records[0].to_json())
    assert again.unused_chat_template and not CaseRecord.from_json(records[2].to_json()).unused_chat_template
