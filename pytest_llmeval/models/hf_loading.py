"""Loading a local transformers model: a directory, a cached hub id or a ``.gguf`` file.

Says what is wrong in one line (no model, a folder without config or tokenizer, a hub id that is
not cached) instead of passing on transformers' own advice. Where the model runs (device and
dtype) is decided once, by :func:`placement`, for loading and for the identity alike.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.files import cached_file_hash, hash_files, sha256_text, weight_files
from pytest_llmeval.models.gguf import ensure_converted
from pytest_llmeval.models.protocol import ModelLoadError
from pytest_llmeval.settings import LLMSettings, SettingsError, resolve_model_path

if TYPE_CHECKING:  # pragma: no cover
    import torch

_ACCELERATOR = re.compile(r"^(cuda|hip|xpu)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


def placement(settings: LLMSettings) -> tuple[str, str]:
    """The device and dtype (names: ``"cpu"``, ``"float32"``) the model of ``settings`` runs with;
    :class:`ModelLoadError` for a device that is not there. torch is imported only when an
    accelerator may be present (a CPU-only torch build is known from its version file)."""
    device = settings.device
    if device == "cpu" or (device == "auto" and not accelerator_possible()):
        device = "cpu"
    else:
        device = resolve_device(device)
    if settings.dtype != "auto":
        return device, settings.dtype
    if not device.startswith("cuda"):
        return device, "float32"
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


def score_versions() -> dict[str, str]:
    """The versions that can change this backend's scores: transformers, torch, tokenizers
    (those installed; the plugin adds its own version to every suite's fingerprint)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in ("transformers", "torch", "tokenizers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {name!r} was asked for but CUDA is not available; use --llmeval-device cpu")
    return name


def resolve_dtype(name: str, device: str) -> "torch.dtype":
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def weights_fingerprint(model: Any) -> str:
    """A content hash of a live model's parameters and buffers (for models not read from files)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        t = tensor.detach().to("cpu").contiguous()
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        digest.update(t.numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return sha256_text(backend.to_str())
    vocab = sorted(tokenizer.get_vocab().items())
    return sha256_text(repr(vocab))


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    weights: str | None
    source: str


def load_model(settings: LLMSettings, device: str, dtype: "torch.dtype", rootdir: Path | None) -> _Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not settings.model:
        raise ModelLoadError(
            "no model is configured: set llmeval_model in your pytest ini (or pass --llmeval-model PATH, "
            "or override the llm_settings fixture)"
        )
    try:
        spec = resolve_model_path(settings.model, rootdir)
    except SettingsError as exc:
        raise ModelLoadError(str(exc)) from None
    path = Path(spec)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": settings.trust_remote_code}
    if path.is_file() and path.suffix == ".gguf":
        weights = "sha256:" + cached_file_hash(path)
        directory = ensure_converted(path)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    elif path.is_dir():
        files = weight_files(path)
        if not files:
            raise ModelLoadError(f"{path} holds no weight files (*.safetensors, *.bin); point llmeval_model at a model directory")
        check_model_dir(path)
        weights = hash_files(files)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    elif path.exists():
        raise ModelLoadError(f"{path} is neither a model directory nor a .gguf file")
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(spec, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(spec, local_files_only=True, **kwargs)
        except OSError:
            raise ModelLoadError(
                f"model {spec!r} is not a local path and is not in the local Hugging Face cache; "
                "nothing is downloaded at run time: point llmeval_model at a local directory or .gguf file"
            ) from None
        weights = None
    return _Loaded(model=model, tokenizer=tokenizer, weights=weights, source=spec)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "vocab.txt")


def check_model_dir(path: Path) -> None:
    """Name what a model directory lacks, instead of transformers' advice about other libraries."""
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json (the model's configuration)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append(f"a tokenizer ({', '.join(TOKENIZER_FILES[:3])}, ...)")
    if missing:
        raise ModelLoadError(
            f"model directory {path} has weights but lacks {' and '.join(missing)}; "
            "save the model with save_pretrained() and the tokenizer with tokenizer.save_pretrained() into it"
        )
