"""What every backend is and may raise: the :class:`Backend` protocol, its errors, its capabilities.

A leaf: backends import it, and it imports no backend and not the registry
(:mod:`pytest_llmeval.models.registry`), so that choosing a backend and being one never import
each other.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import LLMSettings

Progress = Callable[[int], None]
GENERATE = "generate"
RANK = "rank"
CONVERSE = "converse"
"""A backend that answers a workflow round: a request with ``messages`` and ``tools``
(:mod:`pytest_llmeval.models.tool_calls`)."""


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says what was tried and how to fix it."""


class ModelStateError(RuntimeError):
    """The model is not in the state evaluation needs (e.g. left in training mode)."""


class OutputError(RuntimeError):
    """One case's output could not be computed (a request that failed for good, a budget
    spent, a server that cannot rank); the message is one line that says why. A backend may
    return it in place of a result: that case errors, the others go on."""


class RankUnsupported(OutputError):
    """The backend cannot score loglikelihoods at all (a server without prompt log-probabilities):
    ``run_rank`` raises it for the whole call, and the backend drops ``"rank"`` from its
    ``capabilities``. A judge then answers by generating its label instead."""


@runtime_checkable
class Backend(Protocol):
    """What the ``llm`` fixture is: a model that answers batches of requests.

    ``capabilities`` holds ``"generate"`` and, when the backend can score loglikelihoods,
    ``"rank"``; the plugin errors a ``ranked`` suite with one clear line otherwise. ``"converse"``:
    it answers workflow rounds, requests with ``messages`` and ``tools`` (a completion with a
    ``reply``, see :mod:`pytest_llmeval.models.tool_calls`); a workflow suite errors without it.

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

    Optional, for the completion cache: an ``identity`` that says, *without loading the
    model*, what its outputs depend on (a JSON-able dict, or None when it cannot tell). It is an
    attribute of the backend's factory in the registry (:mod:`pytest_llmeval.models.registry`),
    called as ``factory.identity(spec, settings)`` (with ``rootdir=`` when it takes it); the
    local transformers backend's gives weights, tokenizer and template file hashes, device,
    dtype and versions, the ``openai:`` backend's the model name and the server's address. It
    must change whenever the loaded backend's ``fingerprint`` would, except for what a backend
    learns only from its answers: a fingerprint may gain keys after them (a served model's
    reported name and build), and the cache keeps the extended one. With it, outputs are cached
    and a run whose outputs are all cached loads nothing and sends nothing. A backend without it
    bypasses the cache.
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
        """One ranking per request, in order (an :class:`OutputError` in place of a failed one).

        A choice's loglikelihood is that of the pair (context, ``target_delimiter`` + choice): it
        does not depend on the other choices or their order, so the plugin asks once for requests
        whose choices differ only in order (the rotations of ``permute="cyclic"``)."""
        ...

    def check(self) -> str | None:
        """Called after each eval test: a problem the test caused (after putting it right), or None."""
        ...


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
