"""Code with tests: generated programs run in a sandbox, judged by their tests.

- :mod:`.scorer`: ``le.assert_code`` and ``le.extract_code``; the session's sandbox and pool;
- :mod:`.sandbox`: the job, its limits, the provider protocol, providers by name (built in:
  ``bwrap``, ``none``; others from the entry-point group ``pytest_llmeval.sandboxes``);
- :mod:`.bwrap`, :mod:`.local`: the two built-in providers; :mod:`.interpreter`: which
  interpreter they run and which files it needs;
- :mod:`.runner`: starting the harness, the time limit, the output, the verdict;
  :mod:`.harness`: the program that runs inside the sandbox;
- :mod:`.pool`: parallel runs and the prefetch pass; :mod:`.verdict`: the verdict record.

Nothing here imports pytest; the plugin configures it (see :func:`.scorer.configure`).
"""

from __future__ import annotations

from pytest_llmeval.scoring.code.pool import CodePool, Prefetched, can_prefetch, prefetch, prefetching
from pytest_llmeval.scoring.code.sandbox import (
    ENTRY_POINT_GROUP,
    PROTECTIONS,
    Job,
    Limits,
    Sandbox,
    SandboxError,
    SandboxUnavailable,
    available_sandboxes,
    get_sandbox,
)
from pytest_llmeval.scoring.code.scorer import (
    CodeFailure,
    assert_code,
    configure,
    current_pool,
    extract_code,
    recording_verdicts,
    shutdown,
)
from pytest_llmeval.scoring.code.verdict import STATUSES, Verdict, format_verdict

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROTECTIONS",
    "STATUSES",
    "CodeFailure",
    "CodePool",
    "Job",
    "Limits",
    "Prefetched",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "Verdict",
    "assert_code",
    "available_sandboxes",
    "can_prefetch",
    "configure",
    "current_pool",
    "extract_code",
    "format_verdict",
    "get_sandbox",
    "prefetch",
    "prefetching",
    "recording_verdicts",
    "shutdown",
]
