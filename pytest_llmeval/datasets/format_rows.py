"""Reading the records of a benchmark file for the loaders of :mod:`pytest_llmeval.datasets.formats`,
and the checks each record goes through; :class:`FormatError` says which record and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any, Iterator, Mapping

from pytest_llmeval.datasets.casefiles import CaseError
from pytest_llmeval.jsonfiles import json_document, jsonl_rows, read_text

__all__ = ["FormatError", "UniqueIds", "as_text", "as_texts", "choice_index", "content_id", "need", "read_records"]


class FormatError(CaseError):
    """A benchmark file that does not match the schema its loader reads (bad case data, so a
    ``CaseError`` and a ``ValueError``)."""


def read_records(path: str | Path, schema: str, *, csv_ok: bool = False) -> Iterator[tuple[str, Any]]:
    """``(location, row)`` for every record of the file; location is ``file:line`` or ``file[i]``.

    Text files are read as UTF-8 with or without a byte-order mark, CSV with its line breaks
    inside quoted cells kept."""
    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: no such file; point the loader at a local copy of the {schema} data")
    suffix = p.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_records(p, read_text(p, str(p), FormatError))
    elif suffix == ".json":
        yield from _json_records(p, read_text(p, str(p), FormatError), schema)
    elif suffix == ".parquet":
        yield from _parquet_records(p)
    elif suffix == ".csv" and csv_ok:
        reader = csv.reader(io.StringIO(read_text(p, str(p), FormatError), newline=""))
        try:
            for row in reader:
                if row:
                    yield f"{p}:{reader.line_num}", row
        except csv.Error as exc:
            raise FormatError(f"{p}:{reader.line_num}: malformed CSV ({exc}); fix the quoting on that line") from None
    else:
        kinds = "JSONL, JSON, CSV or Parquet" if csv_ok else "JSONL, JSON or Parquet"
        raise FormatError(f"{p}: cannot read {suffix or 'a file without extension'} as {schema} data; use {kinds}")


def _jsonl_records(p: Path, text: str) -> Iterator[tuple[str, Any]]:
    for n, record in jsonl_rows(text, str(p), FormatError):
        yield f"{p}:{n}", record


def _json_records(p: Path, text: str, schema: str) -> Iterator[tuple[str, Any]]:
    data = json_document(text, str(p), FormatError)
    if isinstance(data, Mapping):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise FormatError(f"{p}: expected a JSON array of {schema} records; convert the file to JSONL")
        data = lists[0]
    if not isinstance(data, list):
        raise FormatError(f"{p}: expected a JSON array of {schema} records, got {type(data).__name__}")
    for i, row in enumerate(data):
        yield f"{p}[{i}]", row


def _parquet_records(p: Path) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise FormatError(f"{p}: reading Parquet needs pyarrow (pip install pyarrow), or convert the file to JSONL") from None
    try:
        table = pq.read_table(p)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise FormatError(f"{p}: not a readable Parquet file ({exc}); check the download") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{p}[{i}]", row


def need(row: Any, key: str, loc: str, schema: str) -> Any:
    if not isinstance(row, Mapping):
        raise FormatError(f"{loc}: expected a {schema} record (an object), got {type(row).__name__}")
    if key not in row or row[key] is None:
        raise FormatError(f"{loc}: the {schema} record has no {key!r} field; is this the {schema} file?")
    return row[key]


def as_text(value: Any, loc: str, what: str) -> str:
    if isinstance(value, (dict, list)):
        raise FormatError(f"{loc}: {what} must be text, got {type(value).__name__}")
    return str(value)


def as_texts(value: Any, loc: str, what: str, schema: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value:
        raise FormatError(f"{loc}: {what} must be a non-empty list, got {value!r:.60}; is this the {schema} file?")
    return [as_text(v, loc, what) for v in value]


def content_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:12]}"


class UniqueIds:
    """Keeps ids unique: a repeated id gets ``~2``, ``~3``... in file order."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, value: str) -> str:
        count = self.seen.get(value, 0) + 1
        self.seen[value] = count
        return value if count == 1 else f"{value}~{count}"


def choice_index(answer: Any, n: int, loc: str, what: str) -> int:
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < n:
        raise FormatError(f"{loc}: {what} {answer!r} is not an index into the {n} choices; check the record")
    return answer


