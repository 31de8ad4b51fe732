"""Models: the backend protocol, the backends, and how ``llmeval_model`` chooses one.

Everything the plugin, the batch scheduler and ``evaluate()`` ask of a model goes through
:class:`Backend`. A backend is chosen by the scheme of ``llmeval_model``:

- a path, a cached hub id, ``hf:ID`` or ``pkg:PACKAGE/FILE``: a local transformers model
  (:mod:`pytest_llmeval.models.hf`);
- ``openai:MODEL``: a model behind an OpenAI-compatible HTTP server (vLLM, TGI, llama.cpp's
  server, Ollama, a hosted API): :mod:`pytest_llmeval.models.http`;
- ``SCHEME:REST`` for any other scheme: the backend that an installed package registers under
  the entry-point group ``pytest_llmeval.backends`` with the name ``SCHEME``. The entry point
  names a callable ``factory(spec, settings)`` that returns a :class:`Backend`; ``spec`` is
  ``REST``, the text after the scheme. A factory with a ``rootdir`` parameter also gets the
  directory that relative paths are resolved against (pytest's rootdir).
- ``llamacpp:FILE.gguf``: a GGUF file run by llama.cpp (:mod:`pytest_llmeval.models.llamacpp`,
  the ``[llamacpp]`` extra), registered through the same entry-point group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import LLMSettings

Progress = Callable[[int], None]
ENTRY_POINT_GROUP = "pytest_llmeval.backends"
GENERATE = "generate"
RANK = "rank"
BUILT_IN = ("openai",)
"""Schemes served by this package's own backends besides ``hf`` and ``pkg``."""
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\\)(.*)$", re.S)


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says what was tried and how to fix it."""


class ModelStateError(RuntimeError):
    """The model is not in the state evaluation needs (e.g. left in training mode)."""


class OutputError(RuntimeError):
    """One case's output could not be computed (a request that failed for good, a budget
    spent, a server that cannot rank); the message is one line that says why. A backend may
    return it in place of a result: that case errors, the others go on."""


@runtime_checkable
class Backend(Protocol):
    """What the ``llm`` fixture is: a model that answers batches of requests.

    ``capabilities`` holds ``"generate"`` and, when the backend can score loglikelihoods,
    ``"rank"``; the plugin errors a ``ranked`` suite with one clear line otherwise.

    Two things the plugin reads when a backend offers them (see :func:`has_chat_template`):

    - ``has_chat_template`` (optional attribute, a bool): whether the model has a chat
      template, i.e. is an instruct model that expects ``chat=True``. Without it, the
      fingerprint's ``"chat_template"`` key tells: set (a hash of the template) means yes,
      missing or ``None`` means no.
    - ``fingerprint["versions"]`` (optional): ``{name: version}`` of the software that can
      change a score (the HF backend gives transformers, torch and tokenizers; an HTTP
      backend would give the server's reported model and build; the plugin adds its own
      version). They are compared against the baseline, not required to match: a verdict
      says which changed.

    Optional, for the completion cache: an ``identity(...)`` that says, *without loading the
    model*, what its outputs depend on (a JSON-able dict, or None when it cannot tell). For a
    ``SCHEME:`` backend it is an attribute of the entry point's factory, called as
    ``factory.identity(spec, settings)``; the local transformers backend offers
    ``HFBackend.identity(settings, rootdir)`` (weights, tokenizer and template file hashes,
    device, dtype, versions); the ``openai:`` backend gives the model name and the server's
    address. It must change whenever the loaded backend's ``fingerprint`` would, except for what
    a backend learns only from its answers: a fingerprint may gain keys after them (a served
    model's reported name and build), and the cache keeps the extended one. With it,
    outputs are cached and a run whose outputs are all cached loads nothing and sends nothing.
    A backend without it bypasses the cache (see :func:`backend_identity`).
    """

    settings: LLMSettings
    capabilities: frozenset[str]

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        """What determines the outputs (weights, tokenizer, template, dtype...): no secrets."""
        ...

    def describe(self) -> str:
        """One line for the terminal: what was loaded, and where it runs."""
        ...

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        """One completion per request, in order. A backend whose cases can fail one by one (an
        HTTP backend) puts an :class:`OutputError` in place of a failed case's completion."""
        ...

    def run_rank(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Ranked]:
        """One ranking per request, in order (an :class:`OutputError` in place of a failed one)."""
        ...

    def check(self) -> str | None:
        """Called after each eval test: a problem the test caused (after putting it right), or None."""
        ...


BackendFactory = Callable[[str, LLMSettings], Backend]


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


def load_backend(settings: LLMSettings, base_dir: Path | None = None) -> Backend:
    """Load the backend that ``settings.model`` names; :class:`ModelLoadError` says why not."""
    if not settings.model:
        raise ModelLoadError(
            "no model is configured: set llmeval_model in your pytest ini (or pass --llmeval-model PATH, "
            "or override the llm_settings fixture)"
        )
    scheme, spec = split_scheme(settings.model)
    if scheme == "hf":
        from pytest_llmeval.models.hf import HFBackend

        return HFBackend.load(settings.replace(model=spec), rootdir=base_dir)
    if scheme in BUILT_IN:
        from pytest_llmeval.models.http import HTTPBackend

        return HTTPBackend.load(spec, settings)
    found = installed_schemes()
    if scheme not in found:
        known = ", ".join(["hf", "pkg", *BUILT_IN, *sorted(found)])
        raise ModelLoadError(
            f"model {settings.model!r}: no backend is installed for the scheme {scheme!r} (known: {known}); "
            f"install the package that provides it, or register one under the entry-point group {ENTRY_POINT_GROUP!r}"
        )
    try:
        factory: BackendFactory = found[scheme].load()
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
    """What the backend ``settings.model`` names would compute from, known without loading it;
    None when that backend cannot tell (it has no ``identity``) or fails to: then the completion
    cache is bypassed and loading reports any problem."""
    if not settings.model:
        return None
    scheme, spec = split_scheme(settings.model)
    try:
        if scheme == "hf":
            from pytest_llmeval.models.hf import HFBackend

            found = HFBackend.identity(settings.replace(model=spec), base_dir)
        elif scheme in BUILT_IN:
            from pytest_llmeval.models.http import HTTPBackend

            found = HTTPBackend.identity(spec, settings)
        else:
            entry = installed_schemes().get(scheme)
            identity = getattr(entry.load(), "identity", None) if entry is not None else None
            found = identity(spec, settings) if callable(identity) else None
    except Exception:  # the identity is an optimisation: loading says what is wrong
        return None
    return {"scheme": scheme, **found} if isinstance(found, Mapping) else None


def _rootdir_argument(factory: Any, base_dir: Path | None) -> dict[str, Any]:
    """``{"rootdir": base_dir}`` for a factory that takes it (to resolve relative paths), else nothing."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {"rootdir": base_dir} if "rootdir" in parameters else {}


def has_chat_template(backend: Any) -> bool:
    """Whether ``backend``'s model has a chat template: its ``has_chat_template`` attribute
    when it has one, else whether its fingerprint records a ``chat_template``."""
    said = getattr(backend, "has_chat_template", None)
    if isinstance(said, bool):
        return said
    fingerprint = getattr(backend, "fingerprint", None)
    return isinstance(fingerprint, Mapping) and fingerprint.get("chat_template") is not None


def capabilities(backend: Any) -> frozenset[str]:
    """What ``backend`` can do; a backend without the attribute is taken to generate only."""
    return frozenset(getattr(backend, "capabilities", (GENERATE,)))
