"""The one cached, batched path (models/batched.py), without pytest runs: look up, compute the
misses in chunks, store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.datasets.cyclic import rotations
from pytest_llmeval.models.batched import DEFAULT_CHUNK, CachedRun, Deferred, answers, chunks, repeats, window
from pytest_llmeval.models.cache import CacheStore, CompletionCache
from pytest_llmeval.models.outputs import Completion, Ranked
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


# ----------------------------------------------------------------------------- requests alike, computed once


class ByChoice:
    """Ranks each choice by a number drawn from (context, choice) alone, as a loglikelihood is;
    records every call's requests."""

    fingerprint = {"model": "by-choice"}
    capabilities = frozenset({"rank"})

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self.calls: list[list[Request]] = []

    def batch_size(self) -> int | None:
        return self.size

    @staticmethod
    def score(context: str, choice: str) -> float:
        return -float(sum(ord(ch) * (k + 1) for k, ch in enumerate(context + "|" + choice)) % 97) / 7

    def run_rank(self, requests: Any, progress: Any = None) -> list[Ranked]:
        self.calls.append(list(requests))
        return [
            Ranked(context=r.text, choices=r.choices, loglikelihoods=tuple(self.score(r.text, c) for c in r.choices),
                   is_greedy=tuple(c.startswith("b") for c in r.choices), norm_lengths=tuple(len(c) for c in r.choices),
                   tokens_in=len(r.text))
            for r in requests
        ]  # fmt: skip


def rotated(question: str, choices: tuple[str, ...], answer: int = 0) -> list[Request]:
    return [Request(kind="rank", text=question, choices=rot.choices) for rot in rotations(choices, answer)]


@given(
    texts=st.lists(st.sampled_from(["a", "bb", "ccc", "dd", "e"]), min_size=1, max_size=20),
    cached=st.sets(st.sampled_from(["a", "bb", "ccc", "dd", "e"])),
    size=st.integers(1, 6),
)
def test_identical_requests_are_computed_once_and_each_gets_its_own_answer(texts: list[str], cached: set[str], size: int) -> None:
    cache, backend = DictCache({t: Completion(t.upper()) for t in cached}), Upper(size)
    run = CachedRun(generate(*texts), cache)
    got = run.complete(backend)
    assert [str(g) for g in got] == [t.upper() for t in texts]
    computed = [t for call in backend.calls for t in call]
    assert sorted(computed) == sorted(set(texts) - cached)  # each distinct miss once, whatever the chunks
    assert run.shared == len(run.misses) - len(computed)
    assert len({id(got[i]) for i in run.misses}) == len(run.misses)  # never one computed object shared by two items
    assert sorted(t for saved in cache.saved for t in saved) == sorted(texts[i] for i in run.misses)  # every miss stored


def test_requests_that_differ_in_a_field_are_not_alike() -> None:
    requests = [*generate("a", "a"), Request(kind="generate", text="a", seed=1), Request(kind="generate", text="a", repeat=1),
                Request(kind="generate", text="a", chat=True), Request(kind="generate", text="a", max_new_tokens=3)]  # fmt: skip
    assert repeats(requests) == {1: 0}
    assert repeats(requests, greedy=True) == {1: 0, 2: 0, 3: 0}  # a greedy local model draws nothing with the seed
    ranks = [Request(kind="rank", text="q", choices=("x", "y")), Request(kind="rank", text="q", choices=("y", "x"), seed=5, repeat=1),
             Request(kind="rank", text="q", choices=("x", "y", "z")), Request(kind="rank", text="q ", choices=("y", "x")),
             Request(kind="rank", text="q", choices=("x", "x")), Request(kind="rank", text="q", choices=("y", "x"), target_delimiter=""),
             Request(kind="rank", text="q", choices=("y", "x"), chat=True)]  # fmt: skip
    assert repeats(ranks) == {1: 0}  # a loglikelihood draws nothing: the seed never counts


