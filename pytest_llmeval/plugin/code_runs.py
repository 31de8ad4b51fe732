"""Code with tests in a session: the sandbox and its pool.

When the session starts (in this process, and in each xdist worker): ``le.assert_code`` runs its
programs in the sandbox ``llmeval_code_sandbox`` names (``bwrap`` by default), at most
``llmeval_code_workers`` at once (default: the CPUs this process may use; on an xdist worker, its
share of them). When the session ends the pool stops.
"""

from __future__ import annotations

import pytest

from pytest_llmeval.plugin.options import OPTIONS, Values

__all__ = ["check_sandbox", "end_session", "start_session", "workers_for"]

DEFAULT_SANDBOX = "bwrap"


def check_sandbox(config: pytest.Config, values: Values) -> None:
    """A usage error, in the options' own form, when no sandbox of the chosen name is installed."""
    name = values["code-sandbox"]
    if name is None:
        return
    from pytest_llmeval.scoring.code.sandbox import available_sandboxes

    known = available_sandboxes()
    if name not in known:
        option = next(o for o in OPTIONS if o.name == "code-sandbox")
        where = option.flag if option.name in values.from_cli else f"{option.dest} (in {config.inipath.name if config.inipath else 'the ini file'})"
        raise pytest.UsageError(f"llmeval: {where}: expected one of {', '.join(known)}, got {name!r}")


def workers_for(config: pytest.Config, values: Values) -> int:
    """Parallel sandbox runs in this process: the option, else this process's CPUs, shared
    among the xdist workers of the session."""
    if values["code-workers"] is not None:
        return int(values["code-workers"])
    from pytest_llmeval.scoring.code.pool import default_workers

    cpus = default_workers()
    workerinput = getattr(config, "workerinput", None)
    count = workerinput.get("workercount") if isinstance(workerinput, dict) else None
    if isinstance(count, int) and count > 1:
        return max(1, round(cpus / count))
    return cpus


def start_session(config: pytest.Config, values: Values) -> None:
    """Choose the session's sandbox and pool size (nothing starts until a program runs)."""
    from pytest_llmeval.scoring.code import configure

    configure(sandbox=values["code-sandbox"] or DEFAULT_SANDBOX, workers=workers_for(config, values))


def end_session() -> None:
    """Stop the pool: queued runs nobody asked for are dropped, running ones finish."""
    from pytest_llmeval.scoring.code import shutdown

    shutdown()
