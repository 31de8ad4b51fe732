"""Chat rendering: the exact text a chat model is given for a prompt, few-shot turns included.

The datasets code hands over few-shot examples as plain turns
(:func:`pytest_llmeval.datasets.fewshot.fewshot_turns`); only a tokenizer can lay them out as chat text.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pytest_llmeval.datasets.fewshot import Turns, fewshot_turns

__all__ = ["ChatTemplateError", "chat_context", "chat_fewshot_context", "render_turns"]


class ChatTemplateError(ValueError):
    """The tokenizer has no chat template, so a chat prompt cannot be built."""


def chat_context(
    tokenizer: Any,
    prompt: str,
    *,
    system: str | None = None,
    examples: Sequence[tuple[str, str]] = (),
    template_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The context lm-eval builds with ``--apply_chat_template`` for a single-turn prompt.

    The prompt is the user message (a system message first when given), rendered with the
    generation prompt. Few-shot ``examples`` ``(question, answer)`` come before it as user and
    assistant turns (lm-eval's default ``fewshot_as_multiturn``). If the template rejects a
    system message it is dropped, as lm-eval does. Score choices after it with
    ``target_delimiter=""``: lm-eval puts no space between the assistant header and a choice
    under a chat template. ``template_kwargs`` are extra template variables, such as a reasoning
    model's ``enable_thinking`` (:func:`pytest_llmeval.models.reasoning.template_kwargs`).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(
            "the tokenizer has no chat template, so a chat context cannot be built; "
            "use chat=False or a model whose tokenizer ships a chat template"
        )
    messages = [{"role": "system", "content": system}] if system else []
    for question, answer in examples:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": prompt})
    extra = dict(template_kwargs or {})
    try:
        import jinja2

        template_error: type[BaseException] = jinja2.exceptions.TemplateError
    except ImportError:  # pragma: no cover - transformers needs jinja2 for chat templates
        template_error = ValueError
    try:
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, continue_final_message=False, **extra
        )
    except template_error:
        if not system:
            raise
        text = tokenizer.apply_chat_template(
            messages[1:], tokenize=False, add_generation_prompt=True, continue_final_message=False, **extra
        )
    return text


def render_turns(tokenizer: Any, turns: Turns) -> str:
    """``turns`` through the tokenizer's chat template, as lm-eval's ``--apply_chat_template``
    does (examples as earlier user and assistant turns, its default), ready for the answer."""
    return chat_context(tokenizer, turns.question, system=turns.system, examples=turns.examples)


def chat_fewshot_context(tokenizer: Any, row: Mapping[str, Any], examples: Sequence[Mapping[str, Any]] = ()) -> str:
    """The chat-template context lm-eval builds with ``--apply_chat_template`` (few-shot
    examples as turns, its default): the description as the system message, each example a
    user turn and an assistant turn, then the row's question. Score after it with
    ``target_delimiter=""``.

    Partial-scoring rows need one context per choice: pass ``{**row, "context": row["context"] + choice}``.
    """
    return render_turns(tokenizer, fewshot_turns(row, examples))
