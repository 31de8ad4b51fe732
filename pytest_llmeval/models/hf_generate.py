"""How the transformers backend generates: prompts tokenized, run through :mod:`.decode` (greedy,
or sampling with a seed per row) or through transformers' ``generate``, in batches, and the
tokens turned back into text (cut at the first stop string).

A reasoning model (one whose tokenizer and chat template have reasoning delimiters,
:func:`~.reasoning.reasoning_delimiters`) runs with a :class:`~.thinking.Rows` per call: stop
strings apply to the answer only, ``max_reasoning_tokens`` forces the end of thinking, and each
completion's text is the answer, its thinking in ``reasoning``.

:class:`Generation` is a part of :class:`~pytest_llmeval.models.hf.HFBackend`, kept here so that
each module reads in one sitting; it uses the backend's model, tokenizer and settings.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from pytest_llmeval.models.decode import PrefixCache
from pytest_llmeval.models.hf_loading import seed_everything
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.models.protocol import Progress
from pytest_llmeval.models.thinking import Rows, rows_for
from pytest_llmeval.settings import GenerationSettings, LLMSettings


Produced = tuple[str, int, str, float, dict[str, Any]]
"""A row's text, new tokens, finish reason, seconds and reasoning fields (``{}`` without reasoning)."""


class Generation:
    """The generation half of the transformers backend (see the module's docstring)."""

    model: Any
    tokenizer: Any
    settings: LLMSettings
    fast_decode: bool
    share_prefix: bool

    device: Any
    batch_size: Callable[[], int]
    max_length: Callable[[], int]
    _kernels: Callable[[], Any]
    _check_mode: Callable[[], None]
    delimiters: Any
    """(the backend's own: its device, batch size, context length, kernels, mode check and reasoning delimiters)"""

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
        rows = rows_for(self.delimiters, prompts, settings, lambda ids: tok.decode(ids, skip_special_tokens=True))
        with self._kernels():
            if self._decodes(settings, row_seeds):
                produced = self._decode_all(encoded, settings, size, row_seeds, progress, rows)
            else:
                produced = self._generate_batches(encoded, settings, size, row_seeds, progress, rows)
        return [
            Completion(
                text,
                prompt=prompts[i],
                tokens_in=len(encoded[i]),
                tokens_out=n_out,
                latency_s=seconds,
                finish_reason=reason,
                truncated=len(full[i]) - len(encoded[i]),
                **reasoning,
            )
            for i, (text, n_out, reason, seconds, reasoning) in enumerate(produced)
        ]

    def _decodes(self, settings: GenerationSettings, row_seeds: Sequence[int] | None) -> bool:
        """Whether :mod:`.decode` runs this call: greedy, or sampling with a seed per row."""
        from pytest_llmeval.models.decode import can_decode

        seeded = settings.do_sample and row_seeds is not None
        return self.fast_decode and (seeded or not settings.do_sample) and can_decode(self.model)

    def _decode_all(
        self, rows: Sequence[list[int]], settings: GenerationSettings, slots: int,
        row_seeds: Sequence[int] | None, progress: Progress | None, thinking: Rows | None = None,
    ) -> list[Produced]:
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
                        stop_rule=thinking.stopped if thinking is not None else None,
                        force=thinking.force if thinking is not None and thinking.budget is not None else None,
                    )
                break
            except torch.cuda.OutOfMemoryError:
                if slots == 1:
                    raise
                torch.cuda.empty_cache()
                slots = max(1, slots // 2)
        seconds = (time.perf_counter() - started) / max(1, len(rows))
        return [self._finish(i, d.tokens, d.reason, settings, seconds, thinking) for i, d in enumerate(decoded)]

    def _generate_batches(
        self, rows: Sequence[list[int]], settings: GenerationSettings, size: int,
        row_seeds: Sequence[int] | None, progress: Progress | None, thinking: Rows | None = None,
    ) -> list[Produced]:
        """transformers' ``generate`` in batches of similar lengths (unseeded sampling, other models)."""
        import torch

        # Longest first: memory trouble shows up on the first batch, and rows of a batch have similar lengths.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        results: list[Produced | None] = [None] * len(rows)
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
                    thinking.subset(idx) if thinking is not None else None,
                )
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                torch.cuda.empty_cache()
                size = max(1, size // 2)
                continue
            seconds = (time.perf_counter() - started) / len(idx)
            for i, (tokens, reason) in zip(idx, produced):
                results[i] = self._finish(i, tokens, reason, settings, seconds, thinking)
            if progress is not None:
                progress(len(idx))
            start += len(idx)
            batch_index += 1
        return [r for r in results if r is not None]

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else 0

    def _finish(
        self, row: int, tokens: list[int], reason: str, settings: GenerationSettings, seconds: float, thinking: Rows | None,
    ) -> Produced:
        """A row's text (cut at the first stop string), token count, finish reason, seconds and,
        for a reasoning model, its reasoning (the text is then the answer)."""
        if thinking is not None:
            done = thinking.finish(row, tokens, reason)
            return done.text, len(tokens), done.reason, seconds, done.fields()
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if settings.stop:
            hits = [text.find(s) for s in settings.stop if s and s in text]
            if hits:
                text, reason = text[: min(hits)], "stop"
        return text, len(tokens), reason, seconds, {}

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
        row_seeds: Sequence[int] | None = None, thinking: Rows | None = None,
    ) -> list[tuple[list[int], str]]:
        """``model.generate`` on left-padded rows (sampling, and models the greedy loop cannot drive)."""
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        input_ids, attention = _left_padded(rows, pad)
        width = input_ids.shape[1]
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=settings.do_sample,
            temperature=settings.temperature if settings.do_sample else None,
            top_p=settings.top_p if settings.do_sample else None,
            top_k=None,
            pad_token_id=pad,
            eos_token_id=eos or None,
        )
        from transformers import LogitsProcessorList

        extra: dict[str, Any] = {}
        if settings.do_sample and row_seeds is not None:  # per-row seeded sampling: greedy over the sampler's choice

            from pytest_llmeval.models.sampling import SeededSampler

            config.do_sample, config.temperature, config.top_p = False, None, None
            extra["logits_processor"] = LogitsProcessorList([SeededSampler(row_seeds, width, settings.temperature, settings.top_p)])
        if thinking is not None:  # stops on the answer only, and the thinking budget, row by row
            extra["stopping_criteria"] = thinking.stopping_criteria(width, eos)
            if thinking.budget is not None and thinking.delimiters.end_id is not None:
                extra.setdefault("logits_processor", LogitsProcessorList()).append(thinking.budget_processor(width))
        elif settings.stop:
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
        return [_cut(tokens, eos_set, pad) for tokens in out[:, width:].to("cpu").tolist()]


def _left_padded(rows: Sequence[list[int]], pad: int) -> tuple[Any, Any]:
    """The rows as one tensor of token ids, padded on the left with ``pad`` (every row's last token
    sits in the last column), and its attention mask."""
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for j, row in enumerate(rows):
        input_ids[j, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        attention[j, width - len(row) :] = 1
    return input_ids, attention


def _cut(tokens: list[int], eos: set[int], pad: int) -> tuple[list[int], str]:
    """A row's new tokens up to its first end-of-sequence token (finish reason ``stop``), else all
    of them (``length``) but the padding ``generate`` added after a row that stopped early."""
    reason = "length"
    cut = len(tokens)
    for k, t in enumerate(tokens):
        if t in eos:
            cut, reason = k, "stop"
            break
    while reason == "length" and cut and tokens[cut - 1] == pad:  # a row that stopped early: generate padded it
        cut -= 1
    return tokens[:cut], reason
