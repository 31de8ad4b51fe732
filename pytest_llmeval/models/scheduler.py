"""Batch scheduling: compute the model outputs of many selected items at once, hand out one.

pytest runs one item at a time but a model is fastest on a batch. After collection the plugin
tells the scheduler every selected item's request, in run order; when an item first needs its
output, the scheduler computes that item's and those of the items after it (a window) in
one batched backend call, and keeps the results until their items ask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion, Ranked

Result = Completion | Ranked
ProgressFactory = Callable[[str, int], "ProgressSink"]


class ProgressSink:
    """Receives progress of one batched run; the default shows nothing."""

    def update(self, n: int) -> None:  # pragma: no cover - trivial
        pass

    def close(self, seconds: float) -> None:  # pragma: no cover - trivial
        pass


@dataclass(frozen=True)
class Entry:
    key: str
    suite: str
    request: Request


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
        self.runs: list[tuple[str, int, float]] = []
        """(kind, number of requests, seconds) of every batched run, for reports and tests."""

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

    def result(self, key: str, backend: Any) -> Result:
        """The output for ``key``, computing its window first if needed."""
        if key in self._results:
            return self._results[key]
        if key in self._failed:
            raise self._failed[key]
        if key not in self._position:
            raise KeyError(f"{key} was not planned; the scheduler knows only the selected eval items")
        window = self._window_for(key)
        kind = self._entries[self._position[key]].request.kind
        requests = [e.request for e in window]
        sink = self.progress(kind, len(requests)) if self.progress else ProgressSink()
        started = time.perf_counter()
        try:
            if kind == "generate":
                outputs: Sequence[Result] = backend.run_generate(requests, progress=sink.update)
            else:
                outputs = backend.run_rank(requests, progress=sink.update)
        except Exception as exc:
            # Every item of the window errors with the same cause; none is retried in a loop.
            for e in window:
                self._failed[e.key] = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            sink.close(seconds)
        if len(outputs) != len(window):
            raise RuntimeError(f"the backend returned {len(outputs)} results for {len(window)} requests")
        self.runs.append((kind, len(window), seconds))
        for e, out in zip(window, outputs):
            self._results[e.key] = out
        return self._results[key]

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

    def discard(self, key: str) -> None:
        """Drop a result its item has used (keeps memory flat on long runs)."""
        self._results.pop(key, None)

