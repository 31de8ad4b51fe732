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
from typing import Any, Callable, Sequence

from pytest_llmeval.models.decode import PrefixCache
from pytest_llmeval.models.outputs import Ranked
from pytest_llmeval.models.packing import _Row, _can_pack, _pack_group, _run_batch, _Scored

__all__ = [
    "LoglikelihoodError",
    "encode_pair",
    "loglikelihood",
    "model_max_length",
    "rank_choices",
]

DEFAULT_MAX_LENGTH = 2048
BATCH_TOKENS = 8192
"""Most padded tokens in one scoring forward pass (fewer rows than the batch size when rows are
long): the activations of a pass grow with its tokens, and the peak memory with them."""
_TOKENIZER_INFINITY = 1000000000000000019884624838656


class LoglikelihoodError(ValueError):
    """A request that cannot be scored (an empty continuation, one longer than the model)."""


# ----------------------------------------------------------------------------- tokenization


def model_max_length(model: Any, tokenizer: Any, default: int = DEFAULT_MAX_LENGTH) -> int:
    """The context length lm-eval uses: the config's ``n_positions``, ``max_position_embeddings``
    or ``n_ctx`` (the text config's first), else the tokenizer's ``model_max_length``, else 2048."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit != _TOKENIZER_INFINITY:
        return int(limit)
    return default


def _prefix_token_id(tokenizer: Any) -> int:
    """The token standing in for an empty context: BOS, else EOS."""
    bos = getattr(tokenizer, "bos_token_id", None)
    token = bos if bos is not None else getattr(tokenizer, "eos_token_id", None)
    if token is None:
        raise LoglikelihoodError(
            "the tokenizer has neither a BOS nor an EOS token, so an empty context cannot be scored; "
            "give every request a non-empty context"
        )
    return int(token)


class _Encoder:
    """Tokenizes texts the way lm-eval's ``tok_encode`` does, in batches."""

    def __init__(self, tokenizer: Any, add_bos: bool | None) -> None:
        self.tokenizer = tokenizer
        self.add_bos = add_bos
        bos = getattr(tokenizer, "bos_token_id", None)
        self.bos_id = None if bos is None else int(bos)
        try:
            self.prefix_id: int | None = _prefix_token_id(tokenizer)
            self.prefix_text: str | None = tokenizer.decode([self.prefix_id])
        except LoglikelihoodError:
            self.prefix_id, self.prefix_text = None, None

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        out: list[list[int] | None] = [None] * len(texts)
        groups: dict[bool | None, list[int]] = {}
        for i, text in enumerate(texts):
            if self.prefix_text and text.startswith(self.prefix_text):
                special: bool | None = False  # already starts with BOS: add none
            else:
                special = self.add_bos
            groups.setdefault(special, []).append(i)
        for special, indices in groups.items():
            batch = [texts[i] for i in indices]
            kwargs = {} if special is None else {"add_special_tokens": special}
            ids = self.tokenizer(batch, **kwargs)["input_ids"] if batch else []
            for i, row in zip(indices, ids):
                row = [int(t) for t in row]
                if special is True and self.bos_id is not None and (not row or row[0] != self.bos_id):
                    row = [self.bos_id] + row
                out[i] = row
        return [row if row is not None else [] for row in out]

    def encode_plain(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [[int(t) for t in row] for row in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def _split_whitespace(context: str, continuation: str) -> tuple[str, str]:
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def _encode_requests(
    tokenizer: Any, requests: Sequence[tuple[str, str]], add_bos: bool | None
) -> list[tuple[list[int], list[int]]]:
    """``(context_tokens, continuation_tokens)`` of every request, lm-eval style."""
    enc = _Encoder(tokenizer, add_bos)
    out: list[tuple[list[int], list[int]] | None] = [None] * len(requests)
    empty: list[int] = []
    joint: list[int] = []
    pairs: list[tuple[str, str]] = []
    for i, (context, continuation) in enumerate(requests):
        if not isinstance(context, str) or not isinstance(continuation, str):
            raise LoglikelihoodError(
                f"request {i}: context and continuation must be strings, got "
                f"({type(context).__name__}, {type(continuation).__name__})"
            )
        if context == "":
            empty.append(i)
        else:
            joint.append(i)
            pairs.append(_split_whitespace(context, continuation))
    if empty:
        prefix = enc.prefix_id if enc.prefix_id is not None else _prefix_token_id(tokenizer)
        for i, cont in zip(empty, enc.encode_plain([requests[i][1] for i in empty])):
            if cont and cont[0] == prefix:
                out[i] = (cont[:1], cont[1:])
            else:
                out[i] = ([prefix], cont)
    if joint:
        unique_contexts = sorted({c for c, _ in pairs})
        context_ids = dict(zip(unique_contexts, enc.encode(unique_contexts)))
        wholes = enc.encode([c + k for c, k in pairs])
        for i, (context, _), whole in zip(joint, pairs, wholes):
            ctx = context_ids[context]
            cont = whole[len(ctx):]
            if not ctx:  # a context of whitespace only: condition on the BOS token instead
                ctx = [enc.prefix_id if enc.prefix_id is not None else _prefix_token_id(tokenizer)]
            out[i] = (ctx, cont)
    return [pair for pair in out if pair is not None]


def encode_pair(tokenizer: Any, context: str, continuation: str, *, add_bos: bool | None = None) -> tuple[list[int], list[int]]:
    """The context and continuation tokens of one request, as lm-eval splits them."""
    return _encode_requests(tokenizer, [(context, continuation)], add_bos)[0]


def _truncate(ctx: list[int], cont: list[int], max_length: int, index: int) -> _Scored:
    if not cont:
        raise LoglikelihoodError(
            f"request {index}: the continuation encodes to no tokens, so there is nothing to score; "
            "give it a non-empty continuation (a choice text, or the target delimiter)"
        )
    if len(cont) > max_length:
        raise LoglikelihoodError(
            f"request {index}: the continuation is {len(cont)} tokens, longer than the model's "
            f"max length {max_length}; shorten it or raise max_length"
        )
    whole = (ctx + cont)[-(max_length + 1):][:-1]
    return _Scored(whole, list(cont))


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
    # identical requests are scored once (and so tie exactly)
    first_of: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    same_as: dict[int, int] = {}
    for i, req in enumerate(scored):
        key = (tuple(req.seq), tuple(req.targets))
        if key in first_of:
            same_as[i] = first_of[key]
        else:
            first_of[key] = i
    packed = share_context and _can_pack(model)
    rows: list[_Row] = []
    for g, group in enumerate(groups):
        unique = [i for i in group if i not in same_as]
        if unique:
            rows.extend(_pack_group(unique, scored, g, packed))
    # longest first (a batch's width is its first row's), ties broken by content: deterministic
    rows.sort(key=lambda r: (-len(r), r.tokens))
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(tokenizer, "eos_token_id", None) or 0
    results: list[tuple[float, bool] | None] = [None] * len(encoded)
    tokens_used = [0] * len(groups)
    seconds = [0.0] * len(groups)
    left_in_group = [0] * len(groups)
    for row in rows:
        left_in_group[row.owner] += 1
    rowless = left_in_group.count(0)  # items whose requests all repeat other items'
    prefixes = PrefixCache() if share_context else None  # prefixes shared across items, computed once per call
    with torch.inference_mode():
        start = 0
        while start < len(rows):
            # at most batch_size rows and BATCH_TOKENS padded tokens (the first row is the widest)
            chunk = rows[start : start + max(1, min(batch_size, BATCH_TOKENS // max(1, len(rows[start]))))]
            start += len(chunk)
            began = time.perf_counter()
            for index, total, greedy in _run_batch(model, chunk, packed, int(pad_id), prefixes):
                results[index] = (total, greedy)
            spent = time.perf_counter() - began
            batch_tokens = sum(len(r) for r in chunk)
            done = 0
            for row in chunk:
                tokens_used[row.owner] += len(row)
                seconds[row.owner] += spent * len(row) / batch_tokens
                left_in_group[row.owner] -= 1
                if left_in_group[row.owner] == 0:
                    done += 1
            if progress is not None and done:
                progress(done)
    for i, j in same_as.items():
        results[i] = results[j]
    if progress is not None and rowless:
        progress(rowless)
    return [r if r is not None else (0.0, False) for r in results], tokens_used, seconds


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
