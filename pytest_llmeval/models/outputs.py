"""What the model hands a test: a completion, or the ranked choices of a multiple-choice case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


class Completion(str):
    """The generated text of one case: a ``str`` that also carries how it was made.

    For a reasoning model the text is the **answer**, what follows the thinking; ``reasoning`` is
    the thinking (``None`` when there was none), ``reasoning_tokens`` its length in tokens (``None``
    when unknown) and ``thinking_ended`` whether the thinking ended: when it did not (cut at
    ``max_new_tokens``), there is no answer and the text is empty.
    """

    prompt: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    finish_reason: str
    truncated: int
    """How many prompt tokens were cut from the left to fit the model's context (0: none)."""
    reasoning: str | None
    reasoning_tokens: int | None
    thinking_ended: bool

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
        reasoning: str | None = None,
        reasoning_tokens: int | None = None,
        thinking_ended: bool = True,
    ) -> "Completion":
        obj = super().__new__(cls, text)
        obj.prompt = prompt
        obj.tokens_in = tokens_in
        obj.tokens_out = tokens_out
        obj.latency_s = latency_s
        obj.finish_reason = finish_reason
        obj.truncated = truncated
        obj.reasoning = reasoning
        obj.reasoning_tokens = reasoning_tokens
        obj.thinking_ended = thinking_ended
        return obj

    @property
    def text(self) -> str:
        return str.__str__(self)

    @property
    def missing_answer(self) -> str | None:
        """Why there is no answer, when the thinking never ended: ``reasoning cut at N tokens
        (max_new_tokens)``, or the model ending inside its thinking; ``None`` when it ended."""
        if self.thinking_ended:
            return None
        n = self.reasoning_tokens if self.reasoning_tokens is not None else self.tokens_out
        if self.finish_reason == "length":
            return f"reasoning cut at {n} tokens (max_new_tokens)"
        return f"no answer: the model stopped inside its reasoning after {n} tokens (finish reason {self.finish_reason})"

    def __reduce__(self):  # keep the metadata through pickling (xdist, multiprocessing)
        return (_rebuild_completion, (self.text,), dict(vars(self)))


def _rebuild_completion(text, prompt="", tokens_in=0, tokens_out=0, latency_s=0.0, finish_reason="stop", truncated=0) -> Completion:
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
