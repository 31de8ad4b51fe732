"""The plugin's options: one table holds each option's name, type, parser and help.

Every option exists twice, as ``--llmeval-NAME`` on the command line and as the ini key
``llmeval_NAME``; the command line wins. Values are parsed and validated once, here, when the
session starts, so a bad value is a one-line usage error and never a traceback later on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import pytest

from pytest_llmeval.settings import CPU_MATMUL, DTYPES, GenerationSettings, LLMSettings, SettingsError, parse_bool

Kind = Literal["value", "flag", "append"]


def _int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _float(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        if value != value or (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bounds}, got {text!r}")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).strip()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return value

    return parse


def _shard(text: str) -> tuple[int, int]:
    from pytest_llmeval.plugin.shard import parse_shard

    return parse_shard(text)


def _ks(text: str) -> tuple[int, ...]:
    values = []
    for part in str(text).replace(",", " ").split():
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"expected whole numbers of at least 1 separated by commas, got {text!r}")
        values.append(int(part))
    return tuple(sorted(set(values)))


def _batch_size(text: str) -> int | str:
    value = str(text).strip()
    if value == "auto":
        return value
    if not value.isdigit():
        raise ValueError(f"expected a number or 'auto', got {text!r}")
    return _int(1)(value)


def _device(text: str) -> str:
    value = str(text).strip()
    if value in ("auto", "cpu", "cuda", "mps") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}")


def _text(text: str) -> str:
    return str(text)


def _flag(text: Any) -> bool:
    try:
        return parse_bool(text)
    except SettingsError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Option:
    """One ``--llmeval-NAME`` option and its ``llmeval_NAME`` ini key."""

    name: str
    help: str
    parse: Callable[[Any], Any] = _text
    kind: Kind = "value"
    path: bool = False
    """A file or folder: relative to the invocation directory on the command line, to the ini
    file's directory in the ini file (as pytest resolves its own paths)."""
    setting: str | None = None
    """The :class:`LLMSettings` field this option sets (``generation.X`` for generation settings)."""

    @property
    def flag(self) -> str:
        return f"--llmeval-{self.name}"

    @property
    def dest(self) -> str:
        return "llmeval_" + self.name.replace("-", "_")

    @property
    def takes_value(self) -> bool:
        return self.kind != "flag"


