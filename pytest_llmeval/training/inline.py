"""Evaluate a live model in-process: the same eval files a ``pytest`` run uses, no copy of weights.

    import pytest_llmeval as le

    result = le.evaluate(model, tokenizer, "evals/")        # during training, on the live model
    result.pass_rate("test_addition")                         # 0.64
    result.log_dict()                                         # {"eval/test_addition/pass_rate": 0.64, ...}

:func:`evaluate` runs ``pytest.main`` on the eval files with a small plugin object that hands
the plugin a backend wrapping *this* model (the ``pytest_llmeval_make_backend`` hook), so
collection, batching, scoring, gates and the ``--llmeval-output`` files are exactly those of a
``pytest`` run of the same files. The model is switched to ``eval()`` and the run happens under
``torch.inference_mode()``; each module's training flag and the random number generators are
restored afterwards, also when the run raises, so a training loop goes on as if nothing ran.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

from pytest_llmeval.results.records import CaseRecord, records_from_properties
from pytest_llmeval.results.stats import SuiteResult, aggregate_suites

__all__ = ["EvalResult", "InlineEvalError", "evaluate", "short_names"]

_EXIT_MEANING = {
    2: "the run was interrupted (a collection error in the eval files?)",
    3: "pytest hit an internal error",
    4: "pytest rejected the command line",
    5: "no eval cases were collected",
}


class InlineEvalError(RuntimeError):
    """The eval files could not be run (collection error, bad option, nothing collected).

    ``output`` holds what pytest printed, ``exit_code`` its exit status.
    """

    def __init__(self, message: str, *, exit_code: int, output: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.output = output


@dataclass(frozen=True)
class EvalResult:
    """What one inline evaluation found.

    ``suites`` are the per-suite aggregates (pass rate, Wilson interval, graded metrics, case
    outcomes) exactly as the terminal report and ``results.json`` compute them; ``records`` are
    the per-case records; ``gate_failures`` the gate lines of the run (a suite under its
    ``min_pass_rate``, a regression against the baseline, an error); ``exit_code`` is pytest's.
    """

    suites: tuple[SuiteResult, ...]
    records: tuple[CaseRecord, ...] = ()
    gate_failures: tuple[str, ...] = ()
    exit_code: int = 0
    seconds: float = 0.0
    output: str = ""
    output_dir: Path | None = None
    history_run: str | None = None
    label: str | None = None
    step: int | None = None
    non_eval_failures: int = 0
    names: Mapping[str, str] = field(default_factory=dict)
    """Short suite names (``test_addition``) to full suite ids, for logging keys."""

    @property
    def passed_gates(self) -> bool:
        return not self.gate_failures and self.non_eval_failures == 0

    @property
    def n(self) -> int:
        return sum(s.n for s in self.suites)

    def suite(self, name: str) -> SuiteResult:
        """A suite by full id, short name, or a unique part of its id."""
        full = self.names.get(name, name)
        for s in self.suites:
            if s.name == full:
                return s
        matches = [s for s in self.suites if name in s.name]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(self.names) or "none"
        if not matches:
            raise KeyError(f"no suite {name!r} in this result (suites: {known})")
        raise KeyError(f"{name!r} matches {len(matches)} suites ({', '.join(s.name for s in matches)}); use the full id")

    def pass_rate(self, name: str | None = None) -> float:
        """One suite's pass rate, or (no name) the pass rate over every case of every suite."""
        if name is not None:
            return self.suite(name).pass_rate
        n = self.n
        return sum(s.passed for s in self.suites) / n if n else 0.0

    def pass_rates(self) -> dict[str, float]:
        """``{short name: pass rate}`` for every suite."""
        return {short: self.suite(full).pass_rate for short, full in self.names.items()}

    def log_dict(self, prefix: str = "eval") -> dict[str, float]:
        """Flat figures for a training logger: ``eval/<suite>/pass_rate``, ``.../ci_low``,
        ``.../ci_high``, ``.../n``, ``.../errors`` and each graded metric ``.../<metric>``."""
        out: dict[str, float] = {}
        for short, full in self.names.items():
            s = self.suite(full)
            low, high = s.interval()
            key = f"{prefix}/{short}"
            out[f"{key}/pass_rate"] = s.pass_rate
            out[f"{key}/ci_low"] = low
            out[f"{key}/ci_high"] = high
            out[f"{key}/n"] = float(s.n)
            out[f"{key}/errors"] = float(s.errors)
            for metric, value in s.metrics.items():
                out[f"{key}/{metric}"] = float(value)
        return out

    def summary(self) -> str:
        """One line per suite: ``test_addition: 64.0% [59.7, 68.1] n=500``."""
        lines = []
        for short, full in self.names.items():
            s = self.suite(full)
            low, high = s.interval()
            extra = f" errors={s.errors}" if s.errors else ""
            lines.append(f"{short}: {s.pass_rate:.1%} [{low * 100:.1f}, {high * 100:.1f}] n={s.n}{extra}")
        for failure in self.gate_failures:
            lines.append(f"gate failed: {failure}")
        return "\n".join(lines)


