"""The one reader of text, JSON and JSON Lines files: case files, ``le.formats`` data, training
data and a run's ``samples.jsonl`` all go through it.

A file is read as UTF-8 with or without a byte-order mark, line endings as in the file. JSON
Lines are split at ``\\n`` only (a ``\\r`` before it is dropped), never at U+2028, U+2029, U+0085
or a form feed, which a JSON string may hold raw. Every error names the file and the line and
ends with what to do; its class is the caller's (``error``), so each reader raises its own.

The one writer of JSON text for our own files (:func:`json_text`, :func:`jsonl_line`) keeps
non-ASCII text as it is but escapes U+2028, U+2029 and U+0085 (so that even a reader that splits
at every Unicode line break reads one value a line) and lone surrogates (which UTF-8 cannot
encode): every string reads back exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["MAX_LINE_BYTES", "SCALAR_TYPES", "file_lines", "json_document", "json_text", "jsonl_line", "jsonl_rows", "jsonl_values", "read_text", "text_lines"]

DEEP_FIX = "flatten it"
SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
"""The exact types of JSON's scalars as Python reads them: a value of one of them is written as it is
(the fast path of the walks over cases, records and cache keys; a subclass takes the full walk)."""
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
_LINE_BREAK = re.compile("[\u2028\u2029\x85]")


def json_text(value: Any, **options: Any) -> str:
    """``value`` as JSON text that any UTF-8 writer can write and any line splitter keeps whole:
    non-ASCII as it is, U+2028, U+2029 and U+0085 escaped (they can only occur inside strings),
    and the whole text ASCII-escaped when a string holds a lone surrogate. ``options`` are
    :func:`json.dumps`'s (``sort_keys``, ``indent``...)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a broken \\ud800 escape a server sent)
        return json.dumps(value, ensure_ascii=True, **options)
    return _LINE_BREAK.sub(lambda m: _LINE_BREAKS[m.group()], text)


def jsonl_line(value: Any) -> str:
    """One JSON Lines line (keys sorted, a trailing ``\\n``): :func:`json_text` on one line."""
    return json_text(value, sort_keys=True) + "\n"



def read_text(path: Path, where: str, error: type[Exception] = ValueError) -> str:
    """The text of ``path``: UTF-8 without a byte-order mark, line endings as in the file.
    ``where`` names the file in messages (as the user gave it)."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8") from None
    except OSError as exc:
        raise error(_cannot_read(exc, path, where, "; paths are relative to the test file", "; name a case file in it")) from None


def _cannot_read(exc: OSError, path: Path, where: str, missing: str = "", directory: str = "") -> str:
    """Why ``path`` could not be opened or read, in one line; ``missing`` and ``directory`` end the
    lines for a file that is not there and for a directory."""
    if isinstance(exc, FileNotFoundError):
        return f"{where}: file not found (looked at {path}){missing}"
    if isinstance(exc, IsADirectoryError):
        return f"{where}: is a directory, not a file{directory}"
    return f"{where}: cannot read the file ({exc.strerror or exc}); check its permissions"


def text_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` split at ``\\n`` only, a ``\\r`` before it dropped: a JSON string
    holding U+2028, U+2029, U+0085 or a form feed stays on its line."""
    if not text:
        return
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line starts no new one
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line[:-1] if line.endswith("\r") else line


MAX_LINE_BYTES = 64 * 2**20
"""The longest line :func:`file_lines` reads (64 MiB): a file with no newline (``/dev/zero``, a
binary file) is one line, which must never fill the memory."""


def file_lines(path: Path, where: str, error: type[Exception] = ValueError, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a file read one line at a time, as :func:`text_lines` splits
    text: memory holds one line, whatever the file's size (a pipe or an endless file too). A line
    longer than ``max_bytes``, or one that is not UTF-8, raises ``error`` naming the line."""
    try:
        fh = Path(path).open("rb")
    except OSError as exc:
        raise error(_cannot_read(exc, path, where)) from None
    with fh:
        number = 0
        while True:
            try:
                raw = fh.readline(max_bytes + 1)
            except OSError as exc:
                raise error(f"{where}: cannot read the file ({exc.strerror or exc})") from None
            if not raw:
                return
            number += 1
            if len(raw) > max_bytes:
                raise error(f"{where}:{number}: a line longer than {max_bytes // 2**20} MiB (is this a text file?); split it into lines")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(f"{where}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line); save the file as UTF-8") from None
            line = line[:-1] if line.endswith("\n") else line
            yield number, line[:-1] if line.endswith("\r") else line


def jsonl_rows(text: str, where: str, error: type[Exception] = ValueError, fix: str | None = "fix or remove that line") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of JSON Lines ``text``; a line that is not
    JSON raises ``error`` (``where:line: not valid JSON (...); fix``)."""
    return jsonl_values(text_lines(text), where, error, fix)


def jsonl_values(lines: Iterable[tuple[int, str]], where: str, error: type[Exception] = ValueError, fix: str | None = "fix or remove that line") -> Iterator[tuple[int, Any]]:
    """:func:`jsonl_rows` over numbered lines (from :func:`text_lines` or :func:`file_lines`)."""
    for number, line in lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = f"; {fix}" if fix else ""
            raise error(f"{where}:{number}: not valid JSON ({exc.msg} at column {exc.colno}){hint}") from None
        except RecursionError:
            raise error(f"{where}:{number}: the JSON on this line is nested too deeply; {DEEP_FIX}") from None
        yield number, value


def json_document(text: str, where: str, error: type[Exception] = ValueError, fix: str = "fix the file") -> Any:
    """The value of a JSON document; one that is not JSON raises ``error``
    (``where:line: not valid JSON (...); fix``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); {fix}") from None
    except RecursionError:
        raise error(f"{where}: the JSON is nested too deeply; {DEEP_FIX}") from None
