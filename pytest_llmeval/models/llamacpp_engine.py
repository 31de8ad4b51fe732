"""Batched decoding on a llama.cpp context: many sequences per ``llama_decode`` call.

One loop serves generation and loglikelihood scoring. A *job* is a token sequence fed into its
own sequence slot (its own KV stream). A job that finishes frees its slot at once and the next
waiting job takes it (continuous batching), so no compute goes to rows that have stopped. Logits
are requested only at the positions a job needs.

How llama.cpp cuts a decode call decides both its cost and its numbers. With one KV stream per
sequence, a call is cut into micro-batches ("ubatches", one pass through the weights each) that
hold only sequences whose ids follow one another (``s, s+1, s+2``, in the order the call lists
them), each with the same number of tokens; and the kernels may sum a prompt's rows in another
order when its tokens come in other chunks. So:

- a step of generation is one call with one token of every generating job, listed by slot, and
  the busy slots are kept contiguous from 0 (when a job ends and no job waits to take its slot,
  the job in the highest slot moves into the gap; its KV stream is copied exactly): one pass for
  all the sequences, not one per run of consecutive slots;
- a prompt (or a scored sequence) is fed on its own, in chunks of ``n_batch`` tokens, as
  llama-cpp-python's ``Llama`` feeds one: each sequence's numbers are those of a plain loop;
- a job's ``shared`` leading tokens (a chat template's preamble: its system prompt) are fed once,
  into a stream of their own (slot ``n_seq``) kept across runs, and copied into each job's stream
  that starts with them; the job's own tokens are fed after them. Where a job is split depends on
  the job alone (never on its batch), as ``Llama`` splits a prompt after the prefix it shares with
  the previous one. (On SmolLM2's 128 benchmark chat prompts, the last logits of a prompt fed
  whole and fed split after its 24-token preamble are bitwise equal.)

Only ``llama_cpp``'s public ctypes functions are used, by :class:`NativeContext`; the module imports
it lazily, and the scheduling (:class:`Engine`) runs on any object with that context's methods.
"""

from __future__ import annotations

import ctypes
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

CTX_ROUND = 256
DEFAULT_N_BATCH = 512
"""Tokens per decode call of one prompt: llama-cpp-python's default ``n_batch``."""


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
    shared: int = 0
    """Leading tokens that other jobs share (fed once per engine, then copied); no logits wanted there."""


class NativeContext:
    """A llama.cpp context for ``n_seq`` sequences of ``n_ctx_seq`` tokens, one KV stream each, and
    its batch. What :class:`Engine` asks of llama.cpp goes through these methods."""

    def __init__(self, model: Any, n_vocab: int, n_threads: int, n_seq: int, n_ctx_seq: int, n_batch: int) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.n_vocab = n_vocab
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_seq * n_ctx_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = False  # one KV stream per sequence: attention sees only its own row
        params.no_perf = True
        # llama-cpp-python's default (its Llama class): plain attention, so outputs equal a plain loop's.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = llama_cpp.llama_init_from_model(model, params)
        if not self._ctx:
            raise EngineError(f"llama.cpp could not create a context for {n_seq} sequences of {n_ctx_seq} tokens")
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._memory = llama_cpp.llama_get_memory(self._ctx)

    def clear(self) -> None:
        self._llama_cpp.llama_memory_clear(self._memory, True)

    def decode(self) -> None:
        rc = self._llama_cpp.llama_decode(self._ctx, self.batch)
        if rc != 0:
            raise EngineError(f"llama_decode failed with code {rc} on a batch of {self.batch.n_tokens} tokens")

    def logits(self, index: int) -> np.ndarray:
        pointer = self._llama_cpp.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def free(self, slot: int) -> None:
        self._llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)

    def move(self, src: int, dst: int) -> None:
        """The sequence in slot ``src`` now lives in the empty slot ``dst`` (its KV stream is copied
        before the next decode)."""
        self._llama_cpp.llama_memory_seq_cp(self._memory, src, dst, -1, -1)
        self._llama_cpp.llama_memory_seq_rm(self._memory, src, -1, -1)

    def copy(self, src: int, dst: int, n: int) -> None:
        """The empty slot ``dst`` now holds the first ``n`` positions of slot ``src`` (another
        stream: its buffer is copied before the next decode, then the positions past ``n`` dropped)."""
        self._llama_cpp.llama_memory_seq_cp(self._memory, src, dst, -1, -1)
        self._llama_cpp.llama_memory_seq_rm(self._memory, dst, n, -1)

    def close(self) -> None:
        if self.batch is not None:
            self._llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        if self._ctx is not None:
            self._llama_cpp.llama_free(self._ctx)
            self._ctx = None


