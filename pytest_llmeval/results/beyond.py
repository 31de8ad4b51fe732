"""A suite's figures beyond its cases as written: its robustness from its variants (``perturb=``),
and the units the baseline compares (the suite, then each perturbation as ``suite~name``). How
records are split and folded is :mod:`~pytest_llmeval.results.variant_records`'s.

The suite's rate, ``min_pass_rate`` and its baseline verdict are over the cases as written (or, for
a cyclic suite, over cases right under every rotation), so a suite without these options keeps
every figure it had. Pure functions over records; no pytest.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Mapping

from pytest_llmeval.results.records import Outcome
from pytest_llmeval.results.variant_records import VARIANT_SEP

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval.results.robustness import Robustness
    from pytest_llmeval.results.stats import SuiteResult

__all__ = ["suite_of", "suite_robustness", "units", "verdicts"]


def verdicts(result: SuiteResult) -> dict[str, bool]:
    """Each case's verdict, pass (True) or miss (False); an errored or uncounted case has none."""
    return {k: o is Outcome.PASS for k, o in result.outcomes.items() if o in (Outcome.PASS, Outcome.MISS)}


def suite_robustness(result: SuiteResult) -> Robustness | None:
    """The suite's robustness figures from its cases and its variants; None without variants."""
    if not result.variants:
        return None
    from pytest_llmeval.results.robustness import robustness

    return robustness(verdicts(result), {name: verdicts(v) for name, v in result.variants.items()})


def suite_of(unit: str) -> str:
    """The suite a comparison unit belongs to (``f.py::test_qa~typos`` -> ``f.py::test_qa``)."""
    file, sep, name = unit.rpartition("::")
    return f"{file}{sep}{name.split(VARIANT_SEP, 1)[0]}"


def units(suites: Iterable[SuiteResult]) -> list[SuiteResult]:
    """What the baseline compares: each suite, then each of its perturbations as a suite of its own
    (``suite~typos``, its cases the originals' ids), fingerprinted by its variants' hash in place
    of the dataset's, so a perturbation that now draws other texts is INCOMPARABLE alone."""
    out = []
    for s in suites:
        out.append(s)
        hashes = s.fingerprint.extra.get("perturb")
        for name, v in s.variants.items():
            dataset = hashes.get(name) if isinstance(hashes, Mapping) else None
            fingerprint = replace(s.fingerprint, dataset=dataset, extra={k: x for k, x in s.fingerprint.extra.items() if k != "perturb"})
            out.append(replace(v, name=f"{s.name}{VARIANT_SEP}{name}", fingerprint=fingerprint, variants={}))
    return out
