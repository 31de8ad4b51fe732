"""The OpenAI-compatible request and response shapes: what is sent for a case, what is read back.

Pure functions over dicts (no network, no httpx), so that the shapes vLLM, TGI, llama.cpp's
server and OpenAI document can be tested on their own.

- A ``chat`` case goes to ``/chat/completions`` as messages (system, few-shot turns, the prompt);
  the server applies the model's chat template. Any other case goes to ``/completions`` with
  the prompt as it is.
- Generation settings are pinned and sent explicitly: ``temperature`` and ``top_p`` (0 and 1
  when greedy), ``max_tokens``, ``stop`` (when set) and ``seed``.
- A ``ranked`` case is scored the way lm-evaluation-harness's ``local-completions`` model does:
  one ``/completions`` request per choice with the prompt ``context + delimiter + choice``,
  ``echo=True``, ``logprobs=1``, ``max_tokens=1``, ``temperature=0``; the answer carries each
  prompt token's logprob, and the continuation's tokens are summed. lm-eval finds where the
  continuation starts by tokenizing locally; without the tokenizer this uses the
  ``text_offset`` of each token: a token that ends past the context's end belongs to the
  continuation (a token straddling the boundary counts as continuation).
- A reasoning model's answer is taken apart (:func:`~.reasoning.split_served`): the message's
  ``reasoning_content`` or ``reasoning`` field, else ``<think>`` delimiters in the text. A suite that
  sets ``thinking`` or ``max_reasoning_tokens`` (a reasoning suite) sends no ``stop``: servers apply
  stops inside the thinking, so they are applied here, to the answer. ``thinking`` goes as
  ``chat_template_kwargs: {"enable_thinking": ...}`` (vLLM, SGLang, llama.cpp's server) and
  ``max_reasoning_tokens`` as vLLM's ``thinking_token_budget``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.reasoning import split_served, stop_index
from pytest_llmeval.settings import GenerationSettings, LLMSettings

CHAT_PATH = "/chat/completions"
COMPLETIONS_PATH = "/completions"
PROBE_PROMPT = "The capital of France is Paris."


class ShapeError(ValueError):
    """An answer that does not have the documented shape (the message says what is missing)."""


@dataclass(frozen=True)
class Generated:
    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int
    served_model: str | None
    system_fingerprint: str | None
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    thinking_ended: bool = True

    def reasoning_fields(self) -> dict[str, Any]:
        """The reasoning fields of a :class:`~pytest_llmeval.models.outputs.Completion`."""
        return {"reasoning": self.reasoning, "reasoning_tokens": self.reasoning_tokens, "thinking_ended": self.thinking_ended}


def seed_of(request: Request, settings: LLMSettings) -> int:
    """The request's own seed (repeated sampling) when it has one, else the session seed."""
    seed = getattr(request, "seed", None)
    return settings.seed if seed is None else int(seed)


def sampling(gen: GenerationSettings) -> dict[str, Any]:
    """Generation settings as the API names them, every one explicit (greedy: temperature 0)."""
    body: dict[str, Any] = {
        "max_tokens": gen.max_new_tokens,
        "temperature": (1.0 if gen.temperature is None else gen.temperature) if gen.do_sample else 0.0,
        "top_p": (1.0 if gen.top_p is None else gen.top_p) if gen.do_sample else 1.0,
        "n": 1,
    }
    if gen.stop:
        body["stop"] = list(gen.stop)
    return body


def messages_of(request: Request) -> list[dict[str, str]]:
    """The chat messages of a case: the system message, few-shot turns, then the prompt."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    for question, answer in request.fewshot:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": request.text})
    return messages


def local_stops(request: Request, settings: LLMSettings) -> tuple[str, ...]:
    """The stop strings applied here rather than sent: a reasoning suite's (one that sets
    ``thinking`` or ``max_reasoning_tokens``), since a server would apply them inside the thinking."""
    gen = settings.generation.for_request(request)
    return tuple(gen.stop) if gen.thinking is not None or gen.max_reasoning_tokens is not None else ()


def generate_payload(model: str, request: Request, settings: LLMSettings) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of a generation request."""
    gen = settings.generation.for_request(request)
    body = {"model": model, **sampling(gen), "seed": seed_of(request, settings)}
    if local_stops(request, settings):
        del body["stop"]
    if gen.max_reasoning_tokens is not None:
        body["thinking_token_budget"] = gen.max_reasoning_tokens
    if request.chat and gen.thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": gen.thinking}
    if request.chat:
        return CHAT_PATH, {**body, "messages": messages_of(request)}
    return COMPLETIONS_PATH, {**body, "prompt": request.text}


