"""The per-session gate: collects case records, compares with the baseline, writes reports.

The plugin makes one :class:`EvalSession` on the controller (never on an xdist worker), feeds
it every eval item's :class:`~pytest_llmeval.results.records.CaseRecord`, and calls :meth:`finish` at
the end with how the run ended (:class:`RunStatus`); the returned
:class:`~pytest_llmeval.results.report.GateReport` says whether a gate failed and renders the terminal
summary. The decisions are the pure functions of :mod:`pytest_llmeval.results.gate`; this module does
the reading and writing around them. Bad files never raise here: they become messages.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.results import gate
from pytest_llmeval.results.review import calibration_messages
from pytest_llmeval.results.caps import cap_messages, suite_caps
from pytest_llmeval.results.code_runs import code_summary
from pytest_llmeval.results.baseline import Baseline, BaselineError, load_baseline, record_suites, write_atomic
from pytest_llmeval.results.beyond import units
from pytest_llmeval.results.beyond_report import beyond_figures
from pytest_llmeval.results.commands import UPDATE_FLAG, files_picked_by_node_id, record_command
from pytest_llmeval.results.comparison import Comparison, compare_suites
from pytest_llmeval.files import ReadOnlyFileError
from pytest_llmeval.jsonfiles import json_text, jsonl_line
from pytest_llmeval.results.gate import GateOptions, RunStatus
from pytest_llmeval.results.locking import LockTimeout
from pytest_llmeval.results.messages import Message
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.report import GateReport
from pytest_llmeval.results.samplefile import sample_json
from pytest_llmeval.results.stats import SuiteResult, aggregate_markers, aggregate_suites
from pytest_llmeval.results.usage import usage_json

__all__ = ["UPDATE_FLAG", "EvalSession", "GateOptions", "RunStatus", "versions"]


def from_cache(records: Sequence[CaseRecord]) -> dict[str, int]:
    """How many completions, rankings and conversations (every round of one) of ``records`` came
    from the completion cache."""
    cached = [r for r in records if r.cached]
    counts = {
        "completions": sum(r.completion is not None and r.conversation is None for r in cached),
        "rankings": sum(r.choices is not None for r in cached),
    }
    if any(r.conversation is not None for r in records):  # runs without workflow cases keep their keys
        counts["conversations"] = sum(r.conversation is not None for r in cached)
    return counts


class EvalSession:
    """Aggregates one session's eval results and decides the gate.

    ``version`` is this package's version, written into ``results.json`` when the installed
    distribution cannot be found (a source checkout).
    """

    def __init__(self, options: GateOptions, *, cwd: Path | None = None, version: str | None = None) -> None:
        self.options = options
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.version = version
        self._records: list[CaseRecord] = []
        self._started = time.time()
        self._t0 = time.perf_counter()

    @property
    def records(self) -> tuple[CaseRecord, ...]:
        return tuple(self._records)

    def add(self, record: CaseRecord | Mapping[str, Any]) -> None:
        """Add one eval item's record (a ``CaseRecord`` or its ``to_json()`` form)."""
        if not isinstance(record, CaseRecord):
            record = CaseRecord.from_json(record)
        self._records.append(record)

    def add_all(self, records: Iterable[CaseRecord | Mapping[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def command(self, suites: Sequence[str] | None) -> str:
        """The exact command that records ``suites`` (node ids), or everything this run selected."""
        return record_command(
            self.options.invocation, suites, rootdir=self.options.rootdir, cwd=self.cwd, value_flags=self.options.value_flags
        )

    # ------------------------------------------------------------ finish

    def finish(self, status: RunStatus | None = None) -> GateReport:
        """Aggregate, compare, record the baseline if asked, write the reports; never raises
        for a bad or unwritable file (those become messages and gate failures)."""
        status = status or RunStatus()
        opts = self.options
        records = list(self._records)
        if not records and not opts.update_baseline and not status.interrupted:
            return GateReport(strict=opts.strict, tolerance=opts.tolerance, alpha=opts.alpha)
        suites = aggregate_suites(records, opts.min_pass_rate)
        path = self._path(opts.baseline)
        shown = self._display(path) if path is not None else None
        baseline, problem = _load(path)
        comparisons = _compare(suites, baseline, opts)
        gaps = gate.shortfalls(suites, records, status)

        messages: list[Message] = []
        recorded: frozenset[str] = frozenset()
        if opts.update_baseline:
            recorded, update = self._update(path, shown, suites, gaps, status, problem)
            messages += update
        if shown is not None and not recorded and not (opts.update_baseline and problem is not None and problem.kind == "corrupt"):
            messages += gate.baseline_messages(problem, shown, self.command)
        messages += gate.suite_messages(suites, strict=opts.strict)
        messages += gate.robustness_messages(suites) + gate.search_messages(records)
        messages += gate.verdict_messages(units(s for s in suites if s.name not in recorded), comparisons, shown or "", self.command)
        stale = self._stale(baseline, suites, status) if baseline is not None else []
        messages += gate.stale_messages(stale, shown or "")
        messages += gate.run_messages(opts, suites, status, gaps)
        messages += gate.truncation_messages(records)
        messages += gate.chat_template_messages(records)
        messages += gate.identical_repeats_messages(records)
        messages += calibration_messages(records)
        caps = suite_caps(records, opts.max_cut_share)
        messages += cap_messages(caps, strict=opts.strict)
        usage = _usage(records, status.backend_usage, messages)

        report = GateReport(
            suites=tuple(suites),
            groups=tuple(aggregate_markers(records)),
            comparisons=comparisons,
            messages=tuple(messages),
            baseline_path=path,
            baseline_state="ok" if recorded or problem is None and path is not None else problem.kind if problem else "off",
            recorded=recorded,
            stale=tuple(stale),
            strict=opts.strict,
            tolerance=opts.tolerance,
            alpha=opts.alpha,
            pass_ks=opts.pass_ks,
            interrupted=status.interrupted,
            versions=versions(self.version),
            timings=self._timings(records),
            run=_run_json(opts, status, records),
            usage=usage,
            caps=caps,
            beyond=beyond_figures(records, suites),
            code=code_summary(records),
        )
        return self._write_outputs(report, records)

    # ------------------------------------------------------------ baseline update

    def _update(
        self, path: Path | None, shown: str | None, suites: Sequence[SuiteResult], gaps: Sequence[gate.Shortfall],
        status: RunStatus, problem: BaselineError | None,
    ) -> tuple[frozenset[str], list[Message]]:  # fmt: skip
        """Record the suites that ran, unless the gate refuses; (suites recorded, messages)."""
        refusal = gate.update_refusal(self.options, suites, gaps, status, problem, shown)
        if refusal or path is None or shown is None:
            return frozenset(), refusal
        counted = [s for s in suites if s.n]  # a suite whose every case was skipped keeps its entry
        if not counted:
            return frozenset(), [Message("warning", f"no eval cases ran: {shown} was left as it was", "select eval tests to record them")]
        try:
            done = record_suites(path, counted)
        except BaselineError as exc:  # it changed under us, into something unreadable
            return frozenset(), gate.unreadable_messages(exc, shown)
        except ReadOnlyFileError:
            return frozenset(), gate.unwritten_messages(shown, "the file is read-only", f"make it writable (chmod u+w {shown}), then re-run with {UPDATE_FLAG}")
        except LockTimeout as exc:
            return frozenset(), gate.unwritten_messages(shown, str(exc), f"then re-run with {UPDATE_FLAG}")
        except (OSError, UnicodeDecodeError) as exc:
            return frozenset(), gate.unwritten_messages(shown, f"could not write it: {exc}", "check the path and its permissions")
        forced = gate.forceable_reasons(self.options, suites, gaps, status)
        skipped = [s.name for s in suites if not s.n]
        return frozenset(s.name for s in counted), gate.recorded_messages(done, shown, forced, skipped)

    def _stale(self, baseline: Baseline, suites: Sequence[SuiteResult], status: RunStatus) -> list[str]:
        root = Path(self.options.rootdir)
        return gate.stale_suites(
            [name for name in baseline.suites if name not in status.selected],  # selected: it exists
            suites,
            narrowed=bool(self.options.narrowed_by) or status.interrupted or status.stopped_early,
            picked_files=files_picked_by_node_id(self.options.invocation, rootdir=root, cwd=self.cwd),
            file_exists=lambda file: (root / file).exists(),
        )

    # ------------------------------------------------------------ paths and outputs

    def _path(self, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = Path(path).expanduser()
        return path if path.is_absolute() else Path(self.options.rootdir) / path

    def _display(self, path: Path) -> str:
        try:
            return Path(os.path.relpath(path, self.cwd)).as_posix()
        except ValueError:
            return str(path)

    def _timings(self, records: Sequence[CaseRecord]) -> dict[str, Any]:
        latencies = [r.latency_s for r in records if r.latency_s is not None]
        return {
            "started": datetime.fromtimestamp(self._started, timezone.utc).isoformat(timespec="seconds"),
            "session_s": round(time.perf_counter() - self._t0, 3),
            "cases_s": round(math.fsum(r.duration_s for r in records), 3),
            "model_latency_s": round(math.fsum(latencies), 3),
        }

    def _write_outputs(self, report: GateReport, records: Sequence[CaseRecord]) -> GateReport:
        """results.json, samples.jsonl, the Markdown summary; a file that cannot be written
        becomes a message."""
        opts = self.options
        messages: list[Message] = []
        out_dir = self._path(opts.output_dir)
        if out_dir is not None:
            ordered = sorted(records, key=lambda r: (r.suite, r.case_id, r.repeat))
            samples = "".join(jsonl_line(sample_json(r)) for r in ordered)
            try:
                write_atomic(out_dir / "results.json", json_text(report.to_json(), indent=2, sort_keys=True) + "\n")
                write_atomic(out_dir / "samples.jsonl", samples)
            except OSError as exc:
                shown = self._display(out_dir)
                messages.append(Message("error", f"could not write reports to {shown}: {exc}", "check --llmeval-output and its permissions"))
                messages.append(Message("error", f"reports could not be written to {shown}", blocks=True))
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        markdown = report.markdown() if (opts.markdown is not None or step_summary) else ""
        md_path = self._path(opts.markdown)
        if md_path is not None:
            try:
                write_atomic(md_path, markdown)
            except OSError as exc:
                shown = self._display(md_path)
                messages.append(Message("error", f"could not write {shown}: {exc}", "check --llmeval-markdown and its permissions"))
                messages.append(Message("error", f"Markdown summary could not be written to {shown}", blocks=True))
        if step_summary:
            try:
                with open(step_summary, "a", encoding="utf-8") as fh:
                    fh.write(markdown + "\n")
            except OSError as exc:
                messages.append(Message("warning", f"could not append to $GITHUB_STEP_SUMMARY ({step_summary}): {exc}", "check the CI runner's environment"))
        return replace(report, messages=report.messages + tuple(messages)) if messages else report


def _usage(records: Sequence[CaseRecord], backend: Mapping[str, Any], messages: list[Message]) -> dict[str, Any]:
    """The usage section; a total that cannot be made (numbers no server should send) is a warning,
    never a lost results file."""
    try:
        return usage_json(records, backend)
    except (ArithmeticError, ValueError, TypeError) as exc:
        messages.append(Message("warning", f"the served model's usage could not be totalled ({type(exc).__name__}: {exc})",
                                "the cases' outcomes are recorded; check what the server reports as token counts"))  # fmt: skip
        return {}


def _load(path: Path | None) -> tuple[Baseline | None, BaselineError | None]:
    if path is None:
        return None, None
    try:
        return load_baseline(path), None
    except BaselineError as exc:
        return None, exc


def _compare(suites: Sequence[SuiteResult], baseline: Baseline | None, opts: GateOptions) -> dict[str, Comparison]:
    """The verdict of each suite with a counted case (one whose every case was skipped has none)."""
    if baseline is None:
        return {}
    # An INCOMPARABLE suite is paired too: its change is shown (marked as not comparable), never gated on.
    return compare_suites(baseline.suites, [s for s in suites if s.n], tolerance=opts.tolerance, alpha=opts.alpha, pair_incomparable=True)


def _run_json(opts: GateOptions, status: RunStatus, records: Sequence[CaseRecord]) -> dict[str, Any]:
    """How the run was made, for ``results.json``: where, the command, what narrowed it, how it ended."""
    return {
        "rootdir": str(opts.rootdir),
        "invocation": list(opts.invocation),
        "narrowed_by": list(opts.narrowed_by),
        "limit": opts.limit,
        "interrupted": status.interrupted,
        "stopped_early": status.stopped_early,
        **({"shard": list(opts.shard)} if opts.shard else {}),
        "from_cache": from_cache(records),
    }


def versions(package_version: str | None = None) -> dict[str, str]:
    """Versions that explain a result: Python, pytest, torch, transformers, numpy and this plugin
    (its own version module; ``package_version`` overrides it where a caller knows better)."""
    from importlib import metadata

    from pytest_llmeval.version import __version__

    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for dist in ("pytest", "torch", "transformers", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    out["pytest-llmeval"] = str(package_version or __version__)
    return out