OPTIONS: tuple[Option, ...] = (
    Option("model", "model: a local HF directory, a cached hub id, a .gguf file, pkg:PACKAGE/FILE, or SCHEME:... of an installed backend", setting="model"),
    Option("dtype", "weights dtype: auto (float32 on CPU, bfloat16/float16 on CUDA), float32, float16, bfloat16", _choice(*DTYPES), setting="dtype"),
    Option("device", "device: auto (cuda when present, else cpu), cpu, cuda, cuda:N", _device, setting="device"),
    Option("batch-size", "batch size for generation and scoring: a number or auto", _batch_size, setting="batch_size"),
    Option("seed", "seed for python, numpy and torch (default 1234)", _int(0), setting="seed"),
    Option("max-new-tokens", "most tokens generated per completion (default 64)", _int(1), setting="generation.max_new_tokens"),
    Option("stop", "stop string ending a completion (repeat the option for several)", kind="append", setting="generation.stop"),
    Option("do-sample", "sample instead of greedy decoding (then temperature/top_p apply)", _flag, "flag", setting="generation.do_sample"),
    Option("temperature", "sampling temperature (only with do_sample)", _float(0.0), setting="generation.temperature"),
    Option("top-p", "nucleus sampling top_p (only with do_sample)", _float(0.0, 1.0), setting="generation.top_p"),
    Option("max-length", "longest context in tokens (default: the model's)", _int(1), setting="max_length"),
    Option("cpu-matmul", "float32 linear layers on a CPU: auto (oneDNN's kernels where they agree with torch's in float32; about 2x faster on some CPUs) or torch", _choice(*CPU_MATMUL), setting="cpu_matmul"),
    Option("window", "most items one batched run covers (default: all pending; 64 on an xdist worker)", _int(1)),
    Option("limit", "run only the first N cases of each suite (for debugging; blocks baseline updates)", _int(1)),
    Option("baseline", "baseline JSON file to compare suites against", path=True),
    Option("update-baseline", "record the suites that ran into the baseline file", _flag, "flag"),
    Option("force", "update the baseline even from a narrowed run or one with errors", _flag, "flag"),
    Option("strict", "fail the session on any wrong answer, not only on gates", _flag, "flag"),
    Option("tolerance", "drop in pass rate (0-1) tolerated before a regression (default 0.02)", _float(0.0, 1.0)),
    Option("alpha", "significance level of the paired test: McNemar, or a sign-flip test over cases with repeats (default 0.05)", _float(0.0, 1.0)),
    Option("min-pass-rate", "default minimum pass rate (0-1) for every suite", _float(0.0, 1.0)),
    Option("output", "directory for results.json and samples.jsonl", path=True),
    Option("markdown", "write a Markdown summary (for pull requests) to this file", path=True),
    Option("train-data", "training data (JSONL or text) to check eval cases against for overlap", path=True),
    Option("history", "SQLite run history file (default .llmeval/history.sqlite; 'off' to disable)", path=True),
    # HTML report and shards
    Option("html", "write a self-contained HTML report of the run to this file", path=True),
    Option("shard", "run one deterministic part of the eval cases: I/N (1 <= I <= N), e.g. 2/4; merge the parts' outputs with python -m pytest_llmeval merge", _shard),
    # OpenAI-compatible HTTP backend (llmeval_model = "openai:MODEL")
    Option("base-url", "base URL of an OpenAI-compatible server (default $OPENAI_BASE_URL, else https://api.openai.com/v1)", setting="base_url"),
    Option("api-key-env", "environment variable holding the API key (default OPENAI_API_KEY); the key is never written", setting="api_key_env"),
    Option("concurrency", "most HTTP requests in flight at once (default 16)", _int(1), setting="concurrency"),
    Option("request-timeout", "seconds one HTTP request may take before it is retried (default 60)", _float(0.001), setting="request_timeout"),
    Option("max-retries", "retries of an HTTP request after 429, 5xx, a timeout or a dropped connection (default 4)", _int(0), setting="max_retries"),
    Option("price-in", "USD per million prompt tokens, to report the cost of HTTP requests", _float(0.0), setting="price_in"),
    Option("price-out", "USD per million completion tokens, to report the cost of HTTP requests", _float(0.0), setting="price_out"),
    Option("max-cost", "stop sending HTTP requests once this many USD are spent (needs --llmeval-price-in/-out)", _float(0.0), setting="max_cost"),
    # the completion cache
    Option("cache", "completion cache: on (read and write, the default), off, refresh (recompute and overwrite) or readonly", _choice("on", "off", "refresh", "readonly")),
    Option("cache-path", "SQLite completion cache file (default .llmeval/cache.sqlite under the rootdir)", path=True),
    # repeated sampling
    Option("repeats", "samples per eval case (default 1); le.cases(repeats=) wins for its suite", _int(1)),
    Option("pass-k", "with repeats, more k to report pass@k and pass^k for (comma-separated; 1 and the k run always)", _ks),
    # model-graded scoring (le.Rubric / le.Pairwise judges)
    Option("judge-model", "judge model for le.Rubric/le.Pairwise, in the forms of --llmeval-model (default: the model under test)"),
    Option("judge-max-new-tokens", "most tokens a judge that cannot score loglikelihoods generates for its label (default 8)", _int(1)),
)
VALUE_FLAGS: frozenset[str] = frozenset(o.flag for o in OPTIONS if o.takes_value)
"""The options that take their value as the next command-line argument."""


