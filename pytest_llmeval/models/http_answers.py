"""What a server answers, read so that nothing in it can hurt: the body read up to
:data:`MAX_ANSWER_BYTES` as it is decompressed (a compressed bomb is never held whole), its JSON
refused for NaN, an infinity or nesting deeper than :data:`MAX_DEPTH`, its lone surrogates
replaced, and an error answer's message redacted and cut to one line of :data:`DETAIL_CHARS`."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.escaping import one_line
from pytest_llmeval.redaction import redact

__all__ = ["DETAIL_CHARS", "MAX_ANSWER_BYTES", "MAX_DEPTH", "Answer", "NotFinite", "Unusable", "error_detail", "read_answer", "read_json"]

DETAIL_CHARS = 300
"""How much of an error answer a message shows (after the secrets are removed)."""
MAX_ANSWER_BYTES = 64 * 2**20
"""The largest answer read (after decompression): a larger one is not used, and is never held whole."""


def _reject_constant(name: str) -> float:
    raise NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(text)
    return value


MAX_DEPTH = 64
"""The deepest nesting of arrays and objects an answer may have (an OpenAI answer has about 6)."""
_SURROGATE = re.compile("[\ud800-\udfff]")


class Unusable(ValueError):
    """JSON that cannot be used as it is: NaN or an infinity (which JSON does not have), or nesting
    deeper than :data:`MAX_DEPTH`."""


class NotFinite(Unusable):
    """An answer whose JSON holds NaN or an infinity."""


def _clean(value: Any, depth: int = 0) -> Any:
    """``value`` with every lone surrogate (``\\ud800`` escaped in JSON: no UTF-8 file can hold it)
    in its strings and keys replaced by U+FFFD; :class:`Unusable` when nested too deep."""
    if depth > MAX_DEPTH:
        raise Unusable(f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_clean(k, depth + 1): _clean(v, depth + 1) for k, v in value.items()}
    return value


def read_json(text: str) -> Any:
    """A server's answer as JSON, its strings fit for any UTF-8 file: :class:`Unusable` for NaN,
    an infinity or nesting deeper than :data:`MAX_DEPTH`, ``ValueError`` when it is not JSON."""
    try:
        return _clean(json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float))
    except RecursionError:
        raise Unusable(f"nesting deeper than {MAX_DEPTH} levels") from None


def error_detail(text: str) -> str:
    """What an error answer says, for one line: its ``error.message`` (or the JSON decoded, or the
    text), with the secrets removed first and then cut to :data:`DETAIL_CHARS`."""
    try:
        data = read_json(text)
    except ValueError:  # Unusable included: then the text, cut short
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and isinstance(data["error"].get("message"), str):
        shown = data["error"]["message"]
    elif data is not None:
        shown = json.dumps(data, ensure_ascii=False)
    else:
        shown = text
    clean = one_line(redact(shown))
    return clean[:DETAIL_CHARS] + ("..." if len(clean) > DETAIL_CHARS else "")


@dataclass
class Answer:
    """An HTTP answer read up to :data:`MAX_ANSWER_BYTES` (``too_large`` past it: the rest unread)."""

    status_code: int
    headers: Any
    text: str
    too_large: bool


async def read_answer(client: Any, url: str, body: dict) -> Answer:
    """POST ``body`` to ``url`` and read the answer as it streams in (decompressed as it comes)."""
    response = await client.send(client.build_request("POST", url, json=body), stream=True)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decompressed as it comes: a compressed bomb is never held
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                return Answer(response.status_code, response.headers, "", True)
            chunks.append(chunk)
    finally:
        await response.aclose()
    data = b"".join(chunks)
    try:
        text = data.decode(response.encoding or "utf-8", errors="replace")
    except (LookupError, TypeError, ValueError):  # a charset that is no text encoding (rot13, base64)
        text = data.decode("utf-8", errors="replace")
    return Answer(response.status_code, response.headers, text, False)
