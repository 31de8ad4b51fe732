"""Model-graded scoring: what a judge is told (:class:`Rubric`, :class:`Pairwise`), what it said
(:class:`Judgement`), and the assertion on it (:func:`assert_judged`).

A judge's verdict is *scored, not parsed* when the judge backend can score loglikelihoods: the
judge prompt ends where the label begins, each label's loglikelihood is computed as a
continuation, and a softmax over the labels gives their probabilities. So even a tiny judge
always yields one of the labels. A judge without loglikelihoods answers by constrained
generation instead (see :mod:`pytest_llmeval.scoring.judging`). Running the judge in batches is
:mod:`pytest_llmeval.scoring.judging`'s; this module is pure.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import KW_ONLY, asdict, dataclass
from typing import Any, Mapping, Sequence

from pytest_llmeval.scoring.failures import EvalFailure, hide_misses

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

RUBRIC_TEMPLATE = (
    "You are grading a reply against a criterion.\n\n"
    "Criterion: {rubric}\n\n"
    "Message:\n{prompt}\n\n"
    "Reply:\n{completion}\n"
    "{reference_block}\n"
    "Does the reply meet the criterion? Answer with one of: {labels}.\n"
    "Verdict:"
)
"""The default judge prompt of a :class:`Rubric`; it ends where the label begins."""

PAIRWISE_TEMPLATE = (
    "You are comparing two replies to the same message against a criterion.\n\n"
    "Criterion: {rubric}\n\n"
    "Message:\n{prompt}\n\n"
    "Reply A:\n{first}\n\n"
    "Reply B:\n{second}\n\n"
    "Which reply meets the criterion better? Answer with one of: {labels}.\n"
    "Better reply:"
)
"""The default judge prompt of a :class:`Pairwise` rubric; it ends where the label begins."""

PAIRWISE_LABELS = ("A", "B")
WIN, LOSE, TIE = "WIN", "LOSE", "TIE"
TEMPLATE_FIELDS = frozenset({"rubric", "prompt", "completion", "reference", "reference_block", "labels", "first", "second"})


class JudgeError(RuntimeError):
    """The judge could not give a verdict (an answer that is not a label, twice): an error, not a miss."""


def _template_problem(template: Any, needed: set[str]) -> str | None:
    """Why ``template`` cannot be a judge prompt (one line naming the fix), or None: fields are
    plain names (``{completion}``) from :data:`TEMPLATE_FIELDS`, and it ends where the label begins
    (with text after its last field, and no space or newline at the end: the label follows one space)."""
    if template is None:
        return None
    if not isinstance(template, str):
        return f"template= must be a format string, got {type(template).__name__}"
    import string

    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"template= is not a valid format string ({exc}); write literal braces as {{{{ and }}}}"
    names = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name or name.isdigit():
            return "template= has a field without a name ({} or {0}); name it, e.g. {completion}, or write literal braces as {{ and }}"
        if spec or conversion:
            return f"template= field {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} has a conversion or format; write it as {{{name}}}"
        names.add(name)
    unknown = names - TEMPLATE_FIELDS
    if unknown:
        return f"template= uses unknown fields {sorted(unknown)}; it may use {sorted(TEMPLATE_FIELDS)}"
    missing = needed - names
    if missing:
        return f"template= must show the judge {', '.join('{' + m + '}' for m in sorted(missing))}"
    if not parts or parts[-1][1] is not None or not parts[-1][0].strip():
        return "template= must end where the judge's label begins, with text after its last field (e.g. 'Verdict:'), not with a field"
    if template != template.rstrip():
        return "template= must end where the judge's label begins, without a space or newline at the end (the label follows one space)"
    return None


def _labels_problem(labels: tuple[str, ...]) -> str | None:
    """Labels that cannot be told apart fairly: the same but for letter case (a generated label is
    read without it), or one the start of another (``1``/``10``, ``PASS``/``PASSABLE``: the shorter
    label's loglikelihood would be part of the longer one's, so the two are not compared fairly)."""
    folded = [label.casefold() for label in labels]
    if len(set(folded)) != len(folded):
        return f"le.Rubric labels= must differ in more than letter case, got {labels!r}"
    for short in labels:
        for long in labels:
            if short != long and long.startswith(short):
                return (
                    f"le.Rubric labels= {short!r} is the start of {long!r}, so they cannot be scored fairly (the judge's "
                    f"likelihood of {short!r} includes that of {long!r}); rename them so that none begins another, e.g. "
                    "'01'...'10' for a scale of ten"
                )
    return None


def _calibration_problem(min_kappa: Any, labels_file: Any) -> str | None:
    if min_kappa is not None and (isinstance(min_kappa, bool) or not isinstance(min_kappa, (int, float)) or not -1 <= min_kappa <= 1):
        return f"min_kappa= must be a number between -1 and 1, got {min_kappa!r}"
    if min_kappa is not None and labels_file is None:
        return "min_kappa= needs labels_file=: the CSV of people's labels the judge is checked against"
    if labels_file is not None and not isinstance(labels_file, str):
        return f"labels_file= must be a path (a string), got {type(labels_file).__name__}"
    return None


def _digest(data: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Rubric:
    """A criterion a judge model grades each completion against, answering with one of ``labels``.

    ``pass_labels`` are the labels :func:`assert_judged` passes (default ``("PASS",)`` when
    ``"PASS"`` is a label, else none: give ``min_score`` then). ``reference`` names a case field
    shown to the judge (a reference answer, a source document). ``system`` is the judge's system
    message; ``template`` replaces the judge prompt (fields: ``{rubric}``, ``{prompt}``,
    ``{completion}``, ``{reference}``, ``{reference_block}``, ``{labels}``; it must end where the
    label begins). ``min_kappa`` with ``labels_file`` (a CSV of people's labels, relative to the
    test file) requires the judge to agree with people: checked when the suite runs.
    """

    text: str
    _: KW_ONLY
    labels: tuple[str, ...] = ("PASS", "FAIL")
    pass_labels: tuple[str, ...] | None = None
    reference: str | None = None
    system: str | None = None
    template: str | None = None
    min_kappa: float | None = None
    labels_file: str | None = None

    def __post_init__(self) -> None:
        for name in ("labels", "pass_labels"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        if self.pass_labels is None and isinstance(self.labels, tuple):
            object.__setattr__(self, "pass_labels", ("PASS",) if "PASS" in self.labels else ())

    kind = "rubric"

    @property
    def judge_labels(self) -> tuple[str, ...]:
        """The labels the judge model chooses between."""
        return self.labels

    @property
    def numeric(self) -> bool:
        return all(_number(label) is not None for label in self.labels)

    def judge_problem(self) -> str | None:
        """Why this rubric cannot work (one line naming the fix), or None."""
        if not isinstance(self.text, str) or not self.text.strip():
            return "le.Rubric needs the criterion as text, e.g. le.Rubric('The reply is polite.')"
        labels = self.labels
        if not isinstance(labels, tuple) or len(labels) < 2 or not all(isinstance(x, str) and x.strip() for x in labels):
            return f"le.Rubric labels= must be two or more non-empty strings, got {labels!r}"
        if len(set(labels)) != len(labels) or any(x != x.strip() for x in labels):
            return f"le.Rubric labels= must be distinct and have no surrounding spaces, got {labels!r}"
        problem = _labels_problem(labels)
        if problem is not None:
            return problem
        if not isinstance(self.pass_labels, tuple) or not set(self.pass_labels) <= set(labels):
            return f"le.Rubric pass_labels= must be some of the labels {list(labels)}, got {self.pass_labels!r}"
        if self.reference is not None and not isinstance(self.reference, str):
            return f"le.Rubric reference= must name a case field, got {self.reference!r}"
        if self.system is not None and not isinstance(self.system, str):
            return "le.Rubric system= must be a string"
        return _template_problem(self.template, {"completion"}) or _calibration_problem(self.min_kappa, self.labels_file)

    def fingerprint(self) -> str:
        """A hash of everything that decides what the judge is asked."""
        data = {k: v for k, v in asdict(self).items() if k not in ("min_kappa", "labels_file")}
        return _digest({"kind": self.kind, "template": self.template or RUBRIC_TEMPLATE, **data})

    def judge_prompt(self, *, prompt: str, completion: str, reference: str | None = None) -> str:
        """The judge prompt for one case; it ends where the label begins."""
        block = f"\nReference:\n{reference}\n" if reference is not None else ""
        return (self.template or RUBRIC_TEMPLATE).format(
            rubric=self.text, prompt=prompt, completion=completion, reference=reference or "",
            reference_block=block, labels=", ".join(self.labels), first=completion, second="",
        )  # fmt: skip

    def judgement(self, probabilities: Mapping[str, float], *, raw: Any, prompts: Sequence[str], method: str, reference: str | None) -> "Judgement":
        """The verdict that label probabilities give: the likeliest label (ties: the first)."""
        probs = {label: float(probabilities.get(label, 0.0)) for label in self.labels}
        label = max(self.labels, key=lambda x: (probs[x], -self.labels.index(x)))
        if self.numeric:
            score = math.fsum(p * (_number(x) or 0.0) for x, p in probs.items())
        else:
            score = math.fsum(probs[x] for x in self.pass_labels or ())
        return Judgement(label, probs, score, raw, prompts[0], tuple(prompts), tuple(self.pass_labels or ()), method, reference)


@dataclass(frozen=True)
class Pairwise:
    """A judge compares the completion with another answer and says which meets ``text`` better.

    The other answer is a case field (``against="field"``) or a second model's answer to the same
    prompt (``against_model=`` with the syntax of ``llmeval_model``). Each case is judged twice,
    the completion shown first and then second, and the two verdicts are averaged, so a judge's
    preference for a position cancels. The judgement's label is ``WIN``, ``LOSE`` or ``TIE`` (the
    two orders disagree exactly); ``.score`` is the probability that the completion is better;
    :func:`assert_judged` passes a ``WIN`` (or ``min_score``).
    """

    text: str
    _: KW_ONLY
    against: str | None = None
    against_model: str | None = None
    system: str | None = None
    template: str | None = None
    min_kappa: float | None = None
    labels_file: str | None = None

    kind = "pairwise"
    labels = (WIN, LOSE, TIE)
    pass_labels = (WIN,)
    judge_labels = PAIRWISE_LABELS
    numeric = False

    @property
    def reference(self) -> str | None:
        """The case field holding the other answer (None with ``against_model``)."""
        return self.against

    def judge_problem(self) -> str | None:
        if not isinstance(self.text, str) or not self.text.strip():
            return "le.Pairwise needs the criterion as text, e.g. le.Pairwise('The reply is more helpful.', against='answer')"
        if (self.against is None) == (self.against_model is None):
            return "le.Pairwise needs exactly one of against='<case field>' or against_model='<model>'"
        for name in ("against", "against_model", "system"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value):
                return f"le.Pairwise {name}= must be a non-empty string, got {value!r}"
        return _template_problem(self.template, {"first", "second"}) or _calibration_problem(self.min_kappa, self.labels_file)

    def fingerprint(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("min_kappa", "labels_file")}
        return _digest({"kind": self.kind, "template": self.template or PAIRWISE_TEMPLATE, **data})

    def judge_prompts(self, *, prompt: str, completion: str, other: str) -> tuple[str, str]:
        """The two judge prompts: the completion as reply A, then as reply B."""
        template = self.template or PAIRWISE_TEMPLATE

        def render(first: str, second: str) -> str:
            return template.format(
                rubric=self.text, prompt=prompt, first=first, second=second, labels=", ".join(PAIRWISE_LABELS),
                completion=completion, reference=other, reference_block="",
            )  # fmt: skip

        return render(completion, other), render(other, completion)

    def judgement(self, first: Mapping[str, float], second: Mapping[str, float], *, raw: Any, prompts: Sequence[str], method: str, reference: str | None) -> "Judgement":
        """The verdict from both orders: P(win) averages P(A) with the completion first and P(B) with it second."""
        win = (float(first.get("A", 0.0)) + float(second.get("B", 0.0))) / 2
        label = TIE if abs(win - 0.5) <= 1e-9 else WIN if win > 0.5 else LOSE
        return Judgement(label, {WIN: win, LOSE: 1.0 - win}, win, raw, prompts[0], tuple(prompts), self.pass_labels, method, reference)


Judge = Rubric | Pairwise


@dataclass(frozen=True)
class Judgement:
    """What the judge said about one completion (the ``judgement`` fixture).

    ``label``: the verdict; ``probabilities``: each label's probability (the softmax of the
    labels' loglikelihoods; 1.0 for the label a generating judge answered); ``score``: for
    numeric labels (``"1"``..``"5"``) the expected score under those probabilities, otherwise the
    probability of a passing label (a pairwise rubric: of the completion being better);
    ``raw``: what the judge returned (each label's loglikelihood, or the text it generated);
    ``judge_prompt``: the prompt the judge saw (``judge_prompts``: every one, both orders of a
    pairwise rubric); ``reference``: the case field or other answer shown to the judge.
    """

    label: str
    probabilities: Mapping[str, float]
    score: float
    raw: Any
    judge_prompt: str
    judge_prompts: tuple[str, ...] = ()
    pass_labels: tuple[str, ...] = ()
    method: str = "rank"
    reference: str | None = None

    @property
    def probability(self) -> float:
        """The probability of the chosen label."""
        return float(self.probabilities.get(self.label, 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probabilities": dict(self.probabilities),
            "score": self.score,
            "raw": self.raw,
            "judge_prompt": self.judge_prompt,
            "method": self.method,
            "reference": self.reference,
        }


def softmax(values: Sequence[float]) -> list[float]:
    """Probabilities from loglikelihoods (stable: the largest is subtracted first)."""
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    total = math.fsum(weights)
    return [w / total for w in weights]


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label ``text`` is, strictly: the whole answer, ignoring surrounding spaces, quotes,
    asterisks and one final period, and letter case; anything else is None."""
    answer = text.strip().strip("\"'`*").strip()
    if answer.endswith("."):
        answer = answer[:-1].rstrip()
    found = [label for label in labels if label.casefold() == answer.casefold()]
    return found[0] if len(found) == 1 else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def assert_judged(judgement: Judgement, min_score: float | None = None) -> float:
    """Pass when the judge's label is a passing label (or, with ``min_score``, when the judgement's
    ``score`` is at least ``min_score``); otherwise raise :class:`EvalFailure` with the judge's
    label and its probability. Returns the score."""
    if not isinstance(judgement, Judgement):
        raise TypeError(f"assert_judged takes the 'judgement' fixture, got {type(judgement).__name__}")
    if min_score is not None:
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)):
            raise TypeError(f"min_score must be a number, got {min_score!r}")
        if judgement.score >= min_score:
            return judgement.score
        reason = f"judge scored {judgement.score:.3g} < {min_score:g} (label {judgement.label}, p={judgement.probability:.2f})"
        raise EvalFailure(reason, score=judgement.score, expected=f">= {min_score:g}", actual=judgement.label, scorer="assert_judged")
    if not judgement.pass_labels:
        raise ValueError("this rubric has no passing label: pass min_score= to assert_judged, or pass_labels= to le.Rubric")
    if judgement.label in judgement.pass_labels:
        return judgement.score
    wanted = " or ".join(judgement.pass_labels)
    reason = f"judge said {judgement.label} (p={judgement.probability:.2f}), not {wanted}"
    raise EvalFailure(reason, score=judgement.score, expected=wanted, actual=judgement.label, scorer="assert_judged")


def judge_of(value: Any) -> Judge | None:
    """``value`` when it is a judge (a :class:`Rubric` or :class:`Pairwise`), else None."""
    return value if isinstance(value, (Rubric, Pairwise)) else None


def field_problem(judge: Judge, fields: Mapping[str, Any]) -> str | None:
    """Why a case cannot be judged (it lacks the reference field), or None."""
    name = judge.against if isinstance(judge, Pairwise) else judge.reference
    if name is not None and name not in fields:
        return f"has no field {name!r}, which the judge is shown (it has: {', '.join(fields)})"
    return None


__all__ = ["Judgement", "JudgeError", "Pairwise", "Rubric", "assert_judged", "parse_label", "softmax", "field_problem"]
