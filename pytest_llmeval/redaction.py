"""Secrets: the credentials a session knows, and the one way they are cut out of text.

The secrets are the API key (the variable that ``llmeval_api_key_env`` names) and any credential
in ``llmeval_base_url`` (``user:password@``, and the value of a query parameter such as
``api-key=``, ``key=`` or ``token=``). They are registered once (:func:`register`,
:func:`register_settings`) and removed at every boundary where text enters or leaves:

- everything a server sends, before it becomes an answer, a message or a cache entry
  (:func:`redact_json` on the parsed answer, :func:`redact` on any other text);
- the command line and URLs the plugin shows or stores (:func:`redact_args`, :func:`redact_url`);
- the files the plugin writes and the reports pytest prints for eval items (:func:`redact`);
- every log record made in the process once a secret is known (:func:`guard_logging`,
  :func:`redact_line`): the HTTP client logs each request's URL, which live logging
  (``log_cli``) and ``--log-file`` write as they are.

:func:`redact` replaces a secret written as it is (letter case ignored), in the forms a server
may plausibly echo it (JSON escapes such as ``\\/`` and ``\\uXXXX``, percent-encoding, HTML
entities, base64 at any alignment, hex), and any run of :data:`WINDOW` characters of a long one;
text that contains a secret only once decoded (JSON-unescaped, percent-decoded, HTML-unescaped) is
replaced by its decoded form, redacted. A secret shorter than :data:`MIN_LENGTH` characters is
too short to tell from ordinary words (placeholder keys such as ``EMPTY``) and is not registered.

:class:`Secret` holds one credential for sending: its ``repr`` and ``str`` never show it, so a
traceback's locals (``pytest -l``) cannot either.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
MIN_LENGTH = 6
"""Secrets shorter than this are not registered (they would match ordinary words)."""
WINDOW = 10
"""In a secret of at least ``2 * WINDOW`` characters, any run of this many of its characters is redacted too."""
CREDENTIAL_PARAMS = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session", re.IGNORECASE)
"""Query parameters of a base URL whose values are credentials (``api-key``, ``key``, ``access_token``...)."""
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


class Secret:
    """One credential. ``reveal()`` gives it (to put it in a header); ``repr``/``str`` never do."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")

    def header_problem(self) -> str | None:
        """Why the value cannot be sent in an HTTP header (without showing it), or None."""
        value = self._value
        for position, char in enumerate(value, 1):
            if not "\x21" <= char <= "\x7e":
                what = "a space" if char == " " else f"U+{ord(char):04X}" + (" (a non-breaking space)" if char == "\xa0" else "")
                return f"holds {what} at character {position} of {len(value)}, which cannot be sent in an HTTP header"
        return None


