"""Tokenizing loglikelihood requests as lm-evaluation-harness does (see :mod:`.loglik` for the
conventions): the context and continuation tokens of each request, the empty-context token, left
truncation to the model's length, and that length.
"""

from __future__ import annotations

from typing import Any, Sequence

from pytest_llmeval.models.packing import _Scored

DEFAULT_MAX_LENGTH = 2048
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
