"""Text for the llama.cpp backend: the GGUF file, its tokenizer and chat template, and how one
generated sequence picks its tokens and stops.

:class:`GGUFTokenizer` gives llama.cpp's tokenizer the small part of a transformers tokenizer's
interface that :mod:`pytest_llmeval.models.chat` and :mod:`pytest_llmeval.models.loglik` use, so
the same code renders chat prompts and splits loglikelihood requests for both backends. The chat
template stored in the GGUF is rendered by transformers' own renderer (the one
``apply_chat_template`` calls), with the GGUF's special tokens as template variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pytest_llmeval.models.protocol import ModelLoadError, Progress
from pytest_llmeval.models.llamacpp_engine import Job
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.models.thinking import Rows
from pytest_llmeval.settings import GenerationSettings, SettingsError, resolve_model_path

GGUF_MAGIC = b"GGUF"


def resolve_gguf(spec: str, rootdir: Path | None = None) -> Path:
    """The .gguf file ``spec`` names: a path (relative to ``rootdir``), ``pkg:PACKAGE/FILE``, or a
    package or folder holding exactly one .gguf file. :class:`ModelLoadError` says why not."""
    if spec.startswith("pkg:"):
        package, sep, rest = spec[4:].partition("/")
        spec = "pkg:" + package.replace("-", "_") + sep + rest
    try:
        path = Path(resolve_model_path(spec, rootdir))
    except SettingsError as exc:
        raise ModelLoadError(f"llamacpp:{spec}: {exc}") from None
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            raise ModelLoadError(
                f"llamacpp:{spec}: {path} holds {len(found)} .gguf files; name one (llamacpp:{spec.rstrip('/')}/FILE.gguf)"
            )
        path = found[0]
    if not path.is_file():
        raise ModelLoadError(
            f"llamacpp:{spec}: no such file {path}; point llmeval_model at a .gguf file (llamacpp:path/to/model.gguf)"
        )
    with open(path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelLoadError(f"llamacpp:{spec}: {path} is not a GGUF file; the llamacpp backend reads .gguf files only")
    return path


class GGUFTokenizer:
    """llama.cpp's tokenizer with the interface the chat and loglikelihood code expects."""

    def __init__(self, llama: Any) -> None:
        import llama_cpp

        self.llama = llama
        self._pieces: dict[bool, dict[int, bytes]] = {False: {}, True: {}}
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog
        meta = dict(getattr(llama, "metadata", {}) or {})
        self.chat_template: str | None = meta.get("tokenizer.chat_template") or None
        self.bos_token_id = self._token_id(llama.token_bos())
        self.eos_token_id = self._token_id(llama.token_eos())
        self.pad_token_id = self.eos_token_id
        self.add_bos_default = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self.n_vocab = int(llama.n_vocab())
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(llama.model))
        self.file_type = _file_type(llama)
        self.special_tokens_map = {
            name: self.decode([token])
            for name, token in (("bos_token", self.bos_token_id), ("eos_token", self.eos_token_id))
            if token is not None
        }

    @staticmethod
    def _token_id(token: int) -> int | None:
        return None if token is None or token < 0 else int(token)

    # what chat.py uses ---------------------------------------------------------

    def apply_chat_template(
        self, messages: list[dict[str, str]], *, tokenize: bool = False, add_generation_prompt: bool = True,
        continue_final_message: bool = False, **template_vars: Any,
    ) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        if tokenize:
            raise ValueError("GGUFTokenizer.apply_chat_template renders text only (tokenize=False)")
        rendered, _ = render_jinja_template(
            conversations=[messages],
            chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            **{**self.special_tokens_map, **template_vars},
        )
        return rendered[0]

    def render(
        self, text: str, *, chat: bool, system: str | None = None, examples: Sequence[tuple[str, str]] = (), thinking: bool | None = None,
    ) -> str:  # fmt: skip
        if not chat:
            return text
        from pytest_llmeval.models.chat import chat_context
        from pytest_llmeval.models.reasoning import template_kwargs

        return chat_context(self, text, system=system, examples=examples, template_kwargs=template_kwargs(self.delimiters, thinking))

    @property
    def delimiters(self) -> Any:
        """The reasoning delimiters of the GGUF's chat template (with their ids where each is one
        token), ``None`` for a model that does not think."""
        if not hasattr(self, "_delimiters"):
            from dataclasses import replace

            from pytest_llmeval.models.reasoning import reasoning_delimiters

            found = reasoning_delimiters(self)
            if found is not None:
                ids = [self.encode(d, add_special=False) for d in (found.start, found.end)]
                found = replace(found, start_id=ids[0][0] if len(ids[0]) == 1 else None, end_id=ids[1][0] if len(ids[1]) == 1 else None)
            self._delimiters = found
        return self._delimiters

    # what loglik.py uses -------------------------------------------------------

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool | None = None) -> dict[str, Any]:
        add = self.add_bos_default if add_special_tokens is None else add_special_tokens
        if isinstance(texts, str):
            return {"input_ids": self.encode(texts, add_special=add)}
        return {"input_ids": [self.encode(t, add_special=add) for t in texts]}

    def encode(self, text: str, *, add_special: bool) -> list[int]:
        """Tokens of ``text``; special-token text (``<|im_start|>``) becomes its token, as in
        transformers; ``add_special`` adds a BOS token where the model asks for one."""
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=add_special, special=True))

    def decode(self, tokens: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of ``tokens``, as ``Llama.detokenize`` gives it. A generating sequence decodes
        its tokens at every step, so each token's piece is asked of llama.cpp once and kept:
        without a BOS token (whose leading space llama-cpp-python drops), its text is the pieces
        joined."""
        special = not skip_special_tokens
        if self.bos_token_id is not None and self.bos_token_id in tokens:
            raw = self.llama.detokenize(list(tokens), special=special)
        else:
            pieces = self._pieces[special]
            for token in tokens:
                if token not in pieces:
                    pieces[token] = self.llama.detokenize([token], special=special)
            raw = b"".join([pieces[token] for token in tokens])
        return raw.decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return bool(self._is_eog(self._vocab, token))


def _file_type(llama: Any) -> str:
    """The weight type as llama.cpp names it (``Q4_1``), from the model description."""
    import ctypes

    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(llama.model, buf, ctypes.sizeof(buf))
    words = buf.value.decode("utf-8", errors="replace").split()
    return words[-1] if words else "unknown"


@dataclass
class Generation:
    """How one sequence picks tokens and when it stops (greedy unless ``settings.do_sample``)."""

    tokenizer: GGUFTokenizer
    settings: GenerationSettings
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    reason: str = ""
    thinking: Rows | None = None
    """A reasoning model's: stops on the answer only, the thinking budget, the split (row 0)."""

    def pick(self, logits: np.ndarray) -> int:
        if not self.settings.do_sample:
            return int(np.argmax(logits))  # ties to the lowest id, as torch's argmax
        row = logits.astype(np.float64) / (self.settings.temperature or 1.0)
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        top_p = self.settings.top_p if self.settings.top_p is not None else 1.0
        if top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            keep = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
            mask = np.zeros_like(probs)
            mask[keep] = probs[keep]
            probs = mask / mask.sum()
        return int(self.rng.choice(len(probs), p=probs))

    def step(self, logits: np.ndarray) -> int | None:
        """The next token to feed, or None when the sequence is done (``reason`` says why)."""
        token = self.pick(logits)
        if self.thinking is not None and self.thinking.over_budget(0, self.tokens):
            token = int(self.thinking.delimiters.end_id)  # the thinking budget is spent: end the thinking
        if self.tokenizer.is_eog(token):
            self.reason = "stop"
            return None
        self.tokens.append(token)
        if self.thinking is not None:
            if self.thinking.stopped(0, self.tokens):
                self.reason = "stop"
                return None
            return self._length_or(token)
        self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        hits = [self.text.find(s) for s in self.settings.stop if s and s in self.text]
        if hits:
            self.text, self.reason = self.text[: min(hits)], "stop"
            return None
        return self._length_or(token)

    def _length_or(self, token: int) -> int | None:
        if len(self.tokens) >= self.settings.max_new_tokens:
            self.reason = "length"
            return None
        return token

    def finished(self) -> tuple[str, str, dict[str, Any]]:
        """The text (for a reasoning model the answer), the finish reason and the reasoning fields."""
        reason = self.reason or "length"
        if self.thinking is None:
            return self.text, reason, {}
        done = self.thinking.finish(0, self.tokens, reason)
        return done.text, done.reason, done.fields()


class GenerationJob:
    """One prompt's engine job: feeds the prompt, then each picked token, until it stops."""

    def __init__(self, gen: Generation, *, prompt: str, full: list[int], limit: int, progress: Progress | None) -> None:
        self.gen = gen
        self.settings = gen.settings
        self.prompt = prompt
        self.truncated = max(0, len(full) - limit)
        tokens = full[-limit:]
        self._progress = progress
        self.job = Job(tokens, wants=lambda pos: pos == len(self.job.tokens) - 1, on_logits=self._on_logits)
        self.n_prompt = len(tokens)

    def _on_logits(self, pos: int, logits: np.ndarray) -> None:
        token = self.gen.step(logits)
        if token is not None:
            self.job.tokens.append(token)
        elif self._progress is not None:
            self._progress(1)

    def completion(self, seconds: float) -> Completion:
        text, reason, reasoning = self.gen.finished()
        return Completion(
            text,
            prompt=self.prompt,
            tokens_in=self.n_prompt,
            tokens_out=len(self.gen.tokens),
            latency_s=seconds,
            finish_reason=reason,
            truncated=self.truncated,
            **reasoning,
        )