def short_names(suites: Sequence[str]) -> dict[str, str]:
    """Map each suite id to the shortest unambiguous name: the test function's name
    (``test_addition``), else ``file_stem/function``, else the full id."""
    def func(s: str) -> str:
        return s.rsplit("::", 1)[-1]

    def stem_func(s: str) -> str:
        path, _, name = s.partition("::")
        return f"{Path(path).stem}/{name.replace('::', '/')}"

    out: dict[str, str] = {}
    for s in suites:
        for candidate in (func(s), stem_func(s), s):
            if sum(1 for other in suites if candidate in (func(other), stem_func(other), other)) == 1:
                out[candidate] = s
                break
        else:  # pragma: no cover - ids are unique, so the full id always works
            out[s] = s
    return out


class _InlinePlugin:
    """Registered for one ``pytest.main`` call: installs the live backend, collects records."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.records: list[CaseRecord] = []
        self.gate_failures: tuple[str, ...] = ()
        self.non_eval_failures = 0
        self.rootdir: Path | None = None
        self.history_setting: str | None = None
        self.backend: Any = None
        self.collect_errors: list[str] = []
        self.suites: tuple[SuiteResult, ...] = ()

    def pytest_configure(self, config: pytest.Config) -> None:
        self.rootdir = config.rootpath
        try:
            self.history_setting = config.getini("llmeval_history") or None
        except ValueError:
            self.history_setting = None

    def pytest_llmeval_make_backend(self, config: pytest.Config, settings: Any) -> Any:
        """This model, as it is in memory, with the settings a pytest run of these files would use."""
        import pytest_llmeval as le

        self.backend = le.HFBackend.from_model(self.model, self.tokenizer, settings.replace(model=None))
        return self.backend

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid or report.fspath}: {report.longreprtext.strip()}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        records = records_from_properties(report.user_properties)
        self.records.extend(records)
        if report.failed and not records:
            self.non_eval_failures += 1

    def pytest_llmeval_report(self, config: pytest.Config, report: Any) -> None:
        self.gate_failures = tuple(report.failures)
        self.suites = tuple(report.suites)


def evaluate(
    model: Any,
    tokenizer: Any,
    paths: str | Path | Sequence[str | Path] = "evals",
    *,
    keyword: str | None = None,
    limit: int | None = None,
    output_dir: str | Path | None = None,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    train_data: str | Path | None = None,
    baseline: str | Path | None = None,
    history: str | Path | bool | None = None,
    label: str | None = None,
    step: int | None = None,
    args: Sequence[str] = (),
    rootdir: str | Path | None = None,
    quiet: bool = True,
) -> EvalResult:
    """Run the eval files under ``paths`` on ``model`` (a live transformers model) and return
    the suites' results.

    The model runs as it is in memory (same device, same weights, no copy). ``keyword`` is
    pytest's ``-k``; ``limit`` is ``--llmeval-limit``; ``output_dir`` writes the same
    ``results.json`` and ``samples.jsonl`` as ``pytest --llmeval-output``; ``max_new_tokens``,
    ``batch_size``, ``seed``, ``train_data`` and ``baseline`` are the ``--llmeval-*`` options
    of those names (else the ini keys apply, as in a pytest run). ``history`` is the run-history
    file (default: the ``llmeval_history`` ini key or ``.llmeval/history.sqlite`` under the
    rootdir; ``False`` to skip); the run is recorded with ``label`` and ``step``. ``args`` are
    extra pytest arguments. ``quiet`` keeps pytest's output out of the training log (it is in
    ``result.output``).

    Raises :class:`InlineEvalError` when the files cannot be run (collection error, usage
    error, no eval cases).
    """
    path_args = [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
    if not path_args:
        raise ValueError("evaluate() needs at least one path: the eval files or a folder of them")
    cmd = _command(
        path_args, keyword=keyword, limit=limit, output_dir=output_dir, max_new_tokens=max_new_tokens,
        batch_size=batch_size, seed=seed, train_data=train_data, baseline=baseline, rootdir=rootdir,
        quiet=quiet, extra=args,
    )
    plugin = _InlinePlugin(model, tokenizer)
    exit_code, output, seconds = _run_on_live_model(model, cmd, plugin, path_args, quiet=quiet)
    if exit_code == 2 and not plugin.collect_errors:
        raise KeyboardInterrupt("inline eval interrupted")  # Ctrl-C: pytest swallowed it, pass it on
    if exit_code in _EXIT_MEANING or not plugin.records:
        code = exit_code if exit_code in _EXIT_MEANING else 5
        if plugin.collect_errors:
            output = "\n".join(plugin.collect_errors) + "\n" + output
        raise InlineEvalError(
            _failure_message(code, path_args, output, plugin.collect_errors), exit_code=exit_code, output=output
        )

    # the suites as the run's own report computed them (same min_pass_rate defaults and all)
    suites = plugin.suites or tuple(aggregate_suites(plugin.records))
    names = short_names([s.name for s in suites])
    history_run = None
    if history is not False:
        history_run = _record_history(plugin, history, label, step)
    return EvalResult(
        suites=suites,
        records=tuple(plugin.records),
        gate_failures=plugin.gate_failures,
        exit_code=exit_code,
        seconds=seconds,
        output=output,
        output_dir=_resolve(output_dir, plugin.rootdir) if output_dir is not None else None,
        history_run=history_run,
        label=label,
        step=step,
        non_eval_failures=plugin.non_eval_failures,
        names=names,
    )


def _run_on_live_model(model: Any, cmd: list[str], plugin: _InlinePlugin, path_args: list[str], *, quiet: bool) -> tuple[int, str, float]:
    """Run pytest on ``model`` in eval mode under ``inference_mode``; restore its modes and the RNGs.

    This is the only place the model's mode changes: ``eval()`` for the run, then exactly as found.
    """
    import torch

    buffer = io.StringIO()
    modules_before = set(sys.modules)
    path_before = list(sys.path)
    started = time.perf_counter()
    modes = [(module, module.training) for module in model.modules()]
    rng = _rng_state()
    model.eval()
    try:
        with torch.inference_mode():
            if quiet:
                with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                    exit_code = int(pytest.main(cmd, plugins=[plugin]))
            else:
                exit_code = int(pytest.main(cmd, plugins=[plugin]))
    finally:
        for module, training in modes:
            module.training = training
        _set_rng_state(rng)
        _forget_eval_modules(path_args, modules_before, path_before)
    return exit_code, buffer.getvalue(), time.perf_counter() - started

def _command(
    paths: list[str],
    *,
    keyword: str | None,
    limit: int | None,
    output_dir: str | Path | None,
    max_new_tokens: int | None,
    batch_size: int | None,
    seed: int | None,
    train_data: str | Path | None,
    baseline: str | Path | None,
    rootdir: str | Path | None,
    quiet: bool,
    extra: Sequence[str],
) -> list[str]:
    cmd = [*paths, "-p", "no:cacheprovider", "--llmeval-history", "off"]
    # the package is imported before pytest starts in a training process: nothing to rewrite
    cmd += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", "0"]  # a live model stays in this process: no workers
    if quiet:
        cmd += ["-q", "--no-header"]
        if not any(a == "--tb" or a.startswith("--tb=") for a in extra):
            # nobody reads the tracebacks of missed cases here, and formatting one costs ~15 ms
            # (pytest parses the source of every frame); the records carry each miss's reason
            cmd += ["--tb=no"]
    options = {
        "--llmeval-limit": limit,
        "--llmeval-output": output_dir,
        "--llmeval-max-new-tokens": max_new_tokens,
        "--llmeval-batch-size": batch_size,
        "--llmeval-seed": seed,
        "--llmeval-train-data": train_data,
        "--llmeval-baseline": baseline,
        "--rootdir": rootdir,
    }
    for flag, value in options.items():
        if value is not None:
            cmd += [flag, str(Path(value).resolve()) if isinstance(value, Path) else str(value)]
    if keyword:
        cmd += ["-k", keyword]
    cmd += list(extra)
    return cmd


def _failure_message(exit_code: int, paths: list[str], output: str, collect_errors: Sequence[str] = ()) -> str:
    meaning = _EXIT_MEANING.get(exit_code, f"pytest exited with status {exit_code}")
    lines = output.strip().splitlines()
    if collect_errors:
        evidence = []
        for error in collect_errors[:3]:
            head, *rest = error.splitlines() or [""]
            evidence += [head.split(":", 1)[0] + ":"] + rest[-8:]
    else:
        evidence = [line for line in lines if line.startswith(("E   ", "ERROR ", "ImportError", "SyntaxError"))][:12]
        evidence += lines[-1:]
    tail = "\n".join(evidence)
    where = ", ".join(paths)
    hint = (
        f"run `pytest {where}` to see the problem"
        if exit_code != 5
        else f"check that {where} holds test files with @pytest_llmeval.cases suites (and that -k/limit select some)"
    )
    return f"inline eval of {where} failed: {meaning}; {hint}" + (f"\n{tail}" if tail else "")


def _resolve(value: str | Path, rootdir: Path | None) -> Path:
    p = Path(value).expanduser()
    if p.is_absolute() or rootdir is None:
        return p
    return rootdir / p


def _record_history(plugin: _InlinePlugin, history: str | Path | bool | None, label: str | None, step: int | None) -> str | None:
    import warnings

    from pytest_llmeval.results import history as hist

    if history is None or history is True:
        setting = plugin.history_setting
        if setting is not None and str(setting).lower() in {"off", "none", "false", "0"}:
            return None
        target = Path(setting) if setting else hist.DEFAULT_PATH
    else:
        target = Path(history)
    target = _resolve(target, plugin.rootdir)
    try:
        return hist.record_run(target, plugin.records, label=label, step=step)
    except Exception as exc:  # the history is a convenience: never break a training run over it
        warnings.warn(f"llmeval: could not append to the run history {target}: {exc}", stacklevel=3)
        return None


def _forget_eval_modules(paths: Sequence[str], modules_before: set[str], path_before: list[str]) -> None:
    """Drop the test modules and conftests the run imported from the eval paths (and the
    ``sys.path`` entries it added), so a later run imports them afresh: two eval folders with
    a ``test_math.py`` each, or an edited eval file, work in one training process."""
    roots = []
    for p in paths:
        path = Path(p.split("::", 1)[0]).resolve()
        roots.append(path if path.is_dir() else path.parent)
    for name in set(sys.modules) - modules_before:
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file:
            continue
        resolved = Path(file).resolve()
        if any(root == resolved.parent or root in resolved.parents for root in roots):
            del sys.modules[name]
    sys.path[:] = path_before


def _rng_state() -> dict[str, Any]:
    """The random number generators a run touches (generation seeds them), to put back after."""
    import random

    import numpy as np
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
