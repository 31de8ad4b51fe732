"""The search for the smallest change that breaks a case: hypothesis explores and shrinks, one
search per case, and every round asks the model about all cases at once.

Design. Each case's search is an ordinary hypothesis test (``@given`` over the case's variant
strategy, seeded from the case) running in a thread of its own (at most ``parallel`` at once); its
body asks :class:`_Rounds` for the verdict on a variant and blocks. When every running search is
waiting, the calling thread
sends all their variants in **one** ``evaluate_batch`` call, hands each its verdict, and the
searches go on (exploring, or shrinking a variant that broke the case). A search's path depends
only on its own seed and verdicts, never on which other cases share its rounds, so results do not
depend on batching. hypothesis runs tests in separate threads safely from 6.136 on.

Memory. A search's smallest breaking variant is saved in a hypothesis example database (the
project's ``.hypothesis/examples`` by default in the plugin) under a key made from the case and
the perturbation (and the case's original value); the next search of that case tries it first (``@example``), and it is kept only
while it still breaks the case. Seeded hypothesis runs keep no database of their own, which is what
makes a search the same on every run.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, Sequence, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.database import ExampleDatabase
    from hypothesis.strategies import SearchStrategy

__all__ = ["SearchError", "SearchOutcome", "SearchTarget", "search", "database_key"]

T = TypeVar("T")

EvaluateBatch = Callable[[list[Any]], Sequence["bool | BaseException"]]
"""Verdicts for a batch of variants: ``True`` where the case still passes, ``False`` where it
breaks, or the exception that scoring the variant raised (an error: that case's search stops with
it, and it is never a pass or a miss)."""


class SearchError(RuntimeError):
    """The evaluator failed or answered wrongly; the message is one line."""


@dataclass(frozen=True)
class SearchTarget(Generic[T]):
    """One case to search: its key (case id and perturbation), its original value (known to pass),
    the strategy over its variants, and the seed of its search."""

    key: str
    original: T
    strategy: "SearchStrategy[T]"
    seed: int


@dataclass(frozen=True)
class SearchOutcome(Generic[T]):
    """What one case's search found: ``counterexample`` is the smallest variant that broke the
    case (``None``: none among the variants tried), ``evaluations`` how many distinct variants
    the evaluator judged, ``remembered`` whether it came from the database, ``error`` a one-line
    reason the search could not run (then nothing else counts)."""

    key: str
    original: T
    counterexample: T | None
    evaluations: int
    remembered: bool = False
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.counterexample is not None


def database_key(target_key: str, original: Any) -> bytes:
    """The example database key of a case's search: its key and its original value, so an edited
    case never replays what broke its older text."""
    digest = hashlib.sha256(target_key.encode("utf-8") + b"\0" + _encode(original)).hexdigest()[:32]
    return b"pytest-llmeval.search." + digest.encode()


def _encode(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr).encode("utf-8")


def _canonical(value: Any) -> str:
    return _encode(value).decode("utf-8")


class _Abort(Exception):
    """Raised in a search's thread once the session's evaluator failed."""


class _Breaks(Exception):
    """The body's way to tell hypothesis a variant broke the case."""


class _Errored(Exception):
    """The body's way to end a search whose variant could not be scored."""


class _Rounds:
    """Collects the variants of every waiting search and judges them in one call per round.

    A search waits on its own event, so handing out a round's verdicts wakes each search once;
    the serving thread waits until every running search has a variant pending."""

    def __init__(self, evaluate_batch: EvaluateBatch, searches: int) -> None:
        self._evaluate = evaluate_batch
        self._lock = threading.Lock()
        self._full = threading.Condition(self._lock)
        self._running = searches  # every slot counts from the start, so no round runs short
        self._pending: dict[int, Any] = {}
        self._answers: dict[int, bool | BaseException] = {}
        self._events = [threading.Event() for _ in range(searches)]
        self.failure: BaseException | None = None
        self.calls = 0

    def finish(self) -> None:
        """A slot has no more searches to run."""
        with self._lock:
            self._running -= 1
            self._full.notify()

    def ask(self, worker: int, value: Any) -> bool | BaseException:
        """The verdict on ``value`` (in a search's thread): waits for the round."""
        event = self._events[worker]
        with self._lock:
            if self.failure is not None:
                raise _Abort
            event.clear()
            self._pending[worker] = value
            if len(self._pending) == self._running:
                self._full.notify()
        event.wait()
        with self._lock:
            if self.failure is not None:
                raise _Abort
            return self._answers.pop(worker)

    def serve(self) -> None:
        """Run rounds until every search has ended (in the calling thread, where the model lives)."""
        while True:
            with self._lock:
                while self._running and len(self._pending) < self._running:
                    self._full.wait()
                if not self._running:
                    return
                batch = sorted(self._pending.items())
                self._pending.clear()
            try:
                verdicts = self._judge([value for _worker, value in batch])
            except BaseException as exc:  # stop every search; search() re-raises it
                with self._lock:
                    self.failure = exc
                for worker, _value in batch:
                    self._events[worker].set()
                return
            with self._lock:
                self._answers.update({worker: v for (worker, _value), v in zip(batch, verdicts)})
            for worker, _value in batch:
                self._events[worker].set()

    def _judge(self, values: list[Any]) -> list[bool | BaseException]:
        self.calls += 1
        verdicts = list(self._evaluate(values))
        if len(verdicts) != len(values) or not all(isinstance(v, (bool, BaseException)) for v in verdicts):
            raise SearchError(
                f"evaluate_batch returned {len(verdicts)} values for {len(values)} variants; "
                "it must return one bool (True: the case still passes) or exception per variant"
            )
        return verdicts


