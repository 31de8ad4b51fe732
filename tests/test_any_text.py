"""Any text in an answer, a prompt, a reason, an id or a suite name (U+2028, U+2029, U+0085, form
feeds, control characters, lone surrogates a server sent, formulas, quotes) goes through every file
a run writes and every command that reads them back: merge, report, compare --html, review and
calibrate, exactly."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from html_runs import make_records, write_run
from pytest_llmeval.__main__ import main
from pytest_llmeval.results.review import unprotect_cell
from pytest_llmeval.results.samplefile import read_samples

BREAKS = "\u2028\u2029\x85\x0c\x1c\x1d\x1e\x0b\r\n\t"
any_text = st.text(st.characters(blacklist_categories=()) | st.sampled_from(BREAKS), max_size=16)
"""Every code point, lone surrogates included, with line breaks of every kind weighted in."""
key_text = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(BREAKS + "=+-@'`|"), min_size=1, max_size=12)
"""Case ids and suite names: any text a case file can hold (UTF-8 has no lone surrogates)."""


def _page_data(path: Path) -> dict:
    found = re.search(r'<script type="application/json" id="llmeval-data">(.*?)</script>', path.read_text(encoding="utf-8"), re.S)
    assert found is not None
    return json.loads(found.group(1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(key_text, any_text, any_text), min_size=1, max_size=3, unique_by=lambda t: t[0]), key_text)
def test_any_text_goes_through_every_file_and_command(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
                                                      cases: list[tuple[str, str, str]], name: str) -> None:  # fmt: skip
    from dataclasses import replace

    tmp = tmp_path_factory.mktemp("text")
    suite = f"e/test_{name}.py::test_x"
    records = []
    for (case_id, answer, prompt), base in zip(cases, make_records(suite, len(cases), failing=[0])):
        judgement = {"label": "PASS", "labels": ["PASS", "FAIL"], "probabilities": {"PASS": 0.7, "FAIL": 0.3}, "reference": answer}
        records.append(replace(base, case_id=case_id, completion=answer, prompt=prompt, reason=answer or "r", judgement=judgement))
    run = tmp / "run"
    write_run(run, records)
    written = {(s["suite"], s["id"]): s for s in read_samples(run / "samples.jsonl")}
    assert {k: (s["completion"], s["prompt"]) for k, s in written.items()} == {(suite, c): (a, p) for c, a, p in cases}
    capsys.readouterr()

    assert main(["merge", str(tmp / "merged"), str(run)]) in (0, 1)
    assert read_samples(tmp / "merged" / "samples.jsonl") == read_samples(run / "samples.jsonl")

    assert main(["report", str(run), "--html", str(tmp / "r.html")]) == 0
    shown = {(row["id"], row["d"]["completion"]) for row in _page_data(tmp / "r.html")["cases"]}
    assert shown == {(c, a) for c, a, _ in cases}

    assert main(["compare", str(run), str(tmp / "merged"), "--html", str(tmp / "c.html")]) == 0
    assert {row["id"] for row in _page_data(tmp / "c.html")["cases"]} == {c for c, _, _ in cases}

    labels = tmp / "labels.csv"
    assert main(["review", "export", str(run), str(labels)]) == 0
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(unprotect_cell(r["suite"]), unprotect_cell(r["id"])) for r in rows} == {(suite, c) for c, _, _ in cases}
    for row in rows:
        row["human_label"] = "FAIL"
    with labels.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["review", "import", str(run), str(labels), "--write", str(tmp / "kept.csv")]) == 0
    assert main(["calibrate", str(run), str(tmp / "kept.csv")]) == 0
    out = capsys.readouterr()
    assert f"{len(cases)} labelled case" in out.out and "error" not in out.err
