"""Cases drawn from a hypothesis strategy (or a seeded function): ``le.generated(strategy, n=200,
expected=oracle)`` returns ``n`` case rows, the same for the same seed, that ``le.cases`` reads like
a list of dicts.

Each row holds the drawn value's fields (a mapping's keys, else ``value``), the answer
``expected(value)`` computed under ``answer``, and an ``id`` that hashes the fields, so a case keeps
its id whatever else is drawn. Values that hash alike are drawn once.

Where the draws come from:

- a **strategy** is run by hypothesis with ``@seed(seed)``, generation only, no database; the rows
  are the first ``n`` distinct examples. That sequence is fixed for one hypothesis version and one
  set of loaded modules (hypothesis mixes into its draws, now and then, constants it reads from the
  project's own non-test modules), and it favours simple and repeated values as hypothesis does.
- a **function** ``f(rng) -> value`` is called with ``random.Random`` seeded per row index: row ``i``
  is the same on every Python and every machine, and drawing more rows keeps the first ones.

The dataset hash in a suite's fingerprint covers the rows, so a baseline notices when a draw
changed instead of comparing different cases.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from typing import Any, Callable

from pytest_llmeval.datasets.casefiles import CaseError

__all__ = ["generated", "generated_id"]

Oracle = Callable[[Any], Any]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, default=repr)


def generated_id(fields: Mapping[str, Any], prefix: str = "gen") -> str:
    """The id of a generated case: ``prefix`` and 12 hex digits of the SHA-256 of its fields."""
    return f"{prefix}-{hashlib.sha256(_canonical(dict(fields)).encode('utf-8')).hexdigest()[:12]}"


def _seed_of(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(_canonical(list(parts)).encode("utf-8")).digest()[:8], "big")


def generated(
    source: Any,
    *,
    n: int = 200,
    expected: Oracle | None = None,
    seed: int = 0,
    answer: str = "answer",
    id_prefix: str = "gen",
) -> list[dict[str, Any]]:
    """``n`` distinct cases drawn from ``source`` (a hypothesis strategy, or ``f(random.Random)``),
    each with ``expected(value)`` under ``answer`` and a stable ``id``. Raises :class:`CaseError`
    (one line) when the source cannot give ``n`` distinct cases or ``expected`` fails."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise CaseError(f"le.generated(n={n!r}): n must be a whole number of at least 1")
    rows: dict[str, dict[str, Any]] = {}

    def add(value: Any) -> bool:
        """Keep ``value`` as a row; True once there are ``n``."""
        fields = dict(value) if isinstance(value, Mapping) else {"value": value}
        if "id" in fields or answer in fields:
            raise CaseError(
                f"le.generated: a drawn value already has an {'id' if 'id' in fields else answer!r} field "
                f"({_canonical(fields)[:80]}); rename it, or pass answer='<another name>'"
            )
        case_id = generated_id(fields, id_prefix)
        if case_id not in rows:
            row = {"id": case_id, **fields}
            if expected is not None:
                row[answer] = _expected(expected, value)
            rows[case_id] = row
        return len(rows) >= n

    if _is_strategy(source):
        _draw_strategy(source, seed, n, add)
    elif callable(source):
        for i in range(n * 10):
            if add(source(random.Random(_seed_of("llmeval-generated", seed, i)))):
                break
    else:
        raise CaseError(
            f"le.generated takes a hypothesis strategy or a function of a random.Random, got {type(source).__name__}"
        )
    if len(rows) < n:
        raise CaseError(
            f"le.generated: the source gave only {len(rows)} distinct cases of the {n} asked; "
            "ask for fewer (n=) or widen the strategy"
        )
    return list(rows.values())


def _expected(oracle: Oracle, value: Any) -> Any:
    try:
        return oracle(value)
    except Exception as exc:
        raise CaseError(
            f"le.generated: expected({_canonical(value)[:60]}) raised {type(exc).__name__}: {exc}; fix the oracle"
        ) from None


def _is_strategy(source: Any) -> bool:
    try:
        from hypothesis.strategies import SearchStrategy
    except ImportError:  # pragma: no cover - hypothesis is a dependency
        return False
    return isinstance(source, SearchStrategy)


def _draw_strategy(strategy: Any, seed: int, n: int, add: Callable[[Any], bool]) -> None:
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as seed_with
    from hypothesis.errors import HypothesisException

    class _Enough(Exception):
        pass

    done = False
    problem: list[CaseError] = []

    def collect(value: Any) -> None:
        nonlocal done
        if not done:
            try:
                done = add(value)
            except CaseError as exc:  # raised after the run, so hypothesis never replays it
                problem.append(exc)
                done = True
        if done:
            raise _Enough

    test = given(strategy)(collect)
    test = seed_with(seed)(test)
    test = settings(
        max_examples=n * 10, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False, backend="hypothesis", verbosity=Verbosity.quiet,
    )(test)
    try:
        test()
    except _Enough:
        if problem:
            raise problem[0] from None
    except HypothesisException as exc:
        text = str(exc).strip()
        raise CaseError(
            f"le.generated: the strategy cannot draw ({type(exc).__name__}: {text.splitlines()[0] if text else ''}); "
            "check it"
        ) from None
