"""What a local transformers model's outputs depend on, known without loading it.

The completion cache keys outputs by this identity, so that a run whose outputs are all cached
loads no model. It holds the content hashes of the weights (the same hash the loaded backend's
fingerprint records) and of every other file of the model folder (configuration, generation
configuration, tokenizer, chat template), the device and dtype the model would run with, and
the versions of transformers, torch and tokenizers. Anything that changes the loaded backend's
fingerprint therefore changes the identity. Hashes are remembered by (path, size, mtime), so
computing the identity of an unchanged model reads no weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval.files import WEIGHT_SUFFIXES, cached_file_hash, hash_files, weight_files
from pytest_llmeval.models.hf_loading import accelerator_possible, placement, score_versions
from pytest_llmeval.models.protocol import ModelLoadError
from pytest_llmeval.settings import LLMSettings, SettingsError, resolve_model_path

__all__ = ["accelerator_possible", "device_and_dtype", "model_identity"]


def model_identity(settings: LLMSettings, rootdir: Path | None = None) -> dict[str, Any] | None:
    """The identity of ``settings.model`` (a model folder or a ``.gguf`` file already converted),
    or None when it cannot be known without loading (a hub id, a GGUF not converted yet)."""
    if not settings.model:
        return None
    try:
        path = Path(resolve_model_path(settings.model, rootdir))
    except SettingsError:
        return None
    if path.is_file() and path.suffix == ".gguf":
        from pytest_llmeval.models.gguf import converted_path

        weights = "sha256:" + cached_file_hash(path)
        folder = converted_path(path)
        if not (folder / ".complete").is_file():
            return None
    elif path.is_dir() and weight_files(path):
        weights, folder = hash_files(weight_files(path)), path
    else:
        return None
    placed = device_and_dtype(settings)
    if placed is None:
        return None
    files = {p.name: cached_file_hash(p) for p in sorted(folder.iterdir()) if _described_by(p)}
    return {"backend": "hf", "weights": weights, "files": files, "device": placed[0], "dtype": placed[1], "versions": score_versions()}


def _described_by(path: Path) -> bool:
    """A file of the model folder other than the weights (hidden files are bookkeeping)."""
    return path.is_file() and path.suffix not in WEIGHT_SUFFIXES and not path.name.startswith(".")


def device_and_dtype(settings: LLMSettings) -> tuple[str, str] | None:
    """The device and dtype the backend would load the model with (:func:`.hf_loading.placement`),
    or None when that device is not there (loading reports it)."""
    try:
        return placement(settings)
    except ModelLoadError:
        return None
