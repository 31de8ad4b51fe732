"""What one run of a program and its tests came to: the verdict record, as data and as text.

A :class:`Verdict` is what a sandbox provider returns and what ``le.assert_code`` judges by.
It is plain data (a frozen dataclass; :meth:`Verdict.as_dict` gives the JSON-ready dict a
samples.jsonl line or an HTML report shows), and nothing here runs anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

__all__ = ["STATUSES", "Verdict", "format_verdict"]

STATUSES: Mapping[str, str] = {
    "passed": "the program ran and every test passed",
    "failed": "a test's assertion failed",
    "raised": "the program or the tests raised another exception (a syntax error included)",
    "exited": "the program exited (or was stopped) before the tests finished",
    "timeout": "the run went past its time limit and was killed",
    "memory": "the program ran out of its memory limit",
    "killed": "the program was killed by a signal or a limit other than time and memory",
}
"""Every status a verdict can have, and what it means. Only ``passed`` is a pass."""


@dataclass(frozen=True)
class Verdict:
    """One run of a program and its tests in a sandbox.

    ``reason`` is one line a person can read ("assertion failed: tests line 5: assert f(2) == 4",
    "timed out after 10 s"); empty for a pass. ``exit_status`` is the process's exit status
    (a negative number -N when signal N killed it; None when the run was killed at its time
    limit). ``output_tail`` is the end of what the program wrote to stdout and stderr (merged),
    ``output_bytes`` how much it wrote in all. ``protections`` names what was in force
    (see :data:`pytest_llmeval.scoring.code.sandbox.PROTECTIONS`).
    """

    status: str
    reason: str = ""
    exit_status: int | None = None
    duration_s: float = 0.0
    output_tail: str = ""
    output_bytes: int = 0
    sandbox: str = ""
    protections: tuple[str, ...] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {', '.join(STATUSES)}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def truncated(self) -> bool:
        """The program wrote more than :attr:`output_tail` holds."""
        return self.output_bytes > len(self.output_tail.encode("utf-8", "replace"))

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, e.g. for a samples.jsonl line."""
        data = asdict(self)
        data["protections"] = list(self.protections)
        data["limits"] = dict(self.limits)
        data["duration_s"] = round(self.duration_s, 3)
        data["passed"] = self.passed
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Verdict":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["protections"] = tuple(known.get("protections", ()))
        known["limits"] = dict(known.get("limits", {}))
        return cls(**known)


def format_verdict(verdict: Verdict | Mapping[str, Any], *, tail_lines: int = 5) -> str:
    """A few lines for a report: the status, exit status and duration, the reason, the output's end."""
    v = verdict if isinstance(verdict, Verdict) else Verdict.from_dict(verdict)
    exit_text = "killed at the time limit" if v.exit_status is None else f"exit status {v.exit_status}"
    head = f"{v.status} ({exit_text}, {v.duration_s:.2f} s, sandbox {v.sandbox or '?'})"
    lines = [head]
    if v.reason:
        lines.append(v.reason)
    tail = v.output_tail.rstrip("\n").splitlines()[-tail_lines:] if tail_lines > 0 else []
    if tail:
        more = f" of {v.output_bytes} bytes" if v.truncated else ""
        lines.append(f"output (last {len(tail)} lines{more}):")
        lines.extend("  " + line for line in tail)
    return "\n".join(lines)
