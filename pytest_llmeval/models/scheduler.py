"""Batch scheduling: compute the model outputs of many selected items at once, hand out one.

pytest runs one item at a time but a model is fastest on a batch. After collection the plugin
tells the scheduler every selected item's request, in run order; when an item first needs its
output, the scheduler computes that item's and those of the items after it (a window), and
keeps the results until their items ask.

A window goes through the one cached, batched path (:mod:`.batched`): its cached outputs are
taken from the completion cache, the rest is computed in chunks (the backend's batch size),
longest prompts first, and each chunk's results are kept (and stored) as soon as it is done. A run
stopped part-way (pytest-timeout, Ctrl-C) loses at most the chunk in progress: the next item that
needs an output continues from there. The backend may be :class:`~.batched.Deferred`, loaded
only when something is not cached. A window of workflow items runs their conversations in
batched rounds (:mod:`.workflow_runs`), each round through the same cached path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.batched import DEFAULT_CHUNK, CachedRun, Chunk, Deferred, chunk_size, resolve, window
from pytest_llmeval.models.outputs import Completion, Ranked

__all__ = ["DEFAULT_CHUNK", "BatchScheduler", "Deferred", "Entry", "ProgressSink", "chunk_size", "resolve"]

Result = Completion | Ranked
ProgressFactory = Callable[[str, int], "ProgressSink"]


class ProgressSink:
    """Receives progress of one batched run; the default shows nothing."""

    def update(self, n: int) -> None:  # pragma: no cover - trivial
        pass

    def close(self, seconds: float, stopped: bool = False) -> None:  # pragma: no cover - trivial
        """The run ended; ``stopped``: interrupted (a timeout, Ctrl-C) before computing everything."""


@dataclass(frozen=True)
class Entry:
    """A selected item: its key (node id), suite, request, and the group of items that share a
    model (``group``: items of different groups never share a window)."""

    key: str
    suite: str
    request: Request
    group: int = 0
    workflow: Any = None
    """A workflow item's :class:`~.workflow_runs.Workflow` (``request`` is its first round); its
    result is a :class:`~pytest_llmeval.workflows.Conversation`."""

    @property
    def kind(self) -> str:
        """What a run of this entry computes: ``"generate"``, ``"rank"`` or ``"workflow"``."""
        return "workflow" if self.workflow is not None else self.request.kind


class BatchScheduler:
    """Hands each item its completion or ranking, computing them a window at a time.

    ``window`` caps how many items one batched run covers (``None``: all pending items after
    the one asking), all of the asking item's model group. With ``same_suite`` the window stays
    inside the asking item's suite; an xdist worker uses that, since it cannot know which later
    items it will be sent.
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
        self.on_ready: Callable[[list[str]], None] | None = None
        """Told the keys whose outputs were just stored (a window's cached ones, then each computed
        chunk's), before the asking item gets its own; for work that can start on them early (the
        prefetch pass of code suites). What it raises is ignored: it must not change an outcome."""

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

    def group_of(self, key: str) -> int | None:
        """The model group of ``key`` (see :class:`Entry`), None for an item not planned."""
        pos = self._position.get(key)
        return None if pos is None else self._entries[pos].group

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
        chosen = self._window_for(key)
        if chosen[0].workflow is not None:
            self._run_workflows(chosen, backend, cache)
            return self._results[key]
        run = CachedRun([e.request for e in chosen], cache)
        for i in run.hits:
            self._results[chosen[i].key] = run.found[i]  # type: ignore[assignment]
            self._cached.add(chosen[i].key)
        self._ready([chosen[i].key for i in run.hits])
        if run.misses:
            self._compute(chosen, run, resolve(backend))
        if key in self._failed:
            raise self._failed[key]
        return self._results[key]

    def _compute(self, chosen: list[Entry], run: CachedRun, backend: Any) -> None:
        """Compute the window's misses (``run``), keeping each chunk's results as it is done."""
        kind = run.kind
        sink = self.progress(kind, len(run.misses)) if self.progress else ProgressSink()
        started = time.perf_counter()
        done, stopped = 0, False
        try:
            for chunk in run.compute(backend, progress=sink.update):
                self._store(chosen, chunk)
                done += len(chunk.positions)
        except Exception as exc:
            # The rest of the window errors with the same cause; none is retried in a loop.
            for i in run.misses:
                if chosen[i].key not in self._results:
                    self._failed[chosen[i].key] = exc
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

    def _run_workflows(self, chosen: list[Entry], backend: Any, cache: Any) -> None:
        """Run the window's conversations to their ends, a batched round at a time (:mod:`.workflow_runs`)."""
        from pytest_llmeval.models.workflow_runs import run_workflows

        rounds = 0

        def sink(total: int) -> ProgressSink:
            nonlocal rounds
            rounds += 1
            return self.progress(f"workflow round {rounds}", total) if self.progress else ProgressSink()

        started = time.perf_counter()
        try:
            done = run_workflows([(e.request, e.workflow) for e in chosen], backend, cache, progress=sink)
        finally:
            self.runs.append(("workflow", len(chosen), time.perf_counter() - started))
        for entry, result in zip(chosen, done):
            self._results[entry.key] = result.conversation
            if result.cached:
                self._cached.add(entry.key)

    def _store(self, chosen: list[Entry], chunk: Chunk) -> None:
        """Keep each result; an exception in place of a result (a backend's per-case
        :class:`~pytest_llmeval.models.OutputError`) fails only that item."""
        for i, out in zip(chunk.positions, chunk.outputs):
            key = chosen[i].key
            if isinstance(out, BaseException):
                self._failed[key] = out
            else:
                self._results[key] = out
                self._cached.discard(key)
        self._ready([chosen[i].key for i in chunk.positions if chosen[i].key in self._results])

    def _ready(self, keys: list[str]) -> None:
        if keys and self.on_ready is not None:
            try:
                self.on_ready(keys)
            except Exception:  # noqa: BLE001 - early work is an optimisation, never an outcome
                pass

    def _window_for(self, key: str) -> list[Entry]:
        start = self._position[key]
        first = self._entries[start]

        def eligible(e: Entry) -> bool:
            if e.kind != first.kind or e.group != first.group or e.key in self._results or e.key in self._failed:
                return False
            return not (self.same_suite and e.suite != first.suite)

        return window(self._entries, start, self.window, eligible)

    def retry(self, key: str) -> None:
        """Forget the failure of ``key`` and of the items that failed with it (a rerun of the item,
        e.g. by pytest-rerunfailures), so that the next :meth:`result` computes them again."""
        cause = self._failed.get(key)
        if cause is not None:
            self._failed = {k: exc for k, exc in self._failed.items() if exc is not cause}

    def discard(self, key: str) -> None:
        """Drop a result its item has used (keeps memory flat on long runs)."""
        self._results.pop(key, None)
