"""``search=N``: the item ``test_x[~search]`` that looks, for every case that passes as written, for
the smallest change of each perturbation that breaks it.

The item is set up like any test (its fixtures by pytest's own protocol), then its call runs the
batched multi-case search of :mod:`pytest_llmeval.perturb.search` instead of the test body: each
round renders every waiting variant's prompt, computes all of them in one cached, batched call
(:func:`pytest_llmeval.models.batched.answers`), and scores each with the test function itself,
called with that variant as ``case`` and its output as ``completion`` (or ``ranked``). An
``AssertionError`` is a miss (the variant breaks the case); any other exception is an error: that
case's search stops and the item errors, naming it. The other arguments get the values pytest set up
for the item, once for the whole search: a search-scored test may take any fixture that does not
depend on the case (``llm``, session fixtures, ``tmp_path``...); one that does is refused in one line.

The originals' verdicts are those their items had in this process; a case whose item ran elsewhere
(another xdist worker) or not at all is scored again (from the completion cache when it holds it).
The smallest breaking changes go into hypothesis's example database in the project's
``.hypothesis/examples`` folder and are tried first next run.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import replace
from typing import Any, Mapping, Sequence

import pytest

from pytest_llmeval.datasets.spec import CaseSpec
from pytest_llmeval.datasets.suite import Case, SuitePlan

__all__ = ["ORIGINALS", "SEARCH_FOUND", "SearchFailed", "fixture_problem", "remember_original", "run_search"]

SEARCH_FOUND = pytest.StashKey[dict[str, Any]]()
"""The search item's findings, for its record."""

ORIGINALS = pytest.StashKey[dict[tuple[str, str], tuple[bool | None, str | None]]]()
"""(suite, case id) -> (pass, miss or None for an error; the answer) of the originals this process ran."""

_OWN_FIXTURES = frozenset({"case", "completion", "ranked", "llm", "llm_settings", "request", "pytestconfig"})
_PER_CASE = frozenset({"case", "completion", "ranked", "judgement"})


class SearchFailed(Exception):
    """The search could not score a variant or could not start; one line naming the case."""


def answer_text(output: Any) -> str | None:
    """What a completion or ranking answered: the text, or the top-ranked choice."""
    from pytest_llmeval.models.outputs import Completion, Ranked

    if isinstance(output, Completion):
        return output.text
    if isinstance(output, Ranked):
        return output.choices[output.pred] if output.choices else None
    return None


def remember_original(config: pytest.Config, record: Any) -> None:
    """Keep an original case's verdict and answer (from its record) for its suite's search."""
    found = config.stash.setdefault(ORIGINALS, {})
    verdict = True if record.outcome == "pass" else False if record.outcome == "fail" else None
    answer = record.completion
    if answer is None and record.choices and record.loglikelihoods:
        lls = record.loglikelihoods
        answer = record.choices[max(range(len(lls)), key=lambda j: (lls[j], -j))]
    found[(record.suite, record.case_id)] = (verdict, answer)


