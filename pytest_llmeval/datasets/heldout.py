"""Held-out check: find eval cases whose prompt or answer appears in the training data.

Two checks, both on normalised text (Unicode NFKC, case-folded, split into words and single
punctuation marks, so ``"12+34=46"`` and ``"12 + 34 = 46"`` are the same):

- **exact**: the case's prompt, or its prompt followed by its answer, equals a whole training
  text (a plain-text line, a JSONL record's ``text``, its ``prompt`` field, or its
  ``prompt`` + ``completion``);
- **ngram**: the case shares a run of ``n`` tokens (13 by default) with a training text.

The n-grams of the training data are kept as sorted 64-bit hashes in one numpy array, so an
index over 100k lines takes a few seconds to build and a few MB to hold; a lookup is a binary
search. The training data is read by :mod:`pytest_llmeval.datasets.training_data` (whose names are
importable from here too). Pure logic: nothing here imports pytest.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping

from pytest_llmeval.datasets.casetext import answer_texts
from pytest_llmeval.datasets.training_data import TrainingText, iter_training_texts, load_training_texts

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

_TOKEN = re.compile(r"\w+|[^\w\s]")
_MASK64 = (1 << 64) - 1


def tokens(text: str) -> list[str]:
    """The normalised tokens of ``text``: words and single punctuation marks, case-folded."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """``text`` as the checks compare it: its tokens joined by single spaces."""
    return " ".join(tokens(text))


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
