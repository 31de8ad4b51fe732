"""Reading a run's ``samples.jsonl`` (one case, or one sample, a line) back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SamplesError", "read_samples"]


class SamplesError(ValueError):
    """A line of ``samples.jsonl`` that is not JSON; the message names the file and line."""


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one a line, skipping blank lines and non-objects.

    Raises :class:`SamplesError` (``path:line: not valid JSON (...)``) for a broken line and
    lets ``OSError`` through for a file that cannot be read."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SamplesError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows
