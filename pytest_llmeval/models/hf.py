"""The transformers backend: a local causal LM in eval mode, batched generation and
loglikelihood ranking (loading lives in :mod:`.hf_loading`, generation in :mod:`.hf_generate`,
the identity in :mod:`.hf_identity`).

The registry (:mod:`.registry`) reaches it through :func:`make`, the factory of the ``hf`` scheme
(paths, hub ids, ``pkg:``). torch and transformers are imported inside functions so that
importing the plugin stays cheap.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.files import sha256_text
from pytest_llmeval.models.heap import release as release_heap
from pytest_llmeval.models.hf_generate import Generation
from pytest_llmeval.models.hf_loading import load_model, placement, score_versions, seed_everything, tokenizer_fingerprint, weights_fingerprint
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.models.protocol import CONVERSE, GENERATE, RANK, ModelLoadError, ModelStateError, OutputError, Progress
from pytest_llmeval.settings import GenerationSettings, LLMSettings

__all__ = ["CPU_AUTO_BATCH", "CUDA_AUTO_BATCH", "HFBackend", "make", "score_versions", "seed_everything"]

CPU_AUTO_BATCH = 64
CUDA_AUTO_BATCH = 64


def make(spec: str, settings: LLMSettings, rootdir: Path | None = None) -> "HFBackend":
    """The factory of the ``hf`` scheme: the model ``spec`` names (a folder, a ``.gguf``, a cached
    hub id, ``pkg:PACKAGE/FILE``), loaded with ``settings``."""
    return HFBackend.load(settings.replace(model=spec), rootdir=rootdir)


def _identity(spec: str, settings: LLMSettings, rootdir: Path | None = None) -> dict[str, Any] | None:
    """What :func:`make`'s backend would compute from, known without loading (see :mod:`.hf_identity`)."""
    return HFBackend.identity(settings.replace(model=spec), rootdir)


make.identity = _identity  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- the backend


