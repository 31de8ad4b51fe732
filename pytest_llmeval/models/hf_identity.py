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

import importlib.util
import re
from pathlib import Path
from typing import Any

from pytest_llmeval.files import WEIGHT_SUFFIXES, cached_file_hash, hash_files, weight_files
from pytest_llmeval.settings import LLMSettings, SettingsError, resolve_model_path

_ACCELERATOR = re.compile(r"^(cuda|hip|xpu)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


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
    from pytest_llmeval.models.hf import score_versions

    files = {p.name: cached_file_hash(p) for p in sorted(folder.iterdir()) if _described_by(p)}
    return {"backend": "hf", "weights": weights, "files": files, "device": placed[0], "dtype": placed[1], "versions": score_versions()}


def _described_by(path: Path) -> bool:
    """A file of the model folder other than the weights (hidden files are bookkeeping)."""
    return path.is_file() and path.suffix not in WEIGHT_SUFFIXES and not path.name.startswith(".")


def device_and_dtype(settings: LLMSettings) -> tuple[str, str] | None:
    """The device and dtype the backend would load the model with; torch is imported only when
    an accelerator may be present (a CPU-only torch build is known from its version file)."""
    device = settings.device
    if device == "cpu" or (device == "auto" and not accelerator_possible()):
        device = "cpu"
    else:
        from pytest_llmeval.models import ModelLoadError
        from pytest_llmeval.models.hf_loading import resolve_device

        try:
            device = resolve_device(device)
        except ModelLoadError:
            return None  # loading reports it
    if settings.dtype != "auto":
        return device, settings.dtype
    if not device.startswith("cuda"):
        return device, "float32"
    from pytest_llmeval.models.hf_loading import resolve_dtype

    return device, str(resolve_dtype("auto", device)).replace("torch.", "")


def accelerator_possible() -> bool:
    """False when the installed torch was built for CPU only (no CUDA, ROCm or XPU): then
    ``device=auto`` means the CPU. True when unsure."""
    try:
        spec = importlib.util.find_spec("torch")
        locations = list(spec.submodule_search_locations or ()) if spec else []
        text = (Path(locations[0]) / "version.py").read_text() if locations else ""
    except (OSError, ImportError, ValueError):
        return True
    found = dict(_ACCELERATOR.findall(text))
    if not found:
        return True
    return any(value not in ("None", "''", '""') for value in found.values())
