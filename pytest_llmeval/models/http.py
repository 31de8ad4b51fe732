"""A model behind an OpenAI-compatible HTTP server: ``llmeval_model = "openai:MODEL"``.

vLLM (``vllm serve``), TGI, llama.cpp's ``llama-server``, Ollama's ``/v1`` endpoint, ``transformers
serve`` and the OpenAI API all answer ``/v1/chat/completions`` and ``/v1/completions``. The server
is ``llmeval_base_url`` (default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``); the key
is read from the environment variable that ``llmeval_api_key_env`` names (default
``OPENAI_API_KEY``), held as a :class:`~pytest_llmeval.redaction.Secret` and sent only in the
``Authorization`` header: it is in no fingerprint, description, message or file. The key and the
base URL's credentials are registered with :mod:`pytest_llmeval.redaction`, and every answer is
redacted before it becomes an output (a key the server echoes is never cached or written).

The scheduler hands over a whole window at once; every request of it is issued at once, with at
most ``llmeval_concurrency`` in flight (:mod:`pytest_llmeval.models.http_client`). A case whose
request fails for good gets an :class:`~pytest_llmeval.models.OutputError` in place of its
result: that case errors, the others complete. Request and answer shapes are in
:mod:`pytest_llmeval.models.http_shapes`.

The fingerprint needs no request: :attr:`HTTPBackend.static_fingerprint` is the model name and
the server's address; :attr:`HTTPBackend.fingerprint` adds, under ``versions``, the model name the
server reported and its ``system_fingerprint`` once an answer has given them.

For the completion cache, :meth:`HTTPBackend.identity` is the static fingerprint, known without a
request (never the API key). The served model and ``system_fingerprint`` are learned from the
answers; the cache keeps the complete fingerprint after them, so a fully cached run records it too.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.protocol import CONVERSE, GENERATE, RANK, ModelLoadError, OutputError, Progress, RankUnsupported
from pytest_llmeval.models.tool_calls import attach_native
from pytest_llmeval.models.http_client import Budget, Engine, Post
from pytest_llmeval.models.http_shapes import (
    COMPLETIONS_PATH,
    PROBE_PROMPT,
    ShapeError,
    generate_payload,
    has_prompt_logprobs,
    local_stops,
    messages_of,
    norm_lengths,
    parse_generation,
    parse_loglikelihood,
    rank_payload,
    rank_prompts,
    seed_of,
)
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.redaction import Secret, redact, register, register_settings
from pytest_llmeval.settings import LLMSettings, url_problem

OPENAI_URL = "https://api.openai.com/v1"
ALL_AT_ONCE = 1 << 30
"""The scheduler's chunk for this backend: a window is one call, all its requests issued at once."""


def make(spec: str, settings: LLMSettings) -> "HTTPBackend":
    """The factory of the ``openai`` scheme (the registry's): ``spec`` is the model's name."""
    return HTTPBackend.load(spec, settings)


def _identity(spec: str, settings: LLMSettings) -> dict[str, Any]:
    """:meth:`HTTPBackend.identity`, the factory's ``identity``."""
    return HTTPBackend.identity(spec, settings)


make.identity = _identity  # type: ignore[attr-defined]


__all__ = ["HTTPBackend", "RankUnsupported", "make", "read_key", "resolve_base_url", "shown_url"]


def shown_url(url: str) -> str:
    """``url`` without user, password, query or fragment: safe to print and to store."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # not a port: shown as written, credentials and query cut off
        return redact(urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", "")))
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def resolve_base_url(settings: LLMSettings, environ: Mapping[str, str]) -> str:
    """The server's base URL: ``llmeval_base_url``, else ``$OPENAI_BASE_URL``, else the OpenAI API's.
    Each passes the one check of a base URL (:func:`~pytest_llmeval.settings.url_problem`); one
    that fails is one :class:`ModelLoadError` line naming where it came from."""
    url = settings.base_url or environ.get("OPENAI_BASE_URL") or OPENAI_URL
    problem = url_problem(url)
    if problem is not None and settings.base_url:
        raise ModelLoadError(f"llmeval_base_url: {problem}")
    if problem is not None:
        raise ModelLoadError(f"$OPENAI_BASE_URL: {problem} (or unset the variable, or set llmeval_base_url)")
    return url.rstrip("/") if not urlsplit(url).query else url


def read_key(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The API key in the variable ``name`` as a :class:`~pytest_llmeval.redaction.Secret` (None
    when unset or empty), registered for redaction; :class:`ModelLoadError` (one line that does
    not show it) when it cannot be sent in a header. No frame here holds the key as plain text."""
    key = Secret((os.environ if environ is None else environ).get(name) or "")
    if not key.reveal():
        return None
    register(key.reveal())
    problem = key.header_problem()
    if problem is not None:
        raise ModelLoadError(f"the API key in ${name} {problem}; set it again without that character (a paste can carry one)")
    return key


