"""GGUF files: a transformers copy of a ``.gguf`` model, converted once and cached by content."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pytest_llmeval.files import cache_dir, cached_file_hash


def converted_path(gguf_path: str | Path, cache: Path | None = None) -> Path:
    """Where the transformers copy of ``gguf_path`` is kept (complete when it holds ``.complete``)."""
    gguf_path = Path(gguf_path).resolve()
    digest = cached_file_hash(gguf_path, cache)
    return (cache or cache_dir()) / "converted" / f"{gguf_path.stem}-{digest[:16]}"


def ensure_converted(gguf_path: str | Path, cache: Path | None = None) -> Path:
    """A transformers copy (safetensors, tokenizer, chat template) of a ``.gguf`` file.

    Converting dequantizes every tensor (about 25 s for SmolLM2-135M here); the copy is kept
    under the cache directory, keyed by the file's content hash, so later sessions load it in
    well under a second. Concurrent sessions may both convert; the first complete copy wins.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).resolve()
    target = converted_path(gguf_path, cache)
    if (target / ".complete").exists():
        return target
    root = target.parent
    digest = cached_file_hash(gguf_path, cache)
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The weights are dequantized on load; drop the marker that forbids saving them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    (work / ".complete").write_text(f"{gguf_path.name} sha256:{digest}\n")
    try:
        os.replace(work, target)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)  # another process finished first
        if not (target / ".complete").exists():
            raise
    return target