def test_the_rotations_of_a_case_are_ranked_once_and_each_gets_its_order() -> None:
    """``permute="cyclic"`` on a prompt that does not list the options: every rotation asks for the
    same (context, choice) pairs, so one request per case reaches the backend, in any chunking."""
    cases = [("Pick red.", ("red", "green", "blue", "amber")), ("Pick bb.", ("aa", "bb", "cc")), ("Pick bb.", ("bb", "aa", "bb"))]
    requests = [r for q, choices in cases for r in rotated(q, choices)]
    backend = ByChoice(size=1)
    run = CachedRun(requests)
    got = run.complete(backend)
    sent = sorted((r.text, tuple(sorted(r.choices))) for call in backend.calls for r in call)
    assert sent == sorted((q, tuple(sorted(c))) for q, c in cases)  # one request per case
    assert run.calls == [1, 1, 1] and run.shared == len(requests) - 3
    alone = ByChoice()
    for request, ranked in zip(requests, got):
        assert ranked == alone.run_rank([request])[0]  # the same as ranking that rotation on its own


def test_a_rotation_answers_with_the_error_of_the_request_computed_for_it() -> None:
    class Failing(ByChoice):
        def run_rank(self, requests: Any, progress: Any = None) -> list[Any]:
            return [RuntimeError("no") if r.text == "bad" else out for r, out in zip(requests, super().run_rank(requests))]

    got = answers([*rotated("bad", ("x", "y")), *rotated("good", ("x", "y"))], Failing())
    assert [type(g).__name__ for g in got] == ["RuntimeError", "RuntimeError", "Ranked", "Ranked"]


def test_progress_counts_the_requests_answered_alike() -> None:
    seen: list[int] = []
    answers(generate("a", "a", "b", "a"), Upper(size=1), progress=seen.append)
    assert sum(seen) == 4


def test_the_rotations_cost_the_forward_work_of_the_case_as_written(tiny_model_dir: Path) -> None:
    """On a real (tiny) model: the model's forward passes over the rotations of three 4-option
    cases read exactly the tokens they read for the cases as written, one request per backend
    call or all at once; each rotation's loglikelihoods are those of its own pairs."""
    from pytest_llmeval.models.hf import HFBackend

    backend = HFBackend.load(LLMSettings(model=str(tiny_model_dir), device="cpu"))
    read: list[int] = []
    forward = backend.model.forward

    def counted(*args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids", args[0] if args else None)
        read.append(int(ids.numel()))
        return forward(*args, **kwargs)

    backend.model.forward = counted
    questions = ["Question: What is two plus two?\nAnswer:", "Question: What is the capital of France?\nAnswer:", "Pick one:"]
    choices = ("four", "Paris", "fox", "dog")
    written = [Request(kind="rank", text=q, choices=choices) for q in questions]
    every = [r for q in questions for r in rotated(q, choices)]
    for size in (1, 16):
        read.clear()
        alone = answers(written, backend, size=size)
        as_written = list(read)
        read.clear()
        run = CachedRun(every)
        got = run.complete(backend, size=size)
        assert read == as_written and sum(read) > 0  # the same passes over the same tokens
        assert run.calls == ([len(written)] if size == 16 else [1, 1, 1])
        for k, (request, ranked) in enumerate(zip(every, got)):
            first = alone[k // len(choices)]
            by_choice = dict(zip(first.choices, first.loglikelihoods))
            assert ranked.choices == request.choices
            assert ranked.loglikelihoods == tuple(by_choice[c] for c in request.choices)
    # each rotation ranked on its own (a request of its own): the same numbers, up to float32 rounding
    # of a packed row laid out in another order (sums over a few dozen tokens: far below 1e-4)
    backend.model.forward = forward
    for request, ranked in zip(every, got):
        own = backend.run_rank([request])[0]
        assert own.choices == ranked.choices
        assert own.loglikelihoods == pytest.approx(ranked.loglikelihoods, abs=1e-4)
