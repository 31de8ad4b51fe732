"""Warnings that never become errors: ``-W error`` and ``filterwarnings = error`` (common in real
projects' configs) turn a warning into an exception. One that the plugin emits between tests (at
collection, at the end of the session) would be a traceback; one that a library emits inside the
batched run (torch, transformers, a backend) would error every case of the batch, in whatever
test happened to start it. So these run with the user's ``error`` filters read as ``default``:
the warning is still recorded, and pytest shows it in its warnings summary; every other filter
(``ignore`` included) stays as the user set it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

__all__ = ["errors_as_default", "warn"]


@contextmanager
def errors_as_default() -> Iterator[None]:
    """Within: the warning filters as they are, each ``error`` action read as ``default``."""
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        if any(f[0] == "error" for f in filters):
            warnings.resetwarnings()
            for action, message, category, module, lineno in reversed(filters):
                warnings.filterwarnings(
                    "default" if action == "error" else action,
                    _pattern(message),
                    category,
                    _pattern(module),
                    lineno,
                )
        yield


def _pattern(value: object) -> str:
    """A filter's message or module as ``filterwarnings`` takes it (a compiled pattern, a plain
    string in Python's built-in filters, or None for any)."""
    return str(getattr(value, "pattern", value) or "")


def warn(warning: Warning | str, stacklevel: int = 2) -> None:
    """Emit one of the plugin's own warnings: shown and recorded, never raised."""
    with errors_as_default():
        warnings.warn(warning, stacklevel=stacklevel + 1)
