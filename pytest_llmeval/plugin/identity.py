"""What an eval item is: its suite id, its case, and the ids of a case's samples.

A suite is a test function decorated with ``le.cases``; its id is its file (relative to the ini
file's folder) and the function's name. Each case is one item, or one item per sample when the
suite samples repeatedly.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.decorator import MARKER

__all__ = [
    "CASE",
    "MARKER",
    "eval_item",
    "folded_params",
    "keyword_variants",
    "sample_id",
    "samples_of",
    "stacking_problem",
    "suite_id",
    "suite_root",
    "unittest_suites",
]

CASE = pytest.StashKey[tuple[str, Any]]()
"""An item's (suite, case), once :func:`eval_item` has found it."""


def suite_root(config: pytest.Config) -> Path:
    """What suite ids are relative to: the ini file's folder (else the rootdir), so that
    ``--rootdir`` or an argument that moves the rootdir does not rename every suite."""
    return config.inipath.parent if config.inipath is not None else config.rootpath


def suite_id(config: pytest.Config, path: Path, nodeid: str) -> str:
    """A suite's id: its file relative to :func:`suite_root`, then the test's name (no case id)."""
    rel = _relative(str(path), str(suite_root(config)))
    name = nodeid.split("::", 1)[1] if "::" in nodeid else nodeid
    return f"{rel}::{name.split('[', 1)[0]}"


@functools.lru_cache(maxsize=256)
def _relative(path: str, root: str) -> str:
    """``path`` relative to ``root``, with forward slashes (worked out once per file: every case of
    its suites asks)."""
    return Path(os.path.relpath(path, root)).as_posix()


def samples_of(case: Any, repeats: int) -> list[Any]:
    """The items of one case: the case itself, or one copy per sample (``case.repeat`` 0..k-1)."""
    return [case] if repeats <= 1 else [dataclasses.replace(case, repeat=r) for r in range(repeats)]


def sample_id(case: Any, repeats: int) -> str:
    """An item's id: the case id, with ``:rN`` for sample N when the suite samples repeatedly
    (``add-001:r3``: ``-k`` and ``--lf`` select it like any id)."""
    return case.id if repeats <= 1 else f"{case.id}:r{case.repeat}"


def eval_item(item: pytest.Item) -> tuple[str, Any] | None:
    """(suite, case) of an eval item, or None for a plain test."""
    found = item.stash.get(CASE, None)
    if found is not None:
        return found
    callspec = getattr(item, "callspec", None)
    if callspec is None or item.get_closest_marker(MARKER) is None or "case" not in callspec.params:
        return None
    found = (suite_id(item.config, item.path, item.nodeid), callspec.params["case"])
    item.stash[CASE] = found
    return found


def unittest_suites(obj: Any) -> list[str]:
    """The methods of a ``unittest.TestCase`` class that ``le.cases`` marks (pytest does not
    parametrize those: each would be called without its cases); [] for anything else."""
    import sys

    unittest = sys.modules.get("unittest")
    if unittest is None or not isinstance(obj, type) or not issubclass(obj, unittest.TestCase):
        return []
    return sorted(
        name
        for name in dir(obj)
        if any(getattr(m, "name", None) == MARKER for m in getattr(getattr(obj, name, None), "pytestmark", ()) or ())
    )


_TILDE = "__llmeval_variant__"
"""What ``~`` stands for in ``-k``: pytest's ``-k`` grammar has no ``~``."""


def keyword_variants(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Let ``-k '~typos'`` select the variants of a perturbation (``qa-007~typos``) and
    ``-k 'not ~search'`` leave out the search: ``~`` in the ``-k`` expression is read as a word
    that the items whose names hold ``~`` carry (run before pytest's own ``-k``)."""
    expression = getattr(config.option, "keyword", "") or ""
    if "~" not in expression:
        return
    config.option.keyword = expression.replace("~", _TILDE)
    for item in items:
        if "~" in item.name:
            item.extra_keyword_matches.add(item.name.replace("~", _TILDE))


def _argnames(mark: Any) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
    if isinstance(names, str):
        names = names.split(",")
    return [str(n).strip() for n in names if str(n).strip()]


def stacking_problem(metafunc: pytest.Metafunc) -> str | None:
    """Why a suite's test cannot be collected as one suite, or None: ``le.cases`` given twice
    (one source would be dropped), or other parameters on it (``@pytest.mark.parametrize``, a
    parametrized fixture), which would run each case once per value and count the runs as one case."""
    name = metafunc.definition.name
    marks = list(metafunc.definition.iter_markers(MARKER))
    if len(marks) > 1:
        return (
            f"le.cases is given {len(marks)} times to {name}: a suite has one source of cases, so all but one would "
            "be dropped; join the cases into one source (le.cases(first + second), or one file), or write one test "
            "function per source"
        )
    marked = sorted({n for m in metafunc.definition.iter_markers("parametrize") for n in _argnames(m)} - {"case"})
    defs = getattr(metafunc, "_arg2fixturedefs", {})
    fixtures = sorted(n for n in metafunc.fixturenames if n != "case" and defs.get(n) and defs[n][-1].params is not None)
    if not marked and not fixtures:
        return None
    what = " and ".join(
        part
        for part in (
            f"@pytest.mark.parametrize({', '.join(marked)})" if marked else "",
            f"the parametrized fixture{'s' if len(fixtures) > 1 else ''} {', '.join(fixtures)}" if fixtures else "",
        )
        if part
    )
    return (
        f"le.cases cannot be combined with {what} on {name}: each case would run once per value and its runs "
        "would count as one case; write one test function per variant (each with le.cases), or make each variant "
        "a case of its own in the data (with its own id)"
    )


def folded_params(item: pytest.Item) -> list[str]:
    """The parameters of an eval item besides its case (set by a ``pytest_generate_tests`` hook):
    they fold several items into one case, so the run stops (see :func:`stacking_problem`)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or eval_item(item) is None:
        return []
    return sorted(set(callspec.params) - {"case"})
