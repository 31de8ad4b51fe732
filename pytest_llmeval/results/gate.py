"""The gate as pure functions: plain data in, :class:`~pytest_llmeval.results.messages.Message` out.

Each function looks at one thing (the baseline file's state, the suites' own figures, the
verdicts against the baseline, whether the run finished, whether a baseline update may write)
and returns messages; a message with ``blocks=True`` fails the gate. Nothing here reads or
writes a file: :class:`~pytest_llmeval.results.session.EvalSession` does that and calls these.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pytest_llmeval.results.baseline import BaselineError, Recorded
from pytest_llmeval.results.beyond import suite_of, suite_robustness
from pytest_llmeval.results.comparison import Comparison, Verdict
from pytest_llmeval.results.commands import UPDATE_FLAG
from pytest_llmeval.results.messages import Message, blocking, listing, plural, points, pvalues
from pytest_llmeval.results.records import CaseRecord, Outcome
from pytest_llmeval.results.stats import SuiteResult
from pytest_llmeval.results.verdicts import incomparable_reason

FORCE_FLAG = "--llmeval-force"
FIELD_WORDS = {"tools": "set of tools"}
"""How a fingerprint field reads in "ran with a different ... than the baseline records"."""

CommandFor = Callable[[Sequence[str] | None], str]
"""The command that records the given suites (``None``: everything this run selected)."""


@dataclass(frozen=True)
class GateOptions:
    """The options that decide the verdict and the reports, resolved once per session."""

    rootdir: Path
    baseline: Path | None = None
    update_baseline: bool = False
    force: bool = False
    strict: bool = False
    tolerance: float = 0.02
    alpha: float = 0.05
    min_pass_rate: float | None = None
    output_dir: Path | None = None
    markdown: Path | None = None
    limit: int | None = None
    narrowed_by: tuple[str, ...] = ()
    """What narrowed the selection (``-k``, ``-m``, ``--llmeval-limit``, a node id with a
    parameter): a baseline update refuses such a run unless forced."""
    invocation: tuple[str, ...] = ()
    """The command-line arguments, to print the exact command that records a baseline."""
    value_flags: frozenset[str] = frozenset()
    """The plugin's options that take a value as the next argument (to read ``invocation``)."""
    shard: tuple[int, int] | None = None
    """``--llmeval-shard=I/N``: this run is shard I of N (written into results.json for ``merge``)."""
    pass_ks: tuple[int, ...] = ()
    """With repeats: more k to report pass@k and pass^k for (1 and the k run always are)."""
    max_cut_share: float = 0.05
    """``llmeval_max_cut_share``: a suite with a larger share of completions cut at
    ``max_new_tokens`` is flagged (:mod:`~pytest_llmeval.results.caps`)."""


@dataclass(frozen=True)
class RunStatus:
    """How the run ended, as the plugin saw it.

    ``interrupted``: it was stopped (Ctrl-C, a signal, a collection error); ``stopped_early``:
    ``-x`` / ``--maxfail`` ended it before every selected item ran; ``selected``: per suite,
    how many of its cases were selected to run (after ``-k``, ``-m``, ``--deselect``). The
    number of cases a suite has comes with its records (``CaseRecord.suite_size``).
    """

    interrupted: bool = False
    stopped_early: bool = False
    selected: Mapping[str, int] = field(default_factory=dict)
    backend_usage: Mapping[str, Any] = field(default_factory=dict)
    """What a served model's requests did (sent, retried, failed, cost), when its backend says."""


@dataclass(frozen=True)
class Shortfall:
    """A suite that did not finish every case: ``ran`` cases have a result, of ``size``."""

    suite: str
    ran: int
    size: int
    deselected: int = 0

    def describe(self, status: RunStatus) -> str:
        why = []
        if self.deselected:
            why.append(f"{self.deselected} deselected")
        unrun = self.size - self.ran - self.deselected
        if unrun > 0:
            cause = "interrupted" if status.interrupted else "stopped early" if status.stopped_early else "not run"
            why.append(f"{unrun} {cause}")
        return f"{self.suite} ({self.ran} of {plural(self.size, 'case')} ran: {', '.join(why)})"


# ---------------------------------------------------------------- completeness


def shortfalls(suites: Sequence[SuiteResult], records: Sequence[CaseRecord], status: RunStatus) -> list[Shortfall]:
    """The suites that did not finish every case they have, including selected suites
    with no result at all. A suite whose size is not known is taken as complete."""
    sizes: dict[str, int] = {}
    for r in records:
        if r.suite_size is not None:
            sizes[r.suite] = max(sizes.get(r.suite, 0), r.suite_size)
    ran = {s.name: len(s.outcomes) for s in suites}
    out = []
    for name in sorted(set(ran) | set(status.selected)):
        selected = status.selected.get(name)
        size = sizes.get(name, selected)
        if size is None:
            continue
        deselected = max(0, size - selected) if selected is not None else 0
        if ran.get(name, 0) < size:
            out.append(Shortfall(name, ran.get(name, 0), size, deselected))
    return out


