"""The llama.cpp backend (``llamacpp:FILE.gguf``): a GGUF file evaluated by llama.cpp itself.

Install it with ``pip install 'pytest-llmevals[llamacpp]'`` (llama-cpp-python builds llama.cpp
from source). The weights run as they are in the file (Q4_1 stays Q4_1), on all the cores this
process may use. Prompts are the same text the transformers backend gives its model: the chat
template stored in the GGUF is rendered by the same code (:mod:`pytest_llmeval.models.chat`),
and the text is tokenized by llama.cpp with special tokens parsed. Loglikelihoods follow the
transformers backend's lm-eval conventions (:mod:`pytest_llmeval.models.loglik`), computed from
llama.cpp's logits. Requests run many sequences per decode call (:mod:`.llamacpp_engine`).
"""

from __future__ import annotations

import hashlib
import os
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.files import cached_file_hash, sha256_text
from pytest_llmeval.models.protocol import GENERATE, RANK, ModelLoadError, Progress
from pytest_llmeval.models.llamacpp_engine import Engine, Job, log_softmax_at, round_up
from pytest_llmeval.models.llamacpp_text import GGUFTokenizer, Generation, GenerationJob, resolve_gguf
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import GenerationSettings, LLMSettings

AUTO_BATCH = 16
MIN_SHARED = 8
"""Tokens a chat template's preamble needs before jobs share it (fed once, copied into each job's
stream): a shorter one saves too little for the copy and the extra chunk."""
INSTALL_HINT = "pip install 'pytest-llmevals[llamacpp]' (builds llama.cpp from source: minutes)"


BUILD_HINT = (
    "if it crashes on every batch, rebuild llama-cpp-python for any CPU of its kind: "
    "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install --force-reinstall --no-cache-dir llama-cpp-python"
)


def make(spec: str, settings: LLMSettings, rootdir: Path | None = None) -> Any:
    """The entry point of the ``llamacpp`` scheme: ``spec`` is a .gguf path or ``pkg:PACKAGE/FILE``.

    The model runs in a worker process (:mod:`.worker`): a crash inside llama.cpp errors the
    cases of the batch it was computing and the run goes on. The file and the install are checked
    here first, so their problems read as one line without starting a worker."""
    import importlib.util

    path = resolve_gguf(spec, rootdir)
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelLoadError(f"llamacpp:{spec}: llama-cpp-python is not installed; {INSTALL_HINT}")
    from pytest_llmeval.models.worker import WorkerBackend

    return WorkerBackend("pytest_llmeval.models.llamacpp:load_local", str(path), settings, engine="llama.cpp", hint=BUILD_HINT)


def load_local(spec: str, settings: LLMSettings, rootdir: Path | None = None) -> "LlamaCppBackend":
    """The backend in this process (what the worker runs)."""
    return LlamaCppBackend.load(spec, settings, rootdir=rootdir)


def machine_threads() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        import llama_cpp

        return str(getattr(llama_cpp, "__version__", "unknown"))


