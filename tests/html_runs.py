"""Synthetic runs for the HTML report's tests: real records through the real session, so the
results.json and samples.jsonl are exactly what a pytest run writes."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pytest_llmeval.results.gate import GateOptions
from pytest_llmeval.results.records import CaseRecord

FP = {"model": "sha256:aaaa", "prompt": "sha256:p1", "dataset": "sha256:d1", "num_fewshot": 0, "chat": True,
      "generation": {"do_sample": False, "max_new_tokens": 16}}  # fmt: skip
HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2"> & <b>bold</b>'


def chatml(question: str) -> str:
    return f"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def make_records(suite: str, n: int, failing: Sequence[int] = (), errors: Sequence[int] = (), *, fp: dict | None = None,
                 markers: tuple[str, ...] = (), hostile: int | None = None) -> list[CaseRecord]:  # fmt: skip
    out = []
    for i in range(n):
        outcome = "error" if i in errors else "fail" if i in failing else "pass"
        completion = HOSTILE if i == hostile else f"The answer is {i + 1}."
        out.append(
            CaseRecord(
                suite=suite, case_id=f"c{i:03d}", outcome=outcome, reason="" if outcome == "pass" else f"expected {i} in the answer",
                scores={"exact": float(outcome == "pass")}, markers=markers, fingerprint=fp or FP,
                prompt=chatml(f"What is {i} plus one? <tag>&amp;"), completion=completion, latency_s=0.01 * (i + 1),
                tokens_in=20 + i, tokens_out=6, suite_size=n,
            )  # fmt: skip
        )
    return out


def write_run(out: Path, records: Sequence[CaseRecord], *, baseline: Path | None = None, update: bool = False):
    """Run the session over ``records``, writing results.json and samples.jsonl into ``out``."""
    from pytest_llmeval.results.session import EvalSession

    session = EvalSession(GateOptions(rootdir=out.parent, output_dir=out, baseline=baseline, update_baseline=update), cwd=out.parent)
    session.add_all(records)
    return session.finish()
