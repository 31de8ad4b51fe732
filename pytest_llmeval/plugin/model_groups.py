"""Which model each eval item runs on: the ``llm_settings`` fixture that applies to it.

pytest resolves a fixture per test, so an ``llm_settings`` in a sub-folder's ``conftest.py``
overrides the session's for the tests under it. After collection, items are grouped by the
definition of ``llm_settings`` that applies to them (:meth:`ModelGroups.group_of`): the batch
scheduler never puts two groups in one window. A group's settings are that fixture's value,
known when its first item sets up; each distinct value gets its own backend
(:class:`~.backends.SessionModels`), loaded once.

What cannot be honoured per folder is refused with one line (:meth:`ModelGroups.refusal`): a
``seed`` other than the session's for sampled answers (samples are seeded when the session is
planned), and a fixture that gives the tests under it different settings (they are batched on
one model).
The session-scoped ``llm`` fixture follows the folder too (:meth:`ModelGroups.before_setup`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.settings import LLMSettings

__all__ = ["SETTINGS", "ModelGroups"]

SETTINGS = pytest.StashKey[LLMSettings]()
"""An eval item's model settings, once its fixtures resolved them."""

FIXTURE = "llm_settings"


def _fixturedefs(item: Any, name: str) -> Any:
    """The definitions of fixture ``name`` visible to ``item``, closest last (pytest's own list)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {}).get(name) if info is not None else None
    return defs or ()


class ModelGroups:
    """The session's model groups: which ``llm_settings`` definition applies to an item, and the
    settings each group turned out to have."""

    def __init__(self, session_settings: LLMSettings) -> None:
        self.session_settings = session_settings
        self._defs: list[Any] = []
        self.settings: dict[int, LLMSettings] = {}
        self.llm_group: int | None = None
        """The group whose model pytest holds as the session's ``llm`` fixture."""

    def group_of(self, item: Any) -> int:
        """The index of the ``llm_settings`` definition that applies to ``item`` (0 for the first seen)."""
        defs = _fixturedefs(item, FIXTURE)
        if not defs:
            return 0
        closest = defs[-1]
        for i, known in enumerate(self._defs):
            if known is closest:
                return i
        self._defs.append(closest)
        return len(self._defs) - 1

    def where(self, group: int) -> str:
        """Where the group's ``llm_settings`` is defined: ``evals/other/conftest.py``."""
        if group >= len(self._defs):
            return "the session"
        func = getattr(self._defs[group], "func", None)
        code = getattr(func, "__code__", None)
        if code is None:
            return "its conftest.py"
        path = Path(code.co_filename)
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def refusal(self, group: int, settings: LLMSettings) -> str | None:
        """One line refusing what cannot be honoured for ``group``'s ``settings``, else None (and
        the group's settings are noted at their first sight)."""
        session = self.session_settings
        if settings.seed != session.seed and settings.generation.do_sample:  # greedy answers need no seed
            return (
                f"llmeval: the llm_settings fixture of {self.where(group)} sets seed={settings.seed}, but every sample is "
                f"seeded when the session is planned, from the session's seed ({session.seed}): set llmeval_seed (or "
                "--llmeval-seed=) for the session, or leave seed out of this fixture"
            )
        known = self.settings.setdefault(group, settings)
        if known != settings:
            return (
                f"llmeval: the llm_settings fixture of {self.where(group)} gave this test other model settings than an "
                "earlier test under it, and the cases under one llm_settings fixture are batched on one model: make it "
                'return the same settings for every test (scope="session")'
            )
        return None

    def before_setup(self, item: pytest.Item) -> None:
        """Before ``item`` sets up: when pytest holds an ``llm`` made for another group's model,
        finish it (and the fixtures built on it), so that this item gets its own folder's model."""
        if "llm" not in getattr(item, "fixturenames", ()):
            return
        group = self.group_of(item)
        defs = _fixturedefs(item, "llm")
        if defs and self.llm_group is not None and self.llm_group != group and defs[-1].cached_result is not None:
            defs[-1].finish(item._request)  # type: ignore[attr-defined]
        self.llm_group = group
