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

Every answer is checked against the JSON Schema of its kind (:data:`CHAT_ANSWER`,
:data:`COMPLETION_ANSWER`, :data:`RANK_ANSWER`) before anything is read from it, so an answer of the
wrong shape is one :class:`ShapeError` line that says where (``choices[0].text is an object, not a
string``), never a traceback. Token counts must be whole numbers from 0 to :data:`MAX_COUNT`, and
log-probabilities finite and at most :data:`MAX_LOGPROB`: a server's NaN, infinity, negative count
or text that is not a string is an error of the case, never scored or charged.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.reasoning import split_served, stop_index
from pytest_llmeval.settings import GenerationSettings, LLMSettings

CHAT_PATH = "/chat/completions"
COMPLETIONS_PATH = "/completions"
PROBE_PROMPT = "The capital of France is Paris."


MAX_COUNT = 2**53 - 1
"""The largest token count taken from a server (the largest whole number a JSON reader keeps exactly)."""
MAX_LOGPROB = 1e-3
"""The largest log-probability taken from a server: 0, with room for rounding."""


class ShapeError(ValueError):
    """An answer that does not have the documented shape (the message says what is missing)."""


_COUNT = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_USAGE = {"type": ["object", "null"], "properties": {"prompt_tokens": _COUNT, "completion_tokens": _COUNT}}
_LOGPROB = {"type": "number", "maximum": MAX_LOGPROB}


def _answer(choice: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["choices"],
        "properties": {"choices": {"type": "array", "minItems": 1, "items": choice}, "usage": _USAGE},
    }


CHAT_ANSWER = _answer({
    "type": "object", "required": ["message"],
    "properties": {
        "message": {"type": "object", "properties": {"content": _TEXT_OR_NULL, "tool_calls": {"type": ["array", "null"]}}},
        "finish_reason": _TEXT_OR_NULL,
    },
})  # fmt: skip
"""A ``/chat/completions`` answer: the reply's ``content`` a string (null: an empty reply), its
``tool_calls`` (a workflow round) a list when there are any."""
COMPLETION_ANSWER = _answer({
    "type": "object", "required": ["text"], "properties": {"text": {"type": "string"}, "finish_reason": _TEXT_OR_NULL},
})  # fmt: skip
"""A ``/completions`` answer: the text a string."""
RANK_ANSWER = _answer({
    "type": "object", "required": ["logprobs"],
    "properties": {
        "index": {"type": "integer"},
        "logprobs": {
            "type": "object", "required": ["tokens", "token_logprobs", "text_offset"],
            "properties": {
                "tokens": {"type": "array"},
                "token_logprobs": {"type": "array", "items": {"anyOf": [_LOGPROB, {"type": "null"}]}},
                "text_offset": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "top_logprobs": {"type": ["array", "null"], "items": {"type": ["object", "null"], "additionalProperties": _LOGPROB}},
            },
        },
    },
})  # fmt: skip
"""A ``/completions`` answer with echoed prompt log-probabilities (lm-eval's ``local-completions``)."""
USAGE_ANSWER = {"type": ["object", "array", "string", "number", "boolean", "null"], "properties": {"usage": _USAGE}}
"""Any answer, as far as its token counts go."""


@functools.lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(globals()[name])


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


_ARTICLED = {"string": "a string", "integer": "a whole number", "object": "an object", "array": "an array", "number": "a number"}


def _problem(error: Any) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    subject = f"the answer's {where}" if where else "the answer"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{subject} is {_kind(error.instance)}, not {' or '.join(_ARTICLED.get(w, w) for w in wanted)}"
    if error.validator == "required":
        return f"{subject} has no {error.message.split(' is a required')[0]}"
    if error.validator == "minItems":
        return f"{subject} is empty"
    if error.validator in ("minimum", "maximum"):
        bound = "at least" if error.validator == "minimum" else "at most"
        return f"{subject} is {str(error.instance)[:40]}; it must be {bound} {error.validator_value}"
    return f"{subject}: {error.message[:160]}"


