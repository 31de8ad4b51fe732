"""What the plugin keeps for one session (in ``config.stash``): options, settings, plans, the
model, the records. The logic that fills it lives beside it: :mod:`.planning` (suites to
requests), :mod:`.backends` (the model and its caches), :mod:`.records` (records and
fingerprints), :mod:`.run_options` (what the options mean)."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from pytest_llmeval.datasets.suite import Request, SuitePlan
from pytest_llmeval.options import settings_from
from pytest_llmeval.plugin.backends import SessionModels
from pytest_llmeval.plugin.model_groups import ModelGroups
from pytest_llmeval.plugin.options import Values, read_options
from pytest_llmeval.plugin.progress import batch_progress, write_line
from pytest_llmeval.plugin.run_options import run_options
from pytest_llmeval.redaction import redact, register_settings
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.settings import LLMSettings


class LLMEvalState:
    """Everything the plugin keeps for one session."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_llmeval.models.scheduler import BatchScheduler

        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.options: Values = read_options(config)
        self.settings = settings_from(self.options.values)
        register_settings(self.settings, os.environ)  # before anything shows or stores the command line
        self.run = run_options(config, self.options)
        window = self.options["window"]
        self.scheduler = BatchScheduler(
            window=window or (64 if self.is_worker else None),
            same_suite=self.is_worker,
            progress=lambda kind, total: batch_progress(self.say, self._running_backend(), kind, total, **self.progress_options()),
        )
        self.current_item = ""
        """The node id of the item being set up or run (the one that starts a batched run)."""
        self.batch_runs: list[tuple[str, str, float]] = []
        """Each batched run: the item that started it, what ran (``64 completions``), seconds."""
        self.worker_lines: list[str] = []
        """On an xdist worker, the lines said since the last report (they travel with it)."""
        self.plans: dict[str, SuitePlan] = {}
        self.requests: dict[tuple[str, str, int], Request] = {}
        self.models = SessionModels(config, self.options, self.say)
        self.groups = ModelGroups(self.settings)
        """Which ``llm_settings`` (so which model) each eval item runs on."""
        self.judging: Any = None
        """The session's judges (:class:`pytest_llmeval.plugin.judging.JudgeSession`), once a suite has one."""
        self.records: list[CaseRecord] = []
        self.eval_session: Any = None
        self.final_report: Any = None
        self.stopped: str | bool = False
        """Why pytest stopped the session early (-x, --maxfail, a collection error), if it did."""
        self.interrupted = False
        if not self.is_worker:
            from pytest_llmeval.results.session import EvalSession
            from pytest_llmeval.version import __version__

            self.eval_session = EvalSession(self.run, version=__version__)

    @property
    def backend(self) -> Any:
        """The session's first backend once it is loaded, else None."""
        return self.models.backend

    def get_backend(self, settings: LLMSettings) -> Any:
        """The backend of ``settings``, loaded on first use (see :class:`~.backends.SessionModels`)."""
        return self.models.get(settings)

    def completion_cache(self, settings: LLMSettings, base_dir: Any = None) -> Any:
        """The completion cache in front of the backend ``settings`` name, or None."""
        return self.models.completion_cache(settings, base_dir)

    def say(self, line: str) -> None:
        """One line on the terminal, also while pytest captures output; on an xdist worker, kept
        for the next report, which carries it to the controller (see :data:`LINES_KEY`). Never a
        known secret."""
        if self.is_worker:
            self.worker_lines.append(redact(line))
        else:
            write_line(self.config, redact(line))

    def progress_options(self) -> dict[str, Any]:
        """How a batched run shows its progress here: on a worker never redrawn in place (the
        terminal is the controller's), and every run noted in :attr:`batch_runs`."""
        return {"stream": io.StringIO() if self.is_worker else None, "on_close": self._ran}

    def _running_backend(self) -> Any:
        """The backend of the item that starts a batched run (its folder's model), once loaded."""
        group = self.scheduler.group_of(self.current_item)
        return self.models.loaded(self.groups.settings.get(group) if group is not None else None)

    def _ran(self, what: str, seconds: float) -> None:
        self.batch_runs.append((self.current_item, what, seconds))


STATE = pytest.StashKey[LLMEvalState]()
LINES_KEY = "llmeval_lines"
"""The ``user_properties`` key of the lines an xdist worker said before a report."""


def get_state(config: pytest.Config) -> LLMEvalState:
    return config.stash[STATE]
