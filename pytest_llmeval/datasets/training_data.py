"""The training data of the held-out check (``--llmeval-train-data``), read one record at a time:
JSONL records, plain-text lines, a JSON list, or a directory of such files. Each record gives one
or more :class:`TrainingText` (its whole text, and its parts to match exactly), with the file and
line it came from. Pure logic: nothing here imports pytest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from pytest_llmeval.jsonfiles import file_lines, json_document, jsonl_values

__all__ = ["MAX_JSON_BYTES", "TrainingText", "iter_training_texts", "load_training_texts"]

PROMPT_FIELDS = ("prompt", "question", "instruction", "input", "query")
ANSWER_FIELDS = ("completion", "response", "answer", "output", "target", "chosen")
TEXT_FIELDS = ("text", "content")
TEXT_SUFFIXES = (".jsonl", ".json", ".txt", ".md", ".text")


@dataclass(frozen=True)
class TrainingText:
    """One text of the training data and where it came from (``file``/``line``, 1-based)."""

    text: str
    file: str = ""
    line: int = 0
    exact_only: bool = False
    """A part of a record also indexed whole (its prompt): matched exactly, not by n-grams."""

    @property
    def source(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or "training data"


MAX_JSON_BYTES = 256 * 2**20
"""The largest ``.json`` training file (read whole, as a JSON document must be); JSONL and text
files are read one line at a time, whatever their size."""


def load_training_texts(path: str | Path) -> list[TrainingText]:
    """Every text of :func:`iter_training_texts` in a list (for small data and tests)."""
    return list(iter_training_texts(path))


def iter_training_texts(path: str | Path) -> Iterator[TrainingText]:
    """Read training data one record at a time: a JSONL file of records, a plain-text file (one
    text per non-empty line), a JSON list (up to :data:`MAX_JSON_BYTES`), or a directory of such
    files (``.jsonl .json .txt .md .text``, sorted). Memory holds one line, so a large file, a pipe
    or an endless one never fills it.

    A JSONL record may be a string, or an object with ``text``/``content``, or a prompt field
    (``prompt``, ``question``, ``instruction``, ``input``, ``query``) and an answer field
    (``completion``, ``response``, ``answer``, ``output``, ``target``, ``chosen``), or
    ``messages`` (a chat: a list of ``{"role", "content"}``). Raises ``ValueError`` naming the
    file and line of a record it cannot read, and ``FileNotFoundError`` for a missing path.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise ValueError(
                f"{p}: no training data files in this directory; "
                f"put the data in files ending in {', '.join(TEXT_SUFFIXES)}"
            )
        for f in files:
            yield from iter_training_texts(f)
        return
    if not p.exists():
        raise FileNotFoundError(
            f"training data {p} does not exist; pass an existing JSONL or text file to --llmeval-train-data"
        )
    suffix = p.suffix.lower()
    if suffix == ".json":
        yield from _read_json(p, _bounded_text(p))
        return
    lines = file_lines(p, str(p), ValueError)  # UTF-8 with or without a byte-order mark
    if suffix == ".jsonl":
        yield from _read_jsonl(p, lines)
        return
    for i, line in lines:
        if line.strip():
            yield TrainingText(line, str(p), i)


def _bounded_text(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > MAX_JSON_BYTES:
        raise ValueError(f"{path}: a .json file over {MAX_JSON_BYTES // 2**20} MiB; write the records one per line in a .jsonl file (read a line at a time)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8") from None


def _read_jsonl(path: Path, lines: Iterable[tuple[int, str]]) -> Iterator[TrainingText]:
    fix = "fix the line, or give the data as a .txt file with one text per line"
    for lineno, record in jsonl_values(lines, str(path), ValueError, fix):
        for text, exact_only in _record_texts(record, f"{path}:{lineno}"):
            yield TrainingText(text, str(path), lineno, exact_only)


def _read_json(path: Path, raw: str) -> Iterator[TrainingText]:
    data = json_document(raw, str(path), ValueError)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records; use a list, or one record per line in a .jsonl file")
    for i, record in enumerate(data, start=1):
        for text, exact_only in _record_texts(record, f"{path} record {i}"):
            yield TrainingText(text, str(path), i, exact_only)


def _record_texts(record: Any, where: str) -> list[tuple[str, bool]]:
    """The texts one record contributes, each with ``exact_only``: its whole text is indexed
    for n-grams, its parts (the prompt alone, each chat message) only for exact matches."""
    if isinstance(record, str):
        return [(record, False)] if record.strip() else []
    if not isinstance(record, dict):
        raise ValueError(
            f"{where}: expected a JSON object or string, got {type(record).__name__}; "
            'write each record as {"text": "..."} or {"prompt": "...", "completion": "..."}'
        )
    texts: list[tuple[str, bool]] = []
    for name in TEXT_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            texts.append((value, False))
    prompt = _first_str(record, PROMPT_FIELDS)
    answer = _first_str(record, ANSWER_FIELDS)
    if prompt is not None and answer is not None:
        texts.append((f"{prompt} {answer}", False))
        texts.append((prompt, True))
    elif prompt is not None or answer is not None:
        texts.append((prompt if prompt is not None else answer, False))  # type: ignore[arg-type]
    messages = record.get("messages")
    if isinstance(messages, list):
        contents = [m.get("content") for m in messages if isinstance(m, dict)]
        contents = [c for c in contents if isinstance(c, str) and c.strip()]
        if len(contents) > 1:
            texts.append((" ".join(contents), False))
            texts.extend((c, True) for c in contents)
        else:
            texts.extend((c, False) for c in contents)
    if not texts:
        fields = ", ".join(TEXT_FIELDS + PROMPT_FIELDS + ANSWER_FIELDS + ("messages",))
        raise ValueError(
            f"{where}: no text field in this record (keys: {', '.join(map(str, record)) or 'none'}); "
            f"name the text one of: {fields}"
        )
    return texts


def _first_str(record: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = record.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            return value
    return None

