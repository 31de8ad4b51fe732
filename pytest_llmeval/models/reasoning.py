"""Reasoning models: where the thinking is, what the answer is, and stop strings that never fire
inside unfinished thinking. Pure text functions (no torch), for the decode loop, the HTTP backend
and the scorers alike.

- :func:`reasoning_delimiters` finds the delimiters a chat template and tokenizer use
  (``<think>`` / ``</think>`` for Qwen3 and the DeepSeek-R1 distills) and whether the template has
  a thinking switch (``enable_thinking``).
- :func:`split_reasoning` splits a completion into reasoning and answer. Thinking opens at the
  very start of the completion (after white space), or before it when the rendered prompt already
  opened it (:func:`prompt_opens_thinking`: DeepSeek-R1 style templates end the generation prompt
  with ``<think>``). A block that never closes has no answer, never a parse of the thinking.
- :func:`split_served` does the same for a served model's message: its ``reasoning_content`` (or
  ``reasoning``) field when the server sends one, else the delimiters in the text.
- :func:`stop_index` applies stop strings to the answer part only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

__all__ = [
    "DEFAULT_DELIMITERS",
    "KNOWN_DELIMITERS",
    "Delimiters",
    "Split",
    "cut_reason",
    "prompt_opens_thinking",
    "reasoning_delimiters",
    "split_reasoning",
    "split_served",
    "stop_index",
    "template_kwargs",
]

KNOWN_DELIMITERS: tuple[tuple[str, str], ...] = (("<think>", "</think>"),)
"""Pairs looked for in a chat template and a vocabulary, in order."""


@dataclass(frozen=True)
class Delimiters:
    """A reasoning block's start and end, their token ids where the tokenizer has them as single
    tokens, and whether the chat template has a thinking switch (``enable_thinking``)."""

    start: str
    end: str
    start_id: int | None = None
    end_id: int | None = None
    switch: bool = False


DEFAULT_DELIMITERS = Delimiters("<think>", "</think>")


def _template_text(tokenizer: Any, chat_template: str | Mapping[str, str] | None) -> str:
    template = chat_template if chat_template is not None else getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):  # named templates: the default one, else all of them
        template = template.get("default") or "\n".join(str(t) for t in template.values())
    return template if isinstance(template, str) else ""


def _single_token_id(tokenizer: Any, text: str) -> int | None:
    vocab = tokenizer.get_vocab() if tokenizer is not None and hasattr(tokenizer, "get_vocab") else {}
    value = vocab.get(text)
    return int(value) if value is not None else None


def reasoning_delimiters(tokenizer: Any = None, chat_template: str | Mapping[str, str] | None = None) -> Delimiters | None:
    """The reasoning delimiters a model uses, or ``None`` for a model without thinking.

    A pair counts when its end delimiter appears in the chat template (templates split earlier
    answers at it), or when both are single tokens of the vocabulary. ``switch`` is whether the
    template reads ``enable_thinking``.
    """
    text = _template_text(tokenizer, chat_template)
    for start, end in KNOWN_DELIMITERS:
        start_id, end_id = _single_token_id(tokenizer, start), _single_token_id(tokenizer, end)
        if end in text or (start_id is not None and end_id is not None):
            return Delimiters(start, end, start_id, end_id, switch="enable_thinking" in text)
    return None


def template_kwargs(delimiters: Delimiters | None, thinking: bool | None) -> dict[str, Any]:
    """What to pass to ``apply_chat_template`` for ``le.cases(..., thinking=)``: the switch when the
    template has one and the suite set it, else nothing (the template's own default)."""
    if delimiters is None or not delimiters.switch or thinking is None:
        return {}
    return {"enable_thinking": bool(thinking)}


def prompt_opens_thinking(prompt: str, delimiters: Delimiters) -> bool:
    """Whether the rendered prompt ends inside an open reasoning block (the completion then starts
    in the thinking, without a start delimiter of its own)."""
    start = prompt.rfind(delimiters.start)
    return start != -1 and prompt.find(delimiters.end, start + len(delimiters.start)) == -1


@dataclass(frozen=True)
class Split:
    """A completion taken apart. ``answer`` is ``None`` when the thinking never ended;
    ``reasoning`` is ``None`` when there was no reasoning block; ``answer_start`` is where the answer
    begins in the text (``None`` without an answer); ``reasoning_tokens`` is ``None`` when unknown."""

    reasoning: str | None
    answer: str | None
    thinking_ended: bool
    reasoning_tokens: int | None
    answer_start: int | None


def _reasoning_span(text: str, delimiters: Delimiters, started_inside: bool) -> tuple[int, int | None, int | None] | None:
    """``(reasoning start, reasoning end, answer start)`` in ``text``; the last two ``None`` while
    thinking has not ended; ``None`` without a reasoning block."""
    if started_inside:
        begin = 0
    else:
        stripped = len(text) - len(text.lstrip())
        if not text.startswith(delimiters.start, stripped):
            return None
        begin = stripped + len(delimiters.start)
    end = text.find(delimiters.end, begin)
    if end == -1:
        return begin, None, None
    after = end + len(delimiters.end)
    return begin, end, after + (len(text[after:]) - len(text[after:].lstrip()))


def _count(token_ids: Sequence[int] | None, delimiters: Delimiters, count_tokens: Callable[[str], int] | None,
           reasoning: str) -> int | None:
    if token_ids is not None and delimiters.end_id is not None:
        ids = list(token_ids)
        if ids and ids[0] == delimiters.start_id:
            ids = ids[1:]
        return ids.index(delimiters.end_id) if delimiters.end_id in ids else len(ids)
    if count_tokens is not None:
        return int(count_tokens(reasoning))
    return None


def split_reasoning(
    text: str,
    delimiters: Delimiters | None = DEFAULT_DELIMITERS,
    *,
    started_inside: bool = False,
    token_ids: Sequence[int] | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Split:
    """Split a completion into its reasoning and its answer.

    ``started_inside``: the prompt opened the block (:func:`prompt_opens_thinking`). The reasoning's
    length in tokens comes from the completion's ``token_ids`` (up to the end delimiter's id), else
    from ``count_tokens(reasoning)``, else is unknown.
    """
    if delimiters is None:
        return Split(None, text, True, None, 0)
    span = _reasoning_span(text, delimiters, started_inside)
    if span is None:
        return Split(None, text, True, 0 if token_ids is not None or count_tokens else None, 0)
    begin, end, answer_start = span
    if end is None:
        reasoning = text[begin:].strip()
        return Split(reasoning, None, False, _count(token_ids, delimiters, count_tokens, reasoning), None)
    reasoning = text[begin:end].strip()
    assert answer_start is not None
    return Split(reasoning, text[answer_start:], True, _count(token_ids, delimiters, count_tokens, reasoning), answer_start)


def split_served(
    message: Mapping[str, Any],
    *,
    finish_reason: str = "stop",
    usage: Mapping[str, Any] | None = None,
    delimiters: Delimiters | None = DEFAULT_DELIMITERS,
    started_inside: bool = False,
) -> Split:
    """Split an OpenAI-compatible message: the server's ``reasoning_content`` (vLLM, and others)
    or ``reasoning`` field when present, else the delimiters in ``content``. A message that has
    reasoning but no content and ended at the length cap was cut while thinking. The reasoning's
    token count comes from ``usage.completion_tokens_details.reasoning_tokens`` when sent."""
    details = (usage or {}).get("completion_tokens_details") or {}
    sent_tokens = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    tokens = int(sent_tokens) if isinstance(sent_tokens, int) and not isinstance(sent_tokens, bool) else None
    content = message.get("content")
    content = content if isinstance(content, str) else None
    for field in ("reasoning_content", "reasoning"):
        reasoning = message.get(field)
        if isinstance(reasoning, str) and reasoning:
            if not content and finish_reason == "length":
                return Split(reasoning.strip(), None, False, tokens, None)
            return Split(reasoning.strip(), content or "", True, tokens, 0)
    split = split_reasoning(content or "", delimiters, started_inside=started_inside)
    return split if tokens is None else Split(split.reasoning, split.answer, split.thinking_ended, tokens, split.answer_start)


def stop_index(
    text: str,
    stops: Sequence[str],
    delimiters: Delimiters | None = DEFAULT_DELIMITERS,
    *,
    started_inside: bool = False,
) -> int | None:
    """Where the completion should end for ``stops`` (the index of the earliest stop string), or
    ``None``. Stops apply to the answer only: never inside a reasoning block, finished or not, nor to
    the delimiter and the white space after it (``</think>\n\n`` must not fire a ``"\n\n"`` stop).
    Call it on the text so far during decoding, or once on the whole text."""
    answer_from = 0
    if delimiters is not None:
        span = _reasoning_span(text, delimiters, started_inside)
        if span is not None:
            if span[2] is None:
                return None  # still thinking: no stop applies
            answer_from = span[2]  # the answer proper: after the delimiter and the white space after it
    hits = [text.find(s, answer_from) for s in stops if s]
    hits = [h for h in hits if h != -1]
    return min(hits) if hits else None


def cut_reason(split: Split, *, tokens_out: int, finish_reason: str) -> str | None:
    """The miss reason of a completion cut while thinking: ``reasoning cut at N tokens
    (max_new_tokens)``; ``None`` when the thinking ended (or the completion was not cut)."""
    if split.thinking_ended or finish_reason != "length":
        return None
    n = split.reasoning_tokens if split.reasoning_tokens is not None else tokens_out
    return f"reasoning cut at {n} tokens (max_new_tokens)"
