"""What a case costs beyond its test: the plugin does once per suite what is the same for every
case (the fingerprint, the generation settings), and never decodes a record it has just made."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pytest_llmeval.results.fingerprint import Fingerprint
from pytest_llmeval.results.records import RECORD_KEY, CaseRecord, records_from_properties
from pytest_llmeval.results.samplefile import read_samples
from pytest_llmeval.settings import GenerationSettings

pytest_plugins = ["pytester"]


def _redactor(monkeypatch: pytest.MonkeyPatch, secret: str | None) -> None:
    """A redactor of its own for this test (secrets that earlier tests of this process registered
    stay out), knowing ``secret``: a known secret makes every report's properties redacted."""
    from pytest_llmeval import redaction
    from pytest_llmeval.plugin import reporting

    fresh = redaction.Redactor()
    fresh.add(secret)
    monkeypatch.setattr(redaction, "KNOWN", fresh)
    monkeypatch.setattr(reporting, "KNOWN", fresh)


def _first_arguments(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """Wrap ``owner.name`` for this test: each call still runs it, and its first argument is
    appended to the list returned (so a test counts what a path computes)."""
    real = getattr(owner, name)
    seen: list[Any] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return seen


@pytest.mark.parametrize("secret", [None, "sk-a-key-this-run-knows-0123456789"])
def test_a_serial_run_decodes_no_record(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, secret: str | None) -> None:
    """Also where the run knows a secret (redacted properties that hold none are the same objects)."""
    _redactor(monkeypatch, secret)
    decoded: list[object] = []
    real = CaseRecord.from_json.__func__  # type: ignore[attr-defined]

    def counting(cls: type, data: object) -> CaseRecord:
        decoded.append(data)
        return real(cls, data)

    monkeypatch.setattr(CaseRecord, "from_json", classmethod(counting))
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = out\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}", "x": i} for i in range(6)])
        def test_values(case):
            assert case["x"] % 2 == 0, "odd"
        """
    )
    result = pytester.runpytest_inprocess()
    assert result.ret == 0
    assert result.parseoutcomes()["missed"] == 3
    rows = read_samples(pytester.path / "out" / "samples.jsonl")
    assert sorted(row["outcome"] for row in rows) == ["fail"] * 3 + ["pass"] * 3
    assert decoded == []  # each hook took the record as made (before: one decode per case)


def _record(**fingerprint: object) -> CaseRecord:
    return CaseRecord(suite="s", case_id="c1", outcome="fail", reason="r", fingerprint=fingerprint)


def test_a_remembered_record_is_read_back_as_it_is() -> None:
    from pytest_llmeval.results.records import remember_decoded

    record = _record(prompt="p")
    data = record.to_json()
    remember_decoded(data, record)
    assert records_from_properties([(RECORD_KEY, data)])[0] is record
    copy = dict(data)  # another mapping, equal: decoded, to an equal record
    again = records_from_properties([(RECORD_KEY, copy)])[0]
    assert again is not record and again == record


def test_equal_fingerprints_are_made_once_and_read_as_json_would() -> None:
    first = Fingerprint.from_json({"prompt": "p", "generation": {"stop": ("a",), "max_new_tokens": 4}, "new_key": (1, 2)})
    second = Fingerprint.from_json({"new_key": [1, 2], "generation": {"max_new_tokens": 4, "stop": ["a"]}, "prompt": "p"})
    assert first is second
    assert first.generation == {"max_new_tokens": 4, "stop": ["a"]}  # tuples become lists, as a JSON round trip
    assert list(first.generation) == ["max_new_tokens", "stop"]
    assert first.extra == {"new_key": [1, 2]}
    assert Fingerprint.from_json({"prompt": "q"}) is not first
    assert _record(prompt="p").fingerprint is _record(prompt="p").fingerprint


def test_a_record_writes_its_fields_in_their_order() -> None:
    data = _record(prompt="p").to_json()
    assert list(data) == [f.name for f in fields(CaseRecord) if f.name != "fingerprint"] + ["fingerprint"]


def test_a_request_s_generation_settings_are_made_once_per_override() -> None:
    settings = GenerationSettings(max_new_tokens=16)
    four = SimpleNamespace(max_new_tokens=4, stop=None, thinking=None, max_reasoning_tokens=None)
    first = settings.for_request(four)
    assert first.max_new_tokens == 4 and first is settings.for_request(SimpleNamespace(**vars(four)))
    assert settings.for_request(SimpleNamespace(**{**vars(four), "max_new_tokens": 8})).max_new_tokens == 8
    one = settings.for_request(SimpleNamespace(**{**vars(four), "thinking": 1}))
    true = settings.for_request(SimpleNamespace(**{**vars(four), "thinking": True}))
    assert one.thinking == 1 and true.thinking is True  # equal values of other types are not mixed up
    listed = settings.for_request(SimpleNamespace(**{**vars(four), "stop": ["x"]}))
    assert listed.stop == ("x",)  # an override that cannot be a key is still applied
    assert GenerationSettings(max_new_tokens=16).for_request(four) == first


def test_loading_the_plugin_imports_no_numpy() -> None:
    """numpy is for calibration (a ranked suite's figures): imported when there is one to compute."""
    code = "import sys, pytest_llmeval.plugin, pytest_llmeval.results.session; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_a_case_s_record_is_made_once(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = CaseRecord.__post_init__

    def counting(self: CaseRecord) -> None:
        made.append(self.case_id)
        real(self)

    monkeypatch.setattr(CaseRecord, "__post_init__", counting)
    _redactor(monkeypatch, None)
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = out\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}", "x": i} for i in range(4)])
        def test_values(case):
            le.assert_number(str(case["x"]), 2)
        """
    )
    result = pytester.runpytest_inprocess()
    assert result.ret == 0 and result.parseoutcomes()["missed"] == 3
    rows = {row["id"]: row for row in read_samples(pytester.path / "out" / "samples.jsonl")}
    assert rows["c0"]["expected"] == 2 and rows["c2"].get("expected") is None
    assert sorted(made) == ["c0", "c1", "c2", "c3"]  # the expected value goes in as it is made (before: a copy per miss)


def test_cached_outputs_read_the_completion_constructor_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding a cached completion takes the constructor's parameters as read once, not per row."""
    from pytest_llmeval.models import cache
    from pytest_llmeval.models.outputs import Completion

    read = _first_arguments(monkeypatch, cache.inspect, "signature")
    cache._completion_parameters.cache_clear()
    rows = [cache.encode(Completion(f"answer {i}", finish_reason="length", tokens_out=4)) for i in range(5)]
    decoded = [cache.decode(row) for row in rows]
    assert [str(d) for d in decoded] == [f"answer {i}" for i in range(5)]
    assert all(d.finish_reason == "length" and d.tokens_out == 4 for d in decoded)
    assert len(read) == 1  # before: once per row


