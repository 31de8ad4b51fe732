"""The per-session gate: collects case records, compares with the baseline, writes reports.

The plugin makes one :class:`EvalSession` on the controller (never on an xdist worker), feeds
it every eval item's :class:`~pytest_llmeval.records.CaseRecord`, and calls :meth:`finish` at
the end; the returned :class:`~pytest_llmeval.report.GateReport` says whether a gate failed
and renders the terminal summary. Bad files never raise here: they become messages.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.results.baseline import Baseline, BaselineError, Comparison, Verdict, compare_suite, dumps_baseline, load_baseline, updated_suites, write_atomic
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.report import GateReport, Message, points, pvalue, sample_json
from pytest_llmeval.settings import RunOptions
from pytest_llmeval.results.stats import SuiteResult, aggregate_markers, aggregate_suites

UPDATE_FLAG = "--llmeval-update-baseline"

# options that narrow what runs: dropped from a suggested recording command
_NARROWING_VALUE = {"-k", "-m", "--llmeval-limit", "--deselect", "--maxfail"}
_NARROWING_FLAG = {UPDATE_FLAG, "--llmeval-force", "--lf", "--last-failed", "--sw", "--stepwise", "-x", "--exitfirst"}
# options known to take their value as the next argument
_VALUE_OPTIONS = {
    "-k", "-m", "-p", "-c", "-o", "-n", "-W", "-r", "--rootdir", "--confcutdir", "--basetemp",
    "--deselect", "--ignore", "--ignore-glob", "--junitxml", "--junit-xml", "--maxfail", "--dist",
    "--numprocesses", "--tb", "--durations", "--override-ini", "--config-file", "--log-level",
    "--capture", "--import-mode", "--color", "--junit-prefix", "--cov", "--timeout",
}  # fmt: skip
_LLMEVAL_FLAGS = {UPDATE_FLAG, "--llmeval-force", "--llmeval-strict", "--llmeval-do-sample", "--llmeval-trust-remote-code"}


class EvalSession:
    """Aggregates one session's eval results and decides the gate."""

    def __init__(self, options: RunOptions, *, cwd: Path | None = None) -> None:
        self.options = options
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
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

    # ------------------------------------------------------------ finish

    def finish(self) -> GateReport:
        """Aggregate, compare, record the baseline if asked, write the reports; never raises
        for a bad or unwritable file (those become messages and gate failures)."""
        opts = self.options
        records = list(self._records)
        if not records and not opts.update_baseline:
            return GateReport(strict=opts.strict, tolerance=opts.tolerance, alpha=opts.alpha)
        suites = aggregate_suites(records, opts.min_pass_rate)
        groups = aggregate_markers(records)
        messages: list[Message] = []
        failures: list[str] = []
        notes: list[Message] = []

        path = self._path(opts.baseline)
        baseline: Baseline | None = None
        state = "off"
        problem: BaselineError | None = None
        if path is not None:
            try:
                baseline = load_baseline(path)
                state = "ok"
            except BaselineError as exc:
                state, problem = exc.kind, exc

        comparisons: dict[str, Comparison] = {}
        if baseline is not None:
            for s in suites:
                comparisons[s.name] = compare_suite(s, baseline.suites.get(s.name), tolerance=opts.tolerance, alpha=opts.alpha)
        stale = self._stale(baseline, suites) if baseline is not None else []

        recorded: frozenset[str] = frozenset()
        if opts.update_baseline:
            recorded = self._update(path, baseline, problem, suites, records, messages, failures)

        shown = self._display(path) if path is not None else ""
        if problem is not None and not recorded:
            if problem.kind == "missing":
                messages.append(
                    Message(
                        "info",
                        f"no baseline at {shown} yet: suites are not gated against one",
                        "record one with:",
                        self.command(None),
                    )
                )
            else:
                messages.append(
                    Message(
                        "error",
                        f"baseline {shown} {problem.problem}",
                        "fix the file, or re-record it with:",
                        self.command(None),
                    )
                )
                failures.append(f"baseline {shown} is unusable ({problem.kind})")

        pending = [s for s in suites if s.name not in recorded]
        self._gate_suites(pending, suites, comparisons, failures, messages, shown)

        if stale:
            notes.append(
                Message(
                    "warning",
                    f"{len(stale)} baseline entr{'y' if len(stale) == 1 else 'ies'} in {shown} no longer "
                    f"exist{'s' if len(stale) == 1 else ''}: {', '.join(stale)}",
                    "remove with:",
                    shlex.join(["python", "-m", "pytest_llmeval", "prune", shown, *stale]),
                )
            )
        if opts.limit is not None or any(s.limited for s in suites):
            notes.append(
                Message(
                    "warning",
                    "this run was cut by --llmeval-limit: rates and verdicts cover only the cases that ran",
                    "run without --llmeval-limit for a full verdict",
                )
            )
        messages.extend(notes)

        report = GateReport(
            suites=tuple(suites),
            groups=tuple(groups),
            comparisons=comparisons,
            failures=tuple(failures),
            messages=tuple(messages),
            baseline_path=path,
            baseline_state=state if not recorded else "ok",
            recorded=recorded,
            stale=tuple(stale),
            strict=opts.strict,
            tolerance=opts.tolerance,
            alpha=opts.alpha,
            versions=versions(),
            timings=self._timings(records),
            run={
                "rootdir": str(opts.rootdir),
                "invocation": list(opts.invocation),
                "narrowed_by": list(opts.narrowed_by),
                "limit": opts.limit,
            },
        )
        return self._write_outputs(report, records)

    # ------------------------------------------------------------ gate

    def _gate_suites(
        self,
        pending: Sequence[SuiteResult],
        suites: Sequence[SuiteResult],
        comparisons: Mapping[str, Comparison],
        failures: list[str],
        messages: list[Message],
        shown: str,
    ) -> None:
        opts = self.options
        for s in suites:
            if s.errors:
                failures.append(f"{s.name}: {s.errors} error{'s' if s.errors != 1 else ''} (a broken test, not a wrong answer)")
            if opts.strict and s.failed:
                failures.append(f"{s.name}: {s.failed} missed case{'s' if s.failed != 1 else ''} (--llmeval-strict)")
            if s.under_min:
                failures.append(f"{s.name}: pass rate {s.pass_rate:.1%} is under min_pass_rate {s.min_pass_rate:.1%}")
        new, incomparable, regressed = [], [], []
        for s in pending:
            c = comparisons.get(s.name)
            if c is None:
                continue
            if c.verdict is Verdict.NEW:
                new.append(s.name)
                failures.append(f"{s.name}: NEW, not in the baseline")
            elif c.verdict is Verdict.INCOMPARABLE:
                incomparable.append(c)
                why = ", ".join(c.differing) + (" differ" if len(c.differing) != 1 else " differs") if c.differing else c.note
                failures.append(f"{s.name}: INCOMPARABLE with the baseline ({why})")
            elif c.verdict is Verdict.REGRESSED and c.paired is not None:
                regressed.append(s.name)
                p = c.paired
                failures.append(
                    f"{s.name}: REGRESSED {p.before_rate:.1%} -> {p.after_rate:.1%} "
                    f"({points(p.delta)}, {pvalue(p.p_value)}, {len(p.newly_failing)} newly failing)"
                )
        if new:
            messages.append(
                Message(
                    "error",
                    f"{len(new)} suite{'s are' if len(new) != 1 else ' is'} not in the baseline {shown} (NEW): {', '.join(new)}",
                    "record with:",
                    self.command(new),
                )
            )
        if incomparable:
            names = [c.suite for c in incomparable]
            fields = sorted({f for c in incomparable for f in c.differing})
            what = f"a different {', '.join(fields)}" if fields else "no case ids in common"
            messages.append(
                Message(
                    "error",
                    f"{len(names)} suite{'s' if len(names) != 1 else ''} ran with {what} than the baseline records: {', '.join(names)}",
                    "if the change is intended, re-record with:",
                    self.command(names),
                )
            )
        if regressed:
            messages.append(
                Message(
                    "error",
                    f"{len(regressed)} suite{'s' if len(regressed) != 1 else ''} regressed against {shown}: {', '.join(regressed)}",
                    "fix the regression, or if it is accepted, re-record with:",
                    self.command(regressed),
                )
            )

    # ------------------------------------------------------------ baseline update

    def _update(
        self,
        path: Path | None,
        baseline: Baseline | None,
        problem: BaselineError | None,
        suites: Sequence[SuiteResult],
        records: Sequence[CaseRecord],
        messages: list[Message],
        failures: list[str],
    ) -> frozenset[str]:
        opts = self.options
        if path is None:
            messages.append(
                Message(
                    "error",
                    f"{UPDATE_FLAG} was given but no baseline file is configured",
                    "set llmeval_baseline in the pytest ini file, or pass --llmeval-baseline PATH",
                )
            )
            failures.append("baseline update refused: no baseline file configured")
            return frozenset()
        shown = self._display(path)
        if not suites:
            messages.append(Message("warning", f"no eval cases ran: {shown} was left as it was", "select eval tests to record them"))
            return frozenset()
        reasons = []
        if opts.narrowed_by:
            reasons.append(f"the selection was narrowed by {', '.join(opts.narrowed_by)}")
        elif opts.limit is not None or any(s.limited for s in suites):
            reasons.append("the run was cut by --llmeval-limit")
        with_errors = [s.name for s in suites if s.errors]
        if with_errors:
            n_err = sum(s.errors for s in suites)
            reasons.append(f"{n_err} case{'s' if n_err != 1 else ''} errored ({', '.join(with_errors)})")
        if reasons and not opts.force:
            hint = "fix the errors and re-run" if with_errors and len(reasons) == 1 else "re-run on the full selection"
            messages.append(
                Message(
                    "error",
                    f"baseline {shown} not updated: {'; '.join(reasons)}",
                    f"{hint}, or add --llmeval-force to record anyway",
                )
            )
            failures.append(f"baseline update refused: {'; '.join(reasons)}")
            return frozenset()
        old = baseline if problem is None else None
        try:
            text = dumps_baseline(updated_suites(old, suites))
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if text != current:
                write_atomic(path, text)
        except (OSError, UnicodeDecodeError) as exc:
            messages.append(Message("error", f"could not write baseline {shown}: {exc}", "check the path and its permissions"))
            failures.append(f"baseline {shown} could not be written")
            return frozenset()
        names = frozenset(s.name for s in suites)
        added = sum(1 for s in suites if old is None or s.name not in old.suites)
        extra = f" (forced: {'; '.join(reasons)})" if reasons else ""
        if problem is not None and problem.kind not in ("missing",):
            messages.append(
                Message(
                    "warning",
                    f"baseline {shown} {problem.problem}; rewrote it with the {len(suites)} suites that ran{extra}",
                    "review the diff before committing it",
                )
            )
        else:
            messages.append(
                Message(
                    "info",
                    f"recorded {len(suites)} suite{'s' if len(suites) != 1 else ''} in {shown} "
                    f"({added} new, {len(suites) - added} updated){extra}",
                    "commit it:",
                    shlex.join(["git", "add", shown]),
                )
            )
        return names

    # ------------------------------------------------------------ stale entries

    def _stale(self, baseline: Baseline, suites: Sequence[SuiteResult]) -> list[str]:
        """Baseline suites that no longer exist: their file is gone, or their file ran in this
        (un-narrowed) session without them."""
        ran = {s.name for s in suites}
        ran_files = {s.file for s in suites}
        picked = self._files_selected_by_node_id()
        narrowed = bool(self.options.narrowed_by)
        stale = []
        for name in sorted(set(baseline.suites) - ran):
            file = name.split("::", 1)[0]
            if not (self.options.rootdir / file).exists():
                stale.append(name)
            elif file in ran_files and not narrowed and file not in picked:
                stale.append(name)
        return stale

    def _files_selected_by_node_id(self) -> set[str]:
        files = set()
        for arg in self.options.invocation:
            if "::" in arg and not arg.startswith("-"):
                files.add(self._rootdir_relative(arg.split("::", 1)[0]))
        return files

    def _rootdir_relative(self, arg_path: str) -> str:
        full = (self.cwd / arg_path).resolve()
        try:
            return full.relative_to(Path(self.options.rootdir).resolve()).as_posix()
        except ValueError:
            return arg_path

    # ------------------------------------------------------------ commands

    def command(self, suites: Sequence[str] | None) -> str:
        """The exact command that records ``suites`` (node ids), or everything this run selected."""
        args = list(self.options.invocation)
        out: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            opt = arg.split("=", 1)[0]
            takes_value = "=" not in arg and (
                opt in _VALUE_OPTIONS or (opt.startswith("--llmeval-") and opt not in _LLMEVAL_FLAGS)
            )
            value = [args[i + 1]] if takes_value and i + 1 < len(args) else []
            i += 1 + len(value)
            if opt in _NARROWING_VALUE or opt in _NARROWING_FLAG or _short_narrowing(arg):
                continue
            if arg.startswith("-"):
                out += [arg, *value]
            elif suites is None:
                out.append(arg.split("[", 1)[0] if "::" in arg else arg)
        if suites is not None:
            out += [self._cwd_relative(s) for s in suites]
        return shlex.join(["pytest", *out, UPDATE_FLAG])

    def _cwd_relative(self, nodeid: str) -> str:
        file, sep, rest = nodeid.partition("::")
        root = Path(self.options.rootdir).resolve()
        try:
            rel = os.path.relpath(root / file, self.cwd.resolve())
        except ValueError:
            rel = str(root / file)
        rel = Path(rel).as_posix()
        return rel + sep + rest

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
        opts = self.options
        messages = list(report.messages)
        failures = list(report.failures)
        out_dir = self._path(opts.output_dir)
        if out_dir is not None:
            ordered = sorted(records, key=lambda r: (r.suite, r.case_id))
            samples = "".join(json.dumps(sample_json(r), sort_keys=True, ensure_ascii=False) + "\n" for r in ordered)
            try:
                write_atomic(out_dir / "results.json", json.dumps(report.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
                write_atomic(out_dir / "samples.jsonl", samples)
            except OSError as exc:
                messages.append(Message("error", f"could not write reports to {self._display(out_dir)}: {exc}", "check --llmeval-output and its permissions"))
                failures.append(f"reports could not be written to {self._display(out_dir)}")
        markdown = report.markdown() if (opts.markdown is not None or os.environ.get("GITHUB_STEP_SUMMARY")) else ""
        md_path = self._path(opts.markdown)
        if md_path is not None:
            try:
                write_atomic(md_path, markdown)
            except OSError as exc:
                messages.append(Message("error", f"could not write {self._display(md_path)}: {exc}", "check --llmeval-markdown and its permissions"))
                failures.append(f"Markdown summary could not be written to {self._display(md_path)}")
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            try:
                with open(step_summary, "a", encoding="utf-8") as fh:
                    fh.write(markdown + "\n")
            except OSError as exc:
                messages.append(Message("warning", f"could not append to $GITHUB_STEP_SUMMARY ({step_summary}): {exc}", "check the CI runner's environment"))
        if messages == list(report.messages) and failures == list(report.failures):
            return report
        return replace(report, messages=tuple(messages), failures=tuple(failures))


def _short_narrowing(arg: str) -> bool:
    """``-kfoo`` / ``-mslow`` (value glued to a short option)."""
    return len(arg) > 2 and arg[:2] in ("-k", "-m") and not arg.startswith("--")


def versions() -> dict[str, str]:
    """Versions that explain a result: Python, pytest, torch, transformers, numpy, pytest-llmeval."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for dist in ("pytest", "torch", "transformers", "numpy", "pytest-llmeval"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    if out["pytest-llmeval"] == "not installed":
        try:
            from pytest_llmeval import __version__  # type: ignore[attr-defined]

            out["pytest-llmeval"] = str(__version__)
        except ImportError:
            pass
    return out
