"""The one JSON / JSON Lines reader: lines split at "\\n" only, errors of the caller's class that
name the file and line, and every reader built on it (case files, le.formats, training data,
samples.jsonl) keeping U+2028, U+2029, U+0085 and form feeds inside a string value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.datasets.casefiles import CaseError, load_cases
from pytest_llmeval.datasets import formats
from pytest_llmeval.datasets.heldout import load_training_texts
from pytest_llmeval.jsonfiles import json_document, jsonl_rows, read_text, text_lines
from pytest_llmeval.results.html import load_run_dir
from pytest_llmeval.results.samplefile import SamplesError, read_samples

# characters str.splitlines() splits at but JSON Lines does not
SEPARATORS = "one\u2028two\u2029three\x85four\x0cfive\x1csix\x1dseven\x1eeight\x0bnine"


def lines_of(*values: object) -> str:
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)


class MyError(Exception):
    pass


def test_separators_inside_a_string_stay_on_their_line() -> None:
    text = lines_of({"id": "a", "q": SEPARATORS}, {"id": "b"})
    assert len(text.splitlines()) > 2  # what the reader must not do
    assert list(jsonl_rows(text, "f.jsonl")) == [(1, {"id": "a", "q": SEPARATORS}), (2, {"id": "b"})]


def test_crlf_blank_lines_and_a_missing_last_newline() -> None:
    assert list(text_lines("a\r\n\r\nb")) == [(1, "a"), (2, ""), (3, "b")]
    assert list(text_lines("")) == [] and list(text_lines("a\n")) == [(1, "a")]
    assert list(jsonl_rows('{"a": 1}\r\n\r\n  \n{"a": 2}', "f.jsonl")) == [(1, {"a": 1}), (4, {"a": 2})]


def test_a_bad_line_raises_the_callers_error_naming_file_line_and_fix() -> None:
    with pytest.raises(MyError, match=r"^f\.jsonl:2: not valid JSON \(Expecting value at column 7\); fix it$"):
        list(jsonl_rows('{"a": 1}\n{"a": }\n', "f.jsonl", MyError, "fix it"))
    with pytest.raises(ValueError, match=r"^f\.jsonl:1: not valid JSON \(.* at column 2\)$"):
        list(jsonl_rows("{x\n", "f.jsonl", fix=None))
    with pytest.raises(MyError, match=r"^f\.jsonl:1: the JSON on this line is nested too deeply; flatten it$"):
        list(jsonl_rows("[" * 100_000 + "]" * 100_000 + "\n", "f.jsonl", MyError))


def test_a_json_document() -> None:
    assert json_document(json.dumps({"q": SEPARATORS}, ensure_ascii=False, indent=1), "f.json") == {"q": SEPARATORS}
    with pytest.raises(MyError, match=r"^f\.json:2: not valid JSON \(.* at column 1\); fix the file$"):
        json_document("[1,\n]", "f.json", MyError)


def test_read_text_drops_a_byte_order_mark_and_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes("\ufeff".encode() + lines_of({"q": SEPARATORS}).encode())
    assert read_text(path, "f.jsonl") == lines_of({"q": SEPARATORS})
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(MyError, match=r"^f\.jsonl: not UTF-8 text"):
        read_text(path, "f.jsonl", MyError)


@given(st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=20) | st.integers(), max_size=4), max_size=6))
def test_any_records_round_trip(records: list[dict[str, object]]) -> None:
    text = lines_of(*records)
    assert [row for _, row in jsonl_rows(text, "f.jsonl")] == records


# ---------------------------------------------------------------- every reader on it


def test_case_files(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(lines_of({"id": "a", "q": SEPARATORS}, {"id": "b", "q": "x"}), encoding="utf-8")
    cases = load_cases("c.jsonl", base_dir=tmp_path)
    assert cases[0]["q"] == SEPARATORS and [c.line for c in cases] == [1, 2]
    (tmp_path / "c.jsonl").write_text('{"id": "a"}\n{"id": }\n', encoding="utf-8")
    with pytest.raises(CaseError, match=r"^c\.jsonl:2: not valid JSON \(.*\); each line must be one JSON object: fix or remove that line$"):
        load_cases("c.jsonl", base_dir=tmp_path)


def test_formats_loader(tmp_path: Path) -> None:
    row = {"id": "q1", "question": SEPARATORS, "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"}
    (tmp_path / "arc.jsonl").write_text(lines_of(row, {**row, "id": "q2"}), encoding="utf-8")
    rows = formats.arc(tmp_path / "arc.jsonl")
    assert [r["question"] for r in rows] == [SEPARATORS, SEPARATORS] and rows[1]["id"] == "q2"


def test_training_data(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(lines_of({"text": SEPARATORS}, {"text": "second"}), encoding="utf-8")
    assert [(t.text, t.line) for t in load_training_texts(tmp_path / "train.jsonl")] == [(SEPARATORS, 1), ("second", 2)]


def test_samples_jsonl_keeps_a_completion_with_separators(tmp_path: Path) -> None:
    samples = [{"suite": "t.py::s", "id": "a", "outcome": "pass", "completion": SEPARATORS}, {"suite": "t.py::s", "id": "b", "outcome": "fail"}]
    (tmp_path / "samples.jsonl").write_text(lines_of(*samples), encoding="utf-8")
    (tmp_path / "results.json").write_text(json.dumps({"suites": {}}), encoding="utf-8")
    assert read_samples(tmp_path / "samples.jsonl") == samples
    assert load_run_dir(tmp_path)[1] == samples
    (tmp_path / "samples.jsonl").write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n')
    with pytest.raises(SamplesError, match=r"samples\.jsonl: not UTF-8 text"):
        read_samples(tmp_path / "samples.jsonl")
