"""Benchmark loaders on small files written here in each published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.datasets import formats
from pytest_llmeval.datasets.formats import FormatError
from pytest_llmeval.datasets.suite import CaseError


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ARC_ROWS = [
    {"id": "Mercury_1", "question": "Which is a gas?", "choices": {"text": ["ice", "steam", "rock"], "label": ["A", "B", "C"]}, "answerKey": "B"},
    {"id": "NYSEDREGENTS_2", "question": "Pick four.", "choices": {"text": ["two", "four"], "label": ["1", "2"]}, "answerKey": "2"},
]


def test_arc(tmp_path):
    rows = formats.arc(jsonl(tmp_path / "arc.jsonl", ARC_ROWS))
    assert [r["id"] for r in rows] == ["Mercury_1", "NYSEDREGENTS_2"]
    assert rows[0]["context"] == "Question: Which is a gas?\nAnswer:"
    assert rows[0]["choices"] == ["ice", "steam", "rock"] and rows[0]["answer"] == 1
    assert rows[1]["answer"] == 1


def test_arc_original_nested_schema(tmp_path):
    row = {
        "id": "Q1",
        "question": {"stem": "Which is a gas?", "choices": [{"text": "ice", "label": "A"}, {"text": "steam", "label": "B"}]},
        "answerKey": "B",
    }
    (got,) = formats.arc(jsonl(tmp_path / "ARC-Easy-Dev.jsonl", [row]))
    assert got["context"] == "Question: Which is a gas?\nAnswer:" and got["choices"] == ["ice", "steam"]
    assert got["answer"] == 1


def test_arc_json_array_and_parquet(tmp_path):
    path = tmp_path / "arc.json"
    path.write_text(json.dumps(ARC_ROWS))
    assert [r["id"] for r in formats.arc(path)] == ["Mercury_1", "NYSEDREGENTS_2"]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(ARC_ROWS), tmp_path / "arc.parquet")
    assert formats.arc(tmp_path / "arc.parquet") == formats.arc(path)


def test_hellaswag_preprocessing(tmp_path):
    row = {
        "ind": 24, "activity_label": "Home and Garden",
        "ctx_a": "[header] How to water a plant [title] Check the soil.", "ctx_b": "[step] Push a Finger in",
        "endings": ["to see if it is dry [substeps] Wait.", "and  sing."], "label": "0",
    }
    (got,) = formats.hellaswag(jsonl(tmp_path / "hs.jsonl", [row]))
    assert got["id"] == "hellaswag-24"
    # str.capitalize() on ctx_b (it lowercases the rest), then the WikiHow markers removed
    assert got["context"] == "Home and Garden: How to water a plant. Check the soil. push a finger in"
    assert got["choices"] == ["to see if it is dry Wait.", "and sing."]
    assert got["answer"] == 0
    unlabelled = {**row, "label": ""}
    with pytest.raises(FormatError, match=r"hs2.jsonl:1: .*no label"):
        formats.hellaswag(jsonl(tmp_path / "hs2.jsonl", [unlabelled]))


def test_mmlu_jsonl(tmp_path):
    rows = [
        {"question": " Capital of Peru? ", "subject": "high_school_geography", "choices": ["Lima", "Quito", "La Paz", "Bogota"], "answer": 0},
        {"question": "2+2?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"], "answer": 1},
    ]
    got = formats.mmlu(jsonl(tmp_path / "mmlu.jsonl", rows))
    assert got[0]["description"] == "The following are multiple choice questions (with answers) about high school geography.\n\n"
    assert got[0]["prompt"] == "Capital of Peru?\nA. Lima\nB. Quito\nC. La Paz\nD. Bogota\nAnswer:"
    assert got[0]["context"] == got[0]["description"] + got[0]["prompt"]
    assert got[0]["choices"] == ["A", "B", "C", "D"] and got[0]["answer"] == 0
    only = formats.mmlu(tmp_path / "mmlu.jsonl", subject="elementary_mathematics")
    assert [r["question"] for r in only] == ["2+2?"]


def test_mmlu_original_csv(tmp_path):
    path = tmp_path / "abstract_algebra_test.csv"
    path.write_text('"Find the order of 2 in Z_4.",1,2,3,4,B\nWhich is a group?,"Z, +",N,"Z, *",none,A\n')
    got = formats.mmlu(path)
    assert [r["answer"] for r in got] == [1, 0]
    assert got[0]["subject"] == "abstract_algebra"
    assert got[1]["prompt"] == "Which is a group?\nA. Z, +\nB. N\nC. Z, *\nD. none\nAnswer:"
    assert "about abstract algebra." in got[0]["description"]
    assert formats.mmlu(path, subject="algebra")[0]["subject"] == "algebra"


def test_truthfulqa_both_layouts(tmp_path):
    hf = {"question": "Is the Earth flat?", "mc1_targets": {"choices": ["No.", "Yes."], "labels": [1, 0]}}
    original = {"question": "Is the Earth flat?", "mc1_targets": {"No.": 1, "Yes.": 0}}
    a = formats.truthfulqa_mc1(jsonl(tmp_path / "a.jsonl", [hf]))
    b = formats.truthfulqa_mc1(jsonl(tmp_path / "b.jsonl", [original]))
    assert a == b
    assert a[0]["context"].startswith("Q: What is human life expectancy in the United States?\n")
    assert a[0]["context"].endswith("Barcelona, Spain.\n\nQ: Is the Earth flat?\nA:")
    assert a[0]["choices"] == ["No.", "Yes."] and a[0]["answer"] == 0



def test_truthfulqa_mc2_rows_carry_every_target_and_its_label(tmp_path):
    mc2 = {"choices": ["No.", "No, it is round.", "Yes.", "Yes, it is a disc."], "labels": [1, 1, 0, 0]}
    hf = {"question": "Is the Earth flat?", "mc1_targets": {"choices": ["No.", "Yes."], "labels": [1, 0]}, "mc2_targets": mc2}
    original = {"question": "Is the Earth flat?", "mc2_targets": dict(zip(mc2["choices"], mc2["labels"]))}
    a = formats.truthfulqa_mc2(jsonl(tmp_path / "a.jsonl", [hf]))
    b = formats.truthfulqa_mc2(jsonl(tmp_path / "b.jsonl", [original]))
    assert a == b
    (row,) = a
    assert row["choices"] == mc2["choices"] and row["labels"] == [1, 1, 0, 0]
    assert "answer" not in row  # several answers are true: score with le.assert_mc2(ranked, case["labels"])
    (mc1,) = formats.truthfulqa_mc1(tmp_path / "a.jsonl")
    assert row["context"] == mc1["context"] and row["id"] == mc1["id"]  # the same prompt as MC1
    assert row["context"].endswith("Barcelona, Spain.\n\nQ: Is the Earth flat?\nA:")


@pytest.mark.parametrize(
    "targets, message",
    [
        ({"choices": ["a", "b"], "labels": [1, 1]}, "at least one true \\(1\\) and one false \\(0\\)"),
        ({"choices": ["a", "b"], "labels": [0, 0]}, "at least one true \\(1\\) and one false \\(0\\)"),
        ({"choices": ["a", "b"], "labels": [1, "yes"]}, "labels must be 1 \\(true\\) or 0 \\(false\\)"),
        ({"choices": ["a", "b"], "labels": [1]}, "2 choices but labels"),
        (["a", "b"], "mc2_targets must be an object"),
    ],
)
def test_truthfulqa_mc2_schema_errors(tmp_path, targets, message):
    path = jsonl(tmp_path / "tqa.jsonl", [{"question": "q", "mc2_targets": targets}])
    with pytest.raises(FormatError, match=message) as info:
        formats.truthfulqa_mc2(path)
    assert "tqa.jsonl:1" in str(info.value)
    with pytest.raises(FormatError, match="no 'mc2_targets' field"):
        formats.truthfulqa_mc2(jsonl(tmp_path / "mc1_only.jsonl", [{"question": "q", "mc1_targets": {"a": 1, "b": 0}}]))


def test_arc_challenge_reference_sample_reads_like_arc_easy():
    rows = formats.arc(Path(__file__).resolve().parents[1] / "reference" / "data" / "arc_challenge_test.jsonl")
    assert len(rows) == 10 and len({r["id"] for r in rows}) == 10
    assert {len(r["choices"]) for r in rows} == {3, 4, 5}  # as in the published split
    assert {r["labels"][0] for r in rows} == {"A", "1"}  # letter and digit labels
    assert all(r["context"] == f"Question: {r['question']}\nAnswer:" for r in rows)

def test_winogrande_partial_scoring_rows(tmp_path):
    row = {"qID": "3QX-1", "sentence": "The cup fell off the table because the _ was tilted.", "option1": "cup", "option2": "table", "answer": "2"}
    (got,) = formats.winogrande(jsonl(tmp_path / "wg.jsonl", [row]))
    assert got["id"] == "3QX-1"
    assert got["context"] == "The cup fell off the table because the "
    assert got["choices"] == ["cup", "table"]
    assert got["continuation"] == "was tilted."
    assert got["answer"] == 1
    with pytest.raises(FormatError, match="no '_' blank"):
        formats.winogrande(jsonl(tmp_path / "bad.jsonl", [{**row, "sentence": "No blank here."}]))


def test_gsm8k(tmp_path):
    row = {"question": "Tom has 3 apples and gets 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"}
    (got,) = formats.gsm8k(jsonl(tmp_path / "gsm.jsonl", [row]))
    assert got["answer"] == "7"
    assert got["context"] == "Question: Tom has 3 apples and gets 4. How many?\nAnswer:"
    assert got["target"] == row["answer"]
    assert "choices" not in got
    with pytest.raises(FormatError, match=r"gsm2.jsonl:1: .*####"):
        formats.gsm8k(jsonl(tmp_path / "gsm2.jsonl", [{"question": "q", "answer": "7"}]))


def test_ids_are_stable_and_unique(tmp_path):
    rows = [{"question": f"Q{i}", "answer": f"#### {i}"} for i in range(3)]
    forward = formats.gsm8k(jsonl(tmp_path / "f.jsonl", rows))
    backward = formats.gsm8k(jsonl(tmp_path / "b.jsonl", rows[::-1]))
    assert {r["id"]: r["question"] for r in forward} == {r["id"]: r["question"] for r in backward}
    dup = formats.gsm8k(jsonl(tmp_path / "d.jsonl", [rows[0], rows[0]]))
    assert dup[1]["id"] == dup[0]["id"] + "~2"


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "arc.jsonl"
    path.write_text(json.dumps(ARC_ROWS[0]) + "\n\n{not json\n")
    with pytest.raises(FormatError, match=r"arc.jsonl:3: not valid JSON"):
        formats.arc(path)


@pytest.mark.parametrize(
    "loader, row, message",
    [
        (formats.arc, {"id": "x", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "A"}, "no 'question' field"),
        (formats.arc, {**ARC_ROWS[0], "answerKey": "E"}, "answerKey 'E' is not one of the labels"),
        (formats.mmlu, {"question": "q", "choices": ["a", "b"], "answer": 0}, "4 choices"),
        (formats.mmlu, {"question": "q", "choices": ["a", "b", "c", "d"], "answer": 7}, "not an index"),
        (formats.truthfulqa_mc1, {"question": "q", "mc1_targets": {"choices": ["a", "b"], "labels": [0, 0]}}, "exactly one"),
        (formats.winogrande, {"sentence": "A _ b", "option1": "x", "option2": "y", "answer": ""}, "answer must be"),
        (formats.hellaswag, ["not", "an", "object"], "expected a HellaSwag record"),
    ],
)
def test_schema_errors_name_the_line(tmp_path, loader, row, message):
    path = jsonl(tmp_path / "data.jsonl", [row])
    with pytest.raises(FormatError, match=message) as info:
        loader(path)
    assert "data.jsonl:1" in str(info.value)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        formats.arc(tmp_path / "missing.jsonl")
    (tmp_path / "arc.txt").write_text("x")
    with pytest.raises(FormatError, match="cannot read .txt"):
        formats.arc(tmp_path / "arc.txt")
    (tmp_path / "arc.csv").write_text("x")
    with pytest.raises(FormatError, match="use JSONL, JSON or Parquet"):
        formats.arc(tmp_path / "arc.csv")


def test_format_errors_are_case_errors():
    assert issubclass(FormatError, CaseError) and issubclass(FormatError, ValueError)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path, suffix):
    plain = tmp_path / f"plain{suffix}"
    text = "".join(json.dumps(r) + "\n" for r in ARC_ROWS) if suffix == ".jsonl" else json.dumps(ARC_ROWS)
    plain.write_text(text, encoding="utf-8")
    marked = tmp_path / f"bom{suffix}"
    marked.write_text("\ufeff" + text.replace("\n", "\r\n"), encoding="utf-8")
    assert formats.arc(marked) == formats.arc(plain)


def test_mmlu_csv_keeps_line_breaks_in_a_question_and_reads_a_bom(tmp_path):
    path = tmp_path / "college_physics_dev.csv"
    path.write_text('\ufeff"Line one\nline two?",a,b,c,d,C\r\nNext?,a,b,c,d,A\r\n', encoding="utf-8")
    got = formats.mmlu(path)
    assert got[0]["question"] == "Line one\nline two?" and got[0]["answer"] == 2
    assert got[0]["prompt"].startswith("Line one\nline two?\nA. a\n")
    assert got[1]["question"] == "Next?"


def test_mmlu_csv_error_names_the_line_the_record_ends_on(tmp_path):
    path = tmp_path / "x_test.csv"
    path.write_text('"Two\nlines",a,b,c,d,A\r\nshort,row\r\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"x_test\.csv:3: expected 6 columns"):
        formats.mmlu(path)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "arc.jsonl"
    path.write_bytes(json.dumps(ARC_ROWS[0]).replace("gas", "g\xe4s").encode("latin-1") + b"\n")
    with pytest.raises(FormatError, match=r"arc\.jsonl: not UTF-8 text .*; save the file as UTF-8"):
        formats.arc(path)


def test_a_broken_parquet_file_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "arc.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(FormatError, match=r"arc\.parquet: not a readable Parquet file"):
        formats.arc(path)


@pytest.mark.parametrize("labels", [["x", 0], [1, None], [1.0, 0], "10"])
def test_truthfulqa_labels_that_are_not_zero_or_one(tmp_path, labels):
    row = {"question": "q", "mc1_targets": {"choices": ["a", "b"], "labels": labels}}
    with pytest.raises(FormatError, match=r"data\.jsonl:1: mc1_targets"):
        formats.truthfulqa_mc1(jsonl(tmp_path / "data.jsonl", [row]))


def test_truthfulqa_labels_written_as_text(tmp_path):
    row = {"question": "q", "mc1_targets": {"choices": ["a", "b"], "labels": ["0", "1"]}}
    assert formats.truthfulqa_mc1(jsonl(tmp_path / "data.jsonl", [row]))[0]["answer"] == 1
