"""Hooks that other plugins (and ``evaluate()``) implement to work with pytest-llmeval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval.settings import LLMSettings


@pytest.hookspec(firstresult=True)
def pytest_llmeval_make_backend(config: pytest.Config, settings: LLMSettings) -> Any:
    """Return the backend (a :class:`pytest_llmeval.models.Backend`) the ``llm`` fixture uses,
    or None to let ``llmeval_model`` choose one. Called once, when a model is first needed."""


def pytest_llmeval_report(config: pytest.Config, report: Any) -> None:
    """Called on the reporting process at the end of a session with the final gate report
    (suites, verdicts, gate failures)."""


@pytest.hookspec(firstresult=True)
def pytest_llmeval_live_model(config: pytest.Config) -> tuple[Any, Any] | None:
    """Return ``(model, tokenizer)``, a transformers model already in memory, for the ``llm``
    fixture to run as it is (no copy; its mode is the caller's), or None. Asked when a model is
    first needed and no ``pytest_llmeval_make_backend`` gave one; ``evaluate()`` implements it.
    Outputs of such a model are never cached: its weights change under one name."""
