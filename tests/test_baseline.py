"""The baseline file: format, atomic writes, checks with clear messages, and verdicts."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from pytest_llmeval.results.baseline import (
    BaselineError,
    dumps_baseline,
    entry_json,
    load_baseline,
    parse_baseline,
    prune_suites,
    record_suites,
    updated_suites,
    write_baseline,
)
from pytest_llmeval.files import ReadOnlyFileError
from pytest_llmeval.results.comparison import Verdict, compare_suite, fingerprint_diff
from pytest_llmeval.results.records import Fingerprint, Outcome
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
    return SuiteResult.from_outcomes(name, outcomes, fingerprint=FP if fingerprint is None else fingerprint)


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
    assert (entry.name, entry.n, entry.passed, entry.failed, entry.errors) == ("f.py::t", 5, 3, 2, 0)
    assert entry.fingerprint == Fingerprint.from_json(FP) and entry.fingerprint.to_json() == FP
    assert entry.outcomes == {f"c{i:03d}": Outcome.MISS if i in {1, 3} else Outcome.PASS for i in range(5)}
    assert entry.pass_rate == 0.6
    assert entry_json(entry) == loaded.raw["f.py::t"]


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


def entry_for(result: SuiteResult) -> SuiteResult:
    """``result`` as a baseline file records it and reads it back."""
    return parse_baseline(dumps_baseline({result.name: entry_json(result)}), Path("b.json")).suites[result.name]


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


# ---------------------------------------------------------------- the format, both ways


EXAMPLE = Path(__file__).resolve().parents[1] / "example_suites" / "llmeval-baseline.json"


def test_the_committed_example_baseline_reads_compares_unchanged_and_writes_back_identically():
    text = EXAMPLE.read_text()
    loaded = parse_baseline(text, EXAMPLE)
    assert len(loaded.suites) >= 4
    for name, entry in loaded.suites.items():
        # a run with the same answers, the fingerprint the plugin sends (a plain mapping)
        run = SuiteResult.from_outcomes(name, {k: o.value for k, o in entry.outcomes.items()}, fingerprint=loaded.raw[name]["fingerprint"],
                                        variants=entry.variants)  # a robustness suite's variants are stored with its cases
        assert compare_suite(run, entry, tolerance=0.02, alpha=0.05).verdict is Verdict.UNCHANGED
        assert entry_json(run) == loaded.raw[name]
    assert dumps_baseline(updated_suites(None, loaded.suites.values())) == text


def test_fingerprint_fields_say_which_must_match_and_which_are_compared():
    from pytest_llmeval.results.records import COMPARED, MUST_MATCH

    assert MUST_MATCH == ("prompt", "generation", "num_fewshot", "dataset", "chat", "judge", "tools")
    assert COMPARED == ("model", "tokenizer", "chat_template", "dtype", "versions")
    stored = dict(FP, backend="hf", generation={"stop": ("\n",), "max_new_tokens": 8})
    fp = Fingerprint.from_json(stored)
    assert fp.extra == {"backend": "hf"} and fp.generation == {"stop": ["\n"], "max_new_tokens": 8}
    assert fp.to_json() == dict(stored, generation={"max_new_tokens": 8, "stop": ["\n"]})
    assert Fingerprint.from_json(fp.to_json()) == fp
    diff = fp.diff(Fingerprint.from_json(dict(stored, backend="other", dtype="bfloat16", num_fewshot=5)))
    assert diff.differing == ("num_fewshot",) and diff.compared_across == ("dtype",)  # unknown keys are not compared


# ---------------------------------------------------------------- versions and chat, recorded since


VERSIONS = {"pytest-llmeval": "0.1.0", "transformers": "4.57.0", "torch": "2.8.0", "tokenizers": "0.22.1"}


def test_a_verdict_across_versions_says_which_changed():
    base = suite("f.py::t", outcomes(40, set()), dict(FP, versions=VERSIONS))
    now = dict(FP, versions=dict(VERSIONS, transformers="4.58.1", torch="2.9.0"))
    c = compare_suite(suite("f.py::t", outcomes(40, set(range(10))), now), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.REGRESSED  # compared, not required to match
    assert c.compared_across == ("versions",)
    assert c.versions_changed == ("torch 2.8.0 -> 2.9.0", "transformers 4.57.0 -> 4.58.1")


@pytest.mark.parametrize(
    "before,after",
    [
        (None, VERSIONS),  # a baseline recorded before versions were
        (VERSIONS, None),
        ({"transformers": "4.57.0"}, VERSIONS),  # names only one side records
        (VERSIONS, dict(VERSIONS)),
        ("4.57.0", VERSIONS),  # not a mapping: nothing to compare name by name
    ],
)
def test_versions_not_recorded_on_one_side_are_no_change(before, after):
    base = suite("f.py::t", outcomes(5, set()), dict(FP, versions=before) if before is not None else FP)
    now = dict(FP, versions=after) if after is not None else FP
    c = compare_suite(suite("f.py::t", outcomes(5, set()), now), entry_for(base), tolerance=0.02, alpha=0.05)
    assert (c.verdict, c.compared_across, c.versions_changed) == (Verdict.UNCHANGED, (), ())


def test_chat_is_recorded_and_must_match_when_both_sides_say():
    base = suite("f.py::t", {"a": "pass"}, dict(FP, chat=False))
    c = compare_suite(suite("f.py::t", {"a": "pass"}, dict(FP, chat=True)), entry_for(base), tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.INCOMPARABLE and c.differing == ("chat",) and "chat: false -> true" in c.details
    older = suite("f.py::t", {"a": "pass"}, FP)  # recorded before the fingerprint said
    for chat in (True, False):
        c = compare_suite(suite("f.py::t", {"a": "pass"}, dict(FP, chat=chat)), entry_for(older), tolerance=0.02, alpha=0.05)
        assert c.verdict is Verdict.UNCHANGED and c.differing == ()


def test_a_baseline_recorded_before_chat_and_versions_compares_unchanged_with_a_run_now(tmp_path: Path):
    """A run now records whether the chat template was applied and the versions: the example
    baseline with those fields taken out (as older baselines are) still compares UNCHANGED and
    reports no change."""
    data = json.loads(EXAMPLE.read_text())
    assert all({"chat", "versions"} <= set(s["fingerprint"]) for s in data["suites"].values())  # recorded today
    for s in data["suites"].values():
        s["fingerprint"].pop("chat")
        s["fingerprint"].pop("versions")
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    loaded = parse_baseline(older.read_text(), older)
    for name, entry in loaded.suites.items():
        for chat in (True, False):
            now = dict(loaded.raw[name]["fingerprint"], chat=chat, versions=VERSIONS)
            run = SuiteResult.from_outcomes(name, {k: o.value for k, o in entry.outcomes.items()}, fingerprint=now)
            c = compare_suite(run, entry, tolerance=0.02, alpha=0.05)
            assert (c.verdict, c.differing, c.compared_across, c.versions_changed) == (Verdict.UNCHANGED, (), (), ())


# ---------------------------------------------------------------- recording safely


def test_record_suites_rereads_the_file_under_the_lock(tmp_path: Path):
    path = tmp_path / "b.json"
    record_suites(path, [suite("a.py::t", {"x": "pass"})])
    # another run recorded a suite since this one read the file: it is kept
    write_baseline(path, load_baseline(path), [suite("other.py::t", {"y": "fail"})])
    done = record_suites(path, [suite("a.py::t", {"x": "fail"}), suite("b.py::t", {"z": "pass"})])
    assert (done.added, done.updated, done.written) == (("b.py::t",), ("a.py::t",), True)
    assert set(load_baseline(path).suites) == {"a.py::t", "b.py::t", "other.py::t"}
    assert record_suites(path, [suite("b.py::t", {"z": "pass"})]).written is False
    assert os.listdir(tmp_path) == ["b.json"]  # the lock file goes with the lock


@pytest.mark.parametrize("content", ['<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> b\n', '{"schema": 999, "suites": {}}', "{nope"])
def test_record_suites_never_rewrites_a_file_it_cannot_read(tmp_path: Path, content: str):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        record_suites(path, [suite("a.py::t", {"x": "pass"})])
    assert info.value.kind == "corrupt" and info.value.fix
    assert path.read_text() == content


def _record_rounds(path: str, worker: int, rounds: int, barrier) -> None:
    barrier.wait(60)
    for r in range(rounds):
        record_suites(Path(path), [suite(f"w{worker}.py::round_{r:02d}", {"a": "pass", "b": "fail"})])


def test_concurrent_updates_of_different_suites_lose_none(tmp_path: Path):
    path = tmp_path / "b.json"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    rounds = 25
    procs = [ctx.Process(target=_record_rounds, args=(str(path), w, rounds, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    expected = {f"w{w}.py::round_{r:02d}" for w in range(2) for r in range(rounds)}
    assert set(load_baseline(path).suites) == expected
    assert sorted(os.listdir(tmp_path)) == ["b.json"]


@pytest.mark.parametrize("use_flock", [True, False], ids=["flock", "exclusive-file"])
def test_a_held_lock_makes_others_wait_and_then_time_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_flock: bool):
    from pytest_llmeval.results import locking

    if not use_flock:
        monkeypatch.setattr(locking, "fcntl", None)
    path = tmp_path / "b.json"
    with locking.locked(path):
        with pytest.raises(locking.LockTimeout, match=r"b\.json\.lock is held by another run.*delete b\.json\.lock"):
            record_suites(path, [suite("a.py::t", {"x": "pass"})], timeout=0.05)
    assert not path.exists()
    record_suites(path, [suite("a.py::t", {"x": "pass"})], timeout=0.05)  # free again once released
    assert set(load_baseline(path).suites) == {"a.py::t"}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o444])
def test_a_rewrite_keeps_the_file_mode(tmp_path: Path, mode: int):
    if mode == 0o444 and os.geteuid() != 0:
        pytest.skip("only root may replace a read-only file")
    path = tmp_path / "b.json"
    write_baseline(path, None, [suite("a.py::t", {"x": "pass"})])
    os.chmod(path, mode)
    record_suites(path, [suite("b.py::t", {"x": "pass"})])
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert set(load_baseline(path).suites) == {"a.py::t", "b.py::t"}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        write_baseline(tmp_path / "b.json", None, [suite("a.py::t", {"x": "pass"})])
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "b.json").st_mode) == 0o666 & ~umask


def test_a_file_the_user_may_not_write_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "b.json"
    write_baseline(path, None, [suite("a.py::t", {"x": "pass"})])
    os.chmod(path, 0o444)
    before = path.read_text()
    if os.geteuid() == 0:  # root may write anything: answer as the file's mode says for a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **kw: False if Path(p) == path and m == os.W_OK else real_access(p, m, **kw))
    with pytest.raises(ReadOnlyFileError, match="read-only"):
        record_suites(path, [suite("b.py::t", {"x": "pass"})])
    assert path.read_text() == before and stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert os.listdir(tmp_path) == ["b.json"]


def test_a_symlinked_baseline_stays_a_link(tmp_path: Path):
    target = tmp_path / "real" / "b.json"
    write_baseline(target, None, [suite("a.py::t", {"x": "pass"})])
    link = tmp_path / "b.json"
    link.symlink_to(target)
    record_suites(link, [suite("b.py::t", {"x": "pass"})])
    assert link.is_symlink() and set(load_baseline(target).suites) == {"a.py::t", "b.py::t"}
