"""A run's ``samples.jsonl`` (one case, or one sample, a line): the line written for a case
(:func:`sample_json`), and the file read back (:func:`read_samples`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval.jsonfiles import jsonl_rows, read_text
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.shapes import FIX, check_sample

__all__ = ["SamplesError", "read_samples", "sample_json"]


class SamplesError(ValueError):
    """A ``samples.jsonl`` that cannot be read, or a line of it that is not JSON; the message
    names the file and line."""


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one a line, skipping blank lines.

    Raises :class:`SamplesError` naming the file and line for a broken line, a line of the
    wrong shape (:func:`~pytest_llmeval.results.shapes.check_sample`: a value of the wrong type,
    a missing key, NaN...) or a file that cannot be read. A completion holding U+2028 or U+0085
    stays on its line."""
    text = read_text(Path(path), str(path), SamplesError)
    return [check_sample(row, f"{path}:{number}", SamplesError) for number, row in jsonl_rows(text, str(path), SamplesError, fix=FIX)]


def sample_json(record: CaseRecord) -> dict[str, Any]:
    """One line of samples.jsonl: the case as sent, what came back, and how it was judged."""
    data: dict[str, Any] = {
        "id": record.case_id,
        "repeat": record.repeat,
        "repeats": record.repeats,
        "suite": record.suite,
        "outcome": record.outcome.value,
        "prompt": record.prompt,
    }
    if record.choices is not None or record.loglikelihoods is not None:
        data["choices"] = list(record.choices or ())
        data["loglikelihoods"] = list(record.loglikelihoods or ())
    else:
        data["completion"] = record.completion
    data.update(
        scores=dict(record.scores),
        reason=record.reason or None,
        latency_s=record.latency_s,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        duration_s=record.duration_s,
        markers=list(record.markers),
        limited=record.limited,
        suite_size=record.suite_size,  # lets ``merge`` see a suite that no shard finished
    )
    if record.finish_reason is not None:
        data["finish_reason"] = record.finish_reason
    if record.reasoning is not None or not record.thinking_ended:
        data.update(reasoning=record.reasoning, reasoning_tokens=record.reasoning_tokens, thinking_ended=record.thinking_ended)
    if record.truncated:
        data["truncated"] = record.truncated
    if record.expected is not None:
        data["expected"] = record.expected
    if record.cached:  # lets ``merge`` count the outputs that came from the completion cache
        data["cached"] = True
    if record.require is not None:
        data["require"] = record.require
    if record.judgement is not None:
        data["judgement"] = dict(record.judgement)
    for key in ("perturbation", "rotation", "original_id", "answer_index", "min_worst_case", "search"):
        if getattr(record, key) is not None:  # beyond accuracy: only when set, so other lines stay as they were
            data[key] = getattr(record, key)
    if record.conversation is not None:
        data["conversation"] = dict(record.conversation)
    if record.code is not None:
        data["code"] = [dict(v) for v in record.code]
    return data
