"""Running a judge over many completions at once: one batched backend call per chunk, never one per case.

Every judge prompt of a window becomes one :class:`~pytest_llmeval.datasets.suite.Request`
sent through the backend protocol (``run_rank``, or ``run_generate`` for a judge that cannot
score loglikelihoods), by the one cached, batched path (:mod:`pytest_llmeval.models.batched`):
with a completion cache, judgements are cached like completions, under the judge's own identity
and settings, and a judge that is a :class:`~pytest_llmeval.models.batched.Deferred` backend is
loaded only for a judge prompt that is not cached.

- A judge with the ``"rank"`` capability: a ``rank`` request per judge prompt whose choices are
  the labels; the softmax of the labels' loglikelihoods gives their probabilities.
- A judge without it: constrained generation. The judge answers with the label alone (a few
  tokens, up to the first newline); the answer is parsed strictly (:func:`parse_label`); one that
  is not a label is asked once more, with the answer quoted back; a second miss is a
  :class:`JudgeError` showing both answers, an error of the case and never a miss. A judge that
  claims loglikelihoods but turns out to have none (a server without prompt log-probabilities:
  :class:`~pytest_llmeval.models.protocol.RankUnsupported`) answers this way too
  (:attr:`JudgeRunner.fell_back`).

Each item is judged on its own: a judge prompt that cannot be made (a rubric's template) or a
request that failed is a :class:`JudgeError` of that item only, never of the others in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.batched import CachedRun
from pytest_llmeval.models.protocol import RANK, Progress, RankUnsupported, capabilities
from pytest_llmeval.scoring.judges import Judge, Judgement, JudgeError, Pairwise, parse_label, softmax

JUDGE_MAX_NEW_TOKENS = 8
"""Tokens a generating judge may use for its label (the judge's own ``max_new_tokens`` setting)."""


@dataclass(frozen=True)
class JudgeItem:
    """One completion to judge: the rubric, the prompt it answered, the completion, and the
    reference shown to the judge (a :class:`Pairwise` rubric: the other answer)."""

    judge: Judge
    prompt: str
    completion: str
    reference: str | None = None


@dataclass(frozen=True)
class _Ask:
    item: int
    text: str
    labels: tuple[str, ...]
    system: str | None


class JudgeRunner:
    """Judges batches of :class:`JudgeItem` with one judge backend.

    ``chat``: send judge prompts through the judge's chat template (the label is then the start
    of the assistant's reply). ``max_new_tokens``: the label budget of a generating judge.
    ``cache``: a ``CompletionCache`` for the judge's answers (None: none).
    """

    def __init__(self, backend: Any, *, chat: bool = False, max_new_tokens: int = JUDGE_MAX_NEW_TOKENS, cache: Any = None) -> None:
        self.backend = backend
        self.chat = chat
        self.max_new_tokens = max_new_tokens
        self.cache = cache
        self.calls: list[tuple[str, int]] = []
        """(kind, number of requests) of every backend call, for reports and tests."""
        self.cached_prompts: set[str] = set()
        """The judge prompts whose answers came from the cache."""
        self.fell_back = False
        """Whether the judge turned out to have no loglikelihoods, so labels were generated."""

    @property
    def method(self) -> str:
        """``"rank"`` (labels scored) or ``"generate"`` (labels generated and parsed)."""
        return "rank" if RANK in capabilities(self.backend) and not self.fell_back else "generate"

    def judge(self, items: Sequence[JudgeItem], progress: Progress | None = None) -> list[Judgement | JudgeError]:
        """The judgement of each item (a :class:`JudgeError` where the judge gave no label)."""
        prepared = [_asks(i, item) for i, item in enumerate(items)]
        asks = [ask for found in prepared if not isinstance(found, JudgeError) for ask in found]
        answers: list[Any] = []
        if asks and self.method == "rank":
            try:
                answers = self._rank(asks, progress)
            except RankUnsupported:  # the judge has no loglikelihoods after all: it generates its label
                self.fell_back = True
        if asks and self.method == "generate":
            answers = self._generate(asks, progress)
        out: list[Judgement | JudgeError] = []
        position = 0
        for item, found in zip(items, prepared):
            if isinstance(found, JudgeError):
                out.append(found)
                continue
            mine = answers[position : position + len(found)]
            position += len(found)
            out.append(self._judgement(item, found, mine))
        return out

    # ------------------------------------------------------------ backend calls

    def _batches(self, requests: list[Request], kind: str, progress: Progress | None) -> list[Any]:
        """The answers to ``requests``, by the one cached, batched path."""
        run = CachedRun(requests, self.cache)
        self.cached_prompts.update(requests[i].text for i in run.hits)
        out = run.complete(self.backend, progress=progress)
        self.calls += [(kind, n) for n in run.calls]
        return out

    def _rank(self, asks: list[_Ask], progress: Progress | None) -> list[dict[str, float] | JudgeError]:
        requests = [
            Request(kind="rank", text=a.text, chat=self.chat, system=a.system, choices=a.labels, target_delimiter="" if self.chat else " ")
            for a in asks
        ]
        return [
            _failed(ranked) if isinstance(ranked, BaseException) else dict(zip(a.labels, ranked.loglikelihoods))
            for a, ranked in zip(asks, self._batches(requests, "rank", progress))
        ]

    def _generate(self, asks: list[_Ask], progress: Progress | None) -> list[str | JudgeError]:
        answers: list[str | JudgeError] = [
            _failed(c) if isinstance(c, BaseException) else str(c)
            for c in self._batches([self._label_request(a.text, a) for a in asks], "generate", progress)
        ]
        missed = [i for i, text in enumerate(answers) if isinstance(text, str) and parse_label(text, asks[i].labels) is None]
        if missed:
            retry = [self._label_request(_retry_text(asks[i], str(answers[i])), asks[i]) for i in missed]
            for i, completion in zip(missed, self._batches(retry, "generate", None)):
                first = answers[i]
                if isinstance(completion, BaseException):
                    answers[i] = _failed(completion)
                elif parse_label(str(completion), asks[i].labels) is not None:
                    answers[i] = str(completion)
                else:
                    answers[i] = JudgeError(
                        f"the judge answered {first!r}, then {str(completion)!r} when asked again: neither is one of the "
                        f"labels {', '.join(asks[i].labels)}; use a judge that can score loglikelihoods, or a stronger judge model"
                    )
        return answers

    def _label_request(self, text: str, ask: _Ask) -> Request:
        return Request(kind="generate", text=text, chat=self.chat, system=ask.system, max_new_tokens=self.max_new_tokens, stop=("\n",))

    # ------------------------------------------------------------ verdicts

    def _judgement(self, item: JudgeItem, asks: Sequence[_Ask], answers: Sequence[Any]) -> Judgement | JudgeError:
        failed = next((a for a in answers if isinstance(a, JudgeError)), None)
        if failed is not None:
            return failed
        prompts = [a.text for a in asks]
        if self.method == "rank":
            probabilities = [dict(zip(a.labels, softmax(list(answer.values())))) for a, answer in zip(asks, answers)]
            raw: Any = answers[0] if len(answers) == 1 else list(answers)
        else:
            probabilities = [{label: float(label == parse_label(text, a.labels)) for label in a.labels} for a, text in zip(asks, answers)]
            raw = answers[0] if len(answers) == 1 else list(answers)
        if isinstance(item.judge, Pairwise):
            return item.judge.judgement(probabilities[0], probabilities[1], raw=raw, prompts=prompts, method=self.method, reference=item.reference)
        return item.judge.judgement(probabilities[0], raw=raw, prompts=prompts, method=self.method, reference=item.reference)


def _asks(index: int, item: JudgeItem) -> list[_Ask] | JudgeError:
    """The judge prompts of one item, or why they cannot be made (that item's error only)."""
    judge = item.judge
    try:
        if isinstance(judge, Pairwise):
            texts: Sequence[str] = judge.judge_prompts(prompt=item.prompt, completion=item.completion, other=item.reference or "")
        else:
            texts = [judge.judge_prompt(prompt=item.prompt, completion=item.completion, reference=item.reference)]
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        return JudgeError(f"the judge prompt could not be made from the rubric's template= ({type(exc).__name__}: {exc}); fix the template")
    return [_Ask(index, text, tuple(judge.judge_labels), judge.system) for text in texts]


def _failed(error: BaseException) -> JudgeError:
    """A judge request that failed, as the error of the case it judges."""
    return JudgeError(f"the judge gave no usable answer: {error}")


def _retry_text(ask: _Ask, answer: str) -> str:
    labels = ", ".join(ask.labels)
    return f"{ask.text} {answer.strip()}\n\nThat is not one of: {labels}. Answer with exactly one of {labels} and nothing else.\nVerdict:"
