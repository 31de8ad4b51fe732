"""People in the loop: review export / import and calibrate on a run's results folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

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