def test_request_keys_read_a_request_class_s_fields_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.models import cache
    from pytest_llmeval.datasets.suite import Request

    requests = [Request(kind="generate", text=f"q{i}") for i in range(5)]
    before = [cache.request_key("id", {"seed": 0}, r) for r in requests]
    read = _first_arguments(monkeypatch, cache.dataclasses, "fields")
    cache._key_fields.cache_clear()
    assert [cache.request_key("id", {"seed": 0}, r) for r in requests] == before
    assert len(read) == 1  # before: once per request


def test_a_zero_tolerance_is_not_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default tolerances (0.0) need no decimal conversion per call; other values still get it."""
    from pytest_llmeval.scoring import numbers

    converted = _first_arguments(monkeypatch, numbers, "_exact_float")
    assert numbers.assert_number("The answer is 4.", 4) == 1.0
    assert numbers.assert_number("4", 4, abs_tol=-0.0, rel_tol=0) == 1.0
    assert converted == []  # before: two conversions per call
    assert numbers.assert_number("4.05", 4, abs_tol=0.1) == 1.0
    assert converted == [0.1]
    with pytest.raises(ValueError, match="abs_tol must be a finite number >= 0"):
        numbers.assert_number("4", 4, abs_tol=-0.5)


def test_a_suite_s_file_is_made_relative_once(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    from pytest_llmeval.plugin import identity

    root = Path(str(tmp_path))
    config = SimpleNamespace(inipath=root / "pytest.ini", rootpath=root)
    made = _first_arguments(monkeypatch, identity.os.path, "relpath")
    identity._relative.cache_clear()
    ids = [identity.suite_id(config, root / "evals" / "test_m.py", f"evals/test_m.py::test_a[c{i}]") for i in range(4)]  # type: ignore[arg-type]
    assert ids == ["evals/test_m.py::test_a"] * 4
    assert len(made) == 1  # before: once per case


def test_a_record_is_written_without_copying_what_it_writes_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outcome, scores and markers are written in their own form: no deep copy of them first."""
    from pytest_llmeval.results import records

    copied = _first_arguments(monkeypatch, records, "deepcopy")
    record = CaseRecord(suite="s", case_id="c1", outcome="fail", scores={"f1": 0.5}, markers=("slow",))
    data = record.to_json()
    assert copied == []  # before: the scores and the markers, each copied and then written again
    assert data["scores"] == {"f1": 0.5} and data["scores"] is not record.scores
    assert data["markers"] == ["slow"] and data["outcome"] == "fail"
    assert list(data) == [f.name for f in fields(CaseRecord) if f.name != "fingerprint"] + ["fingerprint"]


