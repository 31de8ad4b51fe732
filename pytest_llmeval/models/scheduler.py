"""Batch scheduling: compute the model outputs of many selected items at once, hand out one.

pytest runs one item at a time but a model is fastest on a batch. After collection the plugin
tells the scheduler every selected item's request, in run order; when an item first needs its
output, the scheduler computes that item's and those of the items after it (a window), and
keeps the results until their items ask.

A window is computed in chunks (the backend's batch size), longest prompts first, and each
chunk's results are kept as soon as it is done. A run stopped part-way (pytest-timeout, Ctrl-C)
loses at most the chunk in progress: the next item that needs an output continues from there.

With a completion cache, a window's cached outputs are taken from it first and only the rest is
computed (and stored); the backend may be :class:`Deferred`, loaded only when something is not
cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion, Ranked

Result = Completion | Ranked
ProgressFactory = Callable[[str, int], "ProgressSink"]
DEFAULT_CHUNK = 32
"""Requests per backend call for a backend without ``batch_size()``."""


class ProgressSink:
    """Receives progress of one batched run; the default shows nothing."""

    def update(self, n: int) -> None:  # pragma: no cover - trivial
        pass

    def close(self, seconds: float, stopped: bool = False) -> None:  # pragma: no cover - trivial
        """The run ended; ``stopped``: interrupted (a timeout, Ctrl-C) before computing everything."""


class Deferred:
    """A backend that is loaded only when an output must be computed (``load`` is called once)."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load

    def get(self) -> Any:
        return self._load()


def resolve(backend: Any) -> Any:
    return backend.get() if isinstance(backend, Deferred) else backend


@dataclass(frozen=True)
class Entry:
    key: str
    suite: str
    request: Request


def chunk_size(backend: Any) -> int:
    """How many requests one backend call gets: the backend's batch size, else a default."""
    size = getattr(backend, "batch_size", None)
    value = size() if callable(size) else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_CHUNK


def _group(request: Request) -> tuple[Any, ...]:
    """Requests a backend can put in one batch share this (chat template, generation settings)."""
    return (request.chat, request.max_new_tokens or 0, request.stop or (), request.target_delimiter)


def _length(request: Request) -> int:
    """A rough prompt length (characters): the backend tokenizes, the scheduler only orders."""
    return len(request.text) + len(request.system or "") + sum(len(q) + len(a) for q, a in request.fewshot)


