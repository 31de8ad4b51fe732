"""Reading a run's ``samples.jsonl`` (one case, or one sample, a line) back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval.jsonfiles import jsonl_rows, read_text
from pytest_llmeval.results.shapes import FIX, check_sample

__all__ = ["SamplesError", "read_samples"]


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
