"""Code with tests in a session: the sandbox and its pool, the prefetch pass, each item's verdicts.

- When the session starts (in this process, and in each xdist worker): ``le.assert_code`` runs
  its programs in the sandbox ``llmeval_code_sandbox`` names (``bwrap`` by default), at most
  ``llmeval_code_workers`` at once (default: the CPUs this process may use; on an xdist worker,
  its share of them). When the session ends the pool stops.
- The prefetch pass: once a window of completions is stored (each computed chunk, as it is
  done), the test body of each of its items that uses ``le.assert_code`` and asks for no fixture
  but ``case`` and ``completion`` runs in dry mode with the objects those fixtures will return.
  There ``assert_code`` only starts its program in the pool and stops the body; when pytest
  runs the item, its ``assert_code`` finds that run. A dry run leaves nothing behind that a user
  can see: its ``le.score`` calls, output and warnings are dropped, a body that needs any other
  fixture (a judge, the model, ``tmp_path``) or sits in a class is not dry-run, and whatever
  it raises is ignored (the real call raises it again).
- Around each item's call, the verdicts of its ``assert_code`` calls, for its record.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import warnings
from typing import Any, Iterator, Sequence

import pytest

from pytest_llmeval.plugin.identity import eval_item
from pytest_llmeval.plugin.options import OPTIONS, Values

__all__ = ["Prefetcher", "check_sandbox", "dry_run", "end_session", "install", "prefetchable", "recording", "start_session", "verdicts_json", "workers_for"]

DEFAULT_SANDBOX = "bwrap"
DRY_RUN_ARGS = ("case", "completion")


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


@contextlib.contextmanager
def recording() -> Iterator[list[Any]]:
    """The verdicts of the ``assert_code`` calls made inside the block."""
    from pytest_llmeval.scoring.code import recording_verdicts

    with recording_verdicts() as found:
        yield found


def verdicts_json(verdicts: Sequence[Any]) -> tuple[dict[str, Any], ...] | None:
    """What a record keeps of an item's verdicts (None when it ran no program)."""
    return tuple(v.as_dict() for v in verdicts) or None


def prefetchable(item: pytest.Item) -> bool:
    """Whether the prefetch pass may call this item's test body: a plain test function (not a
    method) of an eval suite with a completion, that uses ``assert_code`` and takes no argument
    but ``case`` and ``completion``."""
    from pytest_llmeval.scoring.code import can_prefetch

    if not isinstance(item, pytest.Function) or item.cls is not None or eval_item(item) is None:
        return False
    function = item.function
    if "completion" not in item.fixturenames or inspect.unwrap(function) is not function:
        return False
    if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
        return False
    return can_prefetch(function, DRY_RUN_ARGS)


def dry_run(function: Any, case: Any, completion: Any) -> list[str]:
    """Run ``function`` in dry mode; the keys of the jobs it started (usually one). The case is a
    copy (a body that changes its case's data changes nothing the real call sees); the
    completion is the object itself (a ``str``, it cannot change)."""
    from pytest_llmeval.scoring.code import prefetch

    try:
        case = copy.deepcopy(case)
    except Exception:  # noqa: BLE001 - a case that cannot be copied is not dry-run
        return []
    parameters = inspect.signature(function).parameters
    given = {"case": case, "completion": completion}
    kwargs = {name: value for name, value in given.items() if name in parameters}
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        return prefetch(lambda: function(**kwargs))


class Prefetcher:
    """The scheduler's ``on_ready``: dry-runs each ready item that can be, once, in run order."""

    def __init__(self, items: Sequence[pytest.Item], scheduler: Any) -> None:
        self.scheduler = scheduler
        self.order = {item.nodeid: i for i, item in enumerate(items)}
        self.items = {item.nodeid: item for item in items if prefetchable(item)}
        self.started: dict[str, list[str]] = {}
        """Node id -> the keys of the jobs its dry run started."""

    def __bool__(self) -> bool:
        return bool(self.items)

    def __call__(self, keys: Sequence[str]) -> None:
        for key in sorted((k for k in keys if k in self.items and k not in self.started), key=self.order.__getitem__):
            item = self.items[key]
            found = eval_item(item)
            completion = self.scheduler.peek(key)
            if found is None or completion is None:
                continue
            self.started[key] = dry_run(item.function, found[1], completion)


def install(items: Sequence[pytest.Item], scheduler: Any) -> Prefetcher | None:
    """Set the prefetch pass on ``scheduler`` when some selected item can use it."""
    prefetcher = Prefetcher(items, scheduler)
    scheduler.on_ready = prefetcher if prefetcher else None
    return prefetcher if prefetcher else None