def fixture_problem(item: pytest.Item) -> str | None:
    """A fixture of the test (besides the plugin's) that depends on the case: it would not follow
    the variants, so the search refuses it."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", None) or {}
    depends: dict[str, bool] = {}

    def on_case(name: str, seen: frozenset[str]) -> bool:
        if name in _PER_CASE:
            return True
        if name in depends or name in seen or name not in defs:
            return depends.get(name, False)
        depends[name] = any(on_case(arg, seen | {name}) for arg in getattr(defs[name][-1], "argnames", ()))
        return depends[name]

    bad = [n for n in item.fixturenames if n not in _OWN_FIXTURES and on_case(n, frozenset())]
    if bad:
        return (f"search= calls the test once per variant, but fixture {bad[0]!r} depends on the case and is set up once "
                "for the search; read what depends on the case from 'case' inside the test, or drop search=")  # fmt: skip
    return None


class _Scorer:
    """Scores batches of variants: prompts, one cached batched call, the test body on each."""

    def __init__(self, item: pytest.Function, plan: SuitePlan, kind: str, backend: Any, cache: Any, seed: int) -> None:
        self.item, self.plan, self.spec, self.kind = item, plan, plan.spec, kind
        self.backend, self.cache, self.seed = backend, cache, seed
        self.rounds = 0
        self.judged = 0
        self.answers: dict[str, str | None] = {}
        self.plan_cases = {c.id: c for c in plan.cases}

    def evaluate_batch(self, values: Sequence[Any]) -> list[Any]:
        """One round: True where the case still passes, False where it breaks, the exception of an error."""
        from pytest_llmeval.datasets.suite import request_for
        from pytest_llmeval.models.batched import answers
        from pytest_llmeval.models.sampling import sample_seed

        self.rounds += 1
        self.judged += len(values)
        cases = [self._case(v) for v in values]
        requests = []
        verdicts: list[Any] = [None] * len(values)
        for i, c in enumerate(cases):
            try:
                requests.append((i, request_for(self.spec, self.plan, c, self.kind, seed=sample_seed(self.seed, c.original_id or c.id, 0))))  # type: ignore[arg-type]
            except Exception as exc:  # a variant whose prompt cannot be filled
                verdicts[i] = exc
        outputs = answers([r for _, r in requests], self.backend, cache=self.cache)
        for (i, _), output in zip(requests, outputs):
            self.answers[_key(values[i])] = answer_text(output)
            verdicts[i] = output if isinstance(output, BaseException) else self._score(cases[i], output)
        return verdicts

    def _case(self, value: Any) -> Case:
        case_id, name, fields = value
        original = self.plan_cases[case_id]
        return replace(original, id=f"{case_id}~{name}" if name else case_id, fields=dict(fields), perturbation=name or None,
                       original_id=case_id if name else None)  # fmt: skip

    def _score(self, case: Case, output: Any) -> Any:
        """The test body on one variant: True (pass), False (an AssertionError: a miss) or the exception."""
        from pytest_llmeval.scoring.recording import collecting_scores

        names = getattr(getattr(self.item, "_fixtureinfo", None), "argnames", None) or tuple(self.item.funcargs)
        kwargs = {n: self.item.funcargs[n] for n in names if n in self.item.funcargs}
        kwargs["case"] = case
        kwargs["completion" if self.kind == "generate" else "ranked"] = output
        try:
            with collecting_scores():  # a variant's le.score() values are not the item's
                self.item.obj(**kwargs)
        except AssertionError:
            return False
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pytest.fail/skip too: never a pass or a miss
            return exc
        return True


def _key(value: Any) -> str:
    return json.dumps(list(value), sort_keys=True, ensure_ascii=False, default=repr)


def _load(state: Any, settings: Any, kind: str) -> Any:
    from pytest_llmeval.models import RANK, capabilities

    backend = state.get_backend(settings)
    if kind == "rank" and RANK not in capabilities(backend):
        raise SearchFailed(f"the model backend ({type(backend).__name__}) cannot score loglikelihoods, so a ranked suite cannot be searched")
    return backend


def run_search(item: pytest.Function, suite: str, plan: SuitePlan) -> None:
    """Run the suite's search in the item's call; its findings go to ``item.stash[SEARCH_FOUND]``;
    raises :class:`SearchFailed` (the item errors) when a variant errored or the search cannot run."""
    from pytest_llmeval.models.batched import Deferred
    from pytest_llmeval.plugin.identity import suite_root
    from pytest_llmeval.plugin.state import get_state
    from pytest_llmeval.settings import coerce_settings

    problem = fixture_problem(item)  # also checked before setup (pytest_runtest_setup)
    if problem is not None:
        raise SearchFailed(problem)
    state = get_state(item.config)
    spec = plan.spec
    kind = "generate" if "completion" in item.fixturenames else "rank"
    settings = coerce_settings(item.funcargs.get("llm_settings", state.settings))
    cache = state.completion_cache(settings)
    scorer = _Scorer(item, plan, kind, Deferred(lambda: _load(state, settings, kind), cache), cache, state.settings.seed)
    started = time.perf_counter()
    originals = _originals(item.config, suite, plan, scorer)
    passing = [c for c in plan.cases if originals[c.id][0] is True]
    state.say(f"llmeval: searching {len(passing)} passing cases of {suite} x {len(spec.perturb or ())} perturbations (search={spec.search})")
    outcomes = _search(scorer, spec, passing, state.settings.seed, suite_root(item.config) / ".hypothesis" / "examples")
    findings = [_finding(o, scorer, originals) for o in outcomes]
    item.stash[SEARCH_FOUND] = {
        "max_examples": spec.search, "rounds": scorer.rounds, "judged": scorer.judged, "seconds": round(time.perf_counter() - started, 3),
        "not_passing": sorted(c.id for c in plan.cases if originals[c.id][0] is not True), "searched": findings,
    }  # fmt: skip
    errors = [f for f in findings if f.get("error")]
    if errors:
        first = errors[0]
        raise SearchFailed(f"{len(errors)} of {len(findings)} searches errored; first {first['case']}~{first['perturbation']}: {first['error']}")


def _originals(config: pytest.Config, suite: str, plan: SuitePlan, scorer: _Scorer) -> dict[str, tuple[bool | None, str | None]]:
    """Each case's verdict as written and its answer: from its item when it ran here, else scored now."""
    seen = config.stash.get(ORIGINALS, {})
    out = {c.id: seen[(suite, c.id)] for c in plan.cases if (suite, c.id) in seen}
    missing = [c for c in plan.cases if c.id not in out]
    if missing:
        values = [(c.id, "", dict(c.fields)) for c in missing]
        for c, value, verdict in zip(missing, values, scorer.evaluate_batch(values)):
            out[c.id] = (verdict if isinstance(verdict, bool) else None, scorer.answers.get(_key(value)))
    return out


