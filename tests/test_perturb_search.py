"""The batched search for the smallest breaking change, with a fake evaluator: minimal
counterexamples, one evaluator call per round, the same result on every run, and memory kept in
hypothesis's example database."""

from __future__ import annotations

import threading

import pytest
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

import pytest_llmeval.perturb as P
from pytest_llmeval.perturb.draws import derive_seed
from pytest_llmeval.perturb.search import SearchError, SearchTarget, database_key, search

QUESTION = "What is the capital of France? Tell me number {i} please."


def cases(n: int) -> list[dict]:
    return [{"id": f"c{i}", "question": QUESTION.format(i=i)} for i in range(n)]


def targets(rows: list[dict], perturbation: P.Perturbation = P.typos(rate=0.1)) -> list[SearchTarget]:
    return [
        SearchTarget(f"{c['id']}~{perturbation.name}", c, P.variant_strategy(c, perturbation, fields=["question"]),
                     derive_seed(0, c["id"], perturbation.key))
        for c in rows
    ]


def changed(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))


class Fake:
    """Case ``ci`` breaks once ``2 + i % 3`` characters of its question changed (typos keep length)."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = {c["id"]: c for c in rows}
        self.calls: list[list[str]] = []
        self.thread = None

    def threshold(self, case_id: str) -> int:
        return 2 + int(case_id[1:]) % 3

    def __call__(self, batch: list[dict]) -> list[bool]:
        self.thread = threading.current_thread()
        self.calls.append([v["id"] for v in batch])
        return [changed(self.rows[v["id"]]["question"], v["question"]) < self.threshold(v["id"]) for v in batch]


def test_each_case_shrinks_to_its_smallest_breaking_change() -> None:
    rows = cases(12)
    fake = Fake(rows)
    outcomes = search(targets(rows), fake, max_examples=20)
    assert [o.key for o in outcomes] == [f"c{i}~typos" for i in range(12)]
    for o in outcomes:
        assert o.error is None and o.broken
        # exactly the threshold: one more typo than needed would not be the smallest change
        assert changed(o.original["question"], o.counterexample["question"]) == fake.threshold(o.original["id"])
        assert o.counterexample["id"] == o.original["id"]


def test_all_searches_share_one_evaluator_call_per_round() -> None:
    rows = cases(16)
    fake = Fake(rows)
    outcomes = search(targets(rows), fake, max_examples=20)
    assert fake.thread is threading.main_thread()  # the model is called from the caller's thread
    assert sum(len(c) for c in fake.calls) == sum(o.evaluations for o in outcomes)
    # every round holds every search still running: the first rounds hold all 16 cases
    assert [len(c) for c in fake.calls[:3]] == [16, 16, 16]
    assert all(len(set(c)) == len(c) for c in fake.calls)  # one variant per case per round
    assert len(fake.calls) <= max(o.evaluations for o in outcomes)
    assert len(fake.calls) < sum(o.evaluations for o in outcomes) / 4


def test_the_search_is_the_same_on_every_run_whatever_the_batching() -> None:
    rows = cases(6)
    together = search(targets(rows), Fake(rows), max_examples=15)
    alone = [search(targets([row]), Fake(rows), max_examples=15)[0] for row in rows]
    again = search(targets(rows), Fake(rows), max_examples=15)
    assert together == again == alone


def test_a_case_that_never_breaks_has_no_counterexample() -> None:
    rows = cases(3)
    outcomes = search(targets(rows), lambda batch: [True] * len(batch), max_examples=10)
    assert [o.counterexample for o in outcomes] == [None, None, None]
    assert all(0 < o.evaluations <= 10 for o in outcomes)


def test_found_counterexamples_are_remembered_and_tried_first() -> None:
    rows = cases(4)
    db = InMemoryExampleDatabase()
    first = search(targets(rows), Fake(rows), max_examples=20, database=db)
    assert all(o.broken and not o.remembered for o in first)
    stored = list(db.fetch(database_key("c0~typos", rows[0])))
    assert len(stored) == 1
    fake = Fake(rows)
    second = search(targets(rows), fake, max_examples=20, database=db)
    assert [o.counterexample for o in second] == [o.counterexample for o in first]
    assert all(o.remembered and o.evaluations == 1 for o in second)
    assert len(fake.calls) == 1 and fake.calls[0] == ["c0", "c1", "c2", "c3"]


def test_a_remembered_counterexample_that_no_longer_breaks_is_forgotten() -> None:
    rows = cases(2)
    db = InMemoryExampleDatabase()
    search(targets(rows), Fake(rows), max_examples=20, database=db)
    fixed = search(targets(rows), lambda batch: [True] * len(batch), max_examples=5, database=db)
    assert all(not o.broken for o in fixed)
    assert list(db.fetch(database_key("c0~typos", rows[0]))) == []


def test_an_edited_case_does_not_replay_what_broke_its_old_text() -> None:
    rows = cases(1)
    db = InMemoryExampleDatabase()
    search(targets(rows), Fake(rows), max_examples=20, database=db)
    edited = [{"id": "c0", "question": "What is the capital of Italy? Tell me number 0 please."}]
    [outcome] = search(targets(edited), Fake(edited), max_examples=20, database=db)
    assert not outcome.remembered and "Italy" in outcome.counterexample["question"]


def test_the_database_can_be_a_folder(tmp_path) -> None:
    rows = cases(2)
    search(targets(rows), Fake(rows), max_examples=20, database=tmp_path / "examples")
    again = search(targets(rows), Fake(rows), max_examples=20, database=tmp_path / "examples")
    assert all(o.remembered for o in again)


def test_the_budget_bounds_the_evaluations_of_a_case() -> None:
    rows = cases(3)
    outcomes = search(targets(rows), Fake(rows), max_examples=20, max_evaluations=4)
    assert all(o.evaluations <= 4 for o in outcomes)


def test_an_evaluator_that_fails_stops_the_search_with_its_error() -> None:
    rows = cases(5)
    calls = []

    def broken(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("the model crashed")
        return [True] * len(batch)

    with pytest.raises(RuntimeError, match="the model crashed"):
        search(targets(rows), broken, max_examples=20)
    assert len(calls) == 2
    with pytest.raises(SearchError, match="returned 1 values for 5 variants"):
        search(targets(rows), lambda batch: [True], max_examples=5)


def test_a_strategy_that_fails_is_an_error_of_that_case_only() -> None:
    rows = cases(2)
    bad = P.from_function("count", lambda t, r: len(t))
    ts = targets(rows[:1]) + targets(rows[1:], bad)
    outcomes = search(ts, Fake(rows), max_examples=10)
    assert outcomes[0].error is None and outcomes[0].broken
    assert outcomes[1].error is not None and "must return a str" in outcomes[1].error and "\n" not in outcomes[1].error


def test_any_strategy_can_be_searched() -> None:
    target = SearchTarget("ints", 0, st.integers(0, 1000), seed=1)
    [outcome] = search([target], lambda batch: [v < 137 for v in batch], max_examples=50)
    assert outcome.counterexample == 137


def test_keys_must_be_distinct() -> None:
    rows = cases(1)
    with pytest.raises(ValueError, match="its own key"):
        search(targets(rows) * 2, Fake(rows))


def test_at_most_parallel_searches_share_a_round_and_results_do_not_change() -> None:
    rows = cases(9)
    fake = Fake(rows)
    windowed = search(targets(rows), fake, max_examples=15, parallel=4)
    assert max(len(c) for c in fake.calls) == 4
    assert windowed == search(targets(rows), Fake(rows), max_examples=15)
    assert search([], Fake(rows)) == []
