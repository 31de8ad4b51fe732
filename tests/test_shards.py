"""--llmeval-shard=I/N and ``python -m pytest_llmeval merge``: shards of one run gate as that run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.__main__ import main
from pytest_llmeval.plugin.shard import parse_shard, shard_of

EVALS = """
import os
import pytest_llmeval as le

CASES = [{"id": f"q{i}", "q": "What is " + "two plus " * (i % 5) + str(i) + "?"} for i in range(14)]
BASE = os.environ.get("LLMEVAL_VARIANT") == "base"

@le.cases(CASES, prompt="{q}", chat=True, max_new_tokens=5)
def test_gen(case, completion):
    assert len(completion) % (2 if BASE else 3) != 0, f"{len(completion)} characters"

@le.cases([{"id": f"c{i}", "q": "Question: what is the capital of France?" + " really" * i, "choices": ["Paris", "fox", "four"], "a": i % 3}
           for i in range(9)], prompt="{q}\\nAnswer:", choices="choices")
def test_rank(case, ranked):
    le.assert_choice(ranked, case["choices"][case["a"]])

def test_plain():
    assert True
"""


@given(st.sets(st.text(min_size=1, max_size=12), max_size=40), st.sets(st.text(min_size=1, max_size=12), max_size=10), st.integers(1, 7))
def test_every_key_is_in_one_shard_and_stays_there_when_keys_are_added(keys: set[str], added: set[str], total: int) -> None:
    before = {k: shard_of(k, total) for k in keys}
    assert all(1 <= s <= total for s in before.values())
    after = {k: shard_of(k, total) for k in keys | added}
    assert {k: after[k] for k in keys} == before


def test_shards_split_cases_roughly_evenly() -> None:
    """2000 keys into 4 shards: each count is Binomial(2000, 1/4) (mean 500, sd 19.4); 400..600
    is more than 5 sd either side, so a fair hash fails it with probability below 1e-6."""
    counts = [0, 0, 0, 0]
    for i in range(2000):
        counts[shard_of(f"evals/test_x.py::test_y\x00case-{i}", 4) - 1] += 1
    assert all(400 <= c <= 600 for c in counts), counts


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "2/0", "1/-1"])
def test_bad_shard_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        parse_shard(text)


def test_bad_shard_option_is_one_usage_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--llmeval-shard", "5/4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmeval-shard*5/4*"])
    assert "Traceback" not in result.stderr.str()


def _table(lines: list[str]) -> list[str]:
    """The llmeval report of a run's output: from the ``llmeval: ... passed`` line (the suite
    table) to the gate's verdict, with its notes and the flips against the baseline."""
    start = next(i for i, line in enumerate(lines) if line.startswith("llmeval: ") and " passed, " in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("llmeval gate "))
    return lines[start : end + 1]


def _suites(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text())["suites"]
    for suite in data.values():
        suite.pop("duration_s")
    return data


