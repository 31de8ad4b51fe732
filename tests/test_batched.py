"""The one cached, batched path (models/batched.py), without pytest runs: look up, compute the
misses in chunks, store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.batched import DEFAULT_CHUNK, CachedRun, Deferred, answers, chunks, window
from pytest_llmeval.models.cache import CacheStore, CompletionCache
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.settings import LLMSettings


class Upper:
    """Answers each prompt in capitals; records every call's prompts."""

    fingerprint = {"model": "upper"}
    capabilities = frozenset({"generate"})

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self.calls: list[list[str]] = []

    def batch_size(self) -> int | None:
        return self.size

    def run_generate(self, requests: Any, progress: Any = None) -> list[Completion]:
        self.calls.append([r.text for r in requests])
        if progress is not None:
            progress(len(requests))
        return [Completion(r.text.upper()) for r in requests]


class DictCache:
    """A stand-in for ``CompletionCache``: outputs by prompt text."""

    def __init__(self, stored: dict[str, Completion] | None = None) -> None:
        self.stored = dict(stored or {})
        self.saved: list[list[str]] = []

    def lookup(self, requests: Any) -> list[Any]:
        return [self.stored.get(r.text) for r in requests]

    def save_answers(self, backend: Any, requests: Any, outputs: Any) -> None:
        self.saved.append([r.text for r in requests])
        self.stored.update({r.text: o for r, o in zip(requests, outputs)})


def generate(*texts: str, **fields: Any) -> list[Request]:
    return [Request(kind="generate", text=t, **fields) for t in texts]


@given(
    texts=st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=6), min_size=1, max_size=20, unique=True),
    cached=st.data(),
    size=st.integers(1, 6),
)
def test_every_request_gets_its_answer_and_each_miss_is_computed_once(texts: list[str], cached: Any, size: int) -> None:
    stored = cached.draw(st.sets(st.sampled_from(texts)))
    cache, backend = DictCache({t: Completion(t.upper()) for t in stored}), Upper(size)
    got = answers(generate(*texts), backend, cache=cache)
    assert [str(g) for g in got] == [t.upper() for t in texts]
    computed = [t for call in backend.calls for t in call]
    assert sorted(computed) == sorted(set(texts) - stored)
    assert all(len(call) <= size for call in backend.calls)
    assert cache.saved == backend.calls  # each chunk stored as it is done


def test_misses_are_computed_longest_first_in_chunks_of_the_batch_size() -> None:
    backend = Upper(size=2)
    assert [str(a) for a in answers(generate("a", "ccc", "bb", "dddd", "e"), backend)] == ["A", "CCC", "BB", "DDDD", "E"]
    assert backend.calls == [["dddd", "ccc"], ["bb", "a"], ["e"]]
    default = Upper()
    answers(generate(*[f"p{i}" for i in range(DEFAULT_CHUNK + 1)]), default)
    assert sorted(len(call) for call in default.calls) == [1, DEFAULT_CHUNK]


def test_requests_with_different_settings_are_not_mixed_in_a_chunk() -> None:
    requests = [Request(kind="generate", text=f"p{i}", max_new_tokens=4 if i % 2 else 8) for i in range(4)]
    assert sorted(sorted(requests[i].text for i in part) for part in chunks(requests, 2)) == [["p0", "p2"], ["p1", "p3"]]


def test_a_deferred_backend_is_loaded_only_for_a_miss_and_once() -> None:
    loads: list[int] = []
    backend = Upper()

    def load() -> Upper:
        loads.append(1)
        return backend

    deferred = Deferred(load)
    cache = DictCache({"a": Completion("A")})
    run = CachedRun(generate("a"), cache)
    assert run.hits == [0] and run.misses == [] and [str(x) for x in run.complete(deferred)] == ["A"] and loads == []
    run = CachedRun(generate("a", "b", "c"), cache)
    assert run.hits == [0] and run.misses == [1, 2]
    assert [str(x) for x in run.complete(deferred, size=1)] == ["A", "B", "C"]
    assert loads == [1] and run.calls == [1, 1] and deferred.loaded


def test_a_deferred_backend_describes_itself_from_the_cache_until_loaded(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c.sqlite")
    settings = LLMSettings(model="upper:x")
    first = CompletionCache(store, {"scheme": "upper"}, settings)
    warm = Deferred(Upper, first)
    answers(generate("hi"), warm, cache=first)
    assert warm.loaded
    again = CompletionCache(store, {"scheme": "upper"}, settings)
    cold = Deferred(lambda: pytest.fail("loaded"), again)
    assert cold.capabilities == frozenset({"generate"}) and cold.fingerprint == {"model": "upper"}
    assert not cold.has_chat_template and cold.settings is settings and cold.batch_size() is None
    assert [str(x) for x in answers(generate("hi"), cold, cache=again)] == ["HI"] and not cold.loaded


def test_an_answer_the_backend_returns_in_place_of_an_output_is_kept_in_its_place() -> None:
    class Failing(Upper):
        def run_generate(self, requests: Any, progress: Any = None) -> list[Any]:
            return [RuntimeError("no") if r.text == "b" else Completion(r.text) for r in requests]

    got = answers(generate("a", "b"), Failing())
    assert str(got[0]) == "a" and isinstance(got[1], RuntimeError)


def test_a_backend_that_answers_the_wrong_number_is_an_error() -> None:
    class Short(Upper):
        def run_generate(self, requests: Any, progress: Any = None) -> list[Completion]:
            return []

    with pytest.raises(RuntimeError, match="returned 0 results for 2 requests"):
        answers(generate("a", "b"), Short())


def test_one_run_answers_one_kind() -> None:
    with pytest.raises(ValueError, match="one kind"):
        CachedRun([Request(kind="generate", text="a"), Request(kind="rank", text="b", choices=("x",))])


def test_progress_reaches_the_backend() -> None:
    seen: list[int] = []
    answers(generate("a", "b", "c"), Upper(size=2), progress=seen.append)
    assert seen == [2, 1]


@given(n=st.integers(1, 10), start=st.integers(0, 9), limit=st.none() | st.integers(1, 10), skip=st.sets(st.integers(0, 9)))
def test_a_window_starts_at_the_asking_entry_and_takes_eligible_ones_after_it(n: int, start: int, limit: int | None, skip: set[int]) -> None:
    start = min(start, n - 1)
    got = window(list(range(n)), start, limit, lambda e: e not in skip)
    expected = [start] + [e for e in range(start + 1, n) if e not in skip]
    assert got == expected[: limit or n]
