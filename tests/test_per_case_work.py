"""What a case costs beyond its test: the plugin does once per suite what is the same for every
case (the fingerprint, the generation settings), and never decodes a record it has just made."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from types import SimpleNamespace

import pytest

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
