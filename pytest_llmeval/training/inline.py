"""Evaluate a live model in-process: the same eval files a ``pytest`` run uses, no copy of weights.

    import pytest_llmeval as le

    result = le.evaluate(model, tokenizer, "evals/")        # during training, on the live model
    result.pass_rate("test_addition")                         # 0.64
    result.log_dict()                                         # {"eval/test_addition/pass_rate": 0.64, ...}

:func:`evaluate` runs ``pytest.main`` on the eval files with a small plugin object that hands
the plugin *this* model to run as it is (the ``pytest_llmeval_live_model`` hook), so
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
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

from pytest_llmeval.options import history_off, option
from pytest_llmeval.results.records import CaseRecord, records_from_properties
from pytest_llmeval.results.stats import SuiteResult, aggregate_suites
from pytest_llmeval.training.result import EvalResult, short_names

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


class _InlinePlugin:
    """Registered for one ``pytest.main`` call: hands over the live model, collects records."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.records: list[CaseRecord] = []
        self.gate_failures: tuple[str, ...] = ()
        self.non_eval_failures = 0
        self.rootdir: Path | None = None
        self.history_setting: str | None = None
        self.collect_errors: list[str] = []
        self.suites: tuple[SuiteResult, ...] = ()

    def pytest_configure(self, config: pytest.Config) -> None:
        self.rootdir = config.rootpath
        try:
            self.history_setting = config.getini(option("history").dest) or None
        except ValueError:
            self.history_setting = None

    def pytest_llmeval_live_model(self, config: pytest.Config) -> tuple[Any, Any]:
        """This model, as it is in memory (the plugin runs it with the settings a pytest run of these files would use)."""
        return self.model, self.tokenizer

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
    arguments = dict(locals())  # the parameters, before anything else is bound
    forwarded = {name: arguments[name] for name in FORWARDED_OPTIONS}
    path_args = [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
    if not path_args:
        raise ValueError("evaluate() needs at least one path: the eval files or a folder of them")
    cmd = _command(path_args, forwarded, keyword=keyword, rootdir=rootdir, quiet=quiet, extra=args)
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
    history_run = _record_history(plugin, history, label, step) if history is not False else None
    return _result(plugin, exit_code, output, seconds, output_dir=output_dir, history_run=history_run, label=label, step=step)


def _result(plugin: _InlinePlugin, exit_code: int, output: str, seconds: float, *, output_dir: str | Path | None, **run: Any) -> EvalResult:
    """The result of a run: the suites as its own report computed them (same ``min_pass_rate``
    defaults and all), else aggregated from its records."""
    suites = plugin.suites or tuple(aggregate_suites(plugin.records))
    return EvalResult(
        suites=suites,
        records=tuple(plugin.records),
        gate_failures=plugin.gate_failures,
        exit_code=exit_code,
        seconds=seconds,
        output=output,
        output_dir=_resolve(output_dir, plugin.rootdir) if output_dir is not None else None,
        non_eval_failures=plugin.non_eval_failures,
        names=short_names([s.name for s in suites]),
        **run,
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


FORWARDED_OPTIONS = {
    "limit": "limit",
    "output_dir": "output",
    "max_new_tokens": "max-new-tokens",
    "batch_size": "batch-size",
    "seed": "seed",
    "train_data": "train-data",
    "baseline": "baseline",
}
"""The keyword arguments of :func:`evaluate` that are ``--llmeval-*`` options: the option each one sets."""


def _command(
    paths: list[str], forwarded: Mapping[str, Any], *, keyword: str | None, rootdir: str | Path | None, quiet: bool, extra: Sequence[str]
) -> list[str]:
    """The pytest command line of an inline run; ``forwarded`` holds the values of
    :data:`FORWARDED_OPTIONS` (None: not given, the ini key applies)."""
    cmd = [*paths, "-p", "no:cacheprovider", option("history").flag, "off"]
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
    flags = [(option(FORWARDED_OPTIONS[name]).flag, value) for name, value in forwarded.items()]
    for flag, value in [*flags, ("--rootdir", rootdir)]:
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
    from pytest_llmeval.own_warnings import warn

    from pytest_llmeval.results import history as hist

    if history is None or history is True:
        setting = plugin.history_setting
        if history_off(setting):
            return None
        target = Path(setting) if setting else hist.DEFAULT_PATH
    else:
        target = Path(history)
    target = _resolve(target, plugin.rootdir)
    try:
        return hist.record_run(target, plugin.records, label=label, step=step)
    except Exception as exc:  # the history is a convenience: never break a training run over it
        warn(UserWarning(f"llmeval: could not append to the run history {target}: {exc}"), stacklevel=3)
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