def test_flat_cases_are_not_walked_for_their_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.datasets import casefiles

    walked = _first_arguments(monkeypatch, casefiles, "_parts")
    cases = casefiles.load_cases([{"id": f"c{i}", "a": i, "b": 0.5, "ok": True, "note": None} for i in range(5)])
    assert [c.id for c in cases] == [f"c{i}" for i in range(5)]
    assert walked == []  # before: every row and each of its values
    deep: dict[str, object] = {"id": "d"}
    inner = deep
    for _ in range(casefiles.MAX_DEPTH + 1):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    with pytest.raises(casefiles.CaseError, match="nests more than"):
        casefiles.load_cases([deep])
    looped: dict[str, object] = {"id": "l"}
    looped["self"] = [looped]
    with pytest.raises(casefiles.CaseError, match="contains itself"):
        casefiles.load_cases([looped])


@given(
    st.fractions(min_value=-1000, max_value=1000, max_denominator=50),
    st.fractions(min_value=-1000, max_value=1000, max_denominator=50),
    st.sampled_from([Fraction(0), Fraction(1, 10), Fraction(3)]),
    st.sampled_from([Fraction(0), Fraction(1, 100)]),
)
def test_the_number_comparison_is_isclose_on_exact_values(got: Fraction, want: Fraction, abs_tol: Fraction, rel_tol: Fraction) -> None:
    """The exact test taken without arithmetic (both tolerances zero) agrees with the formula."""
    from pytest_llmeval.scoring.numbers import _close

    diff = abs(got - want)
    assert _close(got, want, abs_tol, rel_tol) == (diff <= abs_tol or diff <= rel_tol * max(abs(got), abs(want)))


class _NeverDisjoint(frozenset):  # type: ignore[type-arg]
    def isdisjoint(self, other: object) -> bool:
        return False


_VOCABULARY = ["one", "two", "twenty", "a", "an", "and", "hundred", "thousand", "negative", "the", "answer", "is", "zero",
               "correct", "cats", "8", "3.5", "-", "x"]


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=8), st.lists(st.sampled_from([" ", "-", ", ", " - "]), min_size=8, max_size=8))
def test_texts_without_number_words_skip_the_word_reading(words: list[str], joins: list[str]) -> None:
    """The shortcut (no word that can be part of a number: nothing to read) finds what the full reading finds."""
    from unittest import mock

    from pytest_llmeval.scoring import number_mentions

    text = "".join(w + j for w, j in zip(words, joins))
    quick = number_mentions._word_mentions(text)
    with mock.patch.object(number_mentions, "_NUMBER_WORDS", _NeverDisjoint()):
        full = number_mentions._word_mentions(text)
    assert quick == full


def test_an_answer_without_number_words_is_read_without_the_word_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.scoring import number_mentions

    read = _first_arguments(monkeypatch, number_mentions, "_kind")
    assert [m.value for m in number_mentions.find_numbers("The answer is 8.")] == [8.0]
    assert read == []  # before: each word looked up
    assert [m.value for m in number_mentions.find_numbers("It is twenty-one.")] == [21.0]
    assert read == ["it", "is", "twenty", "one"]


class _NotAscii(str):
    def isascii(self) -> bool:
        return False


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_text_is_prepared_as_before(text: str) -> None:
    """ASCII text skips the Unicode normalisation: the same result as through it."""
    from pytest_llmeval.scoring.number_mentions import prepare

    assert prepare(text) == prepare(_NotAscii(text))
