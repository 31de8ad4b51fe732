"""The progress of a batched run, as the terminal (or a CI log) shows it.

On a terminal one line is redrawn in place on stderr, then replaced by a summary line once the
run ends; pytest's status letters resume on a fresh line. In a log (not a terminal: CI) the
run prints its start and end lines only, never a line per batch. A run computed in several
backend calls (chunks) still shows as one run; one stopped part-way (a timeout) says so.

The lines come while pytest is in the middle of a file's line (``evals/test_x.py ..``): after
them, pytest's status letters go on on a line that starts with the file's name again, never on a
line of their own; on a terminal, a file's line that holds nothing but its name yet is replaced
by the plugin's lines rather than shown twice.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

import pytest

from pytest_llmeval.escaping import terminal

Say = Callable[[str], None]


class TerminalProgress:
    """Progress of one batched run of ``total`` requests."""

    def __init__(
        self,
        say: Say,
        what: str,
        total: int,
        batch: int | None,
        stream: TextIO | None = None,
        detail: str | None = None,
        on_close: Callable[[str, float], None] | None = None,
    ) -> None:
        self.say = say
        self.on_close = on_close
        """Told what ran (``64 completions``) and how long it took, when the run ends."""
        self.what = what
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.stream = stream if stream is not None else sys.__stderr__
        self.tty = self.stream is not None and self.stream.isatty()
        size = f" {detail}" if detail else f" in batches of up to {batch}" if batch else ""
        self.say(f"llmeval: {counted(total, what)}{size}")

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
        if self.on_close is not None:
            self.on_close(counted(self.done, self.what), seconds)


def counted(n: int, what: str) -> str:
    """``1 completion``, ``2 completions`` (``what`` is the plural; its first word is counted:
    ``1 completion (workflow round 3)``)."""
    head, space, rest = what.partition(" ")
    return f"{n} {head[:-1] if n == 1 and head.endswith('s') else head}{space}{rest}"


def write_line(config: pytest.Config, line: str) -> None:
    """One line on the terminal, also while pytest captures output (its text escaped: :func:`~pytest_llmeval.escaping.terminal`)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with ctx:
        _start_clean_line(reporter)
        reporter.write_line(terminal(line))


def _start_clean_line(reporter: Any) -> None:
    """Make the plugin's line start a line of its own: after status letters that pytest wrote
    without a file name (``-q``), end their line; on a terminal, erase pytest's current line when
    it holds only a file's name (written again before the file's next letter, see
    :func:`resume_file_line`)."""
    writer = getattr(reporter, "_tw", None)
    width = getattr(writer, "width_of_current_line", 0)
    if writer is None or not width:
        return
    path = getattr(reporter, "currentfspath", None)
    if path is None:
        writer.line()
    elif isinstance(path, Path) and getattr(reporter, "isatty", False):
        if width == len(os.path.relpath(path, reporter.startpath)) + 1:  # pytest wrote "NAME "
            writer.write("\r\x1b[K")
            reporter.currentfspath = None


def resume_file_line(config: pytest.Config, nodeid: str) -> None:
    """Before pytest writes an item's status letter: when a plugin line ended the file's line,
    start it again with the file's name (so no letter sits on a line of its own)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or getattr(reporter, "currentfspath", 0) is not None or reporter.verbosity > 0:
        return
    writer = getattr(reporter, "_tw", None)
    if not getattr(reporter, "showfspath", True) or writer is None:
        return
    if getattr(writer, "width_of_current_line", 1):
        writer.line()
    path = reporter.config.rootpath / nodeid.split("::")[0]
    reporter.currentfspath = path  # as pytest's own write_fspath_result, without its blank line
    writer.write(os.path.relpath(path, reporter.startpath) + " ")


def batch_progress(say: Say, backend: Any, kind: str, total: int, **options: Any) -> TerminalProgress:
    """The progress of a batched run of ``total`` requests of ``kind`` on ``backend`` (None: not
    loaded yet); ``options``: those of :class:`TerminalProgress` (``stream``, ``on_close``)."""
    size = getattr(backend, "batch_size", None)
    batch = size() if callable(size) else None
    in_flight = getattr(backend, "in_flight", None)  # an HTTP backend: requests at once, not batches
    detail = f"with up to {in_flight} requests in flight" if isinstance(in_flight, int) else None
    what = {"generate": "completions", "rank": "rankings"}.get(kind, f"completions ({kind})")
    return TerminalProgress(say, what, total, batch, detail=detail, **options)
