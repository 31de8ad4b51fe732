"""Loglikelihood scoring with lm-evaluation-harness's conventions, computed in shared batches.

Conventions (those of lm-eval's Hugging Face causal model, so per-case numbers agree with its
logged samples):

- a request is a ``(context, continuation)`` pair; whitespace at the end of the context moves
  to the front of the continuation, the pair is tokenized jointly (``context + continuation``)
  and the continuation's tokens are what follows the context's own tokens;
- special tokens: the tokenizer's default (``add_bos=None``), never (``False``) or a BOS token
  always (``True``); a text that already starts with the BOS text gets none added;
- an empty context is replaced by the BOS token (EOS where there is none);
- the model input is ``(context + continuation)[-(max_length + 1):][:-1]``: left truncation;
- the score is the sum of the continuation tokens' log-probabilities, and ``is_greedy`` says
  whether every continuation token is the argmax at its position;
- multiple choice: ``acc`` picks the highest total, ``acc_norm`` the highest total divided by
  the choice's length in characters; ties go to the first choice.

Speed: the requests that share a prefix (all choices of one question) are packed into one row:
the prefix once, then each continuation as a segment that sees the prefix and itself only
(a block attention mask and restarted position ids), so a context is run once however many
choices it has. Rows are sorted by length and batched; the tokens every row of a batch starts
with (a chat template's header, the same few-shot examples) are computed once per call at batch 1
and their key/value cache is shared by the batch's rows (``packing.shared_prefix``). Logits are
computed only at the scored positions (``logits_to_keep``) and turned into log-probabilities in
float32.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Sequence

from pytest_llmeval.models.decode import PrefixCache
from pytest_llmeval.models.loglik_tokens import (
    _TOKENIZER_INFINITY,
    DEFAULT_MAX_LENGTH,
    LoglikelihoodError,
    _encode_requests,
    _truncate,
    encode_pair,
    model_max_length,
)
from pytest_llmeval.models.outputs import Ranked
from pytest_llmeval.models.packing import _Row, _can_pack, _pack_group, _run_batch, _Scored

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "LoglikelihoodError",
    "encode_pair",
    "loglikelihood",
    "model_max_length",
    "rank_choices",
    "_TOKENIZER_INFINITY",
    "_encode_requests",
    "_truncate",
]

BATCH_TOKENS = 8192
"""Most padded tokens in one scoring forward pass (fewer rows than the batch size when rows are
long): the activations of a pass grow with its tokens, and the peak memory with them."""


# ----------------------------------------------------------------------------- scoring


def _score(
    model: Any,
    tokenizer: Any,
    encoded: Sequence[tuple[list[int], list[int]]],
    groups: Sequence[Sequence[int]],
    *,
    batch_size: int,
    max_length: int | None,
    share_context: bool,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[tuple[float, bool]], list[int], list[float]]:
    """Score encoded requests; groups are the requests that may share one prefix (a row).

    Returns the per-request results, and per group the input tokens it used and its share of
    the forward time in seconds.
    """
    import torch

    if batch_size < 1:
        raise LoglikelihoodError(f"batch_size must be at least 1, got {batch_size}")
    limit = max_length or model_max_length(model, tokenizer)
    scored = [_truncate(ctx, cont, limit, i) for i, (ctx, cont) in enumerate(encoded)]
    same_as = _repeated(scored)
    packed = share_context and _can_pack(model)
    rows = _rows(groups, scored, same_as, packed)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(tokenizer, "eos_token_id", None) or 0
    results: list[tuple[float, bool] | None] = [None] * len(encoded)
    usage = _Usage(len(groups), rows)
    prefixes = PrefixCache() if share_context else None  # prefixes shared across items, computed once per call
    with torch.inference_mode():
        for chunk in _batches(rows, batch_size):
            began = time.perf_counter()
            for index, total, greedy in _run_batch(model, chunk, packed, int(pad_id), prefixes):
                results[index] = (total, greedy)
            done = usage.add(chunk, time.perf_counter() - began)
            if progress is not None and done:
                progress(done)
    for i, j in same_as.items():
        results[i] = results[j]
    if progress is not None and usage.rowless:
        progress(usage.rowless)
    return [r if r is not None else (0.0, False) for r in results], usage.tokens, usage.seconds


def _repeated(scored: Sequence[_Scored]) -> dict[int, int]:
    """Requests identical to an earlier one -> that one: identical requests are scored once
    (and so tie exactly)."""
    first_of: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    same_as: dict[int, int] = {}
    for i, req in enumerate(scored):
        key = (tuple(req.seq), tuple(req.targets))
        if key in first_of:
            same_as[i] = first_of[key]
        else:
            first_of[key] = i
    return same_as


def _rows(groups: Sequence[Sequence[int]], scored: Sequence[_Scored], same_as: dict[int, int], packed: bool) -> list[_Row]:
    """The rows to run (a group's requests packed into one where ``packed``), longest first; ties
    are broken by content, so the order is deterministic (a batch's width is its first row's)."""
    rows: list[_Row] = []
    for g, group in enumerate(groups):
        unique = [i for i in group if i not in same_as]
        if unique:
            rows.extend(_pack_group(unique, scored, g, packed))
    rows.sort(key=lambda r: (-len(r), r.tokens))
    return rows


def _batches(rows: Sequence[_Row], batch_size: int) -> Iterator[Sequence[_Row]]:
    """``rows`` (longest first) in forward passes of at most ``batch_size`` rows and
    :data:`BATCH_TOKENS` padded tokens (the first row of a pass is its widest)."""
    start = 0
    while start < len(rows):
        chunk = rows[start : start + max(1, min(batch_size, BATCH_TOKENS // max(1, len(rows[start]))))]
        start += len(chunk)
        yield chunk


class _Usage:
    """Per group: the input tokens its rows used, their share of the forward time, and how many
    of its rows are still to run (a group is done, for the progress, when none is)."""

    def __init__(self, n_groups: int, rows: Sequence[_Row]) -> None:
        self.tokens = [0] * n_groups
        self.seconds = [0.0] * n_groups
        self.left = [0] * n_groups
        for row in rows:
            self.left[row.owner] += 1
        self.rowless = self.left.count(0)
        """Groups whose requests all repeat other groups': done without a row."""

    def add(self, chunk: Sequence[_Row], spent: float) -> int:
        """Count a pass of ``chunk`` that took ``spent`` seconds; the groups it completed."""
        batch_tokens = sum(len(r) for r in chunk)
        done = 0
        for row in chunk:
            self.tokens[row.owner] += len(row)
            self.seconds[row.owner] += spent * len(row) / batch_tokens
            self.left[row.owner] -= 1
            if self.left[row.owner] == 0:
                done += 1
        return done


# ----------------------------------------------------------------------------- public API


def loglikelihood(
    model: Any,
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    add_bos: bool | None = None,
    share_context: bool = True,
) -> list[tuple[float, bool]]:
    """``(sum of the continuation's token log-probabilities, is_greedy)`` per request, in order.

    Requests with the same context are run as one packed row (``share_context``); totals and
    greedy flags do not depend on ``batch_size`` (rows per forward pass). ``max_length``
    defaults to the model's (see :func:`model_max_length`); ``add_bos`` as lm-eval's
    ``add_bos_token``: ``None`` the tokenizer's default, ``True`` always, ``False`` never.
    """
    requests = [tuple(r) for r in requests]
    for i, r in enumerate(requests):
        if len(r) != 2:
            raise LoglikelihoodError(f"request {i} must be a (context, continuation) pair, got {len(r)} items")
    encoded = _encode_requests(tokenizer, requests, add_bos)  # type: ignore[arg-type]
    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, _) in enumerate(encoded):
        by_context.setdefault(tuple(ctx), []).append(i)
    results, _, _ = _score(
        model,
        tokenizer,
        encoded,
        list(by_context.values()),
        batch_size=batch_size,
        max_length=max_length,
        share_context=share_context,
    )
    return results


