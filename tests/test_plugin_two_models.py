"""Two models in one session: an llm_settings override in a sub-folder's conftest.py is honoured
there (its own backend, loaded once, batched apart, named in its suites' fingerprints and rows),
serially, under -n 2 and from the completion cache; what cannot be honoured is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import json, os
import pytest_llmeval as le

WORDS = ["two plus two", "the capital of France", "the quick brown fox", "thank you for your question"]

@le.cases([{"id": f"c{i}", "q": w} for i, w in enumerate(WORDS)], prompt="Question: {q}\\nAnswer:", max_new_tokens=6)
def test_answer(case, completion, llm):
    with open(os.environ["LLMEVAL_TRACE"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"item": case.id, "folder": os.path.basename(os.path.dirname(__file__)),
                            "llm": llm.settings.model, "completion": str(completion)}) + "\\n")
"""
OVERRIDE = """
import pytest

@pytest.fixture(scope="session")
def llm_settings(llm_settings):
    return llm_settings.replace(model={model!r}{more})
"""


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-b"), seed=1)


def project(pytester: pytest.Pytester, model_a: Path, model_b: Path, monkeypatch: pytest.MonkeyPatch, *, cache: str = "off") -> Path:
    """evals/a runs on the session's model (llmeval_model), evals/b overrides llm_settings."""
    pytester.makeini(f"[pytest]\nllmeval_model = {model_a}\nllmeval_history = off\nllmeval_cache = {cache}\nllmeval_output = out\n")
    for folder in ("a", "b"):
        (pytester.path / "evals" / folder).mkdir(parents=True)
        (pytester.path / "evals" / folder / f"test_{folder}.py").write_text(SUITE)
    (pytester.path / "evals" / "b" / "conftest.py").write_text(OVERRIDE.format(model=str(model_b), more=""))
    trace = pytester.path / "trace.jsonl"
    monkeypatch.setenv("LLMEVAL_TRACE", str(trace))
    return trace


def read_trace(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    return {(r["folder"], r["item"]): r for r in rows}


def alone(pytester: pytest.Pytester, folder: str, trace: Path) -> dict[str, str]:
    """The completions of one folder run on its own (one model in the session)."""
    result = pytester.runpytest(f"evals/{folder}", "-p", "no:cacheprovider", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()
    return {item: row["completion"] for (_, item), row in read_trace(trace).items()}


def test_each_folder_runs_on_its_own_model_loaded_once(
    pytester: pytest.Pytester, tiny_model_dir: Path, second_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = project(pytester, tiny_model_dir, second_model, monkeypatch)
    (pytester.path / "evals" / "b" / "conftest.py").write_text(OVERRIDE.format(model=str(second_model), more=", batch_size=3"))
    result = pytester.runpytest("evals", "-p", "no:cacheprovider", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["llmeval: 4 completions in batches of up to 64", "llmeval: 4 completions in batches of up to 3"])
    loaded = [line for line in result.stdout.lines if line.startswith("llmeval: loaded")]
    assert len(loaded) == 2 and any(str(tiny_model_dir) in line for line in loaded) and any(str(second_model) in line for line in loaded)
    rows = read_trace(trace)
    assert {r["llm"] for (folder, _), r in rows.items() if folder == "a"} == {str(tiny_model_dir)}  # the llm fixture follows the folder
    assert {r["llm"] for (folder, _), r in rows.items() if folder == "b"} == {str(second_model)}
    suites = json.loads((pytester.path / "out" / "results.json").read_text())["suites"]
    a, b = suites["evals/a/test_a.py::test_answer"]["fingerprint"], suites["evals/b/test_b.py::test_answer"]["fingerprint"]
    assert (a["model_name"], b["model_name"]) == (str(tiny_model_dir), str(second_model)) and a["model"] != b["model"]
    result.stdout.fnmatch_lines(["suite * baseline  model", "evals/a/test_a.py::test_answer *tiny-model*", "evals/b/test_b.py::test_answer *tiny-b*"])
    together = {key: row["completion"] for key, row in rows.items()}
    # batched apart: each folder's answers are those of its model run alone
    assert {k[1]: v for k, v in together.items() if k[0] == "a"} == alone(pytester, "a", trace)
    assert {k[1]: v for k, v in together.items() if k[0] == "b"} == alone(pytester, "b", trace)
    assert {k[1]: v for k, v in together.items() if k[0] == "a"} != {k[1]: v for k, v in together.items() if k[0] == "b"}


def test_two_models_under_xdist_and_from_the_completion_cache(
    pytester: pytest.Pytester, tiny_model_dir: Path, second_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    trace = project(pytester, tiny_model_dir, second_model, monkeypatch, cache="on")
    assert pytester.runpytest("evals", "-p", "no:cacheprovider", "-p", "no:randomly").ret == 0
    serial = {key: (row["llm"], row["completion"]) for key, row in read_trace(trace).items()}
    parallel = pytester.runpytest_subprocess("evals", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2", "--llmeval-cache=off")
    assert parallel.ret == 0, parallel.stdout.str()
    assert {key: (row["llm"], row["completion"]) for key, row in read_trace(trace).items()} == serial
    cached = pytester.runpytest("evals", "-p", "no:cacheprovider", "-p", "no:randomly")
    assert cached.ret == 0
    cached.stdout.fnmatch_lines(["llmeval: from the completion cache (on, *): 8 of 8 completions"])
    assert {key: row["completion"] for key, row in read_trace(trace).items()} == {key: c for key, (_, c) in serial.items()}
    suites = json.loads((pytester.path / "out" / "results.json").read_text())["suites"]
    assert suites["evals/b/test_b.py::test_answer"]["fingerprint"]["model_name"] == str(second_model)


def test_a_seed_of_its_own_for_sampled_answers_is_refused_with_one_line(
    pytester: pytest.Pytester, tiny_model_dir: Path, second_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, tiny_model_dir, second_model, monkeypatch)
    more = ", seed=7, generation=llm_settings.generation.merged(do_sample=True, temperature=0.7)"
    (pytester.path / "evals" / "b" / "conftest.py").write_text(OVERRIDE.format(model=str(second_model), more=more))
    result = pytester.runpytest("evals", "-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=4)
    result.stdout.fnmatch_lines(
        ["llmeval: the llm_settings fixture of *b/conftest.py sets seed=7, but every sample is seeded when the session "
         "is planned, from the session's seed (1234): set llmeval_seed (or --llmeval-seed=) for the session, or leave "
         "seed out of this fixture"]
    )  # fmt: skip
