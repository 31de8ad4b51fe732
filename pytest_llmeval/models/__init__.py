"""Models: the backend protocol, the backends, and how ``llmeval_model`` chooses one.

Everything the plugin, the batch scheduler and ``evaluate()`` ask of a model goes through
:class:`Backend` (:mod:`.protocol`). A backend is chosen by the scheme of ``llmeval_model``, in one
table (:mod:`.registry`):

- a path, a cached hub id, ``hf:ID`` or ``pkg:PACKAGE/FILE``: a local transformers model
  (:mod:`pytest_llmeval.models.hf`);
- ``openai:MODEL``: a model behind an OpenAI-compatible HTTP server (vLLM, TGI, llama.cpp's
  server, Ollama, a hosted API): :mod:`pytest_llmeval.models.http`;
- ``llamacpp:FILE.gguf``: a GGUF file run by llama.cpp (:mod:`pytest_llmeval.models.llamacpp`,
  the ``[llamacpp]`` extra), in a worker process where a crash of the engine errors the cases
  it was computing and not the session (:mod:`pytest_llmeval.models.worker`);
- ``SCHEME:REST`` for any other scheme: the backend that an installed package registers under
  the entry-point group ``pytest_llmeval.backends`` with the name ``SCHEME``. The entry point
  names a callable ``factory(spec, settings)`` that returns a :class:`Backend`; ``spec`` is
  ``REST``, the text after the scheme. A factory with a ``rootdir`` parameter also gets the
  directory that relative paths are resolved against (pytest's rootdir). A factory may carry an
  ``identity`` attribute, ``factory.identity(spec, settings)`` (``rootdir=`` too when it takes
  it), that says without loading the model what its outputs depend on (a JSON-able dict, or
  None): then its outputs go through the completion cache (:mod:`.cache`). ``docs/backends.md``
  walks through writing one.

Outputs are computed through one cached, batched path (:mod:`.batched`): look the requests up in
the completion cache, compute the misses in chunks, store them. The batch scheduler
(:mod:`.scheduler`) and the judges use it.

Module map: :mod:`.protocol` (the protocol and its errors; a leaf every backend imports),
:mod:`.registry` (schemes, loading, identity), the backends (:mod:`.hf` with :mod:`.hf_loading`,
:mod:`.hf_identity`, :mod:`.decode`, :mod:`.loglik`...; :mod:`.http`; :mod:`.llamacpp`),
:mod:`.batched`, :mod:`.scheduler`, :mod:`.cache`.
"""

from __future__ import annotations

from pytest_llmeval.models.protocol import (
    CONVERSE,
    GENERATE,
    RANK,
    Backend,
    ModelLoadError,
    ModelStateError,
    OutputError,
    Progress,
    RankUnsupported,
    capabilities,
    has_chat_template,
)
from pytest_llmeval.models.registry import (
    BUILT_IN,
    ENTRY_POINT_GROUP,
    BackendFactory,
    backend_identity,
    installed_schemes,
    load_backend,
    split_scheme,
)

__all__ = [
    "BUILT_IN",
    "CONVERSE",
    "ENTRY_POINT_GROUP",
    "GENERATE",
    "RANK",
    "Backend",
    "BackendFactory",
    "ModelLoadError",
    "ModelStateError",
    "OutputError",
    "Progress",
    "RankUnsupported",
    "backend_identity",
    "capabilities",
    "has_chat_template",
    "installed_schemes",
    "load_backend",
    "split_scheme",
]