def run_messages(opts: GateOptions, suites: Sequence[SuiteResult], status: RunStatus, gaps: Sequence[Shortfall]) -> list[Message]:
    """Notes on how complete the run is; an interrupted run fails the gate."""
    out = []
    missing = sum(g.size - g.ran - g.deselected for g in gaps)
    if status.interrupted:
        what = f": {plural(missing, 'selected case')} did not run" if missing > 0 else ""
        out.append(blocking(f"the run was interrupted{what}"))
        out.append(Message("error", "this run was interrupted: rates and verdicts cover only the cases that ran",
                           "re-run it to the end for a verdict"))  # fmt: skip
    elif status.stopped_early:
        what = f": {plural(missing, 'selected case')} did not run" if missing > 0 else ""
        out.append(Message("warning", f"the run stopped early (-x / --maxfail){what}; rates and verdicts cover only the cases that ran",
                           "run without -x / --maxfail for a full verdict"))  # fmt: skip
    if opts.limit is not None or any(s.limited for s in suites):
        out.append(Message("warning", "this run was cut by --llmeval-limit: rates and verdicts cover only the cases that ran",
                           "run without --llmeval-limit for a full verdict"))  # fmt: skip
    return out


# ---------------------------------------------------------------- the suites' own figures


def suite_messages(suites: Sequence[SuiteResult], *, strict: bool) -> list[Message]:
    """Errors, wrong answers under ``--llmeval-strict``, and pass rates under ``min_pass_rate``."""
    out = []
    for s in suites:
        if s.errors:
            out.append(blocking(f"{s.name}: {plural(s.errors, 'error')} (a broken test, not a wrong answer)"))
        if strict and s.failed:
            out.append(blocking(f"{s.name}: {plural(s.failed, 'missed case')} (--llmeval-strict)"))
        if s.under_min:
            out.append(blocking(f"{s.name}: pass rate {s.pass_rate:.1%} is under min_pass_rate {s.min_pass_rate:.1%}"))
    return out


def truncation_messages(records: Sequence[CaseRecord]) -> list[Message]:
    """Suites whose prompts were cut to fit the model's context: once per suite, with the count."""
    cut: dict[str, list[int]] = {}
    for r in records:
        if r.truncated > 0:
            cut.setdefault(r.suite, []).append(r.truncated)
    return [
        Message("warning", f"{r_suite}: {plural(len(tokens), 'prompt')} longer than the model's context, cut from the left "
                           f"(by up to {max(tokens)} tokens); the model did not see the whole prompt",
                "shorten the prompts, or raise llmeval_max_length if the model allows")  # fmt: skip
        for r_suite, tokens in sorted(cut.items())
    ]


def chat_template_messages(records: Sequence[CaseRecord]) -> list[Message]:
    """Generation suites that sent raw prompts to a model with a chat template, without saying
    ``chat=``: once per suite, with the fix (an instruct model scores far below its ability
    on prompts without its template)."""
    suites = sorted({r.suite for r in records if r.unused_chat_template})
    return [
        Message("warning", f"{suite}: the model has a chat template, but this generation suite sends raw prompts "
                           "(le.cases has no chat=); an instruct model scores far below its ability without its template",
                "apply it with le.cases(..., chat=True); if raw prompts are intended, say chat=False (that silences this)")  # fmt: skip
        for suite in suites
    ]


def identical_repeats_messages(records: Sequence[CaseRecord]) -> list[Message]:
    """Once per run: suites that sample each case several times with greedy decoding on a
    local model, whose samples are therefore all alike."""
    suites = sorted({r.suite for r in records if r.identical_repeats})
    if not suites:
        return []
    return [Message("warning", f"{listing(suites)}: repeated samples with greedy decoding on a local model are identical, "
                               "so repeats add cost and no information",
                    "sample with --llmeval-do-sample (and llmeval_temperature), or drop the repeats")]  # fmt: skip


# ---------------------------------------------------------------- the baseline


def baseline_messages(problem: BaselineError | None, shown: str, command_for: CommandFor) -> list[Message]:
    """What a missing or unusable baseline file means for a run that compares against it."""
    if problem is None:
        return []
    if problem.kind == "missing":
        return [Message("info", f"no baseline at {shown} yet: suites are not gated against one", "record one with:", command_for(None))]
    return [
        Message("error", f"baseline {shown} {problem.problem}", f"{problem.fix}, or move it away and re-record it with:", command_for(None)),
        blocking(f"baseline {shown} is unusable ({problem.kind})"),
    ]


