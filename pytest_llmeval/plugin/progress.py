"""The progress of a batched run, as the terminal (or a CI log) shows it.

On a terminal one line is redrawn in place on stderr, then replaced by a summary line once the
run ends; pytest's status letters resume on a fresh line. In a log (not a terminal: CI) the
run prints its start and end lines only, never a line per batch. A run computed in several
backend calls (chunks) still shows as one run; one stopped part-way (a timeout) says so.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, TextIO

import pytest

Say = Callable[[str], None]


class TerminalProgress:
    """Progress of one batched run of ``total`` requests."""

    def __init__(
        self, say: Say, what: str, total: int, batch: int | None, stream: TextIO | None = None, detail: str | None = None
    ) -> None:
        self.say = say
        self.what = what
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.stream = stream if stream is not None else sys.__stderr__
        self.tty = self.stream is not None and self.stream.isatty()
        size = f" {detail}" if detail else f" in batches of up to {batch}" if batch else ""
        self.say(f"llmeval: {total} {what}{size}")

    def update(self, n: int) -> None:
        self.done += n
        if self.tty and self.stream is not None:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r  {self.done}/{self.total} {self.what} {elapsed:.1f}s\x1b[K")
            self.stream.flush()

    def close(self, seconds: float, stopped: bool = False) -> None:
        if self.tty and self.stream is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        rest = "; stopped before the end, the next item that needs an output computes the rest" if stopped else ""
        self.say(f"llmeval: {self.done}/{self.total} {self.what} in {seconds:.1f}s{rest}")


def write_line(config: pytest.Config, line: str) -> None:
    """One line on the terminal, also while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with ctx:
        reporter.write_line(line)


def batch_progress(say: Say, backend: Any, kind: str, total: int) -> TerminalProgress:
    """The progress of a batched run of ``total`` requests of ``kind`` on ``backend`` (None: not loaded yet)."""
    size = getattr(backend, "batch_size", None)
    batch = size() if callable(size) else None
    in_flight = getattr(backend, "in_flight", None)  # an HTTP backend: requests at once, not batches
    detail = f"with up to {in_flight} requests in flight" if isinstance(in_flight, int) else None
    return TerminalProgress(say, "completions" if kind == "generate" else "rankings", total, batch, detail=detail)
