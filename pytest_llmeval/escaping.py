"""Text that came from cases, models, servers or files (case ids, suite names, reasons, answers,
model names), made safe for where it is shown. Every terminal line the plugin and the command
line print goes through :func:`terminal`; the Markdown summary puts names in :func:`markdown_code`
spans and free text through :func:`markdown_text`.

- A terminal acts on control characters: ESC and CSI start sequences that move the cursor, clear
  the screen or recolour text, so a case id could draw a fake "gate passed" line. A newline or a
  Unicode line separator would start a line of its own, and bidirectional overrides reorder what
  is shown. :func:`terminal` writes each such character as its Python escape (``\\x1b``,
  ``\\u202e``), so what is shown is what the text holds, on one line.
- Markdown: a code span ends at the first run of as many backticks as opened it, so one is opened
  with a run longer than any inside (CommonMark); free text has every ASCII punctuation character
  backslash-escaped, so nothing in it becomes a link, an image, HTML, emphasis or a table cell.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from typing import Sequence

__all__ = ["html_text", "markdown_code", "markdown_fence", "markdown_text", "one_line", "terminal"]

_KEPT = frozenset("\u200c\u200d")
"""Format characters that only join others (emoji, Indic scripts): shown as they are."""
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
_BACKTICKS = re.compile(r"`+")


@lru_cache(maxsize=4096)
def _unsafe(char: str) -> bool:
    return char not in _KEPT and unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal(text: object) -> str:
    """``text`` as one terminal line that shows exactly what it holds: every control character
    (C0, DEL, C1), format character (bidirectional overrides, zero-width marks but the joiners),
    line or paragraph separator and lone surrogate written as its Python escape."""
    text = str(text)
    if text.isprintable():  # the common case: nothing to do
        return text
    return "".join(_escape(c) if _unsafe(c) else c for c in text)


def one_line(text: object) -> str:
    """``text`` as :func:`terminal` shows it, on one line: each run of whitespace (newlines, tabs,
    line separators) becomes one space first. For a message that quotes what a server or a
    program said."""
    return terminal(" ".join(str(text).split()))


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span that shows it exactly (after :func:`terminal`): fenced
    by one backtick more than its longest run of backticks, padded with a space where it starts
    or ends with a backtick or a space."""
    content = terminal(text)
    if not content:
        return "` `"
    longest = max((len(m) for m in _BACKTICKS.findall(content)), default=0)
    fence = "`" * (longest + 1)
    pad = (content[0] in "` " or content[-1] in "` ") and content.strip(" ") != ""  # spaces alone are kept as they are
    return f"{fence} {content} {fence}" if pad else f"{fence}{content}{fence}"


def markdown_fence(lines: Sequence[str]) -> str:
    """The fence of a Markdown code block holding ``lines``: longer than any backtick run in them."""
    longest = max((len(m) for line in lines for m in _BACKTICKS.findall(line)), default=0)
    return "`" * max(3, longest + 1)


def markdown_text(text: object) -> str:
    """``text`` as Markdown that renders as the text itself: on one line (:func:`terminal`), every
    ASCII punctuation character backslash-escaped (no link, image, HTML, emphasis or table cell)."""
    return _PUNCTUATION.sub(r"\\\1", terminal(text))


def html_text(text: object) -> str:
    """``text`` inside HTML (the summary's ``<details>``): on one line, ``<>&"'`` as entities."""
    return html.escape(terminal(text), quote=True)
