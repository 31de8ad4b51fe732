"""Reasoning suites through the plugin (the scripted reasoning model of tests/tiny_reasoning.py):
scorers see the answer only, thinking cut by the cap is a miss that says so, the report counts cut
completions and flags the suite, samples keep the reasoning, and the cache, the baseline, repeats,
judges and shards treat a reasoning suite as any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tiny_reasoning import build_scripted_model


pytest_plugins = ["pytester"]

CASES = [
    {"id": "finishes", "prompt": "What is two plus", "expected": "answer"},  # <think>Question:</think> answer is four
    {"id": "cut", "prompt": "the <think> lazy", "expected": "dog"},  # thinks " dog lazy ..." until the cap
    {"id": "plain", "prompt": "capital of France", "expected": "Paris"},  # no thinking
]

SUITE = """
import json
import pytest_llmeval as le

@le.cases("cases.jsonl", prompt="{prompt}", chat=False, max_new_tokens=12, stop=["Question", " is", " dog"]EXTRA)
def test_reasoning(case, completion):
    with open("seen.jsonl", "a") as f:
        f.write(json.dumps([case.id, str(completion), completion.reasoning]) + "\\n")
    le.assert_contains(completion, case["expected"])
"""


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_scripted_model(tmp_path_factory.mktemp("scripted"))


def project(pytester: pytest.Pytester, model: Path, extra: str = "", ini: str = "") -> pytest.Pytester:
    pytester.makeini(f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\n{ini}")
    pytester.makefile(".jsonl", cases="".join(json.dumps(c) + "\n" for c in CASES))
    pytester.makepyfile(test_suite=SUITE.replace("EXTRA", extra))
    return pytester


def read(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_scorers_see_the_answer_and_cut_thinking_is_a_miss_that_says_so(pytester: pytest.Pytester, scripted: Path) -> None:
    p = project(pytester, scripted)
    result = p.runpytest("--llmeval-output=out", "--llmeval-markdown=summary.md", "-p", "no:randomly")
    assert result.ret == 0  # flagged, not failed
    seen = {case: (answer, reasoning) for case, answer, reasoning in read(p.path / "seen.jsonl")}
    assert seen == {"finishes": ("answer", "Question:"), "plain": (" Paris", None)}  # the cut case's test never ran
    result.stdout.fnmatch_lines([
        "llmeval: 2 passed, 1 missed in 1 suite",
        "suite*n*pass*miss*err*cut*rate*",
        "test_suite.py::test_reasoning*3*2*1*0*1!*66.7%*",
        "test_suite.py::test_reasoning: flagged: 1 of 3 answers (33%) ended at max_new_tokens=12, 1 of them still thinking "
        "(no answer); try max_new_tokens=32",
        "*33% is above llmeval_max_cut_share 5%*raise max_new_tokens*or set max_reasoning_tokens",
        "llmeval gate passed, with 1 suite flagged for answers cut at max_new_tokens: 2 passed, 1 missed in 1 suite",
    ])  # fmt: skip
    samples = {s["id"]: s for s in read(p.path / "out" / "samples.jsonl")}
    cut = samples["cut"]
    assert (cut["outcome"], cut["reason"], cut["completion"]) == ("fail", "reasoning cut at 12 tokens (max_new_tokens)", "")
    assert (cut["finish_reason"], cut["thinking_ended"], cut["reasoning_tokens"]) == ("length", False, 12)
    assert cut["reasoning"].startswith("dog lazy dog")
    done = samples["finishes"]
    assert (done["completion"], done["reasoning"], done["reasoning_tokens"], done["finish_reason"]) == ("answer", "Question:", 2, "stop")
    assert "reasoning" not in samples["plain"] and samples["plain"]["finish_reason"] == "stop"
    results = json.loads((p.path / "out" / "results.json").read_text())
    caps = results["suites"]["test_suite.py::test_reasoning"]["caps"]
    assert caps == {"n": 3, "max_new_tokens": 12, "cut": 1, "share": 1 / 3, "reasoning_cut": 1, "reasoning_share": 1 / 3,
                    "suggested_max_new_tokens": 32, "flagged": True}  # fmt: skip
    assert results["gate"]["flagged"] == ["test_suite.py::test_reasoning"] and not results["gate"]["failed"]
    summary = (p.path / "summary.md").read_text()
    assert "gate passed, with 1 suite flagged for answers cut at max_new_tokens" in summary and "| cut |" in summary
    strict = p.runpytest("--llmeval-strict", "-p", "no:randomly")
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(["*test_suite.py::test_reasoning: 33% of its completions were cut at max_new_tokens (--llmeval-strict)"])


def test_a_share_under_the_limit_is_counted_not_flagged(pytester: pytest.Pytester, scripted: Path) -> None:
    p = project(pytester, scripted, ini="llmeval_max_cut_share = 0.5\n")
    result = p.runpytest("-p", "no:randomly")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["test_suite.py::test_reasoning: 1 of 3 answers (33%) ended at max_new_tokens=12*",
                                 "llmeval gate passed: 2 passed, 1 missed in 1 suite"])  # fmt: skip
    assert not [line for line in result.outlines if "flagged" in line and "pytest-of" not in line]


def test_the_budget_and_the_cap_are_in_the_cache_key_and_the_fingerprint(pytester: pytest.Pytester, scripted: Path) -> None:
    p = project(pytester, scripted, ini="llmeval_baseline = base.json\n")
    assert p.runpytest("--llmeval-update-baseline", "--llmeval-output=first").ret == 0
    again = p.runpytest("--llmeval-output=again")
    again.stdout.fnmatch_lines(["*from the completion cache*3 of 3 completions*", "*UNCHANGED*"])
    assert "llmeval: loaded" not in again.stdout.str()

    p.makepyfile(test_suite=SUITE.replace("EXTRA", ", max_reasoning_tokens=1"))
    budget = p.runpytest("--llmeval-output=budget")
    budget.stdout.fnmatch_lines(["llmeval: loaded *", "*from the completion cache*0 of 3 completions*", "*INCOMPARABLE*"])
    budget.stdout.fnmatch_lines(["*generation.max_reasoning_tokens: (none) -> 1*"])
    samples = {s["id"]: s for s in read(p.path / "budget" / "samples.jsonl")}
    assert (samples["cut"]["completion"], samples["cut"]["reasoning"], samples["cut"]["outcome"]) == ("answer", "dog", "fail")
    assert samples["finishes"]["reasoning"] == "Question" and samples["finishes"]["outcome"] == "pass"

    p.makepyfile(test_suite=SUITE.replace("max_new_tokens=12", "max_new_tokens=16").replace("EXTRA", ""))
    cap = p.runpytest()
    cap.stdout.fnmatch_lines(["*INCOMPARABLE*", "*generation.max_new_tokens: 12 -> 16*"])
    stored = json.loads((p.path / "base.json").read_text())["suites"]["test_suite.py::test_reasoning"]["fingerprint"]["generation"]
    assert stored["max_new_tokens"] == 12 and "max_reasoning_tokens" not in stored  # the baseline keeps the cap


def test_repeats_count_every_sample(pytester: pytest.Pytester, scripted: Path) -> None:
    p = project(pytester, scripted, extra=", repeats=2")
    result = p.runpytest("--llmeval-output=out", "-p", "no:randomly")
    samples = read(p.path / "out" / "samples.jsonl")
    assert len(samples) == 6 and sorted(s["outcome"] for s in samples if s["id"] == "cut") == ["fail", "fail"]
    assert all(s["reason"] == "reasoning cut at 12 tokens (max_new_tokens)" for s in samples if s["id"] == "cut")
    caps = json.loads((p.path / "out" / "results.json").read_text())["suites"]["test_suite.py::test_reasoning"]["caps"]
    assert (caps["n"], caps["cut"], caps["reasoning_cut"]) == (6, 2, 2)
    result.stdout.fnmatch_lines(["*: flagged: 2 of 6 answers (33%) ended at max_new_tokens=12*"])


JUDGED = """
import pytest_llmeval as le

