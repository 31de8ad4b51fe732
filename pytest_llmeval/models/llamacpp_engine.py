"""Batched decoding on a llama.cpp context: many sequences per ``llama_decode`` call.

One loop serves generation and loglikelihood scoring. A *job* is a token sequence fed into its
own sequence slot (its own KV stream); each ``llama_decode`` call carries the next token of every
generating job plus prompt chunks of newly admitted jobs, up to ``n_batch`` tokens. A job that
finishes frees its slot at once and the next waiting job takes it (continuous batching), so no
compute goes to rows that have stopped. Logits are requested only at the positions a job needs.

Only ``llama_cpp``'s public ctypes functions are used here; the module imports it lazily.
"""

from __future__ import annotations

import ctypes
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

CTX_ROUND = 256
DEFAULT_N_BATCH = 2048


class EngineError(RuntimeError):
    """llama.cpp refused a context or a decode call."""


@dataclass
class Job:
    """A sequence to feed; ``wants(pos)`` says where logits are needed, ``on_logits`` consumes them.

    ``on_logits`` may append to ``tokens`` (generation): the job continues while tokens are
    left to feed, and is done once every token has been fed and seen.
    """

    tokens: list[int]
    wants: Callable[[int], bool]
    on_logits: Callable[[int, np.ndarray], None]
    fed: int = 0
    slot: int = -1


@dataclass
class Engine:
    """A llama.cpp context sized for ``n_seq`` parallel sequences of ``n_ctx_seq`` tokens each."""

    model: Any  # llama_model_p
    n_vocab: int
    n_threads: int
    n_seq: int
    n_ctx_seq: int
    n_batch: int = DEFAULT_N_BATCH
    _ctx: Any = field(default=None, repr=False)
    _batch: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import llama_cpp

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self.n_seq * self.n_ctx_seq
        params.n_batch = self.n_batch
        params.n_ubatch = min(self.n_batch, 512)
        params.n_seq_max = self.n_seq
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.kv_unified = False  # one KV stream per sequence: attention sees only its own row
        params.no_perf = True
        # llama-cpp-python's default (its Llama class): plain attention, so outputs equal a plain loop's.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not self._ctx:
            raise EngineError(f"llama.cpp could not create a context for {self.n_seq} sequences of {self.n_ctx_seq} tokens")
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)

    def close(self) -> None:
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None

    def fits(self, n_seq: int, n_ctx_seq: int) -> bool:
        return n_seq <= self.n_seq and n_ctx_seq <= self.n_ctx_seq

    def run(self, jobs: Sequence[Job]) -> None:
        """Feed every job to the end, ``n_seq`` at a time, in the order given."""
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self._ctx)
        llama_cpp.llama_memory_clear(memory, True)
        for job in jobs:
            if len(job.tokens) > self.n_ctx_seq:
                raise EngineError(f"a sequence of {len(job.tokens)} tokens exceeds the context of {self.n_ctx_seq}")
        waiting = deque(jobs)
        free = list(range(self.n_seq - 1, -1, -1))
        active: list[Job] = []
        while waiting or active:
            while waiting and free:
                job = waiting.popleft()
                job.slot, job.fed = free.pop(), 0
                active.append(job)
            entries = self._fill(active)
            if self._batch.n_tokens == 0:
                raise EngineError("no job had a token to feed (a job without tokens)")
            rc = llama_cpp.llama_decode(self._ctx, self._batch)
            if rc != 0:
                raise EngineError(f"llama_decode failed with code {rc} on a batch of {self._batch.n_tokens} tokens")
            for job, pos, index in entries:
                pointer = llama_cpp.llama_get_logits_ith(self._ctx, index)
                logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))
                job.on_logits(pos, logits)
            still: list[Job] = []
            for job in active:
                if job.fed < len(job.tokens):
                    still.append(job)
                else:
                    llama_cpp.llama_memory_seq_rm(memory, job.slot, -1, -1)
                    free.append(job.slot)
            active = still

    def _fill(self, active: Sequence[Job]) -> list[tuple[Job, int, int]]:
        """Put the next tokens of the active jobs into the batch; (job, position, batch index) of
        each token whose logits are wanted."""
        batch = self._batch
        budget = self.n_batch
        n = 0
        wanted: list[tuple[Job, int, int]] = []
        # Generating jobs (one token each) first, so a long prompt never starves them.
        for job in sorted(active, key=lambda j: len(j.tokens) - j.fed):
            take = min(len(job.tokens) - job.fed, budget)
            for pos in range(job.fed, job.fed + take):
                batch.token[n] = job.tokens[pos]
                batch.pos[n] = pos
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = job.slot
                want = job.wants(pos)
                batch.logits[n] = 1 if want else 0
                if want:
                    wanted.append((job, pos, n))
                n += 1
            job.fed += take
            budget -= take
            if budget == 0:
                break
        batch.n_tokens = n
        return wanted


def round_up(n: int, to: int = CTX_ROUND) -> int:
    return max(to, -(-n // to) * to)


def log_softmax_at(logits: np.ndarray, token: int) -> tuple[float, bool]:
    """``(log p(token), token is the argmax)`` from one row of logits, in float64."""
    row = logits.astype(np.float64)
    top = float(row.max())
    lse = top + float(np.log(np.exp(row - top).sum()))
    return float(row[token]) - lse, int(np.argmax(logits)) == token