def verdict_messages(pending: Sequence[SuiteResult], comparisons: Mapping[str, Comparison], shown: str, command_for: CommandFor) -> list[Message]:
    """NEW, INCOMPARABLE and REGRESSED suites (those not recorded by this run)."""
    out: list[Message] = []
    new, incomparable, regressed = [], [], []
    for s in pending:
        c = comparisons.get(s.name)
        if c is None:
            continue
        if c.verdict is Verdict.NEW:
            new.append(s.name)
            out.append(blocking(f"{s.name}: NEW, not in the baseline"))
        elif c.verdict is Verdict.INCOMPARABLE:
            incomparable.append(c)
            out.append(blocking(f"{s.name}: INCOMPARABLE with the baseline ({incomparable_reason(c)})"))
        elif c.verdict is Verdict.REGRESSED and c.paired is not None:
            regressed.append(s.name)
            p = c.paired
            upgraded = f"; versions changed since the baseline: {', '.join(c.versions_changed)}" if c.versions_changed else ""
            out.append(blocking(f"{s.name}: REGRESSED {p.before_rate:.1%} -> {p.after_rate:.1%} "
                                f"({points(p.delta)}, {pvalues(p.p_value, p.adjusted_p)}, {len(p.newly_failing)} newly failing{upgraded})"))  # fmt: skip
    if new:
        are = "s are" if len(new) != 1 else " is"
        out.append(Message("error", f"{len(new)} suite{are} not in the baseline {shown} (NEW): {', '.join(new)}", "record with:", command_for(_suites(new))))
    if incomparable:
        names = [c.suite for c in incomparable]
        fields = sorted({FIELD_WORDS.get(f, f) for c in incomparable for f in c.differing})
        what = f"a different {', '.join(fields)}" if fields else "no case ids in common"
        out.append(Message("error", f"{plural(len(names), 'suite')} ran with {what} than the baseline records: {', '.join(names)}",
                           "if the change is intended, re-record with:", command_for(_suites(names))))  # fmt: skip
    if regressed:
        out.append(Message("error", f"{plural(len(regressed), 'suite')} regressed against {shown}: {', '.join(regressed)}",
                           "fix the regression, or if it is accepted, re-record with:", command_for(_suites(regressed))))  # fmt: skip
    return out


def _suites(names: Sequence[str]) -> list[str]:
    """The suites of compared units, in order, once each (``suite~typos`` is ``suite``'s)."""
    return list(dict.fromkeys(suite_of(name) for name in names))


def search_messages(records: Sequence[CaseRecord]) -> list[Message]:
    """A suite's search (``search=``) that errored: it is no case, so the suite's counts miss it."""
    errored = {r.suite: r.reason.removeprefix("Failed: ").removeprefix("llmeval: ") for r in records if r.search is not None and r.outcome is Outcome.ERROR}
    return [blocking(f"{suite}: its search errored: {reason}") for suite, reason in sorted(errored.items())]


def robustness_messages(suites: Sequence[SuiteResult]) -> list[Message]:
    """``min_worst_case``: the share of cases right as written and under every perturbation."""
    out = []
    for s in suites:
        if s.min_worst_case is None:
            continue
        figures = suite_robustness(s)
        if figures is None or not figures.complete:
            out.append(Message("warning", f"{s.name}: min_worst_case was not checked: no case ran as written and under every perturbation",
                               "run the suite's variants too (no -k that leaves them out)"))  # fmt: skip
        elif figures.worst_case < s.min_worst_case - 1e-12:
            out.append(blocking(f"{s.name}: worst case {figures.worst_case:.1%} over its perturbations is under min_worst_case "
                                f"{s.min_worst_case:.1%} ({figures.worst_case_passed} of {figures.complete} cases right under every one)"))  # fmt: skip
    return out


def stale_suites(
    recorded: Sequence[str], suites: Sequence[SuiteResult], *, narrowed: bool, picked_files: set[str], file_exists: Callable[[str], bool]
) -> list[str]:
    """Baseline suites that no longer exist: their file is gone, or their file ran in this
    session without them (unless the selection was narrowed, or the run did not finish).
    ``picked_files``: files a node id on the command line picked single tests from."""
    ran = {s.name for s in suites}
    ran_files = {s.file for s in suites}
    stale = []
    for name in sorted(set(recorded) - ran):
        file = name.split("::", 1)[0]
        if not file_exists(file) or (file in ran_files and not narrowed and file not in picked_files):
            stale.append(name)
    return stale


