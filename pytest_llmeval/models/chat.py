"""Few-shot prompts under a chat template: the models side renders the turns the cases code hands over.

:func:`pytest_llmeval.fewshot.fewshot_turns` gives a row's system message, solved examples
and question as plain data; only a tokenizer can lay them out as chat text.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..fewshot import Turns, fewshot_turns
from ..loglik import chat_context

__all__ = ["chat_fewshot_context", "render_turns"]


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
