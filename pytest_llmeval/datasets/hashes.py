"""What identifies a suite's cases and prompt in its fingerprint: the hash of the case contents
(:func:`dataset_hash`), the hash of everything that shapes the prompt (:func:`prompt_hash`), and
that prompt in words (:func:`prompt_text`), for a diff when it changes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_llmeval.datasets.casefiles import Case
from pytest_llmeval.datasets.spec import CaseSpec
from pytest_llmeval.files import sha256_text

__all__ = ["PROMPT_TEXT_LIMIT", "dataset_hash", "prompt_hash", "prompt_text"]


def dataset_hash(cases: Sequence[Case]) -> str:
    """A hash of the case contents (ids and fields), independent of file formatting and order."""
    canon = sorted(json.dumps({"id": c.id, "fields": c.fields}, sort_keys=True, default=str) for c in cases)
    return sha256_text("\n".join(canon))


def _template_text(spec: CaseSpec) -> str:
    """The prompt template as text: a format string, or a function's source."""
    template = spec.prompt
    if callable(template):
        import inspect

        try:
            return inspect.getsource(template)
        except (OSError, TypeError):
            return getattr(template, "__qualname__", repr(template))
    return template or "{prompt}"


def _prompt_parts(spec: CaseSpec) -> dict[str, Any]:
    return {
        "template": _template_text(spec),
        "chat": bool(spec.chat),  # not said hashes as False: the same prompt is sent
        "system": spec.system,
        "target_delimiter": spec.delimiter,
        "continuation": spec.continuation,
        "fewshot_delimiter": spec.fewshot_delimiter if spec.num_fewshot else None,
        **({"permute": spec.permute} if spec.permute is not None else {}),  # only when set: other suites' hashes stay
    }


def prompt_hash(spec: CaseSpec) -> str:
    return sha256_text(json.dumps(_prompt_parts(spec), sort_keys=True))


PROMPT_TEXT_LIMIT = 4000
"""Characters of :func:`prompt_text` kept (a baseline shows the change; the hash decides)."""


def prompt_text(spec: CaseSpec) -> str:
    """What :func:`prompt_hash` covers, as a person reads it: the template's text, then one line
    for each other setting that is set (``(chat: true)``, ``(system: "...")``; the choice
    delimiter only for a suite that ranks choices). When two prompts hash differently but read
    the same here, a comparison shows their hashes instead."""
    parts = _prompt_parts(spec)
    text = parts.pop("template").rstrip("\n")
    if spec.choices is None and spec.continuation is None:
        parts.pop("target_delimiter")  # joins a prompt and a choice: says nothing of a generated answer
    for key, value in parts.items():
        if value not in (None, False):
            text += f"\n({key}: {json.dumps(value, ensure_ascii=False)})"
    return text if len(text) <= PROMPT_TEXT_LIMIT else text[:PROMPT_TEXT_LIMIT] + "\n..."
