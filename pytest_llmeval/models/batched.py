"""The one cached, batched path from requests to outputs.

Every output the plugin needs (a completion, a ranking, a judge's answer) comes the same way:
look the requests up in the completion cache, compute the misses in chunks of the backend's batch
size (alike requests together, longest first), and store each chunk's outputs as soon as it is
done. The batch scheduler (:mod:`.scheduler`) and the judges
(:mod:`pytest_llmeval.scoring.judging`) both use it; it knows nothing of pytest.

The plain call::

    outputs = answers(requests, backend, cache=cache, size=None, progress=callback)

gives one output per request, in order: a :class:`~.outputs.Completion` or :class:`~.outputs.Ranked`,
or the exception a backend returned in place of one (an :class:`~.protocol.OutputError`: that
request failed, the others did not). ``requests`` are :class:`~pytest_llmeval.datasets.suite.Request`
of one kind; ``cache`` is a :class:`~.cache.CompletionCache` or None; ``size`` the requests per
backend call (default: the backend's ``batch_size()``, else :data:`DEFAULT_CHUNK`); ``progress(n)``
is handed to the backend, which calls it as requests complete. An exception the backend raises
stops the call and propagates (the chunks done before it are stored).

:class:`CachedRun` is the same path in steps, for a caller that keeps outputs as they come (the
scheduler: a run stopped part-way loses at most the chunk in progress). ``backend`` may be a
:class:`Deferred`: loaded only when a request is not cached. :func:`window` picks the requests one
run covers.

Requests alike are computed once per run (:func:`repeats`): every field equal as the cache keys
it but the sample's seed where nothing is drawn (a ranking; a generation of a local model decoding
greedily: the same prompt in two suites, a perturbation that left a case's text as it was), and
for a ranking, its choices in any order (the rotations of ``permute="cyclic"`` when the prompt
does not list the options). A ranking's loglikelihoods are those of (context, choice) pairs, so a
rotation's are the first one's, reordered. Each request still gets its own output object, stored
in the cache under its own key.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.cache import canonical
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.models.protocol import GENERATE, RANK, OutputError, Progress, capabilities, has_chat_template

Output = Completion | Ranked
Answer = Output | BaseException
"""An output, or the exception a backend returned in its place."""
T = TypeVar("T")
DEFAULT_CHUNK = 32
"""Requests per backend call for a backend without ``batch_size()``."""


def chunk_size(backend: Any) -> int:
    """How many requests one backend call gets: the backend's batch size, else a default."""
    size = getattr(backend, "batch_size", None)
    value = size() if callable(size) else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_CHUNK


def _group(request: Request) -> tuple[Any, ...]:
    """Requests a backend can put in one batch share this (chat template, generation settings)."""
    thinking = (request.thinking is not None, bool(request.thinking), request.max_reasoning_tokens or 0)
    return (request.chat, request.max_new_tokens or 0, request.stop or (), request.target_delimiter, thinking)


def _length(request: Request) -> int:
    """A rough prompt length (characters): the backend tokenizes, this module only orders."""
    return len(request.text) + len(request.system or "") + sum(len(q) + len(a) for q, a in request.fewshot)


def chunks(requests: Sequence[Request], size: int) -> list[list[int]]:
    """The positions of ``requests`` in backend calls of up to ``size``: alike requests together,
    longest first (memory trouble shows on the first chunk; rows of a chunk pad little). Stable
    for ties."""
    ordered = sorted(range(len(requests)), key=lambda i: (_group(requests[i]), -_length(requests[i])))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def repeats(requests: Sequence[Request], *, greedy: bool = False) -> dict[int, int]:
    """The requests one computation of an earlier request answers: position -> that request's
    position. Alike: every field equal as the cache keys it, but a ranking's choices may come in
    any order, and the sample's ``seed`` and ``repeat`` do not count for a ranking (a
    loglikelihood draws nothing) nor, with ``greedy`` (a deterministic backend decoding
    greedily, see :func:`greedy_backend`), for a generation."""
    first: dict[str, int] = {}
    same: dict[int, int] = {}
    for i, request in enumerate(requests):
        key = _sameness(request, greedy)
        if key is None:
            continue
        if key in first:
            same[i] = first[key]
        else:
            first[key] = i
    return same


def _sameness(request: Request, greedy: bool) -> str | None:
    """What two requests computed once share (None: compute it on its own)."""
    if not dataclasses.is_dataclass(request) or isinstance(request, type):
        return None
    if request.kind == RANK:
        request = dataclasses.replace(request, choices=tuple(sorted(request.choices)), seed=None, repeat=0)
    elif greedy:
        request = dataclasses.replace(request, seed=None, repeat=0)
    return json.dumps(canonical(request), sort_keys=True, separators=(",", ":"), allow_nan=True)