class HTTPBackend:
    """A served model, asked over HTTP; see the module's docstring."""

    has_chat_template = False
    """Not known from outside the server: the plugin does not warn about raw prompts."""

    def __init__(self, model: str, settings: LLMSettings, *, base_url: str, api_key: Secret | None, transport: Any = None) -> None:
        if not model:
            raise ModelLoadError("llmeval_model 'openai:' names no model; write openai:MODEL (the name the server serves)")
        self.model = model
        self.settings = settings
        self.base_url = base_url
        self.served_model: str | None = None
        self.system_fingerprint: str | None = None
        self._rank_problem: OutputError | None = None
        self._rank_probed = False
        budget = Budget(settings.price_in, settings.price_out, settings.max_cost)
        if settings.max_cost is not None and not budget.priced:
            raise ModelLoadError("llmeval_max_cost needs the prices: set llmeval_price_in and llmeval_price_out (USD per million tokens)")
        self.engine = Engine(
            base_url,
            shown_url=shown_url(base_url),
            key=api_key,
            timeout=settings.request_timeout,
            max_retries=settings.max_retries,
            concurrency=settings.concurrency,
            budget=budget,
            key_env=settings.api_key_env,
            transport=transport,
        )

    @classmethod
    def load(cls, spec: str, settings: LLMSettings, environ: Mapping[str, str] | None = None, transport: Any = None) -> "HTTPBackend":
        """The backend for ``openai:SPEC``; :class:`ModelLoadError` when it cannot work."""
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise ModelLoadError("the openai: backend needs httpx: pip install 'pytest-llmevals[http]' (or pip install httpx)") from None
        # the environment is never held in a local of this frame (pytest -l would show it)
        register_settings(settings, os.environ if environ is None else environ)
        base_url = resolve_base_url(settings, os.environ if environ is None else environ)
        key = read_key(settings.api_key_env, environ)
        if key is None and urlsplit(base_url).hostname == urlsplit(OPENAI_URL).hostname:
            raise ModelLoadError(
                f"the OpenAI API needs a key: set ${settings.api_key_env}, or point llmeval_base_url at your own server"
            )
        return cls(spec, settings, base_url=base_url, api_key=key, transport=transport)

    @staticmethod
    def identity(spec: str, settings: LLMSettings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """What the outputs of ``openai:SPEC`` depend on, known without a request: the model name
        and the server's address without credentials, query or fragment (the completion cache adds
        the settings; the API key is never part of it)."""
        if not spec:
            raise ModelLoadError("llmeval_model 'openai:' names no model")
        url = resolve_base_url(settings, os.environ if environ is None else environ)
        return {"model": spec, "server": shown_url(url)}

    # what it is --------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        """Generation and workflow rounds (native tool calls), and ranking unless the probe found
        that the server returns no prompt logprobs."""
        return frozenset({GENERATE, CONVERSE} if isinstance(self._rank_problem, RankUnsupported) else {GENERATE, RANK, CONVERSE})

    @property
    def in_flight(self) -> int:
        return self.settings.concurrency

    def batch_size(self) -> int:
        return ALL_AT_ONCE

    @property
    def static_fingerprint(self) -> dict[str, Any]:
        """What identifies the outputs before any request: the model name and the server."""
        return {"model": f"openai:{self.model}", "server": shown_url(self.base_url)}

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        """:attr:`static_fingerprint`, plus what the server reported (no request is made for it)."""
        versions = {"served_model": self.served_model, "system_fingerprint": self.system_fingerprint}
        known = {k: v for k, v in versions.items() if v}
        return {**self.static_fingerprint, **({"versions": known} if known else {})}

    def describe(self) -> str:
        return f"openai:{self.model} at {shown_url(self.base_url)} (up to {self.settings.concurrency} requests in flight, as many as it sustains)"

    def check(self) -> str | None:
        return None

    def usage(self) -> dict[str, Any]:
        """The session's requests: sent, retried, failed, not sent, tokens, cost and why it stopped."""
        c = self.engine.counters
        budget = self.engine.budget
        data: dict[str, Any] = {
            "backend": "openai",
            "requests": c.sent,
            "retries": c.retries,
            "faults": dict(sorted(c.by_problem.items())),
            "failed": c.failed,
            "not_sent": c.not_sent,
            "tokens_in": c.tokens_in,
            "tokens_out": c.tokens_out,
            "in_flight": self.engine.flow.summary(),
        }
        if budget.priced:
            data.update(price_in=budget.price_in, price_out=budget.price_out, cost_usd=round(c.spent_usd, 6))
        if budget.max_cost is not None:
            data["max_cost"] = budget.max_cost
        for name, problem in (("stopped", self.engine.stopped), ("fatal", self.engine.fatal)):
            if problem is not None:
                data[name] = str(problem)
        return data

    # generation --------------------------------------------------------------

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion | OutputError]:  # type: ignore[override]
        """One completion per request (an :class:`OutputError` for a case that failed)."""
        return self.engine.run([self._generate_job(r) for r in requests], progress)

    def _generate_job(self, request: Request) -> Any:
        path, body = generate_payload(self.model, request, self.settings)
        stops = local_stops(request, self.settings)
        if request.messages is not None:  # a workflow round: the conversation as sent
            shown_prompt = json.dumps(body["messages"], ensure_ascii=False)
        else:
            shown_prompt = json.dumps(messages_of(request), ensure_ascii=False) if request.chat else request.text

        async def job(post: Post) -> Completion:
            answer, latency = await post(path, body)
            try:
                got = parse_generation(path, answer, stops)
            except ShapeError as exc:
                raise OutputError(f"POST {shown_url(self.base_url)}{path}: {exc}") from None
            self._learn(got.served_model, got.system_fingerprint)
            done = Completion(
                got.text,
                prompt=shown_prompt,
                tokens_in=got.tokens_in,
                tokens_out=got.tokens_out,
                latency_s=latency,
                finish_reason=got.finish_reason,
                **got.reasoning_fields(),
            )
            return attach_native(done, got.tool_calls) if request.messages is not None else done

        return job

    def _learn(self, served_model: str | None, system_fingerprint: str | None) -> None:
        if isinstance(served_model, str) and served_model:
            self.served_model = served_model
        if isinstance(system_fingerprint, str) and system_fingerprint:
            self.system_fingerprint = system_fingerprint

    # ranking -----------------------------------------------------------------

    def run_rank(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Ranked | OutputError]:  # type: ignore[override]
        """Per-choice loglikelihoods, lm-eval's ``local-completions`` way (echoed prompt logprobs).

        The first call probes the server once; a server without prompt logprobs errors the
        whole window with one line before any case's request is sent."""
        problem = self._probe()
        if problem is not None:
            raise problem
        return self.engine.run([self._rank_job(r) for r in requests], progress)

    def _probe(self) -> OutputError | None:
        if not self._rank_probed:
            self._rank_probed = True
            payload = rank_payload(self.model, PROBE_PROMPT, self.settings.seed)

            async def probe(post: Post) -> Any:
                return (await post(COMPLETIONS_PATH, payload))[0]

            answer = self.engine.run([probe])[0]
            if isinstance(answer, OutputError):  # not an answer: probed again by the next call
                self._rank_probed = False
                return answer
            if not has_prompt_logprobs(answer):
                self._rank_problem = RankUnsupported(
                    f"the server at {shown_url(self.base_url)} returned no prompt logprobs for a completions request with "
                    "echo=true and logprobs=1, so 'ranked' cases cannot be scored over HTTP; serve the model with vLLM "
                    "(it returns them), or score a 'completion' instead"
                )
        return self._rank_problem

    def _rank_job(self, request: Request) -> Any:
        scored = rank_prompts(request)
        seed = seed_of(request, self.settings)

        async def job(post: Post) -> Ranked:
            if request.chat:
                raise OutputError(
                    "a 'ranked' case with chat=True cannot be scored over HTTP: the completions endpoint does not apply the "
                    "chat template; use chat=False for this suite"
                )
            import asyncio

            sent = [post(COMPLETIONS_PATH, rank_payload(self.model, s.prompt, seed)) for s in scored]
            answers = await asyncio.gather(*sent, return_exceptions=True)
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            results = []
            for s, (answer, _latency) in zip(scored, answers):
                try:
                    results.append(parse_loglikelihood(answer, s))
                except ShapeError as exc:
                    raise OutputError(f"POST {shown_url(self.base_url)}{COMPLETIONS_PATH}: {exc}") from None
                self._learn(answer.get("model"), answer.get("system_fingerprint"))
            return Ranked(
                context=request.text,
                choices=tuple(request.choices),
                loglikelihoods=tuple(r[0] for r in results),
                is_greedy=tuple(r[1] for r in results),
                norm_lengths=norm_lengths(request),
                tokens_in=sum(r[2] for r in results),
                latency_s=sum(latency for _answer, latency in answers),
            )

        return job