class LlamaCppBackend:
    """A GGUF model run by llama.cpp; batched greedy (or seeded sampled) generation and ranking."""

    capabilities = frozenset({GENERATE, RANK})

    def __init__(self, llama: Any, path: Path, digest: str, settings: LLMSettings, n_threads: int) -> None:
        self.llama = llama
        self.path = path
        self.settings = settings
        self.n_threads = n_threads
        self.tokenizer = GGUFTokenizer(llama)
        self._digest = digest
        self._engine: Engine | None = None
        self._preambles: dict[tuple[Any, ...], list[int]] = {}
        self.load_seconds = 0.0

    @classmethod
    def load(cls, spec: str, settings: LLMSettings, rootdir: Path | None = None) -> "LlamaCppBackend":
        started = time.perf_counter()
        path = resolve_gguf(spec, rootdir)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelLoadError(f"llamacpp:{spec}: llama-cpp-python is not installed; {INSTALL_HINT}") from None
        digest = "sha256:" + cached_file_hash(path)
        threads = machine_threads()
        try:
            llama = Llama(str(path), n_ctx=256, n_batch=256, n_threads=threads, seed=settings.seed, verbose=False)
        except Exception as exc:
            raise ModelLoadError(
                f"llamacpp:{spec}: llama.cpp could not load {path}: {exc}; check that it is a complete GGUF model file"
            ) from None
        backend = cls(llama, path, digest, settings, threads)
        backend.load_seconds = time.perf_counter() - started
        return backend

    # identity ----------------------------------------------------------------

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        """The GGUF file's content hash (weights, tokenizer and template are all in it), the
        template, the weight type, the engine and its version (a llama-cpp-python release vendors
        one llama.cpp commit, so its version names llama.cpp's). No paths, no thread counts."""
        template = self.tokenizer.chat_template
        return {
            "model": self._digest,
            "tokenizer": self._digest,
            "chat_template": sha256_text(template) if template else None,
            "dtype": self.tokenizer.file_type,
            "engine": "llama.cpp",
            "kv_cache": "f16",
            "flash_attn": False,
            "versions": {"llama-cpp-python": llama_cpp_version()},
        }

    @property
    def has_chat_template(self) -> bool:
        return bool(self.tokenizer.chat_template)

    def describe(self) -> str:
        return (
            f"{self.path.name} via llama.cpp (llama-cpp-python {llama_cpp_version()}; "
            f"{self.tokenizer.file_type}, {self.n_threads} threads)"
        )

    def check(self) -> str | None:
        return None  # llama.cpp has no training mode a test could leave on

    def batch_size(self) -> int:
        return self.settings.batch_size if isinstance(self.settings.batch_size, int) else AUTO_BATCH

    def max_length(self) -> int:
        return self.settings.max_length or self.tokenizer.n_ctx_train

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.llama.close()

    # engine ------------------------------------------------------------------

    def _engine_for(self, n_jobs: int, longest: int) -> Engine:
        n_seq = max(1, min(self.batch_size(), n_jobs))
        n_ctx_seq = min(round_up(longest), round_up(self.max_length()))
        if self._engine is None or not self._engine.fits(n_seq, n_ctx_seq):
            if self._engine is not None:
                n_seq = max(n_seq, self._engine.n_seq)
                n_ctx_seq = max(n_ctx_seq, self._engine.n_ctx_seq)
                self._engine.close()
            self._engine = Engine.open(self.llama.model, self.tokenizer.n_vocab, self.n_threads, n_seq, n_ctx_seq)
        return self._engine

    # generation --------------------------------------------------------------

    def render(
        self, text: str, *, chat: bool, system: str | None = None, examples: Sequence[tuple[str, str]] = (), thinking: bool | None = None,
    ) -> str:  # fmt: skip
        """The exact prompt text: the GGUF's chat template applied when ``chat`` (``thinking``: its
        thinking switch, where it has one)."""
        return self.tokenizer.render(text, chat=chat, system=system, examples=examples, thinking=thinking)

    def generate(self, prompt: str | Sequence[str], **overrides: Any) -> Completion | list[Completion]:
        """Generate for one prompt or a list; overrides as the transformers backend's ``generate``."""
        chat = bool(overrides.pop("chat", False))
        system = overrides.pop("system", None)
        unknown = set(overrides) - {"max_new_tokens", "stop", "thinking", "max_reasoning_tokens"}
        if unknown:
            raise TypeError(f"unknown generation option(s) for llamacpp: {', '.join(sorted(unknown))}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        stop = overrides.get("stop")
        requests = [
            Request("generate", p, chat=chat, system=system, max_new_tokens=overrides.get("max_new_tokens"),
                    stop=(stop,) if isinstance(stop, str) else (tuple(stop) if stop is not None else None),
                    thinking=overrides.get("thinking"), max_reasoning_tokens=overrides.get("max_reasoning_tokens"))
            for p in prompts
        ]
        out = self.run_generate(requests)
        return out[0] if isinstance(prompt, str) else out

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        """Completions for many requests, ``batch_size`` sequences decoding together."""
        jobs: list[GenerationJob] = []
        for req in requests:
            settings = self.settings.generation.for_request(req)
            prompt = self.render(req.text, chat=req.chat, system=req.system, examples=req.fewshot, thinking=settings.thinking)
            jobs.append(self._generation_job(prompt, settings, req, add_special=not req.chat, progress=progress))
        if not jobs:
            return []
        engine = self._engine_for(len(jobs), max(len(j.job.tokens) + j.settings.max_new_tokens for j in jobs))
        # Longest prompt first, as the transformers backend orders its batches.
        order = sorted(jobs, key=lambda j: -len(j.job.tokens))
        started = time.perf_counter()
        engine.run([j.job for j in order])
        seconds = (time.perf_counter() - started) / len(jobs)
        return [j.completion(seconds) for j in jobs]

    def _generation_job(
        self, prompt: str, settings: GenerationSettings, req: Request, *, add_special: bool, progress: Progress | None
    ) -> GenerationJob:
        full = self.tokenizer.encode(prompt, add_special=add_special)
        limit = max(1, self.max_length() - settings.max_new_tokens)
        seed = getattr(req, "seed", None)
        # A sampled sequence depends on (seed, prompt) only, never on its batch.
        prompt_key = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "little")
        rng = np.random.default_rng([self.settings.seed if seed is None else int(seed), prompt_key])
        from pytest_llmeval.models.thinking import rows_for

        thinking = rows_for(self.tokenizer.delimiters, [prompt], settings, lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True))
        made = GenerationJob(
            Generation(self.tokenizer, settings, rng, thinking=thinking), prompt=prompt, full=full, limit=limit, progress=progress
        )
        if req.chat:
            preamble = self._preamble(req.system, req.fewshot, settings.thinking)
            if len(preamble) >= MIN_SHARED and made.job.tokens[: len(preamble)] == preamble:
                made.job.shared = len(preamble)
        return made

    def _preamble(self, system: str | None, examples: Sequence[tuple[str, str]], thinking: bool | None) -> list[int]:
        """The tokens every chat prompt rendered with these settings starts with, whatever the user
        asks: the common start of two prompts rendered alike (the system prompt, few-shot turns,
        the user header). Jobs share their KV (:class:`Engine`); where a prompt is split depends on
        the prompt alone, never on its batch."""
        key = (system, tuple(examples), thinking)
        if key not in self._preambles:
            first, second = (
                self.tokenizer.encode(self.render(text, chat=True, system=system, examples=examples, thinking=thinking), add_special=False)
                for text in ("A", "B")
            )
            n = next((i for i, (a, b) in enumerate(zip(first, second)) if a != b), min(len(first), len(second)))
            self._preambles[key] = first[:n]
        return self._preambles[key]

    # loglikelihood -----------------------------------------------------------

    def loglikelihood(self, context: str, continuations: str | Sequence[str]) -> Ranked:
        """Total loglikelihood of each continuation after ``context`` (scored as given, no delimiter)."""
        conts = [continuations] if isinstance(continuations, str) else list(continuations)
        return self.run_rank([Request("rank", context, choices=tuple(conts), target_delimiter="")])[0]

    def run_rank(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Ranked]:
        """Per-choice loglikelihoods (lm-eval conventions), every choice its own sequence."""
        from pytest_llmeval.models.loglik import _encode_requests, _truncate, _unpack_item

        pairs: list[tuple[str, str]] = []
        shapes: list[tuple[str, tuple[str, ...], tuple[int, ...], list[int]]] = []
        for n, req in enumerate(requests):
            context = self.render(req.text, chat=req.chat, system=req.system, examples=req.fewshot)
            item = (context, list(req.choices)) if req.continuation is None else (context, list(req.choices), req.continuation)
            context, choices, continuation = _unpack_item(item, n)
            group = []
            for choice in choices:
                group.append(len(pairs))
                pairs.append((context, req.target_delimiter + choice) if continuation is None
                             else (context + choice, req.target_delimiter + continuation))
            lengths = tuple(len(c) for c in choices) if continuation is None else tuple(len(context + c) for c in choices)
            shapes.append((context, choices, lengths, group))
        encoded = _encode_requests(self.tokenizer, pairs, None)
        limit = self.max_length()
        scored = [_truncate(ctx, cont, limit, i) for i, (ctx, cont) in enumerate(encoded)]
        totals = [[0.0, True] for _ in scored]
        jobs = [self._score_job(s.seq, s.targets, totals[i]) for i, s in enumerate(scored)]
        started = time.perf_counter()
        if jobs:
            self._engine_for(len(jobs), max(len(j.tokens) for j in jobs)).run(jobs)
        seconds = time.perf_counter() - started
        n_tokens = max(1, sum(len(j.tokens) for j in jobs))
        out = []
        for context, choices, lengths, group in shapes:
            used = sum(len(jobs[i].tokens) for i in group)
            out.append(Ranked(context=context, choices=choices,
                              loglikelihoods=tuple(float(totals[i][0]) for i in group),
                              is_greedy=tuple(bool(totals[i][1]) for i in group), norm_lengths=lengths,
                              tokens_in=used, latency_s=seconds * used / n_tokens))
            if progress is not None:
                progress(1)
        return out

    @staticmethod
    def _score_job(seq: list[int], targets: list[int], total: list[Any]) -> Job:
        """A job over ``seq`` whose last ``len(targets)`` positions predict ``targets``."""
        first = len(seq) - len(targets)

        def on_logits(pos: int, logits: np.ndarray) -> None:
            logprob, greedy = log_softmax_at(logits, targets[pos - first])
            total[0] += logprob
            total[1] = total[1] and greedy

        return Job(list(seq), wants=lambda pos: pos >= first, on_logits=on_logits)
