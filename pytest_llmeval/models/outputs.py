"""What the model hands a test: a completion, or the ranked choices of a multiple-choice case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


class Completion(str):
    """The generated text of one case: a ``str`` that also carries how it was made."""

    prompt: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    finish_reason: str
    truncated: int
    """How many prompt tokens were cut from the left to fit the model's context (0: none)."""

    def __new__(
        cls,
        text: str,
        *,
        prompt: str = "",
        tokens_in: int = 0,
        tokens_out: int = 0,
        latency_s: float = 0.0,
        finish_reason: str = "stop",
        truncated: int = 0,
    ) -> "Completion":
        obj = super().__new__(cls, text)
        obj.prompt = prompt
        obj.tokens_in = tokens_in
        obj.tokens_out = tokens_out
        obj.latency_s = latency_s
        obj.finish_reason = finish_reason
        obj.truncated = truncated
        return obj

    @property
    def text(self) -> str:
        return str.__str__(self)

    def __reduce__(self):  # keep the metadata through pickling (xdist, multiprocessing)
        return (
            _rebuild_completion,
            (self.text, self.prompt, self.tokens_in, self.tokens_out, self.latency_s, self.finish_reason, self.truncated),
        )


def _rebuild_completion(text, prompt, tokens_in, tokens_out, latency_s, finish_reason, truncated=0) -> Completion:
    return Completion(
        text,
        prompt=prompt,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_s=latency_s,
        finish_reason=finish_reason,
        truncated=truncated,
    )


@dataclass(frozen=True)
class Ranked:
    """Per-choice loglikelihoods of one multiple-choice case.

    ``pred`` is lm-evaluation-harness's ``acc`` prediction (the highest total loglikelihood,
    ties to the first choice); ``pred_norm`` is its ``acc_norm`` prediction (loglikelihood
    divided by ``norm_lengths``, the character length of each continuation as scored).
    """

    context: str
    choices: tuple[str, ...]
    loglikelihoods: tuple[float, ...]
    is_greedy: tuple[bool, ...]
    norm_lengths: tuple[int, ...] = field(default=())
    tokens_in: int = 0
    latency_s: float = 0.0

    @property
    def pred(self) -> int:
        return _argmax(self.loglikelihoods)

    @property
    def pred_norm(self) -> int:
        lengths = self.norm_lengths or tuple(len(c) for c in self.choices)
        return _argmax([ll / max(n, 1) for ll, n in zip(self.loglikelihoods, lengths)])

    def index_of(self, answer: int | str) -> int:
        """The index of ``answer``: an index, or a choice's text (surrounding spaces ignored)."""
        if isinstance(answer, bool):
            raise TypeError("answer must be a choice index or the choice text, not a bool")
        if isinstance(answer, int):
            if not 0 <= answer < len(self.choices):
                raise IndexError(f"answer index {answer} is out of range for {len(self.choices)} choices")
            return answer
        wanted = str(answer).strip()
        for i, choice in enumerate(self.choices):
            if choice.strip() == wanted:
                return i
        raise ValueError(f"answer {answer!r} is not one of the choices {list(self.choices)!r}")


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best
