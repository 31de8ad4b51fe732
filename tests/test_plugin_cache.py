"""The completion cache in pytest runs (tiny model): a fully cached run loads no model, the modes,
what misses, two xdist workers writing at once, a corrupt or unwritable cache file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.models.hf import HFBackend
from pytest_llmeval.results.samplefile import read_samples

CASES = "\n".join(
    json.dumps({"id": f"c{i}", "question": q, "answer": a, "choices": [a, "Rome"]})
    for i, (q, a) in enumerate(
        [("What is two plus two?", "four"), ("What is the capital of France?", "Paris"), ("Say thanks", "thanks"), ("Count to 3", "1 2 3")]
    )
)

SUITE = """
import pytest_llmeval as le

@le.cases("cases.jsonl", prompt="{PROMPT}", chat=True)
def test_gen(case, completion):
    assert case["answer"] in completion

@le.cases("cases.jsonl", prompt="Question: {question}\\nAnswer:", choices="choices")
def test_rank(case, ranked):
    le.assert_choice(ranked, case["answer"])
"""


@pytest.fixture
def project(pytester: pytest.Pytester, tiny_model_dir: Path) -> pytest.Pytester:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_max_new_tokens = 6\nllmeval_history = off\n")
    pytester.makefile(".jsonl", cases=CASES)
    write_suite(pytester, "{question}")
    return pytester


def write_suite(pytester: pytest.Pytester, prompt: str) -> None:
    pytester.makepyfile(test_suite=SUITE.replace("{PROMPT}", prompt))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The models loaded in this test's in-process runs."""
    seen: list[str] = []
    original = HFBackend.load.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, settings: Any, rootdir: Any = None) -> Any:
        seen.append(str(settings.model))
        return original(cls, settings, rootdir)

    monkeypatch.setattr(HFBackend, "load", classmethod(counting))
    return seen


def cached_line(result: pytest.RunResult) -> str:
    lines = [line for line in result.outlines if "from the completion cache" in line]
    assert len(lines) <= 1
    return lines[0] if lines else ""


def outcomes(out: Path) -> dict[str, Any]:
    data = json.loads((out / "results.json").read_text())
    return {name: (s["passed"], s["failed"], s["errors"], s["fingerprint"]) for name, s in data["suites"].items()}


def test_a_fully_cached_run_loads_no_model_and_records_the_same_fingerprint(project: pytest.Pytester, loads: list[str]) -> None:
    first = project.runpytest("--llmeval-output=out1")
    assert loads and cached_line(first).endswith("0 of 4 completions and 0 of 4 rankings")
    first.stdout.fnmatch_lines(["llmeval: loaded *"])
    loads.clear()
    second = project.runpytest("--llmeval-output=out2")
    assert loads == [] and "llmeval: loaded" not in second.stdout.str()
    assert cached_line(second) == "llmeval: from the completion cache (on, .llmeval/cache.sqlite): 4 of 4 completions and 4 of 4 rankings"
    before, after = outcomes(project.path / "out1"), outcomes(project.path / "out2")
    assert after == before and all(fp.get("model", "").startswith("sha256:") for *_, fp in after.values())
    results = json.loads((project.path / "out2" / "results.json").read_text())
    assert results["run"]["from_cache"] == {"completions": 4, "rankings": 4}
    assert samples(project.path / "out2") == samples(project.path / "out1")  # texts, tokens, latencies: all kept
    assert [row.get("cached") for row in samples(project.path / "out2", raw=True)] == [True] * 8


def samples(out: Path, raw: bool = False) -> list[dict[str, Any]]:
    rows = read_samples(out / "samples.jsonl")
    return rows if raw else [{k: v for k, v in row.items() if "duration" not in k and k != "cached"} for row in rows]


def test_refresh_recomputes_and_overwrites(project: pytest.Pytester, loads: list[str]) -> None:
    project.runpytest()
    written = _created(project)
    loads.clear()
    result = project.runpytest("--llmeval-cache=refresh")
    assert len(loads) == 1 and "0 of 4 completions and 0 of 4 rankings" in cached_line(result)
    rewritten = _created(project)
    assert rewritten.keys() == written.keys() and all(rewritten[k] > written[k] for k in written)


def _created(project: pytest.Pytester) -> dict[str, float]:
    with sqlite3.connect(project.path / ".llmeval" / "cache.sqlite") as conn:
        return dict(conn.execute("SELECT key, created FROM outputs").fetchall())