def check_shape(body: Any, schema: str) -> None:
    """Raise :class:`ShapeError` (one line: where and what) unless ``body`` has the shape of the
    schema named ``schema`` (``"CHAT_ANSWER"``...)."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema).iter_errors(body))
    if error is not None:
        raise ShapeError(_problem(error))


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
    tool_calls: Any = None
    """A chat answer's ``message.tool_calls``, as the server sent them."""

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
    if request.messages is not None:  # a workflow round: the conversation so far and the tools, natively
        from pytest_llmeval.models.tool_calls import wire_messages

        return CHAT_PATH, {**body, "messages": wire_messages(request.messages), **({"tools": list(request.tools)} if request.tools else {})}
    if request.chat:
        return CHAT_PATH, {**body, "messages": messages_of(request)}
    return COMPLETIONS_PATH, {**body, "prompt": request.text}


def usage_of(body: Any) -> tuple[int, int]:
    """(prompt tokens, completion tokens) an answer reports (0 where it reports none); a count that
    is not a whole number from 0 to :data:`MAX_COUNT` is a :class:`ShapeError`."""
    check_shape(body, "USAGE_ANSWER")
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def parse_generation(path: str, body: Any, stops: tuple[str, ...] = ()) -> Generated:
    """The answer (after any reasoning), finish reason, token counts and served model of a
    generation answer, checked against its shape first; ``stops`` (not sent to the server) cut the answer.
    A chat answer's ``message.tool_calls`` (a workflow round) come back as the server sent them."""
    chat = path == CHAT_PATH
    check_shape(body, "CHAT_ANSWER" if chat else "COMPLETION_ANSWER")
    first = body["choices"][0]
    message = first["message"] if chat else {"content": first["text"] or ""}
    tool_calls = (message.get("tool_calls") or None) if chat else None
    finish_reason = first.get("finish_reason") or "stop"
    usage = body.get("usage") if isinstance(body.get("usage"), Mapping) else None
    split = split_served(message, finish_reason=finish_reason, usage=usage)
    text = split.answer or ""
    at = stop_index(text, stops, None) if stops else None
    if at is not None:
        text, finish_reason = text[:at], "stop"
    tokens_in, tokens_out = usage_of(body)
    model, fingerprint = body.get("model"), body.get("system_fingerprint")
    return Generated(
        text=text,
        finish_reason=finish_reason,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        served_model=model if isinstance(model, str) else None,
        system_fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        reasoning=split.reasoning,
        reasoning_tokens=split.reasoning_tokens,
        thinking_ended=split.thinking_ended,
        tool_calls=tool_calls if isinstance(tool_calls, list) else None,
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


def parse_loglikelihood(body: Any, scored: Scored) -> tuple[float, bool, int]:
    """(sum of the continuation tokens' logprobs, whether each was the top token, prompt tokens).

    Tokens at or past the end of the prompt are what the server generated (``max_tokens=1``)
    and are dropped, as lm-eval drops the last one.
    """
    check_shape(body, "RANK_ANSWER")
    lp = min(body["choices"], key=lambda c: c.get("index", 0))["logprobs"]
    offsets, values = lp["text_offset"], lp["token_logprobs"]
    top = lp.get("top_logprobs") or [None] * len(values)
    n_prompt = sum(1 for o in offsets if o < len(scored.prompt))
    if n_prompt > min(len(values), len(top)):
        raise ShapeError(f"the answer's logprobs give {len(offsets)} offsets but {len(values)} logprobs")
    ends = [*offsets[1:n_prompt], len(scored.prompt)]
    picked = [i for i in range(n_prompt) if ends[i] > scored.boundary]
    if not picked or any(values[i] is None for i in picked) or picked[0] == 0:
        raise ShapeError("the answer has no logprobs for the scored tokens of the prompt (does the server echo prompt logprobs?)")
    total = math.fsum(float(values[i]) for i in picked)
    if not math.isfinite(total):
        raise ShapeError(f"the answer's logprobs of the scored tokens sum to {total}, not a finite number")
    greedy = all(isinstance(top[i], Mapping) and top[i] and values[i] == max(top[i].values()) for i in picked)
    tokens_in = usage_of(body)[0] or n_prompt
    return total, greedy, tokens_in


def has_prompt_logprobs(body: Any, prompt: str = PROBE_PROMPT) -> bool:
    """Whether a probe's answer carries a logprob for the prompt's tokens after the first."""
    try:
        parse_loglikelihood(body, Scored(prompt, boundary=max(1, len(prompt) // 2)))
    except ShapeError:
        return False
    return True
