"""Judgements are cached like completions: a judge backend seen through the completion cache.

:class:`CachedJudge` stands where the judge backend would: each judge prompt (a ``rank`` or
``generate`` :class:`~pytest_llmeval.datasets.suite.Request`) is looked up in the completion
cache under the judge's own identity and settings; only the misses are sent to the judge, which
is loaded for the first miss (never when every judgement is cached), and their outputs are stored
(never errors). The cache modes apply as for completions (``off``, ``refresh``, ``readonly``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence


class CachedJudge:
    """A judge backend behind ``cache`` (a ``CompletionCache``, or None: no caching);
    ``load()`` gives the real backend, called at most once, when an output is not cached (it may
    be replaced before the backend is loaded: a fixture request's loader holds for one test)."""

    def __init__(self, load: Callable[[], Any], cache: Any) -> None:
        self.load = load
        self._backend: Any = None
        self.cache = cache
        self.hit_texts: set[str] = set()
        """The judge prompts whose outputs came from the cache."""

    @property
    def loaded(self) -> Any:
        if self._backend is None:
            self._backend = self.load()
            if self.cache is not None:
                self.cache.remember(self._backend)
        return self._backend

    def _known(self) -> bool:
        """Whether the cache can stand for the backend without loading it."""
        return self._backend is None and self.cache is not None and self.cache.reads and self.cache.capabilities is not None

    # ------------------------------------------------------------ what a backend says about itself

    @property
    def capabilities(self) -> frozenset[str]:
        from pytest_llmeval.models import capabilities

        return self.cache.capabilities if self._known() else capabilities(self.loaded)

    @property
    def has_chat_template(self) -> bool:
        from pytest_llmeval.models import has_chat_template

        return bool(self.cache.has_chat_template) if self._known() else has_chat_template(self.loaded)

    @property
    def fingerprint(self) -> Any:
        return self.cache.fingerprint if self._known() else self.loaded.fingerprint

    @property
    def settings(self) -> Any:
        return self.cache.settings if self._backend is None and self.cache is not None else getattr(self.loaded, "settings", None)

    def describe(self) -> str:
        return "cached judge" if self._backend is None else self._backend.describe()

    def batch_size(self) -> int | None:
        from pytest_llmeval.models.scheduler import chunk_size

        return None if self._backend is None else chunk_size(self._backend)

    # ------------------------------------------------------------ outputs

    def run_rank(self, requests: Sequence[Any], progress: Any = None) -> list[Any]:
        return self._run("rank", requests, progress)

    def run_generate(self, requests: Sequence[Any], progress: Any = None) -> list[Any]:
        return self._run("generate", requests, progress)

    def _run(self, kind: str, requests: Sequence[Any], progress: Any) -> list[Any]:
        found = self.cache.lookup(list(requests)) if self.cache is not None else [None] * len(requests)
        self.hit_texts.update(r.text for r, out in zip(requests, found) if out is not None)
        misses = [i for i, out in enumerate(found) if out is None]
        if not misses:
            return list(found)
        from pytest_llmeval.scoring.judging import run_batched

        backend = self.loaded
        asked = [requests[i] for i in misses]
        outputs = run_batched(backend, asked, kind, progress)
        if self.cache is not None:
            self.cache.save_answers(backend, asked, outputs)
        out = list(found)
        for i, output in zip(misses, outputs):
            out[i] = output
        return out
