"""The backend registry: which backend ``llmeval_model`` names, how it loads, what it is.

One table maps a scheme to its factory: the built-in schemes (:data:`BUILT_IN`, written as
``"module:function"`` strings and imported only when chosen) and the schemes installed packages
register under the entry-point group ``pytest_llmeval.backends``. Every factory has one shape,
``factory(spec, settings)`` (plus ``rootdir=`` when it takes it) returning a
:class:`~pytest_llmeval.models.protocol.Backend`, and may carry ``factory.identity(spec,
settings)`` (plus ``rootdir=``): what the backend's outputs depend on, known without loading it.
Loading (:func:`load_backend`) and identity (:func:`backend_identity`) are two lookups in that
table. No backend imports this module.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from pytest_llmeval.models.protocol import Backend, ModelLoadError
from pytest_llmeval.settings import LLMSettings

ENTRY_POINT_GROUP = "pytest_llmeval.backends"
BUILT_IN: dict[str, str] = {
    "hf": "pytest_llmeval.models.hf:make",
    "openai": "pytest_llmeval.models.http:make",
    "llamacpp": "pytest_llmeval.models.llamacpp:make",
}
"""This package's schemes and their factories; ``hf`` also serves paths, hub ids and ``pkg:``.
A built-in scheme wins over an installed entry point of the same name."""
BackendFactory = Callable[..., Backend]
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\\)(.*)$", re.S)
_NO_MODEL = (
    "no model is configured: set llmeval_model in your pytest ini (or pass --llmeval-model PATH, "
    "or override the llm_settings fixture)"
)


def split_scheme(model: str) -> tuple[str, str]:
    """(scheme, rest) of a model spec; the scheme is ``hf`` for paths and hub ids."""
    match = _SCHEME.match(model)
    if match is None or len(match.group(1)) == 1 or Path(model).exists():  # C:\..., or a path with ':'
        return "hf", model
    scheme, rest = match.group(1).lower(), match.group(2)
    return ("hf", model) if scheme == "pkg" else (scheme, rest)


def installed_schemes() -> dict[str, Any]:
    """The schemes that installed packages register (entry points, not loaded yet)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_schemes() -> list[str]:
    """Every scheme a model spec may use, for messages: the built-in ones, then installed ones."""
    built_in = ["hf", "pkg", *(s for s in BUILT_IN if s != "hf")]
    return [*built_in, *sorted(set(installed_schemes()) - set(BUILT_IN))]


def factory_of(scheme: str) -> BackendFactory | None:
    """The factory registered for ``scheme`` (imported now), or None when none is."""
    target = BUILT_IN.get(scheme)
    if target is not None:
        module, _, name = target.partition(":")
        factory: BackendFactory = getattr(importlib.import_module(module), name)
        return factory
    entry = installed_schemes().get(scheme)
    return None if entry is None else entry.load()


def load_backend(settings: LLMSettings, base_dir: Path | None = None) -> Backend:
    """Load the backend that ``settings.model`` names; :class:`ModelLoadError` says why not.
    ``base_dir``: what relative paths are resolved against (pytest's rootdir)."""
    if not settings.model:
        raise ModelLoadError(_NO_MODEL)
    scheme, spec = split_scheme(settings.model)
    try:
        factory = factory_of(scheme)
        if factory is None:
            raise ModelLoadError(
                f"model {settings.model!r}: no backend is installed for the scheme {scheme!r} (known: {', '.join(known_schemes())}); "
                f"install the package that provides it, or register one under the entry-point group {ENTRY_POINT_GROUP!r}"
            )
        backend = factory(spec, settings, **_rootdir_argument(factory, base_dir))
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"the {scheme!r} backend could not load {settings.model!r}: {type(exc).__name__}: {exc}") from exc
    missing = [name for name in ("fingerprint", "run_generate", "describe") if not hasattr(backend, name)]
    if missing:
        raise ModelLoadError(
            f"the {scheme!r} backend returned {type(backend).__name__}, which lacks {', '.join(missing)}; "
            "a backend implements pytest_llmeval.models.Backend"
        )
    return backend


def backend_identity(settings: LLMSettings, base_dir: Path | None = None) -> dict[str, Any] | None:
    """What the backend ``settings.model`` names would compute from, known without loading it:
    ``{"scheme": SCHEME, **factory.identity(...)}``. None when that backend cannot tell (its
    factory has no ``identity``) or fails to: then the completion cache is bypassed and loading
    reports any problem."""
    if not settings.model:
        return None
    scheme, spec = split_scheme(settings.model)
    try:
        identity = getattr(factory_of(scheme), "identity", None)
        found = identity(spec, settings, **_rootdir_argument(identity, base_dir)) if callable(identity) else None
    except Exception:  # the identity is an optimisation: loading says what is wrong
        return None
    return {"scheme": scheme, **found} if isinstance(found, Mapping) else None


def _rootdir_argument(function: Any, base_dir: Path | None) -> dict[str, Any]:
    """``{"rootdir": base_dir}`` for a function that takes it (to resolve relative paths), else nothing."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    return {"rootdir": base_dir} if "rootdir" in parameters else {}
