"""Integration: the workflow example suite's conversations on the real SmolLM2-135M-Instruct are the
same, message for message and token for token, at batch 1, at batch N, and for one case run alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[1] / "example_suites" / "workflows"


def _run(pytester: pytest.Pytester, name: str, *args: str, only: str = "") -> dict[str, tuple]:
    """The assertion suite's transcripts (the judged suite left out: it asks the same questions),
    by case id; ``only`` narrows the cases further (pytest keeps the last ``-k``, so it is one)."""
    out = pytester.path / name
    keyword = "test_support_workflow and not judged" + (f" and {only}" if only else "")
    result = pytester.runpytest_subprocess("--llmeval-cache=off", f"--llmeval-output={out}", "-p", "no:randomly", "-k", keyword, *args)
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {
        r["id"]: (r["conversation"]["messages"], [(s["raw"], s["tokens_in"], s["tokens_out"]) for s in r["conversation"]["steps"]])
        for r in rows
    }


@pytest.mark.slow
def test_smollm2_workflow_transcripts_do_not_depend_on_the_batch(pytester: pytest.Pytester, smollm2_gguf: Path) -> None:
    for path in EXAMPLE.iterdir():
        if path.suffix in (".py", ".jsonl"):
            shutil.copy(path, pytester.path / path.name)
    pytester.makeini(f"[pytest]\nllmeval_model = {smollm2_gguf}\nllmeval_history = off\nllmeval_seed = 1234\n")
    single = _run(pytester, "bs1", "--llmeval-batch-size=1")
    batched = _run(pytester, "bs8", "--llmeval-batch-size=8")
    alone = _run(pytester, "alone", "--llmeval-batch-size=8", only="follow")
    assert list(alone) == ["follow-up"]
    assert single == batched and len(batched) == 5
    assert alone["follow-up"] == batched["follow-up"]
    assert all(steps for _, steps in batched.values())  # the model answered every case at least once
    assert len(batched["follow-up"][1]) >= 2  # the scripted user turn made a second round