@le.cases("cases.jsonl", prompt="{prompt}", chat=False, max_new_tokens=12, judge=le.Rubric("The reply answers the question."))
def test_judged(case, completion, judgement):
    assert judgement is not None
"""


def test_judges_see_the_answer_and_skip_cut_thinking(pytester: pytest.Pytester, scripted: Path) -> None:
    p = project(pytester, scripted, ini=f"llmeval_judge_model = {scripted}\n")
    p.makepyfile(test_suite=JUDGED)
    result = p.runpytest("--llmeval-output=out", "-p", "no:randomly")
    assert result.ret == 0
    samples = {s["id"]: s for s in read(p.path / "out" / "samples.jsonl")}
    assert samples["cut"]["outcome"] == "fail" and samples["cut"]["reason"] == "reasoning cut at 12 tokens (max_new_tokens)"
    assert samples["cut"].get("judgement") is None  # nothing was judged: there is no answer
    judged = samples["finishes"]["judgement"]
    assert "answer is four" in judged["judge_prompt"] and "Question:" not in judged["judge_prompt"]  # the answer, not the thinking
    assert samples["finishes"]["outcome"] == "pass" and samples["plain"]["judgement"] is not None


@pytest.mark.parametrize("shards", [2])
def test_merged_shards_count_the_cut_completions_as_one_run(
    pytester: pytest.Pytester, scripted: Path, capsys: pytest.CaptureFixture[str], shards: int
) -> None:
    from pytest_llmeval.__main__ import main

    p = project(pytester, scripted)
    single = p.runpytest("--llmeval-output=single", "-p", "no:randomly")
    for i in range(1, shards + 1):
        p.runpytest(f"--llmeval-shard={i}/{shards}", f"--llmeval-output=s{i}", "-p", "no:randomly")
    capsys.readouterr()
    code = main(["merge", str(p.path / "merged"), *(str(p.path / f"s{i}") for i in range(1, shards + 1))])
    merged = capsys.readouterr().out
    assert code == single.ret == 0
    suite = "test_suite.py::test_reasoning"
    caps = [json.loads((p.path / d / "results.json").read_text())["suites"][suite]["caps"] for d in ("single", "merged")]
    assert caps[0] == caps[1] and caps[0]["cut"] == 1
    assert "flagged: 1 of 3 answers (33%) ended at max_new_tokens=12" in merged


def test_the_html_report_folds_the_reasoning_and_shows_it_as_text() -> None:
    from pytest_llmeval.results.html import case_rows, render_page, run_page
    from pytest_llmeval.results.html_assets import SCRIPT

    sample = {"suite": "t.py::test_r", "id": "cut", "outcome": "fail", "prompt": "p", "completion": "", "reason": "reasoning cut",
              "reasoning": "2+2 </script><b>x</b>", "reasoning_tokens": 12, "thinking_ended": False, "finish_reason": "length"}  # fmt: skip
    (row,) = case_rows([sample], ["t.py::test_r"])
    assert row["d"]["reasoning"] == "2+2 </script><b>x</b>"
    assert row["d"]["reasoning_note"] == "Reasoning (12 tokens), cut before an answer"
    assert row["d"]["extra"] == {"finish_reason": "length"}
    results = {"suites": {"t.py::test_r": {"n": 1, "failed": 1}}, "gate": {"failed": False, "flagged": ["t.py::test_r"]}}
    page = render_page(run_page(results, [sample]))
    assert "</script><b>" not in page and "\\u003c/script\\u003e\\u003cb\\u003e" in page  # escaped, never markup
    assert "el('details',{cls:'reasoning'}" in SCRIPT and "el('pre',{text:d.reasoning})" in SCRIPT  # folded, set as text
    assert '"flagged":["t.py::test_r"]' in page