def _usage(body: Mapping[str, Any]) -> tuple[int, int]:
    usage = body.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def parse_generation(path: str, body: Any, stops: tuple[str, ...] = ()) -> Generated:
    """The answer (after any reasoning), finish reason, token counts and served model of a
    generation answer; ``stops`` (not sent to the server) cut the answer."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    if not choices or not isinstance(choices[0], Mapping):
        raise ShapeError("the answer has no 'choices'")
    first = choices[0]
    if path == CHAT_PATH:
        message = first.get("message")
        if not isinstance(message, Mapping):
            raise ShapeError("the chat answer's choice has no 'message'")
        content = message.get("content")
        message = {**message, "content": content if content is None or isinstance(content, str) else str(content)}
    else:
        if "text" not in first:
            raise ShapeError("the completions answer's choice has no 'text'")
        message = {"content": str(first.get("text") or "")}
    finish_reason = str(first.get("finish_reason") or "stop")
    usage = body.get("usage") if isinstance(body.get("usage"), Mapping) else None
    split = split_served(message, finish_reason=finish_reason, usage=usage)
    text = split.answer or ""
    at = stop_index(text, stops, None) if stops else None
    if at is not None:
        text, finish_reason = text[:at], "stop"
    tokens_in, tokens_out = _usage(body)
    return Generated(
        text=str(text),
        finish_reason=finish_reason,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        served_model=body.get("model") if isinstance(body.get("model"), str) else None,
        system_fingerprint=body.get("system_fingerprint") if isinstance(body.get("system_fingerprint"), str) else None,
        reasoning=split.reasoning,
        reasoning_tokens=split.reasoning_tokens,
        thinking_ended=split.thinking_ended,
    )


@dataclass(frozen=True)
class Scored:
    """One choice's prompt as sent, where its continuation starts (characters), its score."""

    prompt: str
    boundary: int


def rank_prompts(request: Request) -> list[Scored]:
    """One prompt per choice, as lm-eval builds them (partial scoring: ``context + choice``
    then ``delimiter + continuation``)."""
    delimiter = request.target_delimiter
    if request.continuation is None:
        return [Scored(request.text + delimiter + c, len(request.text)) for c in request.choices]
    return [Scored(request.text + c + delimiter + request.continuation, len(request.text + c)) for c in request.choices]


def norm_lengths(request: Request) -> tuple[int, ...]:
    if request.continuation is None:
        return tuple(len(c) for c in request.choices)
    return tuple(len(request.text + c) for c in request.choices)


def rank_payload(model: str, prompt: str, seed: int) -> dict[str, Any]:
    """lm-eval ``local-completions``' loglikelihood request: echo the prompt with its logprobs."""
    return {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "logprobs": 1, "echo": True, "seed": seed}


def _logprobs(body: Any) -> Mapping[str, Any]:
    choices = body.get("choices") if isinstance(body, Mapping) else None
    if not choices or not isinstance(choices[0], Mapping):
        raise ShapeError("the answer has no 'choices'")
    ordered = sorted(choices, key=lambda c: c.get("index", 0))
    lp = ordered[0].get("logprobs")
    if not isinstance(lp, Mapping):
        raise ShapeError("the answer has no 'logprobs'")
    for key in ("tokens", "token_logprobs", "text_offset"):
        if not isinstance(lp.get(key), list):
            raise ShapeError(f"the answer's logprobs have no '{key}'")
    return lp


def parse_loglikelihood(body: Any, scored: Scored) -> tuple[float, bool, int]:
    """(sum of the continuation tokens' logprobs, whether each was the top token, prompt tokens).

    Tokens at or past the end of the prompt are what the server generated (``max_tokens=1``)
    and are dropped, as lm-eval drops the last one.
    """
    lp = _logprobs(body)
    offsets, values = lp["text_offset"], lp["token_logprobs"]
    top = lp.get("top_logprobs") or [None] * len(values)
    n_prompt = sum(1 for o in offsets if isinstance(o, int) and o < len(scored.prompt))
    ends = [*offsets[1:n_prompt], len(scored.prompt)]
    picked = [i for i in range(n_prompt) if ends[i] > scored.boundary]
    if not picked or any(values[i] is None for i in picked) or picked[0] == 0:
        raise ShapeError("the answer has no logprobs for the scored tokens of the prompt (does the server echo prompt logprobs?)")
    total = math.fsum(float(values[i]) for i in picked)
    greedy = all(isinstance(top[i], Mapping) and top[i] and values[i] == max(top[i].values()) for i in picked)
    tokens_in = int((body.get("usage") or {}).get("prompt_tokens") or n_prompt)
    return total, greedy, tokens_in


def has_prompt_logprobs(body: Any, prompt: str = PROBE_PROMPT) -> bool:
    """Whether a probe's answer carries a logprob for the prompt's tokens after the first."""
    try:
        parse_loglikelihood(body, Scored(prompt, boundary=max(1, len(prompt) // 2)))
    except (ShapeError, TypeError, ValueError, IndexError, KeyError, AttributeError):
        return False
    return True
