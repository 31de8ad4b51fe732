"""The session's models: one backend per distinct model settings (the session's, and those of
any ``llm_settings`` override in a sub-folder's ``conftest.py``), each loaded once when an
output is first needed, and the completion caches in front of them.

A backend comes from a plugin (``pytest_llmeval_make_backend``), from a live model that a
plugin hands over (``pytest_llmeval_live_model``: ``evaluate()`` during training), or from
``llmeval_model`` (:func:`pytest_llmeval.models.load_backend`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_llmeval.plugin.options import Values
from pytest_llmeval.plugin.run_options import cache_path
from pytest_llmeval.settings import LLMSettings


class SessionModels:
    """The session's backends, one per distinct settings (once loaded, or the error that loading
    it raised), and their caches."""

    def __init__(self, config: pytest.Config, options: Values, say: Callable[[str], None]) -> None:
        self.config = config
        self.options = options
        self.say = say
        self.backends: dict[LLMSettings, Any] = {}
        self.load_errors: dict[LLMSettings, BaseException] = {}
        self._caches: dict[LLMSettings, Any] = {}
        self._cache_store: Any = None

    @property
    def backend(self) -> Any:
        """The first backend loaded, else None."""
        return next(iter(self.backends.values()), None)

    def loaded(self, settings: LLMSettings | None) -> Any:
        """The backend of ``settings`` once it is loaded, else None (``None``: the first loaded)."""
        return self.backend if settings is None else self.backends.get(settings)

    def get(self, settings: LLMSettings) -> Any:
        """The backend of ``settings``, loaded on the first call for them; a load error is raised
        again on every call."""
        if settings in self.backends:
            return self.backends[settings]
        if settings in self.load_errors:
            raise self.load_errors[settings]
        from pytest_llmeval.models import ModelLoadError

        started = time.perf_counter()
        try:
            backend = self._from_plugins(settings)
            if backend is None:
                from pytest_llmeval.models import load_backend

                with self._uncaptured() if self._converting(settings) else contextlib.nullcontext():
                    backend = load_backend(settings, base_dir=self.options.base["model"])
        except ModelLoadError as exc:
            error = self.load_errors[settings] = ModelLoadError(f"{exc}{self._where_settings_came_from(settings)}")
            raise error from None
        self.backends[settings] = backend
        cache = self.completion_cache(settings)
        if cache is not None:
            cache.remember(backend)
        if settings.model:
            self.say(f"llmeval: loaded {backend.describe()} in {time.perf_counter() - started:.1f}s")
        return backend

    def _converting(self, settings: LLMSettings) -> bool:
        """Whether loading ``settings`` converts a ``.gguf`` file first (said in one line: it
        takes about 25 s for a 135M model, once per file)."""
        model = settings.model or ""
        if not model.endswith(".gguf"):
            return False
        from pytest_llmeval.models.gguf import converted_path
        from pytest_llmeval.settings import SettingsError, resolve_model_path

        try:
            path = Path(resolve_model_path(model, self.options.base["model"]))
            if not path.is_file():
                return False
            target = converted_path(path)
        except (OSError, SettingsError):
            return False
        if (target / ".complete").exists():
            return False
        self.say(
            f"llmeval: converting {path.name} to a transformers copy under {target.parent} (once per file: later runs "
            "load the copy in about a second)"
        )
        return True

    def _uncaptured(self) -> Any:
        """pytest's capture off, so that the conversion's own progress bar shows (not on an xdist
        worker: the terminal is the controller's)."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if hasattr(self.config, "workerinput"):
            return contextlib.nullcontext()
        return capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()

    def _from_plugins(self, settings: LLMSettings) -> Any:
        """A backend a plugin made, or one wrapping the live model a plugin handed over; else None."""
        hook = self.config.hook
        backend = hook.pytest_llmeval_make_backend(config=self.config, settings=settings)
        if backend is not None:
            return backend
        live = hook.pytest_llmeval_live_model(config=self.config)
        if live is None:
            return None
        from pytest_llmeval.models.hf import HFBackend

        model, tokenizer = live  # the model as it is in memory, with the settings a pytest run would use
        return HFBackend.from_model(model, tokenizer, settings.replace(model=None))

    def _from_plugins_possible(self) -> bool:
        hook = self.config.hook
        return bool(hook.pytest_llmeval_make_backend.get_hookimpls() or hook.pytest_llmeval_live_model.get_hookimpls())

    def completion_cache(self, settings: LLMSettings, base_dir: Path | None = None) -> Any:
        """The completion cache of the backend ``settings`` name (a ``CompletionCache``), or None:
        turned off, a backend a plugin makes or hands over (which may wrap a live model whose
        weights change under one name), or one that cannot say what it is without loading."""
        if settings in self._caches:
            return self._caches[settings]
        cache = None
        mode = self.options["cache"] or "on"
        if mode != "off" and not self._from_plugins_possible():
            from pytest_llmeval.models import backend_identity
            from pytest_llmeval.models.cache import CacheStore, CompletionCache

            identity = backend_identity(settings, base_dir=base_dir or self.options.base["model"])
            if identity is not None:
                if self._cache_store is None:
                    self._cache_store = CacheStore(cache_path(self.config, self.options), readonly=mode == "readonly")
                cache = CompletionCache(self._cache_store, identity, settings, mode)
        self._caches[settings] = cache
        return cache

    def cache_served(self, settings: LLMSettings | None = None) -> Any:
        """The completion cache of ``settings`` (None: any) that served outputs without a loaded
        backend, if one did."""
        caches = self._caches.values() if settings is None else [self._caches.get(settings)]
        return next((c for c in caches if c is not None and c.hits and c.info() is not None), None)

    def close(self) -> None:
        """Close the completion cache's file, so that the file alone holds every output (called
        when pytest unconfigures, on every process, xdist workers included)."""
        if self._cache_store is not None:
            self._cache_store.close()

    def _where_settings_came_from(self, settings: LLMSettings) -> str:
        if settings.model:
            return ""
        ini = self.config.inipath
        return f" (pytest chose rootdir {self.config.rootpath} and ini file {ini or 'none'})"
