"""The baseline file: format, atomic writes, checks with clear messages, and verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_llmeval.results.baseline import (
    BaselineError,
    SuiteEntry,
    Verdict,
    compare_suite,
    dumps_baseline,
    fingerprint_diff,
    load_baseline,
    prune_suites,
    updated_suites,
    write_baseline,
)
from pytest_llmeval.results.stats import SuiteResult

FP = {
    "model": "sha256:m1",
    "tokenizer": "sha256:t1",
    "chat_template": "sha256:c1",
    "dtype": "float32",
    "generation": {"do_sample": False, "max_new_tokens": 32},
    "prompt": "sha256:p1",
    "dataset": "sha256:d1",
    "num_fewshot": 0,
}


def suite(name: str, outcomes: dict[str, str], fingerprint: dict | None = None) -> SuiteResult:
    values = list(outcomes.values())
    return SuiteResult(
        name=name,
        n=len(values),
        passed=values.count("pass"),
        failed=values.count("fail"),
        errors=values.count("error"),
        outcomes=outcomes,
        fingerprint=FP if fingerprint is None else fingerprint,
    )


def outcomes(n: int, failing: set[int]) -> dict[str, str]:
    return {f"c{i:03d}": "fail" if i in failing else "pass" for i in range(n)}


# ---------------------------------------------------------------- file format


def test_written_file_is_sorted_indented_and_ends_with_newline(tmp_path: Path):
    path = tmp_path / "sub" / "baseline.json"
    write_baseline(path, None, [suite("z.py::t", {"b": "pass", "a": "fail", "c": "error"}), suite("a.py::t", {"x": "pass"})])
    text = path.read_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert list(data["suites"]) == ["a.py::t", "z.py::t"]
    entry = data["suites"]["z.py::t"]
    assert entry["cases"] == {"a": 0, "b": 1, "c": 0}
    assert (entry["n"], entry["passed"], entry["failed"], entry["errors"]) == (3, 1, 1, 1)
    assert entry["fingerprint"] == FP
    assert data["schema"] == 1
    assert "time" not in text and "date" not in text


def test_round_trip(tmp_path: Path):
    path = tmp_path / "b.json"
    write_baseline(path, None, [suite("f.py::t", outcomes(5, {1, 3}))])
    loaded = load_baseline(path)
    entry = loaded.suites["f.py::t"]
    assert entry == SuiteEntry(fingerprint=FP, n=5, passed=3, failed=2, errors=0, cases={f"c{i:03d}": int(i not in {1, 3}) for i in range(5)})
    assert entry.pass_rate == 0.6


def test_update_keeps_other_suites_verbatim(tmp_path: Path):
    path = tmp_path / "b.json"
    other = {"cases": {"q": 1}, "n": 1, "passed": 1, "errors": 0, "fingerprint": {}, "note": "hand-written"}
    path.write_text(dumps_baseline({"other.py::t": other, "f.py::t": {"cases": {"a": 0}, "fingerprint": {}}}))
    old = load_baseline(path)
    write_baseline(path, old, [suite("f.py::t", {"a": "pass"})])
    data = json.loads(path.read_text())
    assert data["suites"]["other.py::t"] == other
    assert data["suites"]["f.py::t"]["cases"] == {"a": 1}
    assert updated_suites(old, [])["other.py::t"] == other


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "b.json"
    write_baseline(path, None, [suite("f.py::t", {"a": "pass"})])
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_baseline(path, None, [suite("f.py::t", {"a": "fail"})])
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["b.json"]  # no temporary file left behind


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    "text, kind, words",
    [
        ("", "empty", "is empty"),
        ("  \n", "empty", "is empty"),
        ('{"schema": 1, "suites": {', "corrupt", "not valid JSON"),
        ('{\n"schema": 1,\n"suites": {}\n,}', "corrupt", "line 4"),
        ("[1, 2]", "corrupt", "JSON object"),
        ('{"suites": {}}', "corrupt", '"schema"'),
        ('{"schema": 7, "suites": {}}', "corrupt", "upgrade pytest-llmeval"),
        ('{"schema": 1, "suites": []}', "corrupt", '"suites" must be an object'),
        ('{"schema": 1, "suites": {"f.py::t": {"cases": {"a": 2}}}}', "corrupt", 'cases["a"] must be 1 or 0'),
        ('{"schema": 1, "suites": {"f.py::t": {"fingerprint": {}}}}', "corrupt", '"cases" must be an object'),
        ('{"schema": 1, "suites": {"f.py::t": {"cases": {}, "n": -1}}}', "corrupt", '"n" must be'),
        ('{"schema": 1, "suites": {"f.py::t": {"cases": {"a": 1}, "n": 1, "passed": 2}}}', "corrupt", "larger than"),
        ('<<<<<<< HEAD\n{"schema": 1}\n=======\n{}\n>>>>>>> branch\n', "corrupt", "merge-conflict"),
    ],
)
def test_bad_files_give_a_clear_error(tmp_path: Path, text: str, kind: str, words: str):
    path = tmp_path / "baseline.json"
    path.write_text(text)
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert info.value.kind == kind
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(BaselineError) as info:
        load_baseline(tmp_path / "nope.json")
    assert info.value.kind == "missing"


def test_folder_instead_of_file(tmp_path: Path):
    with pytest.raises(BaselineError) as info:
        load_baseline(tmp_path)
    assert info.value.kind == "corrupt" and "folder" in str(info.value)


def test_entry_counts_default_from_cases(tmp_path: Path):
    path = tmp_path / "b.json"
    path.write_text('{"schema": 1, "suites": {"f.py::t": {"cases": {"a": 1, "b": 0, "c": 1}}}}')
    entry = load_baseline(path).suites["f.py::t"]
    assert (entry.n, entry.passed, entry.failed, entry.errors) == (3, 2, 1, 0)


def test_prune(tmp_path: Path):
    path = tmp_path / "b.json"
    write_baseline(path, None, [suite("a.py::t", {"x": "pass"}), suite("b.py::t", {"x": "pass"})])
    removed, missing = prune_suites(path, ["a.py::t", "zzz"])
    assert removed == ["a.py::t"] and missing == ["zzz"]
    assert list(load_baseline(path).suites) == ["b.py::t"]


# ---------------------------------------------------------------- verdicts


def entry_for(result: SuiteResult) -> SuiteEntry:
    return SuiteEntry.from_result(result)


def test_new_suite():
    c = compare_suite(suite("f.py::t", {"a": "pass"}), None, tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.NEW


def test_noise_is_unchanged():
    base = suite("f.py::t", outcomes(200, set(range(0, 60))))
    # three cases newly failing, four newly passing
    now = suite("f.py::t", outcomes(200, set(range(4, 60)) | {100, 101, 102}))
    c = compare_suite(now, entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.UNCHANGED
    assert c.paired is not None and len(c.paired.newly_failing) == 3 and len(c.paired.newly_passing) == 4


def test_fifteen_point_drop_on_200_is_regressed():
    base = suite("f.py::t", outcomes(200, set(range(0, 40))))
    now = suite("f.py::t", outcomes(200, set(range(0, 70))))
    c = compare_suite(now, entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.REGRESSED
    assert c.paired is not None
    assert c.paired.delta == pytest.approx(-0.15)
    assert c.paired.newly_failing == tuple(f"c{i:03d}" for i in range(40, 70))
    assert c.paired.p_value < 1e-6
    # the tolerance and alpha are the user's to set
    assert compare_suite(now, entry_for(base), tolerance=0.2, alpha=0.05).verdict is Verdict.UNCHANGED
    assert compare_suite(now, entry_for(base), tolerance=0.02, alpha=1e-12).verdict is Verdict.UNCHANGED


def test_improved():
    base = suite("f.py::t", outcomes(100, set(range(0, 50))))
    now = suite("f.py::t", outcomes(100, set(range(0, 20))))
    assert compare_suite(now, entry_for(base), tolerance=0.02, alpha=0.05).verdict is Verdict.IMPROVED


def test_significant_but_within_tolerance_is_unchanged():
    base = suite("f.py::t", outcomes(1000, set()))
    now = suite("f.py::t", outcomes(1000, set(range(15))))  # 1.5 points, p < 0.001
    c = compare_suite(now, entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.paired is not None and c.paired.p_value < 0.001
    assert c.verdict is Verdict.UNCHANGED


def test_must_match_fields_make_it_incomparable_and_are_named():
    base = suite("f.py::t", {"a": "pass"})
    fp = dict(FP, prompt="sha256:p2", generation={"do_sample": False, "max_new_tokens": 64})
    c = compare_suite(suite("f.py::t", {"a": "pass"}, fp), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.INCOMPARABLE
    assert c.differing == ("prompt", "generation")
    assert "generation.max_new_tokens: 32 -> 64" in c.details
    assert "prompt: sha256:p1 -> sha256:p2" in c.details


@pytest.mark.parametrize("field", ["dataset", "num_fewshot"])
def test_dataset_and_fewshot_must_match(field: str):
    base = suite("f.py::t", {"a": "pass"})
    fp = dict(FP, **{field: "other" if field == "dataset" else 5})
    c = compare_suite(suite("f.py::t", {"a": "pass"}, fp), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.INCOMPARABLE and c.differing == (field,)


def test_a_different_model_is_what_one_compares():
    base = suite("f.py::t", outcomes(50, set()))
    fp = dict(FP, model="sha256:m2", tokenizer="sha256:t2", chat_template="sha256:c2", dtype="bfloat16")
    c = compare_suite(suite("f.py::t", outcomes(50, set()), fp), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.UNCHANGED
    assert c.compared_across == ("chat_template", "dtype", "model", "tokenizer")


def test_no_shared_cases_is_incomparable():
    base = suite("f.py::t", {"a": "pass"})
    c = compare_suite(suite("f.py::t", {"b": "pass"}), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.INCOMPARABLE and "no case ids in common" in c.note


def test_errors_count_as_not_passing_in_the_paired_test():
    base = suite("f.py::t", {"a": "pass", "b": "pass"})
    c = compare_suite(suite("f.py::t", {"a": "error", "b": "pass"}), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.paired is not None and c.paired.newly_failing == ("a",)


def test_fingerprint_diff_treats_tuples_like_lists():
    a = dict(FP, generation={"stop": ["\n"], "max_new_tokens": 8})
    b = dict(FP, generation={"stop": ("\n",), "max_new_tokens": 8})
    assert fingerprint_diff(a, b) == ([], [], [])
