"""What the options mean for one session: the gate's options, where files go, and the
warnings about options that have no effect."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.options import OPTIONS, VALUE_FLAGS, history_off, setting_of
from pytest_llmeval.own_warnings import warn
from pytest_llmeval.plugin.identity import suite_root
from pytest_llmeval.plugin.options import Values, space_form_paths
from pytest_llmeval.redaction import redact_args
from pytest_llmeval.results.gate import GateOptions
from pytest_llmeval.settings import LLMSettings, SettingsError, coerce_settings


def narrowed_by(config: pytest.Config, options: Values) -> tuple[str, ...]:
    """What narrowed the run to part of the suites' cases (then the baseline is not updated)."""
    narrowed: list[str] = []
    if config.getoption("keyword", default=""):
        narrowed.append("-k")
    if config.getoption("markexpr", default=""):
        narrowed.append("-m")
    if options["limit"] is not None:
        narrowed.append("--llmeval-limit")
    if config.getoption("deselect", default=None):
        narrowed.append("--deselect")
    if config.getoption("lf", default=False):
        narrowed.append("--lf")
    if any("[" in str(arg) for arg in config.args):
        narrowed.append("a node id with a case id")
    if options["shard"] is not None:
        narrowed.append("--llmeval-shard")
    return tuple(narrowed)


def run_options(config: pytest.Config, options: Values) -> GateOptions:
    """The options that decide the verdict and the reports."""
    tolerance, alpha = options["tolerance"], options["alpha"]
    return GateOptions(
        rootdir=suite_root(config),
        baseline=options.path("baseline"),
        update_baseline=bool(options["update-baseline"]),
        force=bool(options["force"]),
        strict=bool(options["strict"]),
        tolerance=0.02 if tolerance is None else tolerance,
        alpha=0.05 if alpha is None else alpha,
        min_pass_rate=options["min-pass-rate"],
        output_dir=options.path("output"),
        markdown=options.path("markdown"),
        limit=options["limit"],
        narrowed_by=narrowed_by(config, options),
        invocation=tuple(redact_args(config.invocation_params.args)),  # credentials never shown or stored
        value_flags=VALUE_FLAGS,
        shard=options["shard"],
        pass_ks=options["pass-k"] or (),
        **({"max_cut_share": options["max-cut-share"]} if options["max-cut-share"] is not None else {}),
    )


def cache_path(config: pytest.Config, options: Values) -> Path:
    """The completion cache file: ``llmeval_cache_path``, else ``.llmeval/cache.sqlite`` under the rootdir."""
    return options.path("cache-path") or config.rootpath / ".llmeval" / "cache.sqlite"


def history_path(config: pytest.Config, options: Values) -> Path | None:
    """The run-history file, or None when it is turned off."""
    if history_off(options["history"]):
        return None
    return options.path("history") or config.rootpath / ".llmeval" / "history.sqlite"


def ignored_cli_settings(options: Values, settings: LLMSettings, fixture_value: Any) -> list[str]:
    """The ``--llmeval-*`` model options given on the command line that an overridden
    ``llm_settings`` fixture's value does not follow (they have no effect); ``settings`` are
    those the options describe."""
    if fixture_value is settings:
        return []
    try:
        used = coerce_settings(fixture_value)
    except SettingsError:  # the llm fixture reports it
        return []
    return [o.flag for o in OPTIONS if o.setting and o.name in options.from_cli and setting_of(used, o) != setting_of(settings, o)]


def warn_space_form_paths(config: pytest.Config) -> None:
    """Warn about ``--llmeval-output DIR`` (space form) with an existing DIR: pytest took DIR
    as a test path when it chose the rootdir and ini file."""
    args = (*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *map(str, config.invocation_params.args))
    for flag, value in space_form_paths(args, config.invocation_params.dir):
        ini = config.inipath
        try:
            config.issue_config_time_warning(
                pytest.PytestConfigWarning(
                    f"llmeval: pytest read the value of '{flag} {value}' as a test path when it chose the rootdir "
                    f"({config.rootpath}) and ini file ({ini or 'none'}), so settings may come from the wrong "
                    f"ini file; write '{flag}={value}' (with '=') or set {flag[2:].replace('-', '_')} in the ini file"
                ),
                stacklevel=2,
            )
        except Warning as escalated:  # -W error: pytest raises it; shown on stderr instead, never a traceback
            warn(escalated)
