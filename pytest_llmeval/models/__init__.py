"""Model backends behind one small protocol; the plugin only talks to :class:`Backend`."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import LLMSettings

Progress = Callable[[int], None]


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says what was tried and how to fix it."""


@runtime_checkable
class Backend(Protocol):
    """What the ``llm`` fixture is: a loaded model that answers batches of requests."""

    settings: LLMSettings

    @property
    def fingerprint(self) -> Mapping[str, Any]: ...

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]: ...

    def run_rank(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Ranked]: ...


def load_backend(settings: LLMSettings) -> Backend:
    """Load the backend that ``settings.model`` names (today: a local transformers model)."""
    from pytest_llmeval.models.hf import HFBackend

    return HFBackend.load(settings)
