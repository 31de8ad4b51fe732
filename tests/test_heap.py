"""The allocator's free pages go back to the system after every call of the transformers backend.

A run's peak memory otherwise grows with its number of batches: glibc keeps what a batch freed,
in pieces (``benchmarks/bench_memory.py`` shows it per call). These tests count the releases and
check that they change no output; they do not measure memory, which depends on the machine.
"""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.models import heap

PROMPTS = ["What is two plus two?", "Capital of France?", "The quick brown fox?"]


def _backend(model_dir: Path) -> Any:
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import LLMSettings

    return HFBackend.load(LLMSettings(model=str(model_dir), batch_size=2))


@pytest.fixture
def releases(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls of the backend's release (and still releases)."""
    import pytest_llmeval.models.hf as hf

    calls: list[int] = []

    def counted() -> bool:
        calls.append(1)
        return heap.release()

    monkeypatch.setattr(hf, "release_heap", counted)
    return calls


def test_every_generation_and_scoring_call_releases_the_heap_once(tiny_model_dir: Path, releases: list[int]) -> None:
    from pytest_llmeval.datasets.suite import Request

    backend = _backend(tiny_model_dir)
    backend.generate(PROMPTS, chat=True, max_new_tokens=4)
    assert len(releases) == 1
    backend.loglikelihood("Question: Capital of France?\nAnswer:", [" Paris", " Rome"])
    assert len(releases) == 2
    backend.run_rank([Request(kind="rank", text="Capital of France?", choices=("Paris", "Rome"))])
    assert len(releases) == 3


def test_a_failing_call_releases_the_heap_too(tiny_model_dir: Path, releases: list[int]) -> None:
    backend = _backend(tiny_model_dir)
    with pytest.raises(RuntimeError, match="inside the block"):
        with backend._kernels():
            raise RuntimeError("inside the block")
    assert len(releases) == 1


def test_releasing_changes_no_output(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_llmeval.models.hf as hf

    backend = _backend(tiny_model_dir)
    released = [(str(c), c.finish_reason) for c in backend.generate(PROMPTS, chat=True, max_new_tokens=6)]
    scores = backend.loglikelihood("Question: Capital of France?\nAnswer:", [" Paris", " Rome"]).loglikelihoods
    monkeypatch.setattr(hf, "release_heap", lambda: False)
    kept = [(str(c), c.finish_reason) for c in backend.generate(PROMPTS, chat=True, max_new_tokens=6)]
    assert released == kept
    assert backend.loglikelihood("Question: Capital of France?\nAnswer:", [" Paris", " Rome"]).loglikelihoods == scores


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_on_glibc_the_release_trims_the_heap() -> None:
    assert heap.trimmer() is not None
    kept = [ctypes.create_string_buffer(200_000) for _ in range(50)]  # heap blocks, then freed
    del kept
    assert heap.release() is True


def test_without_malloc_trim_the_release_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    heap.trimmer.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: (_ for _ in ()).throw(OSError("no libc")))
    try:
        assert heap.trimmer() is None
        assert heap.release() is False
    finally:
        monkeypatch.undo()
        heap.trimmer.cache_clear()