def greedy_backend(backend: Any) -> bool:
    """Whether ``backend``'s generations do not depend on a request's seed: a deterministic
    backend (a local model) decoding greedily."""
    settings = getattr(backend, "settings", None)
    generation = getattr(settings, "generation", None)
    return bool(getattr(backend, "deterministic", False)) and generation is not None and not getattr(generation, "do_sample", True)


def answer_for(request: Request, computed: Request, answer: Answer) -> Answer:
    """``request``'s answer from the one computed for ``computed``, a request alike
    (:func:`repeats`): a copy, a ranking's choices put in ``request``'s order."""
    if isinstance(answer, BaseException):
        return answer
    if request.kind == RANK:
        return _reordered(_as_ranked(answer), _order(request.choices, computed.choices))
    return copy.copy(answer)


def _as_ranked(answer: Any) -> Ranked:
    """A backend's ranking (checked: one loglikelihood per choice) as a :class:`Ranked`."""
    if isinstance(answer, Ranked):
        return answer
    values = {f.name: getattr(answer, f.name) for f in dataclasses.fields(Ranked) if hasattr(answer, f.name)}
    values.setdefault("context", "")
    values.setdefault("is_greedy", (False,) * len(values["choices"]))
    return Ranked(**values)


def _order(wanted: Sequence[str], given: Sequence[str]) -> list[int]:
    """For each of ``wanted``, the position of the same choice in ``given`` (each used once)."""
    free: dict[str, list[int]] = {}
    for j, choice in enumerate(given):
        free.setdefault(choice, []).append(j)
    return [free[choice].pop(0) for choice in wanted]