def settings_from(values: Mapping[str, Any]) -> LLMSettings:
    """The model settings that option values (by option name; None when unset) describe."""
    top: dict[str, Any] = {}
    generation: dict[str, Any] = {}
    for o in OPTIONS:
        value = values.get(o.name)
        if o.setting is None or value is None:
            continue
        group, _, field = o.setting.rpartition(".")
        (generation if group == "generation" else top)[field] = value
    return LLMSettings(**top, generation=GenerationSettings(**generation))


def setting_of(settings: LLMSettings, option: Option) -> Any:
    """The value ``settings`` holds for a model option."""
    value: Any = settings
    for part in (option.setting or "").split("."):
        value = getattr(value, part)
    return tuple(value or ()) if option.kind == "append" else value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmeval", "LLM evaluations (pytest-llmeval)")
    for o in OPTIONS:
        if o.kind == "flag":
            group.addoption(o.flag, action="store_true", default=None, dest=o.dest, help=o.help)
            parser.addini(o.dest, f"{o.help} (true/false)", default=None)  # parsed here: one message in any pytest
        elif o.kind == "append":
            group.addoption(o.flag, action="append", default=None, dest=o.dest, metavar="TEXT", help=o.help)
            parser.addini(o.dest, o.help, type="linelist", default=[])
        else:
            metavar = o.name.upper().replace("-", "_")
            group.addoption(o.flag, action="store", default=None, dest=o.dest, metavar=metavar, help=o.help)
            parser.addini(o.dest, o.help, default=None)


@dataclass(frozen=True)
class Values:
    """The parsed value of every option (None when unset), and where each came from."""

    values: Mapping[str, Any]
    from_cli: frozenset[str]
    base: Mapping[str, Path]
    """What a relative path in each option is relative to."""

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def path(self, name: str) -> Path | None:
        value = self.values[name]
        if value is None:
            return None
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() else self.base[name] / path


def read_options(config: pytest.Config) -> Values:
    """Every option's value, parsed; a bad one is a one-line :class:`pytest.UsageError`."""
    values: dict[str, Any] = {}
    from_cli: set[str] = set()
    ini_dir = config.inipath.parent if config.inipath is not None else config.rootpath
    for o in OPTIONS:
        raw = config.getoption(o.dest, default=None)
        if raw is not None and raw != []:
            from_cli.add(o.name)
            where = o.flag
        else:
            where = f"{o.dest} (in {config.inipath.name if config.inipath else 'the ini file'})"
            try:
                raw = config.getini(o.dest)
            except ValueError as exc:
                raise pytest.UsageError(f"llmeval: {where}: {exc}") from None
        values[o.name] = _parse(o, raw, where)
    base = {o.name: config.invocation_params.dir if o.name in from_cli else ini_dir for o in OPTIONS}
    return Values(values, frozenset(from_cli), base)


def _parse(option: Option, raw: Any, where: str) -> Any:
    if raw is None or raw == "" or raw == []:
        return None
    if option.kind == "flag":
        raw = raw if isinstance(raw, bool) else str(raw)
    try:
        if option.kind == "append":
            return tuple(str(v) for v in raw) if isinstance(raw, (list, tuple)) else (str(raw),)
        return option.parse(raw)
    except ValueError as exc:
        raise pytest.UsageError(f"llmeval: {where}: {exc}") from None


def space_form_paths(args: tuple[str, ...], cwd: Path) -> list[tuple[str, str]]:
    """Path options given as ``--llmeval-NAME VALUE`` whose VALUE exists: pytest counted VALUE as
    a test path when it chose the rootdir and ini file (before it knew this plugin's options)."""
    found = []
    for i, arg in enumerate(args[:-1]):
        option = next((o for o in OPTIONS if o.path and o.flag == arg), None)
        if option is not None and (cwd / os.path.expanduser(args[i + 1])).exists():
            found.append((arg, args[i + 1]))
    return found
