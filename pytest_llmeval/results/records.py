"""The per-case record: what one eval item reports, and what suites are aggregated from.

A record travels from the process that ran the item to the one that reports (the xdist
controller) inside ``report.user_properties`` as ``(RECORD_KEY, record.to_json())``; only
JSON-safe values go in it.

Two small types live beside it because every result file is built from them: :class:`Outcome`
(what became of one case), here, and :class:`~pytest_llmeval.results.fingerprint.Fingerprint` (what
produced a suite's results), importable from here too.
"""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, Mapping

from pytest_llmeval.jsonfiles import SCALAR_TYPES
from pytest_llmeval.memo import IdentityMemo
from pytest_llmeval.results.fingerprint import COMPARED, MUST_MATCH, Fingerprint  # COMPARED and MUST_MATCH: importable from here too

RECORD_KEY = "llmeval"


class Outcome(str, Enum):
    """What became of one eval case.

    The values are the strings records, ``results.json``, ``samples.jsonl`` and the history
    have always stored (a miss is stored as ``"fail"``). ``SKIPPED`` and ``XFAILED`` cases
    are counted and shown, but they are not part of ``n`` nor of the pass rate, and are
    never written into the baseline.
    """

    PASS = "pass"
    MISS = "fail"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"

    def __str__(self) -> str:
        return self.value

    @property
    def counted(self) -> bool:
        """Whether the case counts in ``n`` and the pass rate (pass, miss and error do)."""
        return self in _COUNTED

    @property
    def rank(self) -> int:
        """How bad it is: when one case reports twice, the worse outcome wins."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: Any) -> "Outcome":
        """An outcome from its stored form; raises ``ValueError`` naming the value."""
        if isinstance(value, Outcome):
            return value
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(o.value for o in cls)
            raise ValueError(f"unknown case outcome {value!r} (known: {known})") from None

    @classmethod
    def of_phase(cls, when: str, result: str, *, assertion: bool = False, xfail: bool = False) -> "Outcome | None":
        """The outcome one phase of a test gives its case.

        ``when`` is ``"setup"``, ``"call"`` or ``"teardown"``; ``result`` is ``"passed"``,
        ``"failed"`` or ``"skipped"``; ``assertion``: the failure was an ``AssertionError``;
        ``xfail``: an xfail mark expected the failure. A failed phase is an error, except a
        call failing an assertion (a miss); a skipped setup or call is skipped (xfailed when
        expected); a passed call is a pass; anything else says nothing (``None``). A case
        that reports in several phases counts once, as its worst outcome.
        """
        if result == "failed":
            return cls.MISS if when == "call" and assertion else cls.ERROR
        if result == "skipped" and when in ("setup", "call"):
            return cls.XFAILED if xfail else cls.SKIPPED
        if result == "passed" and when == "call":
            return cls.PASS
        return None

    @classmethod
    def from_bit(cls, value: int) -> "Outcome":
        """A baseline file's 1 (pass) or 0 (not a pass)."""
        return cls.PASS if value == 1 else cls.MISS

    def to_bit(self) -> int:
        """The baseline file's form: 1 for a pass, 0 for a miss or an error."""
        if not self.counted:
            raise ValueError(f"a {self.value} case is not written into the baseline")
        return int(self is Outcome.PASS)


_COUNTED = frozenset({Outcome.PASS, Outcome.MISS, Outcome.ERROR})
_RANK = {Outcome.PASS: 0, Outcome.SKIPPED: 1, Outcome.XFAILED: 1, Outcome.MISS: 2, Outcome.ERROR: 3}


