"""Integration: repeated sampling on the real SmolLM2-135M-Instruct gives the same samples and
outcomes case by case at two batch sizes and under ``-n 2``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

ARITHMETIC = Path(__file__).resolve().parents[1] / "example_suites" / "arithmetic" / "arithmetic.jsonl"


def _run(pytester: pytest.Pytester, name: str, *args: str) -> dict[tuple[str, int], tuple[str, str]]:
    out = pytester.path / name
    result = pytester.runpytest_subprocess(f"--llmeval-output={out}", "-p", "no:randomly", *args)
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    rows = read_samples(out / "samples.jsonl")
    return {(r["id"], r["repeat"]): (r["completion"], r["outcome"]) for r in rows}


@pytest.mark.slow
def test_sampled_repeats_are_identical_across_batch_sizes_and_xdist(pytester: pytest.Pytester, smollm2_gguf: Path) -> None:
    cases = ARITHMETIC.read_text().splitlines()[150:158]  # 8 cases, 3 samples each
    pytester.makefile(".jsonl", cases="\n".join(cases) + "\n")
    pytester.makeini(
        f"[pytest]\nllmeval_model = {smollm2_gguf}\nllmeval_history = off\nllmeval_do_sample = true\n"
        "llmeval_temperature = 0.8\nllmeval_top_p = 0.95\n"
    )
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases("cases.jsonl", prompt="{question} Answer with a number.", chat=True, max_new_tokens=16, repeats=3)
        def test_arithmetic(case, completion):
            le.assert_number(completion, case["answer"])
        """
    )
    small = _run(pytester, "bs4", "--llmeval-batch-size=4")
    large = _run(pytester, "bs24", "--llmeval-batch-size=24")
    assert small == large and len(small) == 24
    if pytest.importorskip("xdist", reason="pytest-xdist is not installed"):
        assert _run(pytester, "xdist", "-n", "2", "--llmeval-batch-size=12") == small
    assert len({text for text, _ in small.values()}) > 8  # sampled: the repeats of a case differ
