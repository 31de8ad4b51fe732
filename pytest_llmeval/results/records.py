"""The per-case record: what one eval item reports, and what suites are aggregated from.

A record travels from the process that ran the item to the one that reports (the xdist
controller) inside ``report.user_properties`` as ``(RECORD_KEY, record.to_json())``; only
JSON-safe values go in it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping

RECORD_KEY = "llmeval"

Outcome = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class CaseRecord:
    """One eval item's result.

    ``suite`` is the test function's node id without parameters
    (``evals/test_math.py::test_addition``). ``fingerprint`` is the suite fingerprint
    (see :mod:`pytest_llmeval.fingerprint`): model, tokenizer, chat_template, dtype,
    generation, prompt, dataset, num_fewshot. ``limited`` is true when the run was cut
    by ``--llmeval-limit``.
    """

    suite: str
    case_id: str
    outcome: Outcome
    reason: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)
    markers: tuple[str, ...] = ()
    min_pass_rate: float | None = None
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    prompt: str | None = None
    completion: str | None = None
    choices: tuple[str, ...] | None = None
    loglikelihoods: tuple[float, ...] | None = None
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    limited: bool = False
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["scores"] = dict(self.scores)
        data["fingerprint"] = dict(self.fingerprint)
        data["markers"] = list(self.markers)
        if self.choices is not None:
            data["choices"] = list(self.choices)
        if self.loglikelihoods is not None:
            data["loglikelihoods"] = list(self.loglikelihoods)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CaseRecord":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["markers"] = tuple(values.get("markers") or ())
        if values.get("choices") is not None:
            values["choices"] = tuple(values["choices"])
        if values.get("loglikelihoods") is not None:
            values["loglikelihoods"] = tuple(values["loglikelihoods"])
        return cls(**values)


def records_from_properties(user_properties: list[tuple[str, Any]]) -> list[CaseRecord]:
    """The records carried by a test report's ``user_properties`` (usually zero or one)."""
    return [CaseRecord.from_json(v) for k, v in user_properties if k == RECORD_KEY and isinstance(v, Mapping)]
