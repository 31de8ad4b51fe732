"""A quick end for a process that ran a large session.

When the interpreter shuts down it clears its modules and collects cyclic garbage several
times; each collection walks every object still alive. After a session of 10,000 cached cases
(items, reports, records), those walks took about 10 s of a 35 s process, longer than the
session's own reports. So, once per process, an exit handler collects once and then freezes the
survivors (:func:`gc.freeze`): cyclic garbage made until then is collected (and its finalizers
run) as before, and the shutdown's collections skip what was alive at exit. Objects are still
freed as their references go; only cycles still alive at exit are left to the operating system,
as every process's memory is. The handler runs at interpreter exit only, so a session run
in-process (``pytest.main`` inside a longer program) changes nothing for that program.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def _collect_then_freeze() -> None:
    gc.collect()
    gc.freeze()


def register() -> None:
    """Register the exit handler (once per process)."""
    global _registered
    if not _registered:
        atexit.register(_collect_then_freeze)
        _registered = True