def rank_choices(
    model: Any,
    tokenizer: Any,
    items: Sequence[tuple[Any, ...]],
    *,
    batch_size: int = 16,
    target_delimiter: str = " ",
    max_length: int | None = None,
    add_bos: bool | None = None,
    progress: Callable[[int], None] | None = None,
    share_context: bool = True,
) -> list[Ranked]:
    """Score every choice of every multiple-choice item; one :class:`Ranked` per item, in order.

    An item is ``(context, choices)``: each choice is scored as the continuation
    ``target_delimiter + choice`` after ``context``; ``norm_lengths`` are the choices' lengths
    in characters (lm-eval's ``acc_norm``).

    Partial scoring (WinoGrande) is ``(context, choices, continuation)``: each choice fills
    the blank (its context is ``context + choice``) and the shared ``continuation`` is scored
    after it; ``norm_lengths`` are then the lengths of ``context + choice``, as in lm-eval.

    ``progress(n)`` is called after each batch with the number of items it completed.
    """
    if not isinstance(target_delimiter, str):
        raise LoglikelihoodError(f"target_delimiter must be a string, got {type(target_delimiter).__name__}")
    requests, groups, shapes = _choice_requests(items, target_delimiter)
    encoded = _encode_requests(tokenizer, requests, add_bos)
    results, tokens, seconds = _score(
        model,
        tokenizer,
        encoded,
        groups,
        batch_size=batch_size,
        max_length=max_length,
        share_context=share_context,
        progress=progress,
    )
    ranked = []
    for (context, choices, lengths), group, used, spent in zip(shapes, groups, tokens, seconds):
        ranked.append(
            Ranked(
                context=context,
                choices=choices,
                loglikelihoods=tuple(results[i][0] for i in group),
                is_greedy=tuple(results[i][1] for i in group),
                norm_lengths=lengths,
                tokens_in=used,
                latency_s=spent,
            )
        )
    return ranked


