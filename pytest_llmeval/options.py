"""The option table: each ``--llmeval-NAME`` option (and its ``llmeval_NAME`` ini key) with its
type, parser, help and the setting it sets, in one place.

It imports no pytest: the plugin registers and reads the options from it
(:mod:`pytest_llmeval.plugin.options`), and ``evaluate()`` builds its command line from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from pytest_llmeval.settings import (
    CPU_MATMUL, DTYPES, MAX_REPEATS, MAX_SEED, MAX_TIMEOUT_S, MAX_TOKENS, GenerationSettings, LLMSettings, SettingsError, parse_bool,
    stop_problem, url_problem,
)  # fmt: skip

Kind = Literal["value", "flag", "append"]


def _int(minimum: int, maximum: int = MAX_TOKENS) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {str(text)[:40]!r}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"must be from {minimum} to {maximum}, got {str(value)[:40]}")
        return value

    return parse


def _float(low: float, high: float = math.inf) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (never NaN or infinite: no setting can use one)."""

    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {str(text)[:40]!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f"a finite number of at least {low:g}"
            raise ValueError(f"must be {bounds}, got {str(text)[:40]!r}")
        return value

    return parse


def _stop(text: str) -> str:
    problem = stop_problem((str(text),))
    if problem is not None:
        raise ValueError(problem)
    return str(text)


def _url(text: str) -> str:
    problem = url_problem(str(text))
    if problem is not None:
        raise ValueError(problem)
    return str(text)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).strip()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return value

    return parse


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; raises ``ValueError`` saying what a shard looks like."""
    index, sep, total = str(text).strip().partition("/")
    try:
        i, n = int(index), int(total)
    except ValueError:
        raise ValueError(f"expected I/N such as 2/4, got {text!r}") from None
    if not sep or n < 1 or not 1 <= i <= n:
        raise ValueError(f"expected I/N with 1 <= I <= N, such as 2/4, got {text!r}")
    return i, n


def _ks(text: str) -> tuple[int, ...]:
    values = []
    for part in str(text).replace(",", " ").split():
        if not part.isdigit() or not 1 <= int(part) <= MAX_REPEATS:
            raise ValueError(f"expected whole numbers from 1 to {MAX_REPEATS} separated by commas, got {str(text)[:40]!r}")
        values.append(int(part))
    return tuple(sorted(set(values)))


def _sandbox(text: str) -> str:
    """A sandbox's name; whether one of that name is installed is checked when the session starts
    (the providers live in the scoring part, above this table)."""
    value = str(text).strip()
    if not value or not all(c.isalnum() or c in "_.-" for c in value):
        raise ValueError(f"expected a sandbox name (bwrap, none, or an installed provider's), got {text!r}")
    return value


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
    Option("seed", f"seed for python, numpy and torch (default 1234; 0 to {MAX_SEED})", _int(0, MAX_SEED), setting="seed"),
    Option("max-new-tokens", "most tokens generated per completion (default 64)", _int(1), setting="generation.max_new_tokens"),
    Option("stop", "stop string ending a completion, not empty (repeat the option for several)", _stop, kind="append", setting="generation.stop"),
    Option("do-sample", "sample instead of greedy decoding (then temperature/top_p apply)", _flag, "flag", setting="generation.do_sample"),
    Option("temperature", "sampling temperature, above 0 (only with do_sample)", _float(0.0), setting="generation.temperature"),
    Option("top-p", "nucleus sampling top_p, above 0 and at most 1 (only with do_sample)", _float(0.0, 1.0), setting="generation.top_p"),
    Option("max-length", "longest context in tokens (default: the model's)", _int(1), setting="max_length"),
    Option("cpu-matmul", "float32 linear layers on a CPU: auto (the faster of torch's and oneDNN's kernels at the model's shapes, timed once per CPU), torch or onednn", _choice(*CPU_MATMUL), setting="cpu_matmul"),
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
    Option("shard", "run one deterministic part of the eval cases: I/N (1 <= I <= N), e.g. 2/4; merge the parts' outputs with python -m pytest_llmeval merge", parse_shard),
    # OpenAI-compatible HTTP backend (llmeval_model = "openai:MODEL")
    Option("base-url", "base URL of an OpenAI-compatible server (default $OPENAI_BASE_URL, else https://api.openai.com/v1)", _url, setting="base_url"),
    Option("api-key-env", "environment variable holding the API key (default OPENAI_API_KEY); the key is never written", setting="api_key_env"),
    Option("concurrency", "most HTTP requests in flight at once (default 16; at most 4096)", _int(1, 4096), setting="concurrency"),
    Option("request-timeout", f"seconds one HTTP request may take before it is retried (default 60; at most {MAX_TIMEOUT_S:g})", _float(0.001, MAX_TIMEOUT_S), setting="request_timeout"),
    Option("max-retries", "retries of an HTTP request after 429, 5xx, a timeout or a dropped connection (default 4; at most 100)", _int(0, 100), setting="max_retries"),
    Option("price-in", "USD per million prompt tokens, to report the cost of HTTP requests", _float(0.0, 1e9), setting="price_in"),
    Option("price-out", "USD per million completion tokens, to report the cost of HTTP requests", _float(0.0, 1e9), setting="price_out"),
    Option("max-cost", "stop sending HTTP requests once this many USD are spent (needs --llmeval-price-in/-out)", _float(0.0, 1e9), setting="max_cost"),
    # the completion cache
    Option("cache", "completion cache: on (read and write, the default), off, refresh (recompute and overwrite) or readonly", _choice("on", "off", "refresh", "readonly")),
    Option("cache-path", "SQLite completion cache file (default .llmeval/cache.sqlite under the rootdir)", path=True),
    # repeated sampling
    Option("repeats", f"samples per eval case (default 1, at most {MAX_REPEATS}); le.cases(repeats=) wins for its suite", _int(1, MAX_REPEATS)),
    Option("pass-k", "with repeats, more k to report pass@k and pass^k for (comma-separated; 1 and the k run always)", _ks),
    # model-graded scoring (le.Rubric / le.Pairwise judges)
    Option("judge-model", "judge model for le.Rubric/le.Pairwise, in the forms of --llmeval-model (default: the model under test)"),
    Option("judge-max-new-tokens", "most tokens a judge that cannot score loglikelihoods generates for its label (default 8)", _int(1)),
    # code with tests (le.assert_code)
    Option("code-sandbox", "sandbox that runs le.assert_code's programs: bwrap (default), none (trusted code only: no sandbox), or one registered under the pytest_llmeval.sandboxes entry points", _sandbox),
    Option("code-workers", "sandbox runs of le.assert_code at once (default: the CPUs this process may use)", _int(1)),
    # reasoning models and output caps
    Option("thinking", "a reasoning model's thinking switch, where its chat template has one (enable_thinking): true or false (default: the template's); le.cases(thinking=) wins for its suite", _flag, setting="generation.thinking"),
    Option("max-reasoning-tokens", "most thinking tokens per completion before the end of thinking is forced (default: no budget); le.cases(max_reasoning_tokens=) wins for its suite", _int(0), setting="generation.max_reasoning_tokens"),
    Option("max-cut-share", "share (0-1) of a suite's completions that may end at max_new_tokens before the suite is flagged (default 0.05)", _float(0.0, 1.0)),
    # workflow cases (le.cases(tools=, max_turns=))
    Option("tool-timeout", "seconds one tool call may run before the model is shown a time-out error (default 30)", _float(0.001)),
    Option("tool-workers", "tool calls of one round run at once, each in its own thread (default 8)", _int(1)),
    Option("tool-result-chars", "most characters of a tool result the model is shown; longer ones are cut and say so (default 20000)", _int(1)),
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


def option(name: str) -> Option:
    """The option called ``name`` (``"max-new-tokens"``); a ``KeyError`` names an unknown one."""
    for o in OPTIONS:
        if o.name == name:
            return o
    raise KeyError(f"no option --llmeval-{name}")


HISTORY_OFF = frozenset({"off", "none", "false", "0"})
"""Values of ``llmeval_history`` that turn the run history off."""


def history_off(value: Any) -> bool:
    """Whether a ``llmeval_history`` value turns the run history off."""
    return value is not None and str(value).lower() in HISTORY_OFF
