"""Case records, outcomes and fingerprints: the plain data every result file is built from."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.records import CaseRecord, Fingerprint, Outcome
from pytest_llmeval.results.stats import merge_case_records


@pytest.mark.parametrize(
    "when, result, assertion, xfail, expected",
    [
        ("call", "passed", False, False, Outcome.PASS),
        ("call", "failed", True, False, Outcome.MISS),
        ("call", "failed", False, False, Outcome.ERROR),  # a scorer bug, broken data, a model crash
        ("setup", "failed", False, False, Outcome.ERROR),
        ("setup", "failed", True, False, Outcome.ERROR),  # an assert in a fixture is not a wrong answer
        ("teardown", "failed", False, False, Outcome.ERROR),
        ("teardown", "failed", True, False, Outcome.ERROR),
        ("setup", "skipped", False, False, Outcome.SKIPPED),
        ("call", "skipped", False, False, Outcome.SKIPPED),
        ("call", "skipped", True, True, Outcome.XFAILED),
        ("setup", "skipped", False, True, Outcome.XFAILED),  # @pytest.mark.xfail(run=False)
        ("setup", "passed", False, False, None),
        ("teardown", "passed", False, False, None),
        ("teardown", "skipped", False, False, None),
    ],
)
def test_each_phase_gives_the_outcome_it_means(when: str, result: str, assertion: bool, xfail: bool, expected: Outcome | None):
    assert Outcome.of_phase(when, result, assertion=assertion, xfail=xfail) is expected


phases = st.lists(
    st.tuples(st.sampled_from(["setup", "call", "teardown"]), st.sampled_from(["passed", "failed", "skipped"]), st.booleans()),
    min_size=1,
    max_size=3,
)


@given(phases)
def test_an_error_in_any_phase_is_never_counted_as_a_pass(reports: list[tuple[str, str, bool]]):
    outcomes = [Outcome.of_phase(w, r, assertion=a) for w, r, a in reports]
    records = [CaseRecord("f.py::t", "a", o) for o in outcomes if o is not None]
    if not records:
        return
    (merged,) = merge_case_records(records).values()
    if any(r == "failed" and not (w == "call" and a) for w, r, a in reports):
        assert merged.outcome is Outcome.ERROR
    assert merged.outcome.rank == max(o.rank for o in outcomes if o is not None)


def test_outcomes_keep_the_strings_files_have_always_held():
    assert [o.value for o in Outcome] == ["pass", "fail", "error", "skipped", "xfailed"]
    assert Outcome.MISS == "fail" and Outcome.parse("fail") is Outcome.MISS
    assert [o.counted for o in Outcome] == [True, True, True, False, False]
    assert (Outcome.PASS.to_bit(), Outcome.MISS.to_bit(), Outcome.ERROR.to_bit()) == (1, 0, 0)
    assert Outcome.from_bit(1) is Outcome.PASS and Outcome.from_bit(0) is Outcome.MISS
    with pytest.raises(ValueError, match="not written into the baseline"):
        Outcome.SKIPPED.to_bit()
    with pytest.raises(ValueError, match=r"unknown case outcome 'passed' \(known: pass, fail, error, skipped, xfailed\)"):
        Outcome.parse("passed")


def test_a_record_round_trips_through_json_and_reads_an_unknown_outcome_as_an_error():
    record = CaseRecord("f.py::t", "a", "skipped", reason="no GPU", fingerprint={"model": "m", "backend": "hf"}, suite_size=7)
    data = record.to_json()
    assert data["outcome"] == "skipped" and data["fingerprint"] == {"backend": "hf", "model": "m"} and data["suite_size"] == 7
    assert CaseRecord.from_json(data) == record
    assert isinstance(record.fingerprint, Fingerprint) and record.fingerprint.model == "m"
    odd = CaseRecord.from_json(dict(data, outcome="exploded"))
    assert odd.outcome is Outcome.ERROR and "unknown case outcome 'exploded'" in odd.reason
    assert CaseRecord.from_json({"suite": "f.py::t", "case_id": "b", "outcome": "pass"}).suite_size is None
    with pytest.raises(ValueError, match="unknown case outcome"):
        CaseRecord("f.py::t", "a", "passed")  # type: ignore[arg-type]
