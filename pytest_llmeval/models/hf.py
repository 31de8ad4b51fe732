"""The transformers backend: a local causal LM in eval mode, batched generation and
loglikelihood ranking (loading lives in :mod:`.hf_loading`).

torch and transformers are imported inside functions so that importing the plugin stays cheap.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.files import sha256_text
from pytest_llmeval.models import GENERATE, RANK, ModelLoadError, ModelStateError, Progress
from pytest_llmeval.models.decode import PrefixCache
from pytest_llmeval.models.hf_loading import load_model, resolve_device, resolve_dtype, tokenizer_fingerprint, weights_fingerprint
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import GenerationSettings, LLMSettings

CPU_AUTO_BATCH = 64
CUDA_AUTO_BATCH = 64


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def score_versions() -> dict[str, str]:
    """The versions that can change this backend's scores: transformers, torch, tokenizers
    (those installed; the plugin adds its own version to every suite's fingerprint)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in ("transformers", "torch", "tokenizers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# ----------------------------------------------------------------------------- the backend


class HFBackend:
    """A transformers causal LM in eval mode, run under ``torch.inference_mode()``."""

    capabilities = frozenset({GENERATE, RANK})
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
        if getattr(tokenizer, "pad_token_id", None) is None and getattr(tokenizer, "eos_token", None) is not None:
            tokenizer.pad_token = tokenizer.eos_token

    # construction ------------------------------------------------------------

    @classmethod
    def load(cls, settings: LLMSettings, rootdir: Path | None = None) -> "HFBackend":
        """Load ``settings.model``, put it in eval mode and pin the seeds."""
        started = time.perf_counter()
        try:
            device = resolve_device(settings.device)
            dtype = resolve_dtype(settings.dtype, device)
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
        from pytest_llmeval.models.cpu_matmul import uses_onednn

        onednn = uses_onednn(self.model, self.settings.cpu_matmul)
        return f"{self.settings.model or self.source} on {self.device} ({self.dtype}{', oneDNN matmul' if onednn else ''})"

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

    def render(self, text: str, *, chat: bool, system: str | None = None, examples: Sequence[tuple[str, str]] = ()) -> str:
        """The exact string sent to the tokenizer: the chat template applied when ``chat``,
        with few-shot ``examples`` as earlier user/assistant turns."""
        if not chat:
            return text
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelStateError("chat=True but the tokenizer has no chat template; use chat=False or a chat model")
        from pytest_llmeval.models.chat import chat_context

        return chat_context(self.tokenizer, text, system=system, examples=examples)

    # generation --------------------------------------------------------------

    def generate(self, prompt: str | Sequence[str], **overrides: Any) -> Completion | list[Completion]:
        """Generate for one prompt or a list (one batched call); keyword overrides for this call.

        Overrides: ``max_new_tokens``, ``stop``, ``do_sample``, ``temperature``, ``top_p``,
        ``chat`` (apply the chat template), ``system``.
        """
        chat = bool(overrides.pop("chat", False))
        system = overrides.pop("system", None)
        unknown = set(overrides) - {"max_new_tokens", "stop", "do_sample", "temperature", "top_p"}
        if unknown:
            raise TypeError(f"unknown generation option(s): {', '.join(sorted(unknown))}")
        settings = self.settings.generation.merged(**overrides)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        rendered = [self.render(p, chat=chat, system=system) for p in prompts]
        results = self._generate_rendered(rendered, settings, add_special_tokens=not chat)
        return results[0] if isinstance(prompt, str) else results

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        """Completions for many eval requests, batched by generation settings and length."""
        out: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple[GenerationSettings, bool], list[int]] = {}
        for i, req in enumerate(requests):
            settings = self.settings.generation.merged(max_new_tokens=req.max_new_tokens, stop=req.stop)
            groups.setdefault((settings, req.chat), []).append(i)
        for (settings, chat), indices in groups.items():
            rendered = [
                self.render(requests[i].text, chat=chat, system=requests[i].system, examples=requests[i].fewshot)
                for i in indices
            ]
            seeds = [requests[i].seed for i in indices]
            done = self._generate_rendered(rendered, settings, add_special_tokens=not chat, progress=progress, seeds=seeds)
            for i, completion in zip(indices, done):
                out[i] = completion
        return [c for c in out if c is not None]

    def _kernels(self) -> Any:
        """The block the model runs in: its linear layers on oneDNN on a CPU (:mod:`.cpu_matmul`)."""
        from pytest_llmeval.models.cpu_matmul import onednn_linears

        return onednn_linears(self.model, self.settings.cpu_matmul)

    def _generate_rendered(
        self,
        prompts: Sequence[str],
        settings: GenerationSettings,
        *,
        add_special_tokens: bool,
        progress: Progress | None = None,
        seeds: Sequence[int | None] | None = None,
    ) -> list[Completion]:
        """``seeds``: one sample seed per prompt; when every prompt has one and the settings
        sample, each row is drawn with its own seed (:mod:`.sampling`), whatever its batch."""
        self._check_mode()
        tok = self.tokenizer
        limit = max(1, self.max_length() - settings.max_new_tokens)
        full = [tok(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
        encoded = [ids[-limit:] for ids in full]
        size = self.batch_size()
        row_seeds = list(seeds) if seeds is not None and all(s is not None for s in seeds) else None
        with self._kernels():
            if self._decodes(settings, row_seeds):
                produced = self._decode_all(encoded, settings, size, row_seeds, progress)
            else:
                produced = self._generate_batches(encoded, settings, size, row_seeds, progress)
        return [
            Completion(
                text,
                prompt=prompts[i],
                tokens_in=len(encoded[i]),
                tokens_out=n_out,
                latency_s=seconds,
                finish_reason=reason,
                truncated=len(full[i]) - len(encoded[i]),
            )
            for i, (text, n_out, reason, seconds) in enumerate(produced)
        ]

    def _decodes(self, settings: GenerationSettings, row_seeds: Sequence[int] | None) -> bool:
        """Whether :mod:`.decode` runs this call: greedy, or sampling with a seed per row."""
        from pytest_llmeval.models.decode import can_decode

        seeded = settings.do_sample and row_seeds is not None
        return self.fast_decode and (seeded or not settings.do_sample) and can_decode(self.model)

    def _decode_all(
        self, rows: Sequence[list[int]], settings: GenerationSettings, slots: int,
        row_seeds: Sequence[int] | None, progress: Progress | None,
    ) -> list[tuple[str, int, str, float]]:
        """All rows through :func:`.decode.greedy_decode`, at most ``slots`` at a time: shared prompt
        tokens computed once, finished rows replaced by waiting ones (on CUDA out of memory: half the slots)."""
        import torch

        from pytest_llmeval.models.decode import greedy_decode
        from pytest_llmeval.models.sampling import seeded_hook

        tok = self.tokenizer
        hook = seeded_hook(list(row_seeds), settings.temperature, settings.top_p) if settings.do_sample and row_seeds else None
        reported: set[int] = set()  # rows counted once, even when an out-of-memory retry decodes them again

        def done(row: int) -> None:
            if progress is not None and row not in reported:
                reported.add(row)
                progress(1)

        while True:
            started = time.perf_counter()
            try:
                with torch.inference_mode():
                    decoded = greedy_decode(
                        self.model, tok, rows, max_new_tokens=settings.max_new_tokens, eos=sorted(self._eos_ids()),
                        pad_id=self._pad_id(), stop=settings.stop or (), prefixes=PrefixCache(),
                        share_prefix=self.share_prefix, logits_hook=hook, slots=slots, on_done=done,
                    )
                break
            except torch.cuda.OutOfMemoryError:
                if slots == 1:
                    raise
                torch.cuda.empty_cache()
                slots = max(1, slots // 2)
        seconds = (time.perf_counter() - started) / max(1, len(rows))
        return [self._finish(d.tokens, d.reason, settings, seconds) for d in decoded]

    def _generate_batches(
        self, rows: Sequence[list[int]], settings: GenerationSettings, size: int,
        row_seeds: Sequence[int] | None, progress: Progress | None,
    ) -> list[tuple[str, int, str, float]]:
        """transformers' ``generate`` in batches of similar lengths (unseeded sampling, other models)."""
        import torch

        # Longest first: memory trouble shows up on the first batch, and rows of a batch have similar lengths.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        results: list[tuple[str, int, str, float] | None] = [None] * len(rows)
        start = 0
        batch_index = 0
        while start < len(order):
            idx = order[start : start + size]
            seed_everything(self.settings.seed + batch_index)
            started = time.perf_counter()
            try:
                produced = self._generate_with_transformers(
                    [rows[i] for i in idx], settings, self._pad_id(), sorted(self._eos_ids()),
                    [row_seeds[i] for i in idx] if row_seeds is not None else None,
                )
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                torch.cuda.empty_cache()
                size = max(1, size // 2)
                continue
            seconds = (time.perf_counter() - started) / len(idx)
            for i, (tokens, reason) in zip(idx, produced):
                results[i] = self._finish(tokens, reason, settings, seconds)
            if progress is not None:
                progress(len(idx))
            start += len(idx)
            batch_index += 1
        return [r for r in results if r is not None]

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else 0

    def _finish(self, tokens: list[int], reason: str, settings: GenerationSettings, seconds: float) -> tuple[str, int, str, float]:
        """A row's text (cut at the first stop string), token count, finish reason and seconds."""
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if settings.stop:
            hits = [text.find(s) for s in settings.stop if s and s in text]
            if hits:
                text, reason = text[: min(hits)], "stop"
        return text, len(tokens), reason, seconds

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def _generate_with_transformers(
        self, rows: Sequence[list[int]], settings: GenerationSettings, pad: int, eos: list[int],
        row_seeds: Sequence[int] | None = None,
    ) -> list[tuple[list[int], str]]:
        """``model.generate`` on left-padded rows (sampling, and models the greedy loop cannot drive)."""
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for j, row in enumerate(rows):  # left padding: every row's last token sits in the last column
            input_ids[j, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention[j, width - len(row) :] = 1
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=settings.do_sample,
            temperature=settings.temperature if settings.do_sample else None,
            top_p=settings.top_p if settings.do_sample else None,
            top_k=None,
            pad_token_id=pad,
            eos_token_id=eos or None,
        )
        extra: dict[str, Any] = {}
        if settings.do_sample and row_seeds is not None:  # per-row seeded sampling: greedy over the sampler's choice
            from transformers import LogitsProcessorList

            from pytest_llmeval.models.sampling import SeededSampler

            config.do_sample, config.temperature, config.top_p = False, None, None
            extra["logits_processor"] = LogitsProcessorList([SeededSampler(row_seeds, width, settings.temperature, settings.top_p)])
        if settings.stop:
            config.stop_strings = list(settings.stop)
            extra["tokenizer"] = tok
        device = self.device
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                generation_config=config,
                **extra,
            )
        eos_set = set(eos)
        produced = []
        for tokens in out[:, width:].to("cpu").tolist():
            reason = "length"
            cut = len(tokens)
            for k, t in enumerate(tokens):
                if t in eos_set:
                    cut, reason = k, "stop"
                    break
            produced.append((tokens[:cut], reason))
        return produced

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
