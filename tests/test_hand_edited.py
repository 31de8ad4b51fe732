"""Hand-edited results.json and samples.jsonl: every command that reads a run folder (merge,
report, compare, compare --html, review export / import, calibrate) answers a value of the wrong
shape (a wrong type, a missing key, NaN, a huge number, nested junk) with one line naming the
file, the place and the fix, and its documented exit status: never a traceback."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from html_runs import make_records, write_run
from pytest_llmeval.__main__ import main
from pytest_llmeval.jsonfiles import jsonl_line

JUDGED = "e/test_j.py::test_judged"
PLAIN = "e/test_p.py::test_plain"
COMMANDS = {
    "merge": ({0, 1, 3}, lambda run, other, tmp: ["merge", str(tmp / "merged"), str(run)]),
    "report": ({0, 3}, lambda run, other, tmp: ["report", str(run), "--html", str(tmp / "r.html")]),
    "compare": ({0, 1, 2, 3}, lambda run, other, tmp: ["compare", str(other), str(run)]),
    "compare-back": ({0, 1, 2, 3}, lambda run, other, tmp: ["compare", str(run), str(other), "--html", str(tmp / "c.html")]),
    "export": ({0, 3}, lambda run, other, tmp: ["review", "export", str(run), str(tmp / "l.csv"), "--force"]),
    "import": ({0, 1, 3}, lambda run, other, tmp: ["review", "import", str(run), str(tmp / "labels.csv"), "--write", str(tmp / "k.csv")]),
    "calibrate": ({0, 1, 3}, lambda run, other, tmp: ["calibrate", str(run), str(tmp / "labels.csv")]),
}


def _records() -> list:
    judged = []
    for r in make_records(JUDGED, 6, failing=[1]):
        label = "PASS" if r.outcome.value == "pass" else "FAIL"
        judgement = {"label": label, "labels": ["PASS", "FAIL"], "probabilities": {"PASS": 0.8, "FAIL": 0.2}, "score": 0.8, "reference": "ref"}
        judged += [replace(r, judgement=judgement, repeat=k, repeats=2) for k in range(2)]
    ranked = [replace(r, completion=None, choices=("a", "b"), loglikelihoods=(-1.0, -2.5)) for r in make_records(PLAIN, 4, failing=[2], errors=[3])]
    return judged + ranked


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base")
    write_run(root / "run", _records())
    (root / "labels.csv").write_text("suite,id,human_label\n" + "".join(f"{JUDGED},c{i:03d},{'PASS' if i % 2 else 'FAIL'}\n" for i in range(6)))
    return root


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: each key of an object, each item of a list (depth-limited)."""
    out = [prefix] if prefix else []
    if len(prefix) < 5:
        if isinstance(value, dict):
            for k, v in value.items():
                out += _paths(v, (*prefix, k))
        elif isinstance(value, list):
            for i, v in enumerate(value[:3]):
                out += _paths(v, (*prefix, i))
    return out


def _edit(value: Any, path: tuple, action: str, junk: Any) -> Any:
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        parent.pop(last) if isinstance(parent, dict) else parent.pop(last)
    else:
        parent[last] = junk
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -(10**30), 2**64]) | st.floats()
    | st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _copy_of(base_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh folder holding a copy of the run (``run/``) and its labels, to edit: ``(folder, run folder)``."""
    tmp = tmp_path_factory.mktemp("edit")
    shutil.copytree(base_run / "run", tmp / "run")
    shutil.copy(base_run / "labels.csv", tmp / "labels.csv")
    return tmp, tmp / "run"


def _run_commands(folder: Path, other: Path, tmp: Path, capsys: pytest.CaptureFixture[str], edited: str) -> None:
    for name, (allowed, args) in COMMANDS.items():
        capsys.readouterr()
        code = main(args(folder, other, tmp))
        captured = capsys.readouterr()
        assert code in allowed, (name, code, captured.err)
        assert "Traceback" not in captured.out + captured.err, name
        lines = captured.err.strip().splitlines()
        assert all(line.startswith(("error: ", "usage: ", "  not a label")) for line in lines), (name, lines)
        if code == 3 and not name.startswith("compare"):  # compare's 3 may be an incomparable pair, said on stdout
            assert len(lines) == 1 and (edited in lines[0] or str(folder) in lines[0] or "labels.csv" in lines[0]), (name, lines)
        shutil.rmtree(tmp / "merged", ignore_errors=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), junk=json_values, action=st.sampled_from(["replace", "replace", "delete"]))
def test_a_hand_edited_results_json_is_one_line_never_a_traceback(base_run: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                   capsys: pytest.CaptureFixture[str], data: st.DataObject, junk: Any, action: str) -> None:  # fmt: skip
    tmp, folder = _copy_of(base_run, tmp_path_factory)
    results = json.loads((folder / "results.json").read_text())
    path = data.draw(st.sampled_from(_paths(results)))
    (folder / "results.json").write_text(json.dumps(_edit(results, path, action, junk)))
    _run_commands(folder, base_run / "run", tmp, capsys, "results.json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), junk=json_values, action=st.sampled_from(["replace", "replace", "delete"]))
def test_a_hand_edited_samples_line_is_one_line_never_a_traceback(base_run: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                  capsys: pytest.CaptureFixture[str], data: st.DataObject, junk: Any, action: str) -> None:  # fmt: skip
    tmp, folder = _copy_of(base_run, tmp_path_factory)
    lines = [json.loads(line) for line in (folder / "samples.jsonl").read_text().split("\n") if line]
    index = data.draw(st.integers(0, len(lines) - 1))
    path = data.draw(st.sampled_from(_paths(lines[index])))
    lines[index] = _edit(lines[index], path, action, junk)
    (folder / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    _run_commands(folder, base_run / "run", tmp, capsys, "samples.jsonl")


def test_the_line_names_the_file_the_place_and_the_fix(base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    shutil.copytree(base_run / "run", folder)
    results = json.loads((folder / "results.json").read_text())
    results["suites"][PLAIN]["n"] = math.nan
    (folder / "results.json").write_text(json.dumps(results))
    assert main(["report", str(folder), "--html", str(tmp_path / "r.html")]) == 3
    assert capsys.readouterr().err.splitlines() == [
        f'error: {folder / "results.json"}: .suites["{PLAIN}"].n: expected a whole number from 0 to 1e+12, got NaN; '
        "fix or remove that value, or write the folder again with pytest --llmeval-output"
    ]
    (folder / "results.json").write_text((base_run / "run" / "results.json").read_text())
    lines = (folder / "samples.jsonl").read_text().split("\n")
    lines[2] = lines[2].replace('"scores": {', '"scores": {"x": [1, {"deep": 2}], ')
    (folder / "samples.jsonl").write_text("\n".join(lines))
    assert main(["review", "export", str(folder), str(tmp_path / "l.csv")]) == 3
    assert capsys.readouterr().err.splitlines() == [
        f'error: {folder / "samples.jsonl"}:3: .scores.x: expected a number from -1e+12 to 1e+12, got [1, {{"deep": 2}}]; '
        "fix or remove that value, or write the folder again with pytest --llmeval-output"
    ]
