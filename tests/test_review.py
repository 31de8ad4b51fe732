"""People in the loop: review export / import and calibrate on a run's results folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmeval.__main__ import main

SUITE = "evals/test_support.py::test_tone"


def results(tmp_path: Path, judged: dict[str, str]) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    lines = [{"suite": "evals/test_math.py::test_add", "id": "plain", "prompt": "1+1", "completion": "2"}]
    for case_id, label in judged.items():
        probs = {"PASS": 0.8, "FAIL": 0.2} if label == "PASS" else {"PASS": 0.3, "FAIL": 0.7}
        lines.append({
            "suite": SUITE, "id": case_id, "prompt": f"question {case_id}", "completion": f"reply {case_id}",
            "judgement": {"label": label, "probabilities": probs, "reference": f"ref {case_id}", "score": probs["PASS"]},
        })  # fmt: skip
    (out / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return out


def label(path: Path, labels: dict[str, str]) -> None:
    rows = list(csv.DictReader(path.open(newline="")))
    for row in rows:
        row["human_label"] = labels.get(row["id"], "")
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


JUDGE = {"a": "PASS", "b": "PASS", "c": "FAIL", "d": "FAIL", "e": "PASS"}


def test_export_writes_the_judged_cases_for_people_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = results(tmp_path, JUDGE)
    labels = tmp_path / "labels.csv"
    assert main(["review", "export", str(out), str(labels)]) == 0
    rows = list(csv.DictReader(labels.open(newline="")))
    assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e"]
    assert rows[2] == {
        "suite": SUITE, "id": "c", "prompt": "question c", "completion": "reply c", "reference": "ref c",
        "judge_label": "FAIL", "judge_probability": "0.700", "human_label": "",
    }  # fmt: skip
    assert "wrote 5 judged cases" in capsys.readouterr().out
    assert main(["review", "export", str(out), str(labels)]) == 3
    assert "may hold people's labels" in capsys.readouterr().err


def test_import_checks_the_labels_and_keeps_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = results(tmp_path, JUDGE)
    labels = tmp_path / "labels.csv"
    main(["review", "export", str(out), str(labels)])
    label(labels, {"a": "PASS", "b": "FAIL", "c": "FAIL"})
    kept = tmp_path / "kept.csv"
    assert main(["review", "import", str(out), str(labels), "--write", str(kept)]) == 0
    assert "3 labelled cases in" in capsys.readouterr().out
    assert kept.read_text().splitlines() == ["suite,id,human_label", f"{SUITE},a,PASS", f"{SUITE},b,FAIL", f"{SUITE},c,FAIL"]
    label(labels, {"a": "MAYBE"})
    assert main(["review", "import", str(out), str(labels)]) == 1
    assert "not a label the judge gives (FAIL, PASS)" in capsys.readouterr().err


def test_calibrate_prints_accuracy_kappa_the_matrix_and_disagreements(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = results(tmp_path, JUDGE)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,human_label\na,PASS\nb,FAIL\nc,FAIL\nd,FAIL\ne,PASS\n")  # no suite column: ids match in any suite
    assert main(["calibrate", str(out), str(labels)]) == 0
    text = capsys.readouterr().out
    # people PASS/FAIL vs judge: [[2, 0], [1, 2]]: p_o = 0.8, p_e = .4*.6 + .6*.4 = .48, kappa = .32/.52
    assert "accuracy: 0.800" in text and "Cohen's kappa: 0.615 (95% CI" in text
    assert f"  {SUITE}::b: people FAIL, judge PASS" in text
    assert main(["calibrate", str(out), str(labels), "--min-kappa", "0.7"]) == 1


def test_bad_inputs_are_one_line_with_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", str(tmp_path / "none"), str(tmp_path / "l.csv")]) == 3
    assert "run the suite with --llmeval-output" in capsys.readouterr().err
    out = results(tmp_path, JUDGE)
    (tmp_path / "bad.csv").write_text("case,label\nx,PASS\n")
    assert main(["calibrate", str(out), str(tmp_path / "bad.csv")]) == 3
    assert "needs the columns 'id' and 'human_label'" in capsys.readouterr().err
    assert main(["review"]) == 3


# ---------------------------------------------------------------- spreadsheets


def _saved_like_a_spreadsheet(rows: list[list[str]], delimiter: str) -> bytes:
    """What a spreadsheet saves as "CSV UTF-8": a byte-order mark, CRLF, and empty rows left over."""
    text = "".join(delimiter.join(cells) + "\r\n" for cells in rows) + delimiter * (len(rows[0]) - 1) + "\r\n\r\n"
    return b"\xef\xbb\xbf" + text.encode("utf-8")


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_labels_saved_by_a_spreadsheet_import_with_every_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str], delimiter: str) -> None:
    out = results(tmp_path, JUDGE)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(_saved_like_a_spreadsheet([["suite", "id", "human_label"], [SUITE, "a", "PASS"], ["", "b", "FAIL"], [SUITE, "c", ""]], delimiter))
    kept = tmp_path / "kept.csv"
    assert main(["review", "import", str(out), str(labels), "--write", str(kept)]) == 0
    assert "2 labelled cases in" in capsys.readouterr().out
    assert kept.read_text().splitlines() == ["suite,id,human_label", f"{SUITE},a,PASS", f"{SUITE},b,FAIL"]  # the suite filled in
    assert main(["calibrate", str(out), str(labels)]) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("Case;Verdict\r\na;PASS\r\n", r"labels\.csv:1: not a labels file \(its header is 'Case;Verdict'\); it needs the columns 'id' and 'human_label'"),
        ("a,PASS\nb,FAIL\n", r"labels\.csv:1: not a labels file \(its header is 'a,PASS'\)"),
        ("id,human_label,id\na,PASS,a\n", r"labels\.csv:1: the column 'id' appears twice; keep one"),
        ("suite,id,human_label\nS,a,PASS\nS,a,FAIL\n", r"labels\.csv:3: S::a is labelled 'FAIL' here and 'PASS' on line 2; keep one"),
        ("id,human_label\n,PASS\n", r"labels\.csv:2: a human_label without an id"),
        (b"id,human_label\n\xff\xfe,PASS\n", r"labels\.csv is not a UTF-8 CSV file"),
    ],
)
def test_a_labels_file_that_is_not_ours_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str) -> None:
    import re

    out = results(tmp_path, JUDGE)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content if isinstance(content, bytes) else content.encode())
    for command in (["review", "import", str(out), str(labels), "--write", str(tmp_path / "kept.csv")], ["calibrate", str(out), str(labels)]):
        assert main(command) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "kept.csv").exists()


def test_an_id_without_a_suite_that_the_run_cannot_place_is_not_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = results(tmp_path, JUDGE)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,human_label\na,PASS\nzz,FAIL\n")
    assert main(["review", "import", str(out), str(labels), "--write", str(tmp_path / "kept.csv")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {labels}: the row of id 'zz' has no suite and is not a judged case of the run; fill in its suite column"]
    assert not (tmp_path / "kept.csv").exists()


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


@given(st.text())
def test_a_protected_cell_never_starts_a_formula_and_reads_back_exactly(value: str) -> None:
    from pytest_llmeval.results.review import protect_cell, unprotect_cell

    cell = protect_cell(value)
    assert not cell.startswith(FORMULA_LEADS)
    assert unprotect_cell(cell) == value


cell_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=5, unique_by=lambda t: t[0]),
    cell_text,
    st.sampled_from(["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x", "'=x", "=HYPERLINK(\"http://x\")"]),
)
def test_export_cells_run_no_formula_and_labels_come_back_to_their_cases(tmp_path_factory: pytest.TempPathFactory, cases: list, suite: str, formula: str) -> None:
    """Any text in a suite, an id, a prompt or a completion (formulas, quotes, line breaks,
    delimiters): no exported cell starts a formula, and the labels people fill in come back
    to exactly the run's (suite, id)."""
    from pytest_llmeval.jsonfiles import jsonl_line

    tmp = tmp_path_factory.mktemp("review")
    out = tmp / "out"
    out.mkdir()
    suite = formula + suite
    lines = [{"suite": suite, "id": case_id, "prompt": formula + text, "completion": text + formula,
              "judgement": {"label": "PASS", "probabilities": {"PASS": 0.9, "FAIL": 0.1}, "reference": formula}} for case_id, text in cases]  # fmt: skip
    (out / "samples.jsonl").write_text("".join(jsonl_line(line) for line in lines), encoding="utf-8")
    labels = tmp / "labels.csv"
    assert main(["review", "export", str(out), str(labels)]) == 0
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert all(not cell.startswith(FORMULA_LEADS) for row in rows for cell in row)
    filled = [row[:-1] + ["FAIL"] for row in rows[1:]]
    with labels.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([rows[0], *filled])
    kept = tmp / "kept.csv"
    assert main(["review", "import", str(out), str(labels), "--write", str(kept)]) == 0
    from pytest_llmeval.results.review import read_labels

    assert read_labels(kept) == {(suite, case_id): "FAIL" for case_id, _ in cases}