def _variants(secret: str) -> tuple[set[str], set[str]]:
    """The forms a server may echo ``secret`` in, as they appear in text: (those whose letter case
    does not matter, base64 forms)."""
    found = {secret, quote(secret, safe=""), quote_plus(secret), html.escape(secret), secret.encode("utf-8").hex()}
    for ascii_only in (False, True):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        found |= {escaped, escaped.replace("/", "\\/")}
    if len(secret) >= 2 * WINDOW:
        found |= {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}
    encoded = set()
    data = secret.encode("utf-8")
    for start in range(3):  # base64 of a text holding the secret, at each of the three alignments
        whole = data[start : start + 3 * ((len(data) - start) // 3)]
        if len(whole) >= MIN_LENGTH:
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                encoded.add(encode(whole).decode("ascii"))
    return {v for v in found if v}, encoded


def _json_unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        try:
            value = json.loads(f'"{match.group(0)}"')
        except ValueError:
            return match.group(0)
        return "\ufffd" if any(0xD800 <= ord(c) <= 0xDFFF for c in value) else value

    return re.sub(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\[\"\\/bfnrt]", one, text)


def _decodings(text: str) -> Iterable[str]:
    if "\\" in text:
        yield _json_unescape(text)
    if "%" in text:
        yield unquote(text)
    if "&" in text:
        yield html.unescape(text)


class Redactor:
    """A set of secrets and the pattern that finds them (see the module's docstring)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        """Register ``value`` (with its surrounding spaces stripped, and without the characters
        that cannot be sent, as they would be shown in an error); short ones are ignored."""
        if not isinstance(value, str):
            return
        forms = {value, value.strip(), "".join(c for c in value if "\x21" <= c <= "\x7e")}
        new = {f for f in forms if len(f) >= MIN_LENGTH} - self._secrets
        if new:
            with self._lock:
                self._secrets |= new
                forms = [_variants(s) for s in self._secrets]
                # the longest form first, so that it wins where forms overlap
                any_case, exact = (sorted(set().union(*(f[i] for f in forms)), key=len, reverse=True) for i in (0, 1))
                exact_part = "".join(f"|{re.escape(v)}" for v in exact)
                self._pattern = re.compile(f"(?i:{'|'.join(map(re.escape, any_case))}){exact_part}")

    def __bool__(self) -> bool:
        return self._pattern is not None

    def contains(self, text: str) -> bool:
        return self.redact(text) != text if self._pattern is not None and isinstance(text, str) else False

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not isinstance(text, str) or not text:
            return text
        base = text
        for _ in range(3):  # a secret hidden by an encoding (or two): keep the decoded text, redacted
            seen = {m.casefold() for m in pattern.findall(base)}
            revealing = [d for d in _decodings(base) if d != base and not {m.casefold() for m in pattern.findall(d)} <= seen]
            if not revealing:
                break
            base = revealing[0]
        return pattern.sub(MASK, base)

    def redact_json(self, value: Any) -> Any:
        """``value`` (parsed JSON) with every string in it, keys included, redacted; ``value``
        itself where no secret was in it (so what holds it can still tell it is the same)."""
        if self._pattern is None:
            return value
        redacted = self._redacted_json(value)
        return value if redacted == value else redacted

    def _redacted_json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self._redacted_json(v) for v in value]
        if isinstance(value, dict):
            return {self.redact(k) if isinstance(k, str) else k: self._redacted_json(v) for k, v in value.items()}
        return value


KNOWN = Redactor()
"""The secrets this process knows."""


def register(*values: Any) -> None:
    for value in values:
        KNOWN.add(value)
    if KNOWN:
        guard_logging()


_guarded = False


def guard_logging() -> None:
    """Make every log record of this process redacted as it is made (its message, its arguments
    merged in, and its traceback's text), whatever logger and handler it goes to. Installed once."""
    global _guarded
    if _guarded:
        return
    _guarded = True
    make = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it later, from the record as made
            return record
        shown = redact_line(message)
        if shown != message:
            record.msg, record.args = shown, ()
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = redact_line("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    logging.setLogRecordFactory(redacted_record)


def redact(text: str) -> str:
    """``text`` without any known secret, in any of the forms the module's docstring lists."""
    return KNOWN.redact(text)


def redact_json(value: Any) -> Any:
    return KNOWN.redact_json(value)


def contains_secret(text: str) -> bool:
    return KNOWN.contains(text)


def url_credentials(url: str) -> list[str]:
    """The credentials in ``url``: user, password and the values of credential query parameters."""
    try:
        parts = urlsplit(url)
        found = [parts.username or "", parts.password or ""]
    except ValueError:
        return []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if CREDENTIAL_PARAMS.search(k)]
    return [f for f in found if f]


def redact_url(url: str) -> str:
    """``url`` with its user and password and the values of credential query parameters
    replaced by ``***`` (the rest kept, so it still says where it points)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return redact(url)
    if not host and not parts.netloc:
        return redact(url)
    host = f"[{host}]" if ":" in host else host
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + host + (f":{port}" if port else "")
    query = parse_qsl(parts.query, keep_blank_values=True)
    shown = urlencode([(k, MASK if CREDENTIAL_PARAMS.search(k) else v) for k, v in query], safe="*")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, shown, parts.fragment)))


def redact_args(args: Sequence[str]) -> list[str]:
    """A command line as it may be shown or stored: every URL in it through :func:`redact_url`,
    every known secret removed."""
    return [redact(_URL.sub(lambda m: redact_url(m.group(0)), str(arg))) for arg in args]


def redact_line(text: str) -> str:
    """``text`` with every URL that carries credentials through :func:`redact_url` (also those
    too short to be registered), and every known secret removed."""
    return redact(_URL.sub(lambda m: redact_url(m.group(0)) if url_credentials(m.group(0)) else m.group(0), text))


def register_settings(settings: Any, environ: Mapping[str, str]) -> None:
    """Register a session's secrets: the key in the variable ``settings.api_key_env`` names, and
    the credentials of the base URL (``settings.base_url``, else ``$OPENAI_BASE_URL``)."""
    name = getattr(settings, "api_key_env", None)
    if isinstance(name, str) and name:
        register(environ.get(name))
    url = getattr(settings, "base_url", None) or environ.get("OPENAI_BASE_URL")
    if isinstance(url, str) and url_credentials(url):
        register(*url_credentials(url))
        guard_logging()  # the HTTP client logs the URL: its credentials go, even those too short to register
