"""Code with tests: generated programs run in a sandbox, judged by their tests.

- :mod:`.scorer`: ``le.assert_code`` and ``le.extract_code``; the session's sandbox and pool;
- :mod:`.sandbox`: the job, its limits, the provider protocol, providers by name (built in:
  ``bwrap``, ``none``; others from the entry-point group ``pytest_llmeval.sandboxes``);
- :mod:`.bwrap`, :mod:`.local`: the two built-in providers; :mod:`.interpreter`: which
  interpreter they run and which files it needs;
- :mod:`.runner`: starting the harness, the time limit, the output, the verdict;
  :mod:`.harness`: the program that runs inside the sandbox;
- :mod:`.pool`: parallel runs and the prefetch pass; :mod:`.verdict`: the verdict record.

Nothing here imports pytest. What the plugin calls:

1. when the session starts (controller and each xdist worker), with the parsed options:
   ``configure(sandbox=values["code-sandbox"] or "bwrap", workers=values["code-workers"])``;
   when it ends: ``shutdown()``;
2. when a window of completions is ready, for each of its items in run order whose test
   function passes ``can_prefetch(function)``: ``prefetch(lambda: function(case=..., completion=...))``
   with the objects the ``case`` and ``completion`` fixtures will return; the runs start in the
   pool at once, and the item's real call takes its verdict;
3. around each item's call: ``with recording_verdicts() as verdicts:``; each verdict's
   ``as_dict()`` goes into the case's record (samples.jsonl), ``format_verdict`` into the HTML
   report, and the verdicts' ``protections`` (with the sandbox's name) into results.json.
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