def test_readonly_reads_and_never_writes(project: pytest.Pytester, loads: list[str]) -> None:
    project.runpytest("--llmeval-cache=readonly")
    assert not (project.path / ".llmeval" / "cache.sqlite").exists()
    project.runpytest()
    write_suite(project, "Q: {question}")  # new completions: computed, not stored
    loads.clear()
    result = project.runpytest("--llmeval-cache=readonly")
    assert len(loads) == 1 and "0 of 4 completions and 4 of 4 rankings" in cached_line(result)
    assert len(_created(project)) == 8


def test_off_neither_reads_nor_writes(project: pytest.Pytester, loads: list[str]) -> None:
    result = project.runpytest("--llmeval-cache=off")
    assert not (project.path / ".llmeval").exists() and cached_line(result) == ""
    project.runpytest()
    loads.clear()
    project.makeini(project.path.joinpath("tox.ini").read_text() + "\nllmeval_cache = off\n")
    result = project.runpytest()
    assert len(loads) == 1 and cached_line(result) == ""


@pytest.mark.parametrize(
    "change, expected",
    [
        (("--llmeval-max-new-tokens=5",), "0 of 4 completions and 4 of 4 rankings"),
        (("--llmeval-seed=99",), "0 of 4 completions and 0 of 4 rankings"),
        (("--llmeval-stop=xyz",), "0 of 4 completions and 4 of 4 rankings"),
        ("prompt", "0 of 4 completions and 4 of 4 rankings"),
        ((), "4 of 4 completions and 4 of 4 rankings"),
    ],
    ids=["max-new-tokens", "seed", "stop", "prompt", "unchanged"],
)
def test_a_changed_request_or_setting_misses(project: pytest.Pytester, loads: list[str], change: Any, expected: str) -> None:
    project.runpytest()
    loads.clear()
    if change == "prompt":
        write_suite(project, "{question} Answer briefly.")
        change = ()
    result = project.runpytest(*change)
    assert expected in cached_line(result)
    assert len(loads) == (0 if expected.startswith("4 of 4 completions and 4") else 1)


def test_changed_model_files_miss(project: pytest.Pytester, tiny_model_dir: Path, tmp_path: Path, loads: list[str]) -> None:
    """Another tokenizer configuration (the same weights) is another model."""
    import shutil

    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    project.runpytest(f"--llmeval-model={copy}")
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config["model_max_length"] = 200
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    loads.clear()
    result = project.runpytest(f"--llmeval-model={copy}")
    assert len(loads) == 1 and "0 of 4 completions and 0 of 4 rankings" in cached_line(result)


NO_LOAD_ON_WORKERS = """
from pytest_llmeval.models.hf import HFBackend

def _refuse(cls, settings, rootdir=None):
    raise RuntimeError("a worker loaded the model")

def pytest_configure(config):
    if hasattr(config, "workerinput") and config.getoption("--llmeval-cache") == "on":
        HFBackend.load = classmethod(_refuse)
"""


def test_two_xdist_workers_write_at_once_then_all_is_cached(project: pytest.Pytester) -> None:
    project.makefile(".jsonl", cases="\n".join(json.dumps({"id": f"x{i}", "question": f"What is {i} plus {i}?", "answer": str(2 * i), "choices": [str(2 * i), "0"]}) for i in range(12)))
    project.makeconftest(NO_LOAD_ON_WORKERS)
    first = project.runpytest("-n", "2", "--llmeval-cache=refresh", "--llmeval-output=out1")
    first.assert_outcomes(passed=24 - _missed(first))
    assert len(_created(project)) == 24
    second = project.runpytest("-n", "2", "--llmeval-cache=on", "--llmeval-output=out2")
    assert "RuntimeError" not in second.stdout.str()
    assert cached_line(second).endswith("12 of 12 completions and 12 of 12 rankings")
    assert outcomes(project.path / "out2") == outcomes(project.path / "out1")


def _missed(result: pytest.RunResult) -> int:
    return result.parseoutcomes().get("missed", 0)


def test_a_corrupt_cache_file_is_set_aside_and_the_run_goes_on(project: pytest.Pytester) -> None:
    cache = project.path / ".llmeval" / "cache.sqlite"
    cache.parent.mkdir()
    cache.write_bytes(b"\x00garbage, not SQLite" * 100)
    result = project.runpytest("-p", "no:randomly")
    result.stdout.fnmatch_lines(["*LLMEvalCacheWarning: llmeval: the completion cache * is corrupt (*); it was set aside as cache.sqlite.corrupt-*"])
    assert "0 of 4 completions" in cached_line(result) and "error" not in result.parseoutcomes()
    assert len(list(cache.parent.glob("cache.sqlite.corrupt-*"))) == 1 and len(_created(project)) == 8


