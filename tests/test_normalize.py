from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pytest_llmeval.scoring import normalize


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("  The  Answer:\tParis! ", {}, "the answer paris"),
        ("The Eiffel Tower", {"strip_articles": True}, "eiffel tower"),
        ("An apple a day", {"strip_articles": True}, "apple day"),
        ("theatre and another", {"strip_articles": True}, "theatre and another"),  # whole words only
        ("Don't STOP", {}, "dont stop"),
        ("well-known, fact", {}, "well known fact"),
        ("ﬁve  ２", {}, "five 2"),  # NFKC: ligature and full-width digit
        ("Stra\u00dfe", {}, "strasse"),  # casefold
        ("zero\u200bwidth", {}, "zerowidth"),
        ("Keep, Case", {"lower": False}, "Keep Case"),
        ("a,  b", {"strip_punctuation": False}, "a, b"),
        ("a\n\nb", {"collapse_whitespace": False}, "a\n\nb"),
        ("ﬁ", {"unicode": False, "lower": False}, "ﬁ"),
        ("", {}, ""),
    ],
)
def test_normalize_examples(text: str, kwargs: dict, expected: str) -> None:
    assert normalize(text, **kwargs) == expected


def test_normalize_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="needs a str"):
        normalize(42)  # type: ignore[arg-type]


flags = st.fixed_dictionaries(
    {
        "lower": st.booleans(),
        "strip_punctuation": st.booleans(),
        "collapse_whitespace": st.booleans(),
        "strip_articles": st.booleans(),
        "unicode": st.booleans(),
    }
)


@given(st.text(), flags)
def test_normalize_is_idempotent(text: str, kw: dict) -> None:
    once = normalize(text, **kw)
    assert normalize(once, **kw) == once


@given(st.text(alphabet=st.characters(codec="utf-8")) | st.from_regex(r"[ \ta-zA-Z.,!']{0,40}", fullmatch=True))
def test_normalize_has_no_stray_spaces(text: str) -> None:
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out
    assert not any(ch.isspace() and ch != " " for ch in out)


@given(st.text())
def test_normalize_has_no_punctuation_or_upper_case(text: str) -> None:
    import unicodedata

    out = normalize(text)
    assert not any(unicodedata.category(ch).startswith("P") for ch in out)
    assert out.casefold() == out
