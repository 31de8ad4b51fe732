"""Judgements are cached like completions: keyed by the judge's identity, the judge prompt and settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from judge_fakes import install_fake_package
from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.cache import CacheStore, CompletionCache
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.models.batched import CachedRun, Deferred, answers
from pytest_llmeval.settings import LLMSettings
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le

CASES = [{{"id": f"c{{i}}", "q": f"reply {{i}} " + ("good" if i % 2 == 0 else "bad")}} for i in range(6)]  # six prompts: none computed once for two

@le.cases(CASES, prompt="{{q}}", judge=le.Rubric({rubric!r}))
def test_judged(case, completion, judgement):
    le.assert_judged(judgement)

def test_zz_calls():
    import fake_backend
    print("CALLS", fake_backend.CALLS)
"""

IDENTITY = "\n\ndef _identity(spec, settings):\n    return {'spec': spec}\n\n\nmake.identity = _identity\n"


def setup(pytester: pytest.Pytester, model: str = "fake:model", judge: str | None = "fake:rank", rubric: str = "The reply is good.") -> None:
    """The fake backends, which here can say what they are without loading (so they are cached)."""
    install_fake_package(pytester.path)
    with (pytester.path / "fake_backend.py").open("a") as out:
        out.write(IDENTITY)
    pytester.syspathinsert()
    ini = f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\n"
    if judge:
        ini += f"llmeval_judge_model = {judge}\n"
    pytester.makeini(ini)
    write_suite(pytester, rubric)


def write_suite(pytester: pytest.Pytester, rubric: str) -> None:
    pytester.makepyfile(test_suite=SUITE.format(rubric=rubric))


def run(pytester: pytest.Pytester, *args: str) -> tuple[Any, list[Any], dict[str, dict]]:
    """One session: its result, the backend calls it made, and its judgements by case id."""
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "-W", "ignore::UserWarning", "--llmeval-output=out", *args)
    line = next(x for x in result.outlines if "CALLS " in x)
    calls = ast.literal_eval(line.split("CALLS ", 1)[1])  # the fake's repr of a list of tuples
    judged = {s["id"]: s["judgement"] for s in read_samples(pytester.path / "out" / "samples.jsonl")}
    return result, calls, judged


def fingerprints(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    return data["suites"]["test_suite.py::test_judged"]["fingerprint"]


def judge_calls(calls: list[Any], judge: str) -> list[Any]:
    return [c for c in calls if c[0] == judge]


def test_a_second_run_takes_every_judgement_from_the_cache_without_loading_the_judge(pytester: pytest.Pytester) -> None:
    setup(pytester)
    first, calls, judged = run(pytester)
    assert judge_calls(calls, "rank") == [("rank", "rank", 6)]
    fingerprint = fingerprints(pytester)
    assert fingerprint["judge"]["model"] == "fake:rank" and fingerprint["judge"]["method"] == "rank"
    first.stdout.fnmatch_lines(["*loaded judge fake rank*"])
    second, calls, again = run(pytester)
    assert calls == []
    assert again == judged and {j["label"] for j in again.values()} == {"PASS", "FAIL"}
    assert "loaded" not in second.stdout.str()  # neither the judge nor the model under test
    assert fingerprints(pytester) == fingerprint  # recorded from the cache, as if loaded
    second.stdout.fnmatch_lines(["*from the completion cache (on, *): 6 of 6 completions and 6 of 6 judgements*"])
    second.assert_outcomes(passed=4, failed=0)  # 3 judged PASS, 3 missed (not failures), and test_zz_calls


def test_a_generating_judge_and_its_second_asking_are_cached(pytester: pytest.Pytester) -> None:
    setup(pytester, judge="fake:gen-chatty")
    _, calls, judged = run(pytester)
    assert judge_calls(calls, "gen-chatty") == [("gen-chatty", "generate", 6), ("gen-chatty", "generate", 6)]
    _, calls, again = run(pytester)
    assert calls == [] and again == judged


def test_a_changed_rubric_misses_the_cache(pytester: pytest.Pytester) -> None:
    setup(pytester)
    run(pytester)
    write_suite(pytester, "The reply is good and polite.")
    _, calls, judged = run(pytester)
    assert calls == [("rank", "rank", 6)]  # the completions are cached, the new judge prompts are not
    assert all("good and polite" in j["judge_prompt"] for j in judged.values())


@pytest.mark.parametrize(
    ("mode", "second", "third"),
    [
        ("off", [("rank", "rank", 6)], [("rank", "rank", 6)]),  # nothing read, nothing written
        ("refresh", [("rank", "rank", 6)], []),  # judged again, and stored for the next run
        ("readonly", [], []),  # read, and nothing judged
    ],
)
def test_the_cache_modes_apply_to_judgements(pytester: pytest.Pytester, mode: str, second: list[Any], third: list[Any]) -> None:
    setup(pytester)
    run(pytester)
    _, calls, _ = run(pytester, f"--llmeval-cache={mode}")
    assert judge_calls(calls, "rank") == second
    _, calls, _ = run(pytester, f"--llmeval-cache={mode}" if mode != "refresh" else "--llmeval-cache=on")
    assert judge_calls(calls, "rank") == third


def test_a_readonly_cache_stores_no_judgement(pytester: pytest.Pytester) -> None:
    setup(pytester)
    run(pytester, "--llmeval-cache=off")  # no file written
    _, calls, _ = run(pytester, "--llmeval-cache=readonly")
    assert judge_calls(calls, "rank") == [("rank", "rank", 6)]
    _, calls, _ = run(pytester)
    assert judge_calls(calls, "rank") == [("rank", "rank", 6)]


def test_the_model_under_test_as_judge_is_cached_under_its_own_identity(pytester: pytest.Pytester) -> None:
    setup(pytester, model="fake:rank", judge=None)
    _, calls, judged = run(pytester)
    assert calls == [("rank", "generate", 6), ("rank", "rank", 6)]
    _, calls, again = run(pytester)
    assert calls == [] and again == judged


class _Flaky:
    """A judge backend whose answer to 'bad' is an error the first time."""

    fingerprint = {"model": "flaky"}
    capabilities = frozenset({"generate"})

    def __init__(self) -> None:
        self.asked: list[str] = []

    def run_generate(self, requests: Any, progress: Any = None) -> list[Completion]:
        self.asked += [r.text for r in requests]
        first = self.asked.count("bad") == 1
        return [Completion("", finish_reason="error") if r.text == "bad" and first else Completion("ok") for r in requests]


def test_an_error_of_the_judge_is_not_stored(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c.sqlite")
    backend = _Flaky()
    cache = lambda: CompletionCache(store, {"scheme": "flaky"}, LLMSettings(model="flaky:x"))  # noqa: E731
    requests = [Request("generate", "good"), Request("generate", "bad")]
    first = cache()
    assert [o.finish_reason for o in answers(requests, Deferred(lambda: backend, first), cache=first)] == ["stop", "error"]
    second = cache()
    run = CachedRun(requests, second)
    assert [str(o) for o in run.complete(Deferred(lambda: backend, second))] == ["ok", "ok"]
    assert backend.asked == ["good", "bad", "bad"]  # only the error was asked again
    assert [requests[i].text for i in run.hits] == ["good"]