def stale_messages(stale: Sequence[str], shown: str) -> list[Message]:
    if not stale:
        return []
    n = len(stale)
    return [Message("warning", f"{n} baseline entr{'y' if n == 1 else 'ies'} in {shown} no longer exist{'s' if n == 1 else ''}: {', '.join(stale)}",
                    "remove with:", shlex.join(["python", "-m", "pytest_llmeval", "prune", shown, *stale]))]  # fmt: skip


# ---------------------------------------------------------------- recording the baseline


def update_refusal(
    opts: GateOptions, suites: Sequence[SuiteResult], gaps: Sequence[Shortfall], status: RunStatus,
    problem: BaselineError | None, shown: str | None,
) -> list[Message]:  # fmt: skip
    """Why this run may not write the baseline; empty when it may. An interrupted run and a
    file that cannot be read are refused even with ``--llmeval-force``."""
    if shown is None:
        return [Message("error", f"{UPDATE_FLAG} was given but no baseline file is configured",
                        "set llmeval_baseline in the pytest ini file, or pass --llmeval-baseline=PATH"),
                blocking("baseline update refused: no baseline file configured")]  # fmt: skip
    if problem is not None and problem.kind == "corrupt":
        return unreadable_messages(problem, shown)
    if status.interrupted:
        gap = f": {', '.join(g.describe(status) for g in gaps)}" if gaps else ""
        return [Message("error", f"baseline {shown} not updated: the run was interrupted{gap}",
                        f"an interrupted run never writes the baseline; re-run the whole suite with {UPDATE_FLAG}"),
                blocking("baseline update refused: the run was interrupted")]  # fmt: skip
    reasons = forceable_reasons(opts, suites, gaps, status)
    if not reasons or opts.force:
        return []
    only_errors = len(reasons) == 1 and any(s.errors for s in suites)
    hint = "fix the errors and re-run" if only_errors else "re-run the whole suite" if gaps else "re-run on the full selection"
    return [Message("error", f"baseline {shown} not updated: {'; '.join(reasons)}", f"{hint}, or add {FORCE_FLAG} to record anyway"),
            blocking(f"baseline update refused: {'; '.join(reasons)}")]  # fmt: skip


def forceable_reasons(opts: GateOptions, suites: Sequence[SuiteResult], gaps: Sequence[Shortfall], status: RunStatus) -> list[str]:
    """What keeps this run from recording unless forced: a narrowed selection, suites that did
    not finish every case (or a run stopped early), errors."""
    reasons = []
    if opts.narrowed_by:
        reasons.append(f"the selection was narrowed by {', '.join(opts.narrowed_by)}")
    elif opts.limit is not None or any(s.limited for s in suites):
        reasons.append("the run was cut by --llmeval-limit")
    if gaps:
        did = "suite did" if len(gaps) == 1 else "suites did"
        reasons.append(f"{len(gaps)} {did} not run every case: {listing([g.describe(status) for g in gaps], 5)}")
    elif status.stopped_early:  # which cases it skipped is not known here (a suite with no result at all)
        reasons.append("the run stopped early (-x / --maxfail), so selected cases may not have run")
    with_errors = [s.name for s in suites if s.errors]
    if with_errors:
        n_err = sum(s.errors for s in suites)
        reasons.append(f"{n_err} case{'s' if n_err != 1 else ''} errored ({', '.join(with_errors)})")
    return reasons


def unreadable_messages(problem: BaselineError, shown: str) -> list[Message]:
    """An update over a file that cannot be read: refused, since rewriting it would drop the
    suites it holds."""
    return [Message("error", f"baseline {shown} not updated: it {problem.problem}, and rewriting it would drop the suites it holds",
                    f"{problem.fix}, or move it away; then re-run with {UPDATE_FLAG}"),
            blocking(f"baseline update refused: {shown} could not be read ({problem.kind})")]  # fmt: skip


def recorded_messages(done: Recorded, shown: str, forced: Sequence[str], all_skipped: Sequence[str] = ()) -> list[Message]:
    n = len(done.added) + len(done.updated)
    extra = f" (forced: {'; '.join(forced)})" if forced else ""
    out = [Message("info", f"recorded {plural(n, 'suite')} in {shown} ({len(done.added)} new, {len(done.updated)} updated){extra}",
                   "commit it:", shlex.join(["git", "add", shown]))]  # fmt: skip
    if all_skipped:
        out.append(Message("warning", f"not recorded, every case skipped or xfailed: {listing(all_skipped)}",
                           "their baseline entries were left as they were"))  # fmt: skip
    return out


def unwritten_messages(shown: str, problem: str, hint: str) -> list[Message]:
    return [Message("error", f"baseline {shown} not updated: {problem}", hint), blocking(f"baseline {shown} could not be written")]
