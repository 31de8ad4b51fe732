"""Held-out check: find eval cases whose prompt or answer appears in the training data.

Two checks, both on normalised text (Unicode NFKC, case-folded, split into words and single
punctuation marks, so ``"12+34=46"`` and ``"12 + 34 = 46"`` are the same):

- **exact**: the case's prompt, or its prompt followed by its answer, equals a whole training
  text (a plain-text line, a JSONL record's ``text``, its ``prompt`` field, or its
  ``prompt`` + ``completion``);
- **ngram**: the case shares a run of ``n`` tokens (13 by default) with a training text.

The n-grams of the training data are kept as sorted 64-bit hashes in one numpy array, so an
index over 100k lines takes a few seconds to build and a few MB to hold; a lookup is a binary
search. Pure logic: nothing here imports pytest.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence

from pytest_llmeval.datasets.casetext import answer_texts
from pytest_llmeval.jsonfiles import file_lines, json_document, jsonl_values

__all__ = [
    "ContaminationIndex",
    "case_answer",
    "Finding",
    "TrainingText",
    "iter_training_texts",
    "load_training_texts",
    "OverlapFinder",
    "find_overlaps",
    "normalize",
    "tokens",
]

PROMPT_FIELDS = ("prompt", "question", "instruction", "input", "query")
ANSWER_FIELDS = ("completion", "response", "answer", "output", "target", "chosen")
TEXT_FIELDS = ("text", "content")
TEXT_SUFFIXES = (".jsonl", ".json", ".txt", ".md", ".text")

_TOKEN = re.compile(r"\w+|[^\w\s]")
_MASK64 = (1 << 64) - 1


def tokens(text: str) -> list[str]:
    """The normalised tokens of ``text``: words and single punctuation marks, case-folded."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """``text`` as the checks compare it: its tokens joined by single spaces."""
    return " ".join(tokens(text))


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


@dataclass(frozen=True)
class Finding:
    """Why a case counts as seen in training.

    ``kind`` is ``"exact"`` or ``"ngram"``; ``field`` says what matched (``"prompt"``,
    ``"prompt+answer"`` or ``"answer"``); ``overlap`` is the matching normalised text (the
    whole text, or the first shared n-gram); ``fraction`` the share of the case's n-grams found
    in training (1.0 for an exact match); ``source`` the training text's ``file:line``.
    """

    kind: Literal["exact", "ngram"]
    field: str
    overlap: str
    fraction: float
    source: str

    def message(self, suite: str, case_id: str) -> str:
        """The warning a run shows for a flagged case, ending with what to do."""
        return (
            f"case {case_id} of {suite} was seen in training: {self.describe()}; "
            "drop the case from the eval set or hold it out of the training data"
        )

    def describe(self) -> str:
        if self.kind == "exact":
            what = f"its {self.field} appears verbatim in the training data"
        else:
            words = len(self.overlap.split())
            what = (
                f"its {self.field} shares a {words}-token run with the training data "
                f"({self.fraction:.0%} of its {words}-grams): {self.overlap!r}"
            )
        return f"{what} (first seen at {self.source})"


def case_answer(fields: Mapping[str, Any], *, target: str | Callable[[Mapping[str, Any]], Any] | None = None, choices: str | None = None) -> Any:
    """The answer texts of an eval case, for :meth:`ContaminationIndex.check`: one text, a list
    when the case lists several, ``None`` when it has none. What counts as the answer is
    :func:`pytest_llmeval.datasets.casetext.answer_texts` (the ``target`` field when one is named, an
    index into ``choices`` as that option's text); an answer that cannot be read is kept as
    written, since it only serves to find the case in the training data."""
    texts = answer_texts(fields, target=target, choices=choices, strict=False)
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else list(texts)


# --------------------------------------------------------------------------- loading


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


# --------------------------------------------------------------------------- index


class ContaminationIndex:
    """An index of training texts that answers: was this case (or a long run of it) trained on?

    ``texts`` are strings or :class:`TrainingText`; ``n`` is the n-gram length in normalised
    tokens (words and punctuation marks). Texts shorter than ``n`` tokens only match exactly.
    """

    def __init__(self, texts: Iterable[str | TrainingText], n: int = 13) -> None:
        import numpy as np

        if n < 1:
            raise ValueError(f"n-gram length must be at least 1, got {n}")
        self.n = n
        self._sources: list[str] = []
        self._exact: dict[str, int] = {}
        chunks: list[list[str]] = []
        owners: list[int] = []
        for index, item in enumerate(texts):
            if isinstance(item, TrainingText):
                text, source, exact_only = item.text, item.source, item.exact_only
            else:
                text, source, exact_only = str(item), f"training text #{index + 1}", False
            self._sources.append(source)
            toks = tokens(text)
            if not toks:
                continue
            self._exact.setdefault(" ".join(toks), index)
            if not exact_only and len(toks) >= n:
                chunks.append(toks)
                owners.append(index)
        lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
        flat = np.fromiter(
            (hash(t) for c in chunks for t in c), dtype=np.int64, count=int(lengths.sum())
        )
        owner = np.repeat(np.asarray(owners, dtype=np.int64), lengths)
        hashes, where = _ngram_hashes(flat, owner, n)
        order = np.argsort(hashes, kind="stable")
        hashes, where = hashes[order], where[order]
        keep = np.ones(len(hashes), dtype=bool)
        keep[1:] = hashes[1:] != hashes[:-1]
        self._hashes = hashes[keep]
        self._owners = where[keep]

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], n: int = 13) -> "ContaminationIndex":
        texts: list[TrainingText] = []
        for p in paths:
            texts.extend(load_training_texts(p))
        return cls(texts, n=n)

    def __len__(self) -> int:
        return len(self._sources)

    @property
    def ngram_count(self) -> int:
        return int(self._hashes.shape[0])

    def check(self, prompt: str, answer: Any = None) -> Finding | None:
        """The first reason to think the case was trained on, or ``None`` if it looks held out.

        ``answer`` may be a string, a number, or a list of acceptable answers (each is tried).
        """
        answers = _answers(answer)
        prompt_toks = tokens(prompt or "")
        candidates: list[tuple[str, list[str]]] = []
        for a in answers:
            candidates.append(("prompt+answer", prompt_toks + tokens(a)))
        candidates.append(("prompt", prompt_toks))
        for name, toks in candidates:
            if toks:
                hit = self._exact.get(" ".join(toks))
                if hit is not None:
                    return Finding("exact", name, " ".join(toks), 1.0, self._sources[hit])
        for name, toks in candidates:
            found = self._ngram_hit(toks)
            if found is not None:
                gram, fraction, owner = found
                return Finding("ngram", name, gram, fraction, self._sources[owner])
        for a in answers:
            found = self._ngram_hit(tokens(a))
            if found is not None:
                gram, fraction, owner = found
                return Finding("ngram", "answer", gram, fraction, self._sources[owner])
        return None

    def _ngram_hit(self, toks: list[str]) -> tuple[str, float, int] | None:
        import numpy as np

        n = self.n
        if len(toks) < n or self.ngram_count == 0:
            return None
        flat = np.fromiter((hash(t) for t in toks), dtype=np.int64, count=len(toks))
        hashes, _ = _ngram_hashes(flat, np.zeros(len(toks), dtype=np.int64), n)
        pos = np.minimum(np.searchsorted(self._hashes, hashes), len(self._hashes) - 1)
        found = self._hashes[pos] == hashes
        if not found.any():
            return None
        first = int(np.argmax(found))
        fraction = float(found.sum()) / len(found)
        return " ".join(toks[first : first + n]), fraction, int(self._owners[pos[first]])


class OverlapFinder:
    """The check of :meth:`ContaminationIndex.check` the other way round, for training data too
    large to hold: an index of the *cases* (a few thousand texts), past which the training texts
    stream once (:meth:`feed`). Memory grows with the cases, never with the training data; the
    findings are the ones :class:`ContaminationIndex` gives over the same texts.

    ``cases`` maps any key to ``(prompt, answer)`` as :meth:`ContaminationIndex.check` takes them.
    """

    def __init__(self, cases: Mapping[Any, tuple[str, Any]], n: int = 13) -> None:
        import numpy as np

        if n < 1:
            raise ValueError(f"n-gram length must be at least 1, got {n}")
        self.n = n
        self._exact: dict[str, list[tuple[Any, int]]] = {}
        self._candidates: dict[Any, tuple[list[tuple[str, str]], list[tuple[str, list[str], list[int]]]]] = {}
        self._grams: set[int] = set()
        self._exact_found: dict[tuple[Any, int], str] = {}
        self._gram_found: dict[int, str] = {}
        for key, (prompt, answer) in cases.items():
            answers = _answers(answer)
            prompt_toks = tokens(prompt or "")
            named = [("prompt+answer", prompt_toks + tokens(a)) for a in answers] + [("prompt", prompt_toks)]
            exact = [(name, " ".join(toks)) for name, toks in named]
            for index, (_, text) in enumerate(exact):
                if text:
                    self._exact.setdefault(text, []).append((key, index))
            grams = []
            for name, toks in named + [("answer", tokens(a)) for a in answers]:
                flat = np.fromiter((hash(t) for t in toks), dtype=np.int64, count=len(toks))
                hashes = _ngram_hashes(flat, np.zeros(len(toks), dtype=np.int64), n)[0].tolist()
                grams.append((name, toks, hashes))
                self._grams.update(hashes)
            self._candidates[key] = (exact, grams)

    def feed(self, item: TrainingText) -> None:
        """Look for the cases in one training text (texts in the order of the data)."""
        import numpy as np

        toks = tokens(item.text)
        if not toks:
            return
        for found in self._exact.get(" ".join(toks), ()):
            self._exact_found.setdefault(found, item.source)
        if item.exact_only or len(toks) < self.n or not self._grams:
            return
        flat = np.fromiter((hash(t) for t in toks), dtype=np.int64, count=len(toks))
        hashes = _ngram_hashes(flat, np.zeros(len(toks), dtype=np.int64), self.n)[0].tolist()
        for h in self._grams.intersection(hashes):
            self._gram_found.setdefault(h, item.source)

    def findings(self) -> dict[Any, Finding]:
        """Each case seen so far, with the first reason (the order of :meth:`ContaminationIndex.check`)."""
        out: dict[Any, Finding] = {}
        for key, (exact, grams) in self._candidates.items():
            finding = next(
                (Finding("exact", name, text, 1.0, self._exact_found[(key, i)]) for i, (name, text) in enumerate(exact) if (key, i) in self._exact_found),
                None,
            )
            for name, toks, hashes in grams if finding is None else ():
                hits = [h in self._gram_found for h in hashes]
                if any(hits):
                    first = hits.index(True)
                    gram = " ".join(toks[first : first + self.n])
                    finding = Finding("ngram", name, gram, sum(hits) / len(hits), self._gram_found[hashes[first]])
                    break
            if finding is not None:
                out[key] = finding
        return out


def find_overlaps(cases: Mapping[Any, tuple[str, Any]], path: str | Path, n: int = 13) -> dict[Any, Finding]:
    """The cases (key -> (prompt, answer)) found in the training data at ``path``, streamed once."""
    finder = OverlapFinder(cases, n=n)
    for item in iter_training_texts(path):
        finder.feed(item)
    return finder.findings()


def _answers(answer: Any) -> list[str]:
    if answer is None:
        return []
    if isinstance(answer, (list, tuple)):
        return [str(a) for a in answer if a is not None and str(a).strip()]
    text = str(answer)
    return [text] if text.strip() else []


def _mix(x):
    """splitmix64's finaliser: spreads a token's string hash over all 64 bits."""
    import numpy as np

    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _ngram_hashes(token_hashes, owner, n: int):
    """Polynomial hashes (mod 2**64) of every window of ``n`` tokens that stays inside one text.

    ``token_hashes`` are Python's ``hash()`` of each token (stable within one process, which
    is all an in-memory index needs); ``owner`` gives each token's text index.
    """
    import numpy as np

    count = len(token_hashes) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    base = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        values = _mix(token_hashes.view(np.uint64))
        h = np.zeros(count, dtype=np.uint64)
        for j in range(n):
            h = h * base + values[j : j + count]
    inside = owner[:count] == owner[n - 1 :]
    return h[inside], owner[:count][inside]
