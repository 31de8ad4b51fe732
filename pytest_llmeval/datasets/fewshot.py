"""Few-shot prompts: examples chosen per case, and the prompt built the way lm-eval builds it.

Selection is deterministic per case: the examples for a case depend only on the seed, the
case id and the pool (not on its order), never on which other cases run, so ``-k``,
``--llmeval-limit`` and xdist sharding leave every case's prompt unchanged.

A few-shot prompt is handed over as :class:`Turns`: the description, the solved examples as
(user, assistant) pairs and the final question, before any rendering. Without a chat
template they are laid out as lm-evaluation-harness does,
``description + (question + " " + answer + "\\n\\n") * k + question`` (:meth:`Turns.plain`);
with one, the models side renders the description as the system message and each example as
a user turn and an assistant turn (``pytest_llmeval.models.chat.chat_fewshot_context``).
An example's answer text comes from :func:`pytest_llmeval.datasets.casetext.answer_texts`, as everywhere.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pytest_llmeval.datasets.casefiles import CaseError
from pytest_llmeval.datasets.casetext import solved_example

__all__ = [
    "FewshotError",
    "Turns",
    "build_context",
    "fewshot_prefix",
    "fewshot_turns",
    "plain_prefix",
    "qa_pair",
    "render_qa",
    "select_fewshot",
]


class FewshotError(CaseError):
    """A few-shot request that cannot be met (too few examples, examples without ids); bad case
    data like any other, so the plugin reports it as one collection error line."""


def _case_seed(seed: int, case_id: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00{case_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def select_fewshot(
    pool: Sequence[Mapping[str, Any]],
    case_id: str,
    k: int,
    *,
    seed: int = 1234,
    exclude_id: str | None = None,
    id_field: str = "id",
) -> list[Mapping[str, Any]]:
    """``k`` examples from ``pool`` for the case ``case_id``, the same every run.

    The draw is seeded by a hash of ``seed`` and ``case_id`` and made from the pool sorted by
    id, so it does not depend on the pool's order or on the other cases. The case itself
    (an example whose id is ``case_id``) and ``exclude_id`` are never chosen.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise FewshotError(f"the number of few-shot examples must be a whole number >= 0, got {k!r}")
    if k == 0:
        return []
    skip = {str(case_id)} | ({str(exclude_id)} if exclude_id is not None else set())
    candidates: list[tuple[str, int, Mapping[str, Any]]] = []
    for i, row in enumerate(pool):
        if not isinstance(row, Mapping):
            raise FewshotError(f"few-shot example {i} is a {type(row).__name__}, not a mapping; give examples as dicts")
        if id_field not in row:
            raise FewshotError(
                f"few-shot example {i} has no {id_field!r} field; give every example an id "
                "(or pass id_field= the field that holds one)"
            )
        rid = str(row[id_field])
        if rid not in skip:
            candidates.append((rid, i, row))
    if len(candidates) < k:
        raise FewshotError(
            f"case {case_id!r} needs {k} few-shot examples but the pool has {len(candidates)} besides the case; "
            "lower num_fewshot or add examples to the few-shot split"
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    rng = random.Random(_case_seed(seed, str(case_id)))
    return [row for _, _, row in rng.sample(candidates, k)]


def fewshot_prefix(
    examples: Sequence[Mapping[str, Any]],
    render_example: Callable[[Mapping[str, Any]], str] | None = None,
    *,
    delimiter: str = "\n\n",
) -> str:
    """The rendered examples, each followed by ``delimiter`` (lm-eval's ``fewshot_delimiter``).

    ``render_example`` turns one example into its solved text, question and answer; the
    default is :func:`render_qa`.
    """
    render = render_example or render_qa
    parts = []
    for i, example in enumerate(examples):
        text = render(example)
        if not isinstance(text, str):
            raise FewshotError(f"render_example returned {type(text).__name__} for example {i}; it must return a string")
        parts.append(text + delimiter)
    return "".join(parts)


def qa_pair(row: Mapping[str, Any]) -> tuple[str, str]:
    """``(question text, answer text)`` of a solved example, as lm-eval shows it in a few-shot prompt.

    Understands the rows of :mod:`pytest_llmeval.datasets.formats` and plain cases with
    ``question``/``prompt``, ``choices`` and an answer (an index, a letter or a text; see
    :func:`pytest_llmeval.datasets.casetext.answer_texts`): multiple choice shows the correct choice,
    partial scoring (a ``continuation``) shows the context completed by the correct choice
    then the continuation, GSM8K the full ``target``.
    """
    choices = "choices" if "choices" in row else None
    if "continuation" in row and choices is not None:
        return solved_example(row, _question(row), choices=choices, continuation="continuation")
    question = row.get("prompt", row.get("question"))
    if question is None:
        raise FewshotError(
            f"few-shot example {row.get('id', '?')!r} has no 'prompt' or 'question' field; "
            "pass render_example= to say how to show it"
        )
    return solved_example(row, str(question), choices=choices)


def render_qa(row: Mapping[str, Any], *, target_delimiter: str = " ") -> str:
    """One solved example as text: question, ``target_delimiter``, answer."""
    question, answer = qa_pair(row)
    return question + target_delimiter + answer


def plain_prefix(pairs: Sequence[tuple[str, str]], *, target_delimiter: str = " ", fewshot_delimiter: str = "\n\n") -> str:
    """Solved examples as plain text, lm-eval's layout: ``question + target_delimiter + answer +
    fewshot_delimiter`` for each."""
    return "".join(f"{question}{target_delimiter}{answer}{fewshot_delimiter}" for question, answer in pairs)


@dataclass(frozen=True)
class Turns:
    """A few-shot prompt before rendering: the system message (the task's description), the
    solved examples as (user, assistant) pairs, then the question."""

    question: str
    examples: tuple[tuple[str, str], ...] = ()
    system: str | None = None

    def plain(self, *, target_delimiter: str = " ", fewshot_delimiter: str = "\n\n") -> str:
        """The prompt without a chat template: description, examples, question (lm-eval's layout)."""
        prefix = plain_prefix(self.examples, target_delimiter=target_delimiter, fewshot_delimiter=fewshot_delimiter)
        return (self.system or "") + prefix + self.question


def fewshot_turns(row: Mapping[str, Any], examples: Sequence[Mapping[str, Any]] = ()) -> Turns:
    """The row's question after its solved ``examples``, with its ``description`` as the system
    message. For partial-scoring rows (WinoGrande) the question is the row's ``context``: pass
    ``{**row, "context": row["context"] + choice}`` for the context of one choice."""
    description = str(row.get("description") or "") or None
    return Turns(question=_question(row), examples=tuple(qa_pair(e) for e in examples), system=description)


def build_context(
    row: Mapping[str, Any],
    examples: Sequence[Mapping[str, Any]] = (),
    *,
    target_delimiter: str = " ",
    fewshot_delimiter: str = "\n\n",
) -> str:
    """The plain-text context of ``row`` after its few-shot examples, as lm-eval lays it out:
    the row's ``description``, the examples, then the row's question (``prompt``).

    For partial-scoring rows (WinoGrande) the context is the shared few-shot prefix plus the
    row's ``context``; the choice and continuation are added when scoring.
    """
    return fewshot_turns(row, examples).plain(target_delimiter=target_delimiter, fewshot_delimiter=fewshot_delimiter)


def _question(row: Mapping[str, Any]) -> str:
    if "continuation" in row:
        if row.get("context") is None:
            raise FewshotError(f"case {row.get('id', '?')!r} has a 'continuation' but no 'context' field before the blank")
        return str(row["context"])
    question = row.get("prompt", row.get("context", row.get("question")))
    if question is None:
        raise FewshotError(f"case {row.get('id', '?')!r} has no 'prompt', 'context' or 'question' field")
    return str(question)