def chunks(window: Sequence[Entry], size: int) -> list[list[Entry]]:
    """``window`` in backend calls of up to ``size``: alike requests together, longest first
    (memory trouble shows on the first chunk; rows of a chunk pad little). Stable for ties."""
    ordered = sorted(window, key=lambda e: (_group(e.request), -_length(e.request)))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class BatchScheduler:
    """Hands each item its completion or ranking, computing them a window at a time.

    ``window`` caps how many items one batched run covers (``None``: all pending items after
    the one asking). With ``same_suite`` the window stays inside the asking item's suite; an
    xdist worker uses that, since it cannot know which later items it will be sent.
    """

    def __init__(self, *, window: int | None = None, same_suite: bool = False, progress: ProgressFactory | None = None) -> None:
        self.window = window
        self.same_suite = same_suite
        self.progress = progress
        self._entries: list[Entry] = []
        self._position: dict[str, int] = {}
        self._results: dict[str, Result] = {}
        self._failed: dict[str, BaseException] = {}
        self._cached: set[str] = set()
        self.runs: list[tuple[str, int, float]] = []
        """(kind, number of requests computed, seconds) of every batched run, for reports and tests."""

    def plan(self, entries: Sequence[Entry]) -> None:
        """Set the items that will run, in run order (replaces an earlier plan)."""
        self._entries = list(entries)
        self._position = {e.key: i for i, e in enumerate(self._entries)}

    def __contains__(self, key: str) -> bool:
        return key in self._position

    def peek(self, key: str) -> Result | None:
        return self._results.get(key)

    def request_of(self, key: str) -> Request | None:
        pos = self._position.get(key)
        return None if pos is None else self._entries[pos].request

    def from_cache(self, key: str) -> bool:
        """Whether the output of ``key`` came from the completion cache."""
        return key in self._cached

    def result(self, key: str, backend: Any, cache: Any = None) -> Result:
        """The output for ``key``, computing its window first if needed (``backend`` may be
        :class:`Deferred`; ``cache``: a :class:`~pytest_llmeval.models.cache.CompletionCache`)."""
        if key in self._results:
            return self._results[key]
        if key in self._failed:
            raise self._failed[key]
        if key not in self._position:
            raise KeyError(f"{key} was not planned; the scheduler knows only the selected eval items")
        window = self._window_for(key)
        if cache is not None:
            window = self._from_cache(window, cache)
        if window:
            self._compute(window, resolve(backend), cache)
        if key in self._failed:
            raise self._failed[key]
        return self._results[key]

    def _from_cache(self, window: list[Entry], cache: Any) -> list[Entry]:
        """Keep the cached outputs of ``window``; the entries still to compute."""
        found = cache.lookup([e.request for e in window])
        for e, out in zip(window, found):
            if out is not None:
                self._results[e.key] = out
                self._cached.add(e.key)
        return [e for e, out in zip(window, found) if out is None]

    def _compute(self, window: list[Entry], backend: Any, cache: Any = None) -> None:
        kind = window[0].request.kind
        sink = self.progress(kind, len(window)) if self.progress else ProgressSink()
        started = time.perf_counter()
        done, stopped = 0, False
        try:
            for chunk in chunks(window, chunk_size(backend)):
                outputs = self._call(backend, kind, chunk, sink)
                self._store(chunk, outputs)
                if cache is not None:
                    cache.save_answers(backend, [e.request for e in chunk], outputs)
                done += len(chunk)
        except Exception as exc:
            # The rest of the window errors with the same cause; none is retried in a loop.
            for e in window:
                if e.key not in self._results:
                    self._failed[e.key] = exc
            raise
        except BaseException:
            # A pytest-timeout (its Failed is a BaseException) or Ctrl-C: nothing is marked,
            # the next item that needs an output computes the rest.
            stopped = True
            raise
        finally:
            seconds = time.perf_counter() - started
            self.runs.append((kind, done, seconds))
            sink.close(seconds, stopped)

    @staticmethod
    def _call(backend: Any, kind: str, chunk: list[Entry], sink: ProgressSink) -> Sequence[Result | BaseException]:
        requests = [e.request for e in chunk]
        if kind == "generate":
            outputs: Sequence[Result | BaseException] = backend.run_generate(requests, progress=sink.update)
        else:
            outputs = backend.run_rank(requests, progress=sink.update)
        if len(outputs) != len(requests):
            raise RuntimeError(f"the backend returned {len(outputs)} results for {len(requests)} requests")
        return outputs

    def _store(self, chunk: list[Entry], outputs: Sequence[Result | BaseException]) -> None:
        """Keep each result; an exception in place of a result (a backend's per-case
        :class:`~pytest_llmeval.models.OutputError`) fails only that item."""
        for e, out in zip(chunk, outputs):
            if isinstance(out, BaseException):
                self._failed[e.key] = out
            else:
                self._results[e.key] = out
                self._cached.discard(e.key)

    def _window_for(self, key: str) -> list[Entry]:
        start = self._position[key]
        first = self._entries[start]
        chosen = [first]
        for e in self._entries[start + 1 :]:
            if self.window is not None and len(chosen) >= self.window:
                break
            if e.request.kind != first.request.kind or e.key in self._results or e.key in self._failed:
                continue
            if self.same_suite and e.suite != first.suite:
                continue
            chosen.append(e)
        return chosen

    def retry(self, key: str) -> None:
        """Forget the failure of ``key`` and of the items that failed with it (a rerun of the item,
        e.g. by pytest-rerunfailures), so that the next :meth:`result` computes them again."""
        cause = self._failed.get(key)
        if cause is not None:
            self._failed = {k: exc for k, exc in self._failed.items() if exc is not cause}

    def discard(self, key: str) -> None:
        """Drop a result its item has used (keeps memory flat on long runs)."""
        self._results.pop(key, None)