@dataclass(frozen=True)
class CaseRecord:
    """One eval item's result.

    ``suite`` is the test function's node id without parameters
    (``evals/test_math.py::test_addition``). ``outcome`` accepts an :class:`Outcome` or its
    string; ``fingerprint`` a :class:`Fingerprint` or its JSON mapping. ``limited`` is true
    when the run was cut by ``--llmeval-limit``. ``suite_size`` is how many cases the suite
    has (every parametrization, before ``-k``/``-m``/``--deselect``, after
    ``--llmeval-limit``); ``None`` when unknown. It lets the gate see a suite that did not
    finish every case (interrupted, ``-x``, deselected cases). ``truncated`` is how many prompt
    tokens were cut to fit the model's context.
    """

    suite: str
    case_id: str
    outcome: Outcome
    reason: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)
    markers: tuple[str, ...] = ()
    min_pass_rate: float | None = None
    fingerprint: Fingerprint = field(default_factory=Fingerprint)
    prompt: str | None = None
    completion: str | None = None
    choices: tuple[str, ...] | None = None
    loglikelihoods: tuple[float, ...] | None = None
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    limited: bool = False
    duration_s: float = 0.0
    suite_size: int | None = None
    truncated: int = 0
    """Prompt tokens cut from the left to fit the model's context (0: none)."""
    unused_chat_template: bool = False
    """The case generated from a model that has a chat template without applying it, and
    ``le.cases`` did not say ``chat=``: the report warns once per suite."""
    expected: Any = None
    """What a scorer expected, when the case missed through an ``le.assert_*`` (``EvalFailure.expected``;
    a JSON scalar, or its text)."""
    cached: bool = False
    """The output came from the completion cache (the model did not compute it in this run)."""
    repeat: int = 0
    """Which sample of the case this is (0 .. repeats - 1)."""
    repeats: int = 1
    """How many samples of the case the suite draws."""
    require: str | None = None
    """With repeats: what a case needs to pass (``"all"``, ``"majority"``; ``None``: the suite's
    rate is the mean of its cases' rates)."""
    identical_repeats: bool = False
    """Repeated samples from greedy decoding on a local model: they are all alike (warned once)."""
    judgement: Mapping[str, Any] | None = None
    """What the judge said (a judged suite): label, probabilities, score, raw answer, judge
    prompt, the reference shown; and the suite's ``min_kappa`` and ``labels_file`` if it has them."""
    finish_reason: str | None = None
    """Why the completion ended (``stop``, ``length``: at ``max_new_tokens``); ``None`` for a ranking."""
    reasoning: str | None = None
    """A reasoning model's thinking (the ``completion`` is its answer); ``None`` without one."""
    reasoning_tokens: int | None = None
    """The thinking's length in tokens, when known."""
    thinking_ended: bool = True
    """False when the thinking never ended: there was no answer, and the case missed."""
    perturbation: str | None = None
    """The perturbation of a variant (``qa-007~typos``: ``"typos"``): its outcome counts under that
    perturbation, never in the suite's own rate."""
    rotation: int | None = None
    """The rotation of a multiple-choice case's options (``permute="cyclic"``): the case passes
    only when every rotation does."""
    original_id: str | None = None
    """The id of the case as written, for a variant or a rotation."""
    answer_index: int | None = None
    """A ranked case's answer among its choices, for calibration (None: not known)."""
    min_worst_case: float | None = None
    """The suite's gate on the worst case over its perturbations."""
    search: Mapping[str, Any] | None = None
    """The search item's findings (``search=``): every case searched, the smallest breaking
    change found, both answers. The item is no case: it counts in no rate."""
    conversation: Mapping[str, Any] | None = None
    """A workflow case's whole conversation (``Conversation.to_record()``): every message as sent,
    each step's tokens and latency, each tool call with its arguments, result or error."""
    code: tuple[Mapping[str, Any], ...] | None = None
    """The verdict of each program ``le.assert_code`` ran for the case (status, reason, exit status,
    duration, output tail, sandbox, protections, limits), in call order; None when it ran none."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome.parse(self.outcome))
        if not isinstance(self.fingerprint, Fingerprint):
            object.__setattr__(self, "fingerprint", Fingerprint.from_json(self.fingerprint))

    def to_json(self) -> dict[str, Any]:
        plain, own = SCALAR_TYPES, _WRITTEN_BELOW  # (a field written below keeps its place among the keys)
        data = {
            name: None if name in own else v if type(v) in plain else _copied(v)
            for name in _field_names(type(self))
            for v in (getattr(self, name),)
        }
        data["outcome"] = self.outcome.value
        data["scores"] = dict(self.scores)
        data["fingerprint"] = self.fingerprint.to_json()
        data["markers"] = list(self.markers)
        if self.choices is not None:
            data["choices"] = list(self.choices)
        if self.loglikelihoods is not None:
            data["loglikelihoods"] = list(self.loglikelihoods)
        if self.code is not None:
            data["code"] = [dict(v) for v in self.code]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CaseRecord":
        """A record from its JSON form; an outcome this version does not know becomes an error."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["markers"] = tuple(values.get("markers") or ())
        if values.get("choices") is not None:
            values["choices"] = tuple(values["choices"])
        if values.get("loglikelihoods") is not None:
            values["loglikelihoods"] = tuple(values["loglikelihoods"])
        code = values.get("code")
        values["code"] = tuple(dict(v) for v in code if isinstance(v, Mapping)) or None if isinstance(code, (list, tuple)) else None
        try:
            values["outcome"] = Outcome.parse(values.get("outcome"))
        except ValueError as exc:
            values["outcome"] = Outcome.ERROR
            values["reason"] = f"{exc}; counted as an error"
        return cls(**values)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A record class's field names but ``fingerprint`` (written in its own form), in order (read once:
    every record is written through them)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls) if f.name != "fingerprint")
    return names


_ATOMS = tuple(SCALAR_TYPES)
_WRITTEN_BELOW = frozenset({"outcome", "scores", "markers"})
"""Fields :meth:`CaseRecord.to_json` writes in their own form (so not copied first)."""


def _copied(value: Any) -> Any:
    """``value`` as :func:`dataclasses.asdict` gives a field's value: a deep copy, a dataclass as a dict."""
    if isinstance(value, _ATOMS):
        return value
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else deepcopy(value)


_DECODED = IdentityMemo(16)
"""The last records decoded, by the identity of their JSON mapping (held, so the id stays its own):
several hooks read the same report's record, and a decode is not free."""


def remember_decoded(data: Mapping[str, Any], record: CaseRecord) -> None:
    """Note that ``data``, the JSON form just made of ``record`` (``record.to_json()``), decodes to
    ``record``: the hooks that read it back from the same report take ``record`` as it is."""
    _DECODED.put(data, record)


def records_from_properties(user_properties: list[tuple[str, Any]]) -> list[CaseRecord]:
    """The records carried by a test report's ``user_properties`` (usually zero or one)."""
    return [_decoded(v) for k, v in user_properties if k == RECORD_KEY and isinstance(v, Mapping)]


def _decoded(data: Mapping[str, Any]) -> CaseRecord:
    held = _DECODED.get(data)
    return held if held is not None else _DECODED.put(data, CaseRecord.from_json(data))