def _reordered(ranked: Ranked, order: Sequence[int]) -> Ranked:
    """``ranked`` with every per-choice field taken in ``order``."""
    n = len(order)

    def pick(values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(values[j] for j in order) if len(values) == n else values

    return dataclasses.replace(
        ranked,
        choices=pick(ranked.choices),
        loglikelihoods=pick(ranked.loglikelihoods),
        is_greedy=pick(ranked.is_greedy),
        norm_lengths=pick(ranked.norm_lengths),
    )


def window(entries: Sequence[T], start: int, limit: int | None, eligible: Callable[[T], bool]) -> list[T]:
    """``entries[start]`` and the eligible entries after it, in order, ``limit`` in all at most
    (None: no limit): the requests one run computes together."""
    chosen = [entries[start]]
    for entry in entries[start + 1 :]:
        if limit is not None and len(chosen) >= limit:
            break
        if eligible(entry):
            chosen.append(entry)
    return chosen


class Deferred:
    """A backend that is loaded only when an output must be computed.

    ``load()`` is called once, by :meth:`get`; ``load`` may be replaced until then (a fixture
    request's loader holds for one test). With a ``cache`` (a ``CompletionCache``), the loaded
    backend's description is remembered in it, and until it is loaded what the backend says about
    itself (capabilities, chat template, fingerprint, settings) comes from the cache when the
    cache knows it, so a run whose outputs are all cached loads nothing.
    """

    def __init__(self, load: Callable[[], Any], cache: Any = None) -> None:
        self.load = load
        self.cache = cache
        self._backend: Any = None

    def get(self) -> Any:
        if self._backend is None:
            self._backend = self.load()
            if self.cache is not None:
                self.cache.remember(self._backend)
        return self._backend

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def _known(self) -> bool:
        """Whether the cache can stand for the backend without loading it."""
        return self._backend is None and self.cache is not None and self.cache.reads and self.cache.capabilities is not None

    @property
    def capabilities(self) -> frozenset[str]:
        return self.cache.capabilities if self._known() else capabilities(self.get())

    @property
    def has_chat_template(self) -> bool:
        return bool(self.cache.has_chat_template) if self._known() else has_chat_template(self.get())

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        return self.cache.fingerprint if self._known() else self.get().fingerprint

    @property
    def settings(self) -> Any:
        return self.cache.settings if self._backend is None and self.cache is not None else getattr(self.get(), "settings", None)

    def describe(self) -> str:
        return "cached backend" if self._backend is None else self._backend.describe()

    def batch_size(self) -> int | None:
        """The loaded backend's chunk size; None before it is loaded."""
        return None if self._backend is None else chunk_size(self._backend)


def resolve(backend: Any) -> Any:
    """The backend itself: a :class:`Deferred` one is loaded now."""
    return backend.get() if isinstance(backend, Deferred) else backend


def call(backend: Any, kind: str, requests: Sequence[Request], progress: Progress | None = None) -> list[Answer]:
    """One backend call: ``run_generate`` or ``run_rank`` on ``requests``, checked for one answer
    each and for answers that can be scored (:func:`checked`)."""
    run = backend.run_generate if kind == GENERATE else backend.run_rank
    outputs = list(run(requests, progress=progress))
    if len(outputs) != len(requests):
        raise RuntimeError(f"the backend returned {len(outputs)} results for {len(requests)} requests")
    return [checked(kind, output) for output in outputs]


def checked(kind: str, output: Any) -> Answer:
    """``output``, or an :class:`~.protocol.OutputError` in its place when it cannot be scored: a
    completion that is not text, a ranking whose loglikelihoods are not one finite number per
    choice (a NaN is never scored: it would compare as no choice's loss)."""
    if isinstance(output, BaseException):
        return output
    if kind == GENERATE:
        if isinstance(output, str):
            return output  # type: ignore[return-value]
        return OutputError(f"the backend answered {type(output).__name__}, not text; the answer was not scored")
    values = getattr(output, "loglikelihoods", None)
    choices = getattr(output, "choices", ())
    if not isinstance(values, (tuple, list)) or len(values) != len(choices):
        return OutputError(f"the backend answered {type(output).__name__} without one loglikelihood per choice; it was not scored")
    for value, choice in zip(values, choices):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return OutputError(f"the backend gave the choice {choice!r} the loglikelihood {value!r}, not a finite number; it was not scored")
    return output  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Chunk:
    """One backend call's answers: ``outputs[j]`` answers the request at ``positions[j]``."""

    positions: list[int]
    outputs: list[Answer]


class CachedRun:
    """:func:`answers` in steps: made, it has looked ``requests`` up in ``cache`` (``found``: the
    stored output of each request or None; ``hits`` and ``misses``: their positions); then
    :meth:`compute` answers the misses a chunk at a time."""

    def __init__(self, requests: Sequence[Request], cache: Any = None) -> None:
        self.requests = list(requests)
        kinds = {r.kind for r in self.requests}
        if len(kinds) > 1:
            raise ValueError(f"one run answers requests of one kind, got {sorted(kinds)}")
        self.kind = kinds.pop() if kinds else GENERATE
        self.cache = cache
        found = cache.lookup(self.requests) if cache is not None else [None] * len(self.requests)
        # a stored output that cannot be scored (stored by an older version) is computed again
        self.found: list[Output | None] = [None if isinstance(checked(self.kind, out), BaseException) else out for out in found]
        self.hits = [i for i, out in enumerate(self.found) if out is not None]
        self.misses = [i for i, out in enumerate(self.found) if out is None]
        self.calls: list[int] = []
        """The number of requests of every backend call made, in order."""
        self.shared = 0
        """Misses answered by the computation of another request alike (:func:`repeats`)."""

    def compute(self, backend: Any, *, size: int | None = None, progress: Progress | None = None) -> Iterator[Chunk]:
        """Answer the misses: one :class:`Chunk` per backend call, each stored in the cache before
        it is yielded (errors never are). Misses alike (:func:`repeats`) are computed once, in
        the chunk of the first, which answers all of them. ``backend`` is loaded (:func:`resolve`)
        only when there is a miss."""
        if not self.misses:
            return
        loaded = resolve(backend)
        same = repeats([self.requests[i] for i in self.misses], greedy=greedy_backend(loaded))
        followers: dict[int, list[int]] = {}
        for later, first in same.items():
            followers.setdefault(self.misses[first], []).append(self.misses[later])
        computed = [i for j, i in enumerate(self.misses) if j not in same]
        asked = [self.requests[i] for i in computed]
        for part in chunks(asked, size or chunk_size(loaded)):
            requests = [asked[j] for j in part]
            outputs = call(loaded, self.kind, requests, progress)
            self.calls.append(len(requests))
            positions = [computed[j] for j in part]
            alike = [(k, answer_for(self.requests[k], self.requests[i], output))
                     for i, output in zip(positions, outputs) for k in followers.get(i, ())]  # fmt: skip
            if alike:
                self.shared += len(alike)
                positions = positions + [k for k, _ in alike]
                requests = requests + [self.requests[k] for k, _ in alike]
                outputs = outputs + [answer for _, answer in alike]
                if progress is not None:
                    progress(len(alike))
            if self.cache is not None:
                self.cache.save_answers(loaded, requests, outputs)
            yield Chunk(positions, outputs)

    def complete(self, backend: Any, *, size: int | None = None, progress: Progress | None = None) -> list[Answer]:
        """Every request's answer, in order: the cached ones, then the computed ones."""
        out: list[Any] = list(self.found)
        for chunk in self.compute(backend, size=size, progress=progress):
            for i, output in zip(chunk.positions, chunk.outputs):
                out[i] = output
        return out


def answers(
    requests: Sequence[Request], backend: Any, *, cache: Any = None, size: int | None = None, progress: Progress | None = None
) -> list[Answer]:
    """One answer per request, in order: from ``cache`` where it holds one, else computed by
    ``backend`` in chunks of ``size`` and stored (see the module's docstring)."""
    return CachedRun(requests, cache).complete(backend, size=size, progress=progress)