def _choice_requests(
    items: Sequence[tuple[Any, ...]], target_delimiter: str
) -> tuple[list[tuple[str, str]], list[list[int]], list[tuple[str, tuple[str, ...], tuple[int, ...]]]]:
    """The (context, continuation) requests of every item's choices, the requests of each item,
    and each item's (context, choices, normalisation lengths)."""
    requests: list[tuple[str, str]] = []
    groups: list[list[int]] = []
    shapes: list[tuple[str, tuple[str, ...], tuple[int, ...]]] = []
    for n, item in enumerate(items):
        context, choices, continuation = _unpack_item(item, n)
        group = []
        for choice in choices:
            group.append(len(requests))
            if continuation is None:
                requests.append((context, target_delimiter + choice))
            else:
                requests.append((context + choice, target_delimiter + continuation))
        groups.append(group)
        if continuation is None:
            lengths = tuple(len(c) for c in choices)
        else:
            lengths = tuple(len(context + c) for c in choices)
        shapes.append((context, choices, lengths))
    return requests, groups, shapes


def _unpack_item(item: Any, n: int) -> tuple[str, tuple[str, ...], str | None]:
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise LoglikelihoodError(
            f"item {n} must be (context, choices) or (context, choices, continuation), got {item!r:.80}"
        )
    context, choices = item[0], item[1]
    continuation = item[2] if len(item) == 3 else None
    if not isinstance(context, str):
        raise LoglikelihoodError(f"item {n}: the context must be a string, got {type(context).__name__}")
    if isinstance(choices, str) or not isinstance(choices, Sequence) or not choices:
        raise LoglikelihoodError(
            f"item {n}: choices must be a non-empty list of strings, got {choices!r:.80}; "
            "check the case's choices field"
        )
    bad = [c for c in choices if not isinstance(c, str)]
    if bad:
        raise LoglikelihoodError(f"item {n}: every choice must be a string, got {bad[0]!r:.60}; convert the choices to text")
    if continuation is not None and not isinstance(continuation, str):
        raise LoglikelihoodError(f"item {n}: the continuation must be a string, got {type(continuation).__name__}")
    return context, tuple(choices), continuation