@pytest.mark.parametrize("shards", [2, 3])
def test_merged_shards_give_exactly_the_single_runs_table(
    pytester: pytest.Pytester, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], shards: int
) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\nllmeval_baseline = base.json\nllmeval_batch_size = 1\n")
    pytester.makepyfile(test_evals=EVALS)
    monkeypatch.setenv("LLMEVAL_VARIANT", "base")
    assert pytester.runpytest("--llmeval-update-baseline", "-p", "no:randomly").ret == 0
    monkeypatch.delenv("LLMEVAL_VARIANT")
    single = pytester.runpytest("--llmeval-output=single", "-p", "no:randomly")
    plain_runs = 0
    for i in range(1, shards + 1):
        part = pytester.runpytest(f"--llmeval-shard={i}/{shards}", f"--llmeval-output=s{i}", "-p", "no:randomly", "-v")
        plain_runs += part.stdout.str().count("test_evals.py::test_plain PASSED")
        assert json.loads((pytester.path / f"s{i}" / "results.json").read_text())["run"]["shard"] == [i, shards]
    capsys.readouterr()
    code = main(["merge", str(pytester.path / "merged"), *(str(pytester.path / f"s{i}") for i in range(1, shards + 1)),
                 "--baseline", str(pytester.path / "base.json")])  # fmt: skip
    merged = capsys.readouterr().out.splitlines()
    assert plain_runs == 1
    assert code == single.ret
    assert _table(merged) == _table(single.stdout.lines)
    assert _suites(pytester.path / "merged") == _suites(pytester.path / "single")
    verdicts = [s["verdict"]["verdict"] for s in _suites(pytester.path / "single").values()]
    assert verdicts and all(verdicts)  # compared with the baseline, so the verdicts were merged too
    flips = _suites(pytester.path / "single")["test_evals.py::test_gen"]["verdict"]
    assert flips["newly_failing"] or flips["newly_passing"]  # the comparison had something to show


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_each_test_runs_in_exactly_one_shard(pytester: pytest.Pytester, xdist: tuple[str, ...]) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}"} for i in range(20)])
        def test_cases(case):
            pass

        def test_plain_one():
            pass

        def test_plain_two():
            pass
        """
    )
    ran: list[str] = []
    for i in (1, 2, 3):
        result = pytester.runpytest(f"--llmeval-shard={i}/3", "-v", "-p", "no:randomly", *xdist)
        ran += [word for line in result.stdout.lines if "PASSED" in line for word in line.split() if "::" in word]
    module = "test_each_test_runs_in_exactly_one_shard.py"
    expected = [f"{module}::test_cases[c{i}]" for i in range(20)] + [f"{module}::test_plain_one", f"{module}::test_plain_two"]
    assert sorted(ran) == sorted(expected)


# ---------------------------------------------------------------- refusals (no model needed)


def _shard_run(out: Path, index: int, total: int, records: list) -> Path:
    from pytest_llmeval.results.gate import GateOptions
    from pytest_llmeval.results.session import EvalSession

    session = EvalSession(GateOptions(rootdir=out.parent, output_dir=out, shard=(index, total), narrowed_by=("--llmeval-shard",)), cwd=out.parent)
    session.add_all(records)
    session.finish()
    return out


def _split(records: list, total: int) -> list[list]:
    return [[r for r in records if shard_of(f"{r.suite}\x00{r.case_id}", total) == i] for i in range(1, total + 1)]


def _merge(capsys: pytest.CaptureFixture[str], out: Path, *dirs: Path, extra: tuple[str, ...] = ()) -> tuple[int, list[str], list[str]]:
    capsys.readouterr()
    code = main(["merge", str(out), *map(str, dirs), *extra])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_merge_gates_the_union_and_refuses_what_is_not_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from html_runs import make_records

    records = make_records("e/test_a.py::test_a", 40, failing=[1, 2, 3]) + make_records("e/test_b.py::test_b", 12, errors=[5])
    parts = _split(records, 3)
    assert all(parts)
    dirs = [_shard_run(tmp_path / f"s{i}", i, 3, part) for i, part in enumerate(parts, 1)]
    code, out, err = _merge(capsys, tmp_path / "m", *dirs)
    assert code == 1 and err == []  # the error in test_b fails the merged gate, as in one run
    assert out[0] == "llmeval: 48 passed, 3 missed, 1 error in 2 suites"
    merged = json.loads((tmp_path / "m" / "results.json").read_text())
    assert merged["suites"]["e/test_a.py::test_a"]["n"] == 40 and "shard" not in merged["run"]

    code, _, err = _merge(capsys, tmp_path / "m2", dirs[0], dirs[2])
    assert code == 3 and err == ["error: shard 2/3 missing; pass every shard's output folder"]

    code, _, err = _merge(capsys, tmp_path / "m3", dirs[0], dirs[1], dirs[2], dirs[1])
    assert code == 3 and any("is shard 2/3 again" in line for line in err) and any("which" in line and "ran too" in line for line in err)

    other = [replace(r, fingerprint={**r.fingerprint.to_json(), "model": "sha256:bbbb"}) for r in parts[2]]
    odd = _shard_run(tmp_path / "odd", 3, 3, other)
    code, _, err = _merge(capsys, tmp_path / "m4", dirs[0], dirs[1], odd)
    assert err == [f"error: {odd}: ran e/test_a.py::test_a, e/test_b.py::test_b with a different model than {dirs[0]}; run every shard with the same model and settings"]
    assert code == 3


def test_merge_of_a_folder_without_results_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _merge(capsys, tmp_path / "m", tmp_path / "nothing")
    assert code == 3 and len(err) == 1 and "results.json: no such file" in err[0]


def test_merged_shards_record_the_baseline_a_single_run_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from html_runs import make_records, write_run

    records = make_records("e/test_a.py::test_a", 30, failing=[4, 9]) + make_records("e/test_b.py::test_b", 9, failing=[0])
    write_run(tmp_path / "single", records, baseline=tmp_path / "single.json", update=True)
    dirs = [_shard_run(tmp_path / f"s{i}", i, 2, part) for i, part in enumerate(_split(records, 2), 1)]
    code, out, err = _merge(capsys, tmp_path / "m", *dirs, extra=("--baseline", str(tmp_path / "merged.json"), "--update-baseline"))
    assert code == 0 and err == []
    assert (tmp_path / "merged.json").read_text() == (tmp_path / "single.json").read_text()


def _two_shards(tmp_path: Path, records: list | None = None) -> list[Path]:
    from html_runs import make_records

    records = records or make_records("e/test_a.py::test_a", 20, failing=[1, 2])
    return [_shard_run(tmp_path / f"s{i}", i, 2, part) for i, part in enumerate(_split(records, 2), 1)]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["a shard", "through ..", "through a link", "inside a shard", "holding the shards"])
def test_merge_never_writes_over_a_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    dirs = _two_shards(tmp_path)
    (tmp_path / "link").symlink_to(dirs[1], target_is_directory=True)
    out = {
        "a shard": dirs[0], "through ..": dirs[0] / ".." / "s2", "through a link": tmp_path / "link",
        "inside a shard": dirs[0] / "merged", "holding the shards": tmp_path,
    }[where]  # fmt: skip
    before = _files(tmp_path)
    code, printed, err = _merge(capsys, out, *dirs)
    assert code == 3 and printed == [] and len(err) == (2 if where == "holding the shards" else 1), err
    for line in err:  # one line per shard it overlaps
        assert line.startswith(f"error: OUT_DIR {out} ") and "the shard folder" in line and line.endswith("write the merged run to a folder of its own")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("option", ["--html", "--markdown"])
def test_merge_never_writes_a_report_over_a_shards_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str) -> None:
    dirs = _two_shards(tmp_path)
    before = _files(tmp_path)
    code, _, err = _merge(capsys, tmp_path / "m", *dirs, extra=(f"{option}={dirs[1] / 'samples.jsonl'}",))
    assert code == 3 and err == [f"error: {dirs[1] / 'samples.jsonl'} is {dirs[1] / 'samples.jsonl'}, an input of the merge; write it somewhere else"]
    assert _files(tmp_path) == before


def test_merge_refuses_shards_run_with_different_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from html_runs import make_records

    records = make_records("e/test_a.py::test_a", 20, failing=[1, 2])
    first, second = _split(records, 2)
    three = [replace(r, repeat=k, repeats=3) for r in first for k in range(3)]
    five = [replace(r, repeat=k, repeats=5) for r in second for k in range(5)]
    dirs = [_shard_run(tmp_path / "s1", 1, 2, three), _shard_run(tmp_path / "s2", 2, 2, five)]
    code, _, err = _merge(capsys, tmp_path / "m", *dirs)
    assert code == 3 and err == [
        f"error: the shards ran with a different samples per case (--llmeval-repeats, le.cases(repeats=)) of e/test_a.py::test_a "
        f"({dirs[0]}: 3; {dirs[1]}: 5); run every shard with the same settings"
    ]
    assert not (tmp_path / "m").exists()


def test_merge_refuses_different_gate_settings_unless_it_is_given_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_llmeval.results.gate import GateOptions
    from pytest_llmeval.results.session import EvalSession

    from html_runs import make_records

    parts = _split(make_records("e/test_a.py::test_a", 20, failing=[1, 2]), 2)
    dirs = []
    for i, (part, tolerance) in enumerate(zip(parts, (0.02, 0.1)), 1):
        out = tmp_path / f"s{i}"
        session = EvalSession(GateOptions(rootdir=tmp_path, output_dir=out, shard=(i, 2), tolerance=tolerance), cwd=tmp_path)
        session.add_all(part)
        session.finish()
        dirs.append(out)
    code, _, err = _merge(capsys, tmp_path / "m", *dirs)
    assert code == 3 and err == [f"error: the shards ran with a different --llmeval-tolerance ({dirs[0]}: 0.02; {dirs[1]}: 0.1); run every shard with the same settings"]
    code, _, err = _merge(capsys, tmp_path / "m", *dirs, extra=("--tolerance=0.05",))
    assert code == 0 and err == []
