"""Repeated sampling through the plugin: one item per sample, reproducible samples whatever the
batch size or ``-n 2``, per-case rates in the reports, ``require=``, the baseline and the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

PROMPTS = ["What is two plus two?", "Question: capital of France?", "The quick brown fox", "Thank you for",
           "0 1 2 3", "Please answer", "What is the", "jumps over the lazy dog."]  # fmt: skip

SAMPLED = """
import pytest_llmeval as le

CASES = [{{"id": f"c{{i}}", "q": q}} for i, q in enumerate({prompts!r})]

@le.cases(CASES, prompt="{{q}}", chat=False, repeats={repeats}, max_new_tokens=6)
def test_sampled(case, completion):
    assert len(completion) % 2 == 0, "odd length"
"""


def _ini(pytester: pytest.Pytester, model: Path | None, **extra: object) -> None:
    lines = ["[pytest]", "llmeval_history = off"]
    if model is not None:
        lines.append(f"llmeval_model = {model}")
    lines += [f"{k} = {v}" for k, v in extra.items()]
    pytester.makeini("\n".join(lines) + "\n")


def _samples(out: Path) -> dict[tuple[str, int], tuple[str, str]]:
    rows = read_samples(out / "samples.jsonl")
    return {(r["id"], r["repeat"]): (r["completion"], r["outcome"]) for r in rows}


def test_each_sample_is_an_item_with_an_id_k_can_select(pytester: pytest.Pytester) -> None:
    _ini(pytester, None, llmeval_repeats=3)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a"}, {"id": "b"}])
        def test_x(case):
            assert case.id == "a" or case.repeat == 1

        @le.cases([{"id": "c"}], repeats=2)
        def test_y(case):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_x[[]a:r0]", "*test_x[[]a:r1]", "*test_x[[]a:r2]", "*test_x[[]b:r2]", "*test_y[[]c:r1]"])
    assert "test_y[c:r2]" not in result.stdout.str()
    result = pytester.runpytest("-k", "b:r1", "-q")
    result.assert_outcomes(passed=1)


def test_per_case_rates_flaky_cases_and_require(pytester: pytest.Pytester) -> None:
    _ini(pytester, None)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        PASSES = {"always": 4, "half": 2, "once": 1, "never": 0}

        @le.cases([{"id": k} for k in PASSES], repeats=4)
        def test_mean(case):
            assert case.repeat < PASSES[case.id], "no"

        @le.cases([{"id": k} for k in PASSES], repeats=4, require="majority")
        def test_majority(case):
            assert case.repeat < PASSES[case.id], "no"
        """
    )
    out = pytester.path / "out"
    result = pytester.runpytest(f"--llmeval-output={out}", "--llmeval-pass-k=2")
    # pass@2 = mean(1, 1 - 1/6, 1 - 3/6, 0) = 58.3%; pass^2 = mean(1, 1/6, 0, 0) = 29.2%
    result.stdout.fnmatch_lines([
        "*test_mean[[]half:r2]: no*",
        "*repeated samples*",
        "*test_mean: 16 samples of 4 cases (k=4); mean 43.8%*pass@1 43.8%, pass@2 58.3%, pass@4 75.0%; pass^2 29.2%, pass^4 25.0%; 2 flaky: half (2/4), once (1/4)*",
    ])  # fmt: skip
    data = json.loads((out / "results.json").read_text())
    mean, majority = data["suites"]["test_per_case_rates_flaky_cases_and_require.py::test_mean"], data["suites"]["test_per_case_rates_flaky_cases_and_require.py::test_majority"]
    assert mean["pass_rate"] == pytest.approx(7 / 16)  # (4 + 2 + 1 + 0) / 16: every case has 4 samples
    assert mean["samples"] == {"always": [4, 4], "half": [2, 4], "once": [1, 4], "never": [0, 4]}
    assert mean["repeats"]["pass_at_k"]["4"] == pytest.approx(0.75) and mean["repeats"]["flaky"] == 2
    assert majority["pass_rate"] == pytest.approx(1 / 4)  # only "always" has more than half (2 of 4 is not)
    assert len(read_samples(out / "samples.jsonl")) == 32