class Engine:
    """Runs jobs on a context (a :class:`NativeContext`) with ``n_seq + 1`` sequences of ``n_ctx_seq``
    tokens each: ``n_seq`` for jobs, the last one for the shared prefix. ``decodes`` counts its
    decode calls, ``moves`` the sequences it moved to a lower slot, ``shared`` the tokens copied
    instead of fed."""

    def __init__(self, context: Any, n_seq: int, n_ctx_seq: int, n_batch: int = DEFAULT_N_BATCH) -> None:
        self.context = context
        self.n_seq = n_seq
        self.n_ctx_seq = n_ctx_seq
        self.n_batch = n_batch
        self.decodes = 0
        self.moves = 0
        self.shared = 0
        self._prefix: tuple[int, ...] | None = None  # what slot n_seq holds

    @classmethod
    def open(cls, model: Any, n_vocab: int, n_threads: int, n_seq: int, n_ctx_seq: int) -> "Engine":
        """An engine on a new llama.cpp context for ``model`` (a ``llama_model_p``)."""
        context = NativeContext(model, n_vocab, n_threads, n_seq + 1, n_ctx_seq, max(DEFAULT_N_BATCH, n_seq))
        return cls(context, n_seq, n_ctx_seq)

    def close(self) -> None:
        self.context.close()

    def fits(self, n_seq: int, n_ctx_seq: int) -> bool:
        return n_seq <= self.n_seq and n_ctx_seq <= self.n_ctx_seq

    def run(self, jobs: Sequence[Job]) -> None:
        """Feed every job to the end, ``n_seq`` at a time, taking them in the order given."""
        for job in jobs:
            if len(job.tokens) > self.n_ctx_seq:
                raise EngineError(f"a sequence of {len(job.tokens)} tokens exceeds the context of {self.n_ctx_seq}")
        for slot in range(self.n_seq):  # the shared prefix in slot n_seq stays
            self.context.free(slot)
        try:
            self._run(deque(jobs))
        except BaseException:
            self._prefix = None
            self.context.clear()
            raise

    def _run(self, waiting: deque[Job]) -> None:
        slots: list[Job | None] = [None] * self.n_seq
        while True:
            for slot, held in enumerate(slots):
                if held is None and waiting:
                    job = slots[slot] = waiting.popleft()
                    job.slot, job.fed = slot, 0
            self._compact(slots)
            active = [job for job in slots if job is not None]
            if not active:
                return
            for job in active:
                if job.fed == 0 and job.shared:
                    self._seat(job)
                if len(job.tokens) - job.fed > 1:  # a prompt: on its own, a chunk per call
                    self._decode([job], min(len(job.tokens) - job.fed, self.n_batch))
            self._release(slots)
            self._compact(slots)
            stepping = [job for job in slots if job is not None and len(job.tokens) - job.fed == 1]
            if stepping:
                self._decode(stepping, 1)
            self._release(slots)

    def _seat(self, job: Job) -> None:
        """Start ``job`` with its shared prefix copied from slot ``n_seq`` (fed there first if that
        slot holds another one). A job whose prefix is its whole sequence, or wants logits in it, is
        fed as it is."""
        n = job.shared
        if n >= len(job.tokens) or any(job.wants(pos) for pos in range(n)):
            return
        prefix = tuple(job.tokens[:n])
        if self._prefix != prefix:
            self._prefix = None
            self.context.free(self.n_seq)
            holder = Job(list(prefix), wants=lambda pos: False, on_logits=lambda pos, logits: None, slot=self.n_seq)
            while holder.fed < n:
                self._decode([holder], min(n - holder.fed, self.n_batch))
            self._prefix = prefix
        self.context.copy(self.n_seq, job.slot, n)
        job.fed = n
        self.shared += n

    def _release(self, slots: list[Job | None]) -> None:
        """Free the slots of the jobs that are done."""
        for slot, job in enumerate(slots):
            if job is not None and job.fed >= len(job.tokens):
                self.context.free(slot)
                slots[slot] = None

    def _compact(self, slots: list[Job | None]) -> None:
        """Move the jobs in the highest slots into the free slots below them, so the busy slots
        are 0..k-1 (one ubatch per step; see the module docstring)."""
        while True:
            busy = [slot for slot, job in enumerate(slots) if job is not None]
            free = [slot for slot, job in enumerate(slots) if job is None]
            if not busy or not free or free[0] > busy[-1]:
                return
            src, dst = busy[-1], free[0]
            job = slots[src]
            assert job is not None
            if job.fed:  # a job not fed yet has nothing in its stream to move
                self.context.move(src, dst)
                self.moves += 1
            slots[dst], slots[src], job.slot = job, None, dst

    def _decode(self, jobs: Sequence[Job], take: int) -> None:
        """One decode call: the next ``take`` tokens of each job (in the order given), then each
        job's wanted logits to its ``on_logits``."""
        batch = self.context.batch
        n = 0
        wanted: list[tuple[Job, int, int]] = []
        for job in jobs:
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
        batch.n_tokens = n
        self.context.decode()
        self.decodes += 1
        for job, pos, index in wanted:
            job.on_logits(pos, self.context.logits(index))


def round_up(n: int, to: int = CTX_ROUND) -> int:
    return max(to, -(-n // to) * to)


def log_softmax_at(logits: np.ndarray, token: int) -> tuple[float, bool]:
    """``(log p(token), token is the argmax)`` from one row of logits, in float64."""
    row = logits.astype(np.float64)
    top = float(row.max())
    lse = top + float(np.log(np.exp(row - top).sum()))
    return float(row[token]) - lse, int(np.argmax(logits)) == token