def test_an_unwritable_cache_place_is_a_warning_and_the_run_goes_on_uncached(project: pytest.Pytester) -> None:
    (project.path / "blocked").write_text("a file where the cache folder would be")
    result = project.runpytest("--llmeval-cache-path=blocked/cache.sqlite")
    result.stdout.fnmatch_lines(["*LLMEvalCacheWarning: llmeval: the completion cache *cache.sqlite cannot be created*goes on without it*"])
    assert "0 of 4 completions and 0 of 4 rankings" in cached_line(result) and "error" not in result.parseoutcomes()


def test_a_bad_cache_mode_is_one_usage_line(project: pytest.Pytester) -> None:
    result = project.runpytest("--llmeval-cache=sometimes")
    result.stderr.fnmatch_lines(["*llmeval: --llmeval-cache: expected one of on, off, refresh, readonly, got 'sometimes'"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


HOOK_BACKEND = """
from pathlib import Path
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.settings import LLMSettings

class Echo:
    capabilities = frozenset({"generate"})
    fingerprint = {"model": "echo"}
    settings = LLMSettings()

    def describe(self):
        return "echo"

    def run_generate(self, requests, progress=None):
        with open("calls.txt", "a") as fh:
            fh.write(f"{len(requests)}\\n")
        return [Completion(r.text.upper()) for r in requests]

    def check(self):
        return None

def pytest_llmeval_make_backend(config, settings):
    return Echo()
"""


def test_a_backend_from_the_hook_bypasses_the_cache(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    """It may wrap a live model (training): it cannot say what it is before it exists, and the
    configured model's identity does not describe it."""
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\n")
    pytester.makeconftest(HOOK_BACKEND)
    pytester.makefile(".jsonl", cases=CASES)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases("cases.jsonl", prompt="{question}")
        def test_gen(case, completion):
            assert completion == case["question"].upper()
        """
    )
    for _ in range(2):
        pytester.runpytest().assert_outcomes(passed=4)
    assert (pytester.path / "calls.txt").read_text().split() == ["4", "4"]
    assert not (pytester.path / ".llmeval" / "cache.sqlite").exists()


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_the_cache_and_history_files_alone_hold_the_run(project: pytest.Pytester, loads: list[str], tmp_path: Path, workers: tuple[str, ...]) -> None:
    """What a CI step that caches or uploads only cache.sqlite (and history.sqlite) restores: every
    answer, without its -wal file, also when xdist workers wrote it."""
    first = project.runpytest(*workers, "--llmeval-history=.llmeval/history.sqlite")
    if not workers:  # under xdist a worker may find what the other one wrote moments before: a right answer
        assert "0 of 4 completions and 0 of 4 rankings" in cached_line(first)
    assert not [p.name for p in (project.path / ".llmeval").iterdir() if p.name.endswith(("-wal", "-shm", "-journal"))]
    kept = tmp_path / "restored"
    kept.mkdir()
    for name in ("cache.sqlite", "history.sqlite"):
        (kept / name).write_bytes((project.path / ".llmeval" / name).read_bytes())
    loads.clear()
    again = project.runpytest(*workers, f"--llmeval-cache-path={kept / 'cache.sqlite'}", "--llmeval-cache=readonly")
    assert cached_line(again).endswith("4 of 4 completions and 4 of 4 rankings") and loads == []
    from pytest_llmeval.results.history import list_runs

    [run] = list_runs(kept / "history.sqlite")
    assert (run.suites, run.cases) == (2, 8)


@pytest.mark.parametrize("content", ["empty", "foreign"])
def test_a_cache_path_that_is_not_a_cache_is_left_alone(project: pytest.Pytester, content: str) -> None:
    path = project.path / "app.sqlite"
    if content == "empty":
        path.write_bytes(b"")
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE orders (id INTEGER)")
    before = path.read_bytes()
    result = project.runpytest("--llmeval-cache-path=app.sqlite")
    result.stdout.fnmatch_lines(["*LLMEvalCacheWarning: llmeval: the completion cache *app.sqlite cannot be used: *not a completion cache*goes on without it*"])
    assert "error" not in result.parseoutcomes() and path.read_bytes() == before
