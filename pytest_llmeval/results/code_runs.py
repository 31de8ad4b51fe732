"""What results.json says per suite about the programs ``le.assert_code`` ran: which sandbox ran
them, the protections in force, and how the runs ended.

The records carry each run's verdict as data (``CaseRecord.code``); nothing here runs anything.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from pytest_llmeval.results.records import CaseRecord

__all__ = ["code_summary"]


def code_summary(records: Sequence[CaseRecord]) -> dict[str, dict[str, Any]]:
    """Per suite that ran programs: ``sandboxes`` (the providers' names), ``protections`` (every
    protection some run had in force), ``protections_in_all`` (those every run had), ``runs``
    and ``statuses`` (how many runs ended each way)."""
    runs: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        for verdict in record.code or ():
            runs.setdefault(record.suite, []).append(verdict)
    out: dict[str, dict[str, Any]] = {}
    for suite, verdicts in sorted(runs.items()):
        sets = [frozenset(str(p) for p in v.get("protections") or ()) for v in verdicts]
        out[suite] = {
            "sandboxes": sorted({str(v.get("sandbox") or "") for v in verdicts} - {""}),
            "protections": sorted(frozenset().union(*sets)),
            "protections_in_all": sorted(frozenset.intersection(*sets)) if sets else [],
            "runs": len(verdicts),
            "statuses": dict(sorted(Counter(str(v.get("status")) for v in verdicts).items())),
        }
    return out