def search(
    targets: Sequence[SearchTarget[T]],
    evaluate_batch: EvaluateBatch,
    *,
    max_examples: int = 20,
    max_evaluations: int | None = None,
    database: "ExampleDatabase | str | Path | None" = None,
    parallel: int = 256,
) -> list[SearchOutcome[T]]:
    """Search every target for its smallest breaking variant, all searches at once.

    ``max_examples`` variants are explored per case (hypothesis's ``max_examples``); shrinking a
    breaking variant takes more, at most ``max_evaluations`` distinct variants judged per case
    (default ``10 * max_examples``). ``evaluate_batch`` is called once per round with the waiting
    variants of all cases; at most ``parallel`` searches run at once (one thread each; a finished
    one hands its thread to the next case), so a round holds at most ``parallel`` variants.
    Outcomes come back in the order of ``targets``. An evaluator that raises
    stops every search and the error propagates; a target whose strategy fails gets an outcome
    with ``error``.
    """
    keys = [t.key for t in targets]
    if len(set(keys)) != len(keys):
        raise ValueError("search(): every target needs its own key (case id and perturbation)")
    if not targets:
        return []
    db = _database(database)
    budget = 10 * max_examples if max_evaluations is None else max_evaluations
    slots = min(len(targets), max(1, parallel))
    rounds = _Rounds(evaluate_batch, slots)
    outcomes: list[SearchOutcome[T] | None] = [None] * len(targets)
    queue = iter(range(len(targets)))
    queue_lock = threading.Lock()

    def run(slot: int) -> None:
        try:
            while True:
                with queue_lock:
                    index = next(queue, None)
                if index is None:
                    return
                outcomes[index] = _search_one(slot, targets[index], rounds, max_examples, budget, db)
        finally:
            rounds.finish()

    threads = [threading.Thread(target=run, args=(slot,), name=f"llmeval-search-{slot}", daemon=True) for slot in range(slots)]
    for thread in threads:
        thread.start()
    rounds.serve()
    for thread in threads:
        thread.join()
    if rounds.failure is not None:
        raise rounds.failure
    return [o for o in outcomes if o is not None]


def _database(database: "ExampleDatabase | str | Path | None") -> "ExampleDatabase | None":
    if database is None:
        return None
    if isinstance(database, (str, Path)):
        from hypothesis.database import DirectoryBasedExampleDatabase

        return DirectoryBasedExampleDatabase(str(database))
    return database


def _remembered(db: "ExampleDatabase | None", key: bytes) -> list[Any]:
    if db is None:
        return []
    values = []
    for blob in sorted(db.fetch(key)):
        try:
            values.append(json.loads(blob.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            db.delete(key, blob)  # not one of ours (or damaged): forget it
    return values


def _search_one(worker: int, target: SearchTarget[T], rounds: _Rounds, max_examples: int, budget: int,
                db: "ExampleDatabase | None") -> SearchOutcome[T]:
    from hypothesis import HealthCheck, Phase, Verbosity, example, given, seed, settings
    key = database_key(target.key, target.original)
    stored = _remembered(db, key)
    verdicts: dict[str, bool | BaseException] = {_canonical(target.original): True}  # it passes: never ask again
    judged = 0
    found: list[Any] = []
    errors: list[BaseException] = []

    def body(value: Any) -> None:
        nonlocal judged
        canonical = _canonical(value)
        if canonical not in verdicts:
            if judged >= budget or errors:
                return  # out of budget (or stopped by an error): what is not judged does not break the case
            judged += 1
            verdicts[canonical] = rounds.ask(worker, value)
        verdict = verdicts[canonical]
        if isinstance(verdict, BaseException):
            errors[:1] = [verdict]
            raise _Errored
        if not verdict:
            found[:] = [value]  # hypothesis replays its smallest breaking variant last
            raise _Breaks

    test: Any = body
    for value in reversed(stored):
        test = example(value)(test)
    test = given(target.strategy)(test)
    test = seed(target.seed)(test)
    test = settings(
        max_examples=max_examples, deadline=None, database=None, report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink], backend="hypothesis", verbosity=Verbosity.quiet,
    )(test)
    try:
        test()
    except (_Breaks, _Errored):
        pass
    except _Abort:
        return SearchOutcome(target.key, target.original, None, judged, error="the evaluator failed")
    except Exception as exc:  # a strategy that cannot draw, a perturbation that failed
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return SearchOutcome(target.key, target.original, None, judged, error=f"{type(exc).__name__}: {first}")
    counterexample = found[0] if found else None
    if errors:
        exc = errors[0]
        text = str(exc).strip()
        error = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
        return SearchOutcome(target.key, target.original, counterexample, judged, error=error)
    remembered = counterexample is not None and any(_canonical(v) == _canonical(counterexample) for v in stored)
    if db is not None:
        for value in stored:
            if counterexample is None or _canonical(value) != _canonical(counterexample):
                db.delete(key, _encode(value))
        if counterexample is not None and not remembered:
            db.save(key, _encode(counterexample))
    return SearchOutcome(target.key, target.original, counterexample, judged, remembered=remembered)