class HFBackend(Generation):
    """A transformers causal LM in eval mode, run under ``torch.inference_mode()``."""

    capabilities = frozenset({GENERATE, RANK, CONVERSE})
    deterministic = True
    """Greedy decoding and loglikelihoods give the same output every time (repeats are alike)."""

    def __init__(self, model: Any, tokenizer: Any, settings: LLMSettings, *, weights: str | None = None, source: str = "") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.source = source or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self._weights = weights
        self._fingerprint: dict[str, Any] | None = None
        self.load_seconds = 0.0
        self.fast_decode = True  # greedy decoding by models.decode (False: transformers' generate)
        self.share_prefix = True  # compute a batch's shared prompt prefix once
        self._kernel_choices: dict[str, Any] = {}  # llmeval_cpu_matmul -> the kernels chosen for this model
        if getattr(tokenizer, "pad_token_id", None) is None and getattr(tokenizer, "eos_token", None) is not None:
            tokenizer.pad_token = tokenizer.eos_token

    # construction ------------------------------------------------------------

    @classmethod
    def load(cls, settings: LLMSettings, rootdir: Path | None = None) -> "HFBackend":
        """Load ``settings.model``, put it in eval mode and pin the seeds."""
        started = time.perf_counter()
        try:
            import torch

            device, dtype_name = placement(settings)
            dtype = getattr(torch, dtype_name)
            loaded = load_model(settings, device, dtype, rootdir)
            model = loaded.model.to(device)
        except ModelLoadError:
            raise
        except Exception as exc:  # transformers raises many kinds; the user needs one clear line
            raise ModelLoadError(f"could not load model {settings.model!r}: {type(exc).__name__}: {exc}") from exc
        model.eval()
        seed_everything(settings.seed)
        backend = cls(model, loaded.tokenizer, settings, weights=loaded.weights, source=loaded.source)
        backend.load_seconds = time.perf_counter() - started
        return backend

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, settings: LLMSettings | None = None) -> "HFBackend":
        """Wrap a model that is already in memory (no copy); its mode is the caller's to manage."""
        return cls(model, tokenizer, settings or LLMSettings())

    # identity ----------------------------------------------------------------

    @staticmethod
    def identity(settings: LLMSettings, rootdir: Path | None = None) -> dict[str, Any] | None:
        """What this backend's outputs for ``settings`` depend on, known without loading the model
        (the completion cache's key); None when it cannot be known so (see :mod:`.hf_identity`)."""
        from pytest_llmeval.models.hf_identity import model_identity

        return model_identity(settings, rootdir)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).replace("torch.", "")

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        """What determines this model's outputs: weights, tokenizer, chat template, dtype, and
        the versions of the software that computes them."""
        if self._fingerprint is None:
            template = getattr(self.tokenizer, "chat_template", None)
            self._fingerprint = {
                "model": self._weights or weights_fingerprint(self.model),
                "tokenizer": tokenizer_fingerprint(self.tokenizer),
                "chat_template": sha256_text(template) if isinstance(template, str) else None,
                "dtype": self.dtype,
                "versions": score_versions(),
            }
        return self._fingerprint

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer has a chat template (an instruct model)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def refresh_fingerprint(self) -> None:
        """Forget the cached fingerprint (a live model's weights changed, e.g. during training)."""
        self._fingerprint = None
        if self.settings.model is None:
            self._weights = None

    def batch_size(self) -> int:
        if isinstance(self.settings.batch_size, int):
            return self.settings.batch_size
        return CUDA_AUTO_BATCH if self.device.type == "cuda" else CPU_AUTO_BATCH

    def max_length(self) -> int:
        if self.settings.max_length:
            return self.settings.max_length
        from pytest_llmeval.models.loglik import model_max_length

        return model_max_length(self.model, self.tokenizer)

    def describe(self) -> str:
        choice = self.kernel_choice()
        kernels = f", {choice.describe()}" if choice is not None else ""
        return f"{self.settings.model or self.source} on {self.device} ({self.dtype}{kernels})"

    def kernel_choice(self) -> Any:
        """The float32 CPU kernels of the model's linear layers (:mod:`.kernel_choice`; timed on the
        first call for this CPU), or None (not a CPU float32 model)."""
        mode = self.settings.cpu_matmul
        if mode not in self._kernel_choices:
            from pytest_llmeval.models.cpu_matmul import kernels_for

            self._kernel_choices[mode] = kernels_for(self.model, mode, self.batch_size())
        return self._kernel_choices[mode]

    def check(self) -> str | None:
        """A test that left the model in training mode: put it back in eval mode and say so."""
        if not self.model.training:
            return None
        self.model.eval()
        return (
            "this test left the model in training mode; the plugin put it back in eval mode. "
            "Do not call model.train() in an eval (or restore model.eval() before returning)"
        )

    def _check_mode(self) -> None:
        if self.model.training:
            raise ModelStateError(
                "the model is in training mode (dropout on), so its outputs are not reproducible; "
                "call model.eval() before evaluating"
            )

    # prompts -----------------------------------------------------------------

    @property
    def delimiters(self) -> Any:
        """The model's reasoning delimiters (:func:`~.reasoning.reasoning_delimiters`), ``None``
        for a model that does not think."""
        if not hasattr(self, "_delimiters"):
            from pytest_llmeval.models.reasoning import reasoning_delimiters

            self._delimiters = reasoning_delimiters(self.tokenizer)
        return self._delimiters

    def render(
        self, text: str, *, chat: bool, system: str | None = None, examples: Sequence[tuple[str, str]] = (), thinking: bool | None = None,
    ) -> str:  # fmt: skip
        """The exact string sent to the tokenizer: the chat template applied when ``chat``,
        with few-shot ``examples`` as earlier user/assistant turns, and ``thinking`` as the
        template's thinking switch where it has one."""
        if not chat:
            return text
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelStateError("chat=True but the tokenizer has no chat template; use chat=False or a chat model")
        from pytest_llmeval.models.chat import chat_context
        from pytest_llmeval.models.reasoning import template_kwargs

        return chat_context(self.tokenizer, text, system=system, examples=examples, template_kwargs=template_kwargs(self.delimiters, thinking))

    # generation --------------------------------------------------------------

    def generate(self, prompt: str | Sequence[str], **overrides: Any) -> Completion | list[Completion]:
        """Generate for one prompt or a list (one batched call); keyword overrides for this call.

        Overrides: ``max_new_tokens``, ``stop``, ``do_sample``, ``temperature``, ``top_p``,
        ``chat`` (apply the chat template), ``system``, and for a reasoning model ``thinking`` and
        ``max_reasoning_tokens``.
        """
        chat = bool(overrides.pop("chat", False))
        system = overrides.pop("system", None)
        unknown = set(overrides) - {"max_new_tokens", "stop", "do_sample", "temperature", "top_p", "thinking", "max_reasoning_tokens"}
        if unknown:
            raise TypeError(f"unknown generation option(s): {', '.join(sorted(unknown))}")
        settings = self.settings.generation.merged(**overrides)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        rendered = [self.render(p, chat=chat, system=system, thinking=settings.thinking) for p in prompts]
        results = self._generate_rendered(rendered, settings, add_special_tokens=not chat)
        return results[0] if isinstance(prompt, str) else results

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion | OutputError]:
        """Completions for many eval requests, batched by generation settings and length. A
        workflow round (a request with ``messages``) is rendered with its tools and its reply's
        tool calls parsed (:mod:`.tool_calls`); one whose conversation the chat template refuses
        gets an :class:`OutputError`."""
        from pytest_llmeval.models.tool_calls import attach_parsed

        out: list[Completion | OutputError | None] = [None] * len(requests)
        groups: dict[tuple[GenerationSettings, bool], list[int]] = {}
        for i, req in enumerate(requests):
            settings = self.settings.generation.for_request(req)
            groups.setdefault((settings, req.chat), []).append(i)
        for (settings, chat), indices in groups.items():
            prompts = {i: self._prompt(requests[i], settings.thinking) for i in indices}
            todo = [i for i in indices if isinstance(prompts[i], str)]
            seeds = [requests[i].seed for i in todo]
            rendered = [prompts[i] for i in todo]
            done = self._generate_rendered(rendered, settings, add_special_tokens=not chat, progress=progress, seeds=seeds) if todo else []
            for i, completion in zip(todo, done):
                out[i] = attach_parsed(completion, self.tokenizer, requests[i]) if requests[i].messages is not None else completion
            for i in indices:
                out[i] = prompts[i] if out[i] is None else out[i]
        return [c for c in out if c is not None]

    def _prompt(self, request: Request, thinking: bool | None) -> str | OutputError:
        """The text a request is generated from (or why a workflow round cannot be rendered)."""
        if request.messages is not None:
            from pytest_llmeval.models.tool_calls import render

            return render(self.tokenizer, request)
        return self.render(request.text, chat=request.chat, system=request.system, examples=request.fewshot, thinking=thinking)

    @contextlib.contextmanager
    def _kernels(self) -> Iterator[None]:
        """The block the model runs in: its linear layers on the chosen kernels on a CPU (:mod:`.cpu_matmul`);
        afterwards the allocator's free pages go back to the system (:mod:`.heap`)."""
        from pytest_llmeval.models.cpu_matmul import onednn_linears

        try:
            with onednn_linears(self.model, self.kernel_choice()):
                yield
        finally:
            release_heap()

    # loglikelihood -----------------------------------------------------------

    def loglikelihood(self, context: str, continuations: str | Sequence[str]) -> Ranked:
        """Total loglikelihood of each continuation after ``context`` (scored as given, no delimiter)."""
        from pytest_llmeval.models.loglik import rank_choices

        self._check_mode()
        conts = [continuations] if isinstance(continuations, str) else list(continuations)
        with self._kernels():
            (ranked,) = rank_choices(
                self.model,
                self.tokenizer,
                [(context, conts)],
                batch_size=self.batch_size(),
                target_delimiter="",
                max_length=self.max_length(),
            )
        return ranked

    def run_rank(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Ranked]:
        """Per-choice loglikelihoods for many multiple-choice requests, in batches."""
        from pytest_llmeval.models.chat import chat_context
        from pytest_llmeval.models.loglik import rank_choices

        self._check_mode()
        out: list[Ranked | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(req.target_delimiter, []).append(i)
        for delimiter, indices in groups.items():
            items: list[tuple[Any, ...]] = []
            for i in indices:
                req = requests[i]
                context = (
                    chat_context(self.tokenizer, req.text, system=req.system, examples=req.fewshot) if req.chat else req.text
                )
                if req.continuation is not None:
                    items.append((context, list(req.choices), req.continuation))
                else:
                    items.append((context, list(req.choices)))
            with self._kernels():
                ranked = rank_choices(
                    self.model,
                    self.tokenizer,
                    items,
                    batch_size=self.batch_size(),
                    target_delimiter=delimiter,
                    max_length=self.max_length(),
                    progress=progress,
                )
            for i, r in zip(indices, ranked):
                out[i] = r
        return [r for r in out if r is not None]