def _search(scorer: _Scorer, spec: CaseSpec, passing: Sequence[Case], seed: int, database: Any) -> list[Any]:
    from pytest_llmeval.datasets.expand import perturbed_fields
    from pytest_llmeval.perturb import variant_strategy
    from pytest_llmeval.perturb.draws import derive_seed
    from pytest_llmeval.perturb.search import SearchTarget, search

    targets = []
    for case in passing:
        for p in spec.perturb or ():
            fields = dict(case.fields)
            strategy = variant_strategy(fields, p, fields=perturbed_fields(spec, p)).map(functools.partial(_tagged, case.id, p.name))
            seeded = derive_seed("llmeval-search", seed, case.id, p.key)
            targets.append(SearchTarget(key=f"{case.id}~{p.name}", original=(case.id, p.name, fields), strategy=strategy, seed=seeded))
    return search(targets, scorer.evaluate_batch, max_examples=int(spec.search or 1), database=database)


def _tagged(case_id: str, name: str, fields: Any) -> tuple[str, str, Any]:
    """A variant as the search sees it: (case id, perturbation, fields). A named function, never
    a lambda: hypothesis reads a lambda's source with ast, which CPython 3.11 cannot do in threads."""
    return (case_id, name, fields)


def _finding(outcome: Any, scorer: _Scorer, originals: Mapping[str, tuple[bool | None, str | None]]) -> dict[str, Any]:
    case_id, name, fields = outcome.original
    found: dict[str, Any] = {"case": case_id, "perturbation": name, "broken": outcome.broken, "evaluations": outcome.evaluations}
    if outcome.error:
        found["error"] = outcome.error
    if outcome.broken:
        variant = outcome.counterexample[2]
        found.update(
            remembered=outcome.remembered,
            changed=_changed(fields, variant),
            answer=originals[case_id][1],
            variant_answer=scorer.answers.get(_key(outcome.counterexample)),
        )
    return found


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The texts a breaking change altered: ``{"question": [before, after]}`` (``choices[1]`` for a list's item)."""
    out: dict[str, list[Any]] = {}
    for name in before:
        a, b = before[name], after.get(name)
        if a == b:
            continue
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
            out.update({f"{name}[{i}]": [x, y] for i, (x, y) in enumerate(zip(a, b)) if x != y})
        else:
            out[name] = [a, b]
    return out