def test_strict_and_min_pass_rate_use_the_case_rates(pytester: pytest.Pytester) -> None:
    _ini(pytester, None)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a"}, {"id": "b"}], repeats=3, require="majority", min_pass_rate=0.5)
        def test_m(case):
            assert case.repeat != 0, "first sample misses"
        """
    )
    pytester.runpytest("--llmeval-strict").assert_outcomes(passed=4, failed=2)
    result = pytester.runpytest()
    assert result.ret == 0  # 2 of 3 is a majority for each case: the suite's rate is 100%
    result.stdout.fnmatch_lines(["*llmeval gate passed*"])


def test_greedy_repeats_on_a_local_model_warn_once(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    _ini(pytester, tiny_model_dir)
    pytester.makepyfile(SAMPLED.format(prompts=PROMPTS[:2], repeats=2))
    result = pytester.runpytest()
    assert result.stdout.str().count("repeated samples with greedy decoding on a local model are identical") == 1


def _sampled_run(pytester: pytest.Pytester, model: Path, name: str, *args: str) -> dict[tuple[str, int], tuple[str, str]]:
    out = pytester.path / name
    result = pytester.runpytest(f"--llmeval-output={out}", "--llmeval-do-sample", "--llmeval-temperature=1.5", *args)
    assert result.ret in (0, 1), result.stdout.str()
    return _samples(out)


def test_samples_do_not_depend_on_the_batch_size(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    _ini(pytester, tiny_model_dir)
    pytester.makepyfile(SAMPLED.format(prompts=PROMPTS * 2, repeats=4))  # 16 cases x 4 = 64 samples
    by_size = {bs: _sampled_run(pytester, tiny_model_dir, f"bs{bs}", f"--llmeval-batch-size={bs}") for bs in (1, 7, 64)}
    assert by_size[1] == by_size[7] == by_size[64]
    texts = list(by_size[1].values())
    assert len(texts) == 64
    assert len({t for t, _ in texts}) > 32  # sampling really varies the text (not greedy)
    first = by_size[1]
    assert any(first[("c0", 0)] != first[("c0", r)] for r in (1, 2, 3))  # the repeats of one case differ


def test_samples_are_the_same_under_xdist_and_with_k(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    _ini(pytester, tiny_model_dir)
    pytester.makepyfile(SAMPLED.format(prompts=PROMPTS, repeats=3))
    serial = _sampled_run(pytester, tiny_model_dir, "serial")
    parallel = _sampled_run(pytester, tiny_model_dir, "xdist", "-n", "2")
    assert serial == parallel and len(serial) == 24
    narrowed = _sampled_run(pytester, tiny_model_dir, "narrowed", "-k", "c3 or c5:r2")
    assert narrowed == {key: serial[key] for key in narrowed} and len(narrowed) == 4


def test_baseline_lifecycle_with_repeats(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _ini(pytester, None, llmeval_baseline="baseline.json")
    pytester.makepyfile(
        """
        import os
        import pytest_llmeval as le

        DROP = int(os.environ.get("DROP", "0"))

        @le.cases([{"id": f"c{i:02d}"} for i in range(20)], repeats=4)
        def test_r(case):
            assert not (int(case.id[1:]) < DROP and case.repeat < 2), "dropped"

        @le.cases([{"id": f"d{i:02d}"} for i in range(20)])
        def test_once(case):
            pass
        """
    )
    monkeypatch.setenv("DROP", "0")
    assert pytester.runpytest("--llmeval-update-baseline").ret == 0
    stored = json.loads((pytester.path / "baseline.json").read_text())["suites"]
    assert stored["test_baseline_lifecycle_with_repeats.py::test_r"]["cases"]["c03"] == [4, 4]
    assert stored["test_baseline_lifecycle_with_repeats.py::test_once"]["cases"]["d03"] == 1  # one sample: today's form
    monkeypatch.setenv("DROP", "10")  # 10 of 20 cases fall from 4/4 to 2/4: -25 pts, sign-flip p = 2 / 2^10
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_r: REGRESSED 100.0% -> 75.0% (-25.0 pts, p=0.002, Holm p=0.004, 10 newly failing)*"])
    monkeypatch.setenv("DROP", "1")  # one case falls: not significant
    result = pytester.runpytest()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*smallest detectable drop 7.5 pts at alpha 0.05*"])  # 6 cases x 1/4 of 20
