"""The llama.cpp backend's decode loop (:mod:`pytest_llmeval.models.llamacpp_engine`), on a
stand-in context: no llama.cpp needed, so these run everywhere.

The stand-in keeps one token history per slot (its "KV stream") and answers, at each wanted
position, a token computed from that history alone; it checks every position it is fed. So a job
moved to another slot, or fed out of order, shows as a wrong answer or a failed check. How
llama.cpp cuts a decode call into micro-batches (one pass through the weights each) is modelled
by :func:`ubatches`, after ``llama_batch_allocr::split_equal`` with one KV stream per sequence.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pytest_llmeval.models.llamacpp_engine import Engine, EngineError, Job

VOCAB = 50
STOP = 0


def next_token(history: list[int]) -> int:
    """The stand-in model: the next token depends on the whole history of its sequence."""
    return (sum((i + 3) * t for i, t in enumerate(history)) * 31 + len(history)) % VOCAB


class Batch:
    def __init__(self, size: int) -> None:
        self.token = [0] * size
        self.pos = [0] * size
        self.n_seq_id = [0] * size
        self.seq_id = [[0] for _ in range(size)]
        self.logits = [0] * size
        self.n_tokens = 0


class Context:
    """What :class:`~pytest_llmeval.models.llamacpp_engine.NativeContext` does, in Python."""

    def __init__(self, n_batch: int = 2048) -> None:
        self.batch = Batch(n_batch)
        self.streams: dict[int, list[int]] = {}
        self.calls: list[list[int]] = []  # the slot of each token, per decode call
        self.moves = 0
        self._rows: dict[int, int] = {}

    def clear(self) -> None:
        self.streams = {}

    def decode(self) -> None:
        self._rows = {}
        slots = []
        for i in range(self.batch.n_tokens):
            slot = self.batch.seq_id[i][0]
            history = self.streams.setdefault(slot, [])
            assert self.batch.n_seq_id[i] == 1 and self.batch.pos[i] == len(history), "a token fed out of place"
            history.append(self.batch.token[i])
            if self.batch.logits[i]:
                self._rows[i] = next_token(history)
            slots.append(slot)
        self.calls.append(slots)

    def logits(self, index: int) -> np.ndarray:
        row = np.zeros(VOCAB, dtype=np.float32)
        row[self._rows[index]] = 1.0
        return row

    def free(self, slot: int) -> None:
        self.streams.pop(slot, None)

    def move(self, src: int, dst: int) -> None:
        assert dst not in self.streams, "moved onto a busy slot"
        self.streams[dst] = self.streams.pop(src)
        self.moves += 1

    def copy(self, src: int, dst: int, n: int) -> None:
        assert not self.streams.get(dst), "copied onto a busy slot"
        assert len(self.streams.get(src, [])) >= n, "copied more than the source holds"
        self.streams[dst] = list(self.streams[src][:n])

    def close(self) -> None:
        pass


def ubatches(slots: list[int], n_ubatch: int = 512) -> int:
    """How many micro-batches llama.cpp makes of a decode call whose tokens belong to ``slots``
    (one KV stream per sequence): each takes sequences whose ids follow one another, in the order
    of the call, and the same number of tokens from each."""
    used = [False] * len(slots)
    count = 0
    while not all(used):
        chosen: list[int] = []
        for i, slot in enumerate(slots):
            if not used[i] and slot not in chosen and (not chosen or slot == chosen[-1] + 1):
                chosen.append(slot)
        left = {s: [i for i, x in enumerate(slots) if x == s and not used[i]] for s in chosen}
        taken = 0
        while all(len(rows) > taken for rows in left.values()):
            for rows in left.values():
                used[rows[taken]] = True
            taken += 1
            if (taken + 1) * len(chosen) > n_ubatch:
                break
        count += 1
    return count


def generating(prompt: list[int], max_new: int) -> tuple[Job, list[int]]:
    """A greedy generation job (stops at STOP or after max_new tokens) and the list it fills."""
    out: list[int] = []

    def on_logits(pos: int, logits: np.ndarray) -> None:
        token = int(np.argmax(logits))
        out.append(token)
        if token != STOP and len(out) < max_new:
            job.tokens.append(token)

    job = Job(list(prompt), wants=lambda pos: pos == len(job.tokens) - 1, on_logits=on_logits)
    return job, out


def alone(prompt: list[int], max_new: int) -> list[int]:
    """The same generation, one sequence by itself."""
    history, out = list(prompt), []
    while True:
        token = next_token(history)
        out.append(token)
        if token == STOP or len(out) == max_new:
            return out
        history.append(token)


def run(prompts: list[tuple[list[int], int]], n_seq: int, n_batch: int = 2048) -> tuple[Context, list[list[int]]]:
    context = Context(max(n_batch, n_seq))  # as Engine.open sizes the batch
    made = [generating(p, m) for p, m in prompts]
    Engine(context, n_seq, 256, n_batch).run([job for job, _ in made])
    return context, [out for _, out in made]


PROMPTS = st.lists(
    st.tuples(st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=30), st.integers(1, 20)), min_size=1, max_size=20
)


@settings(max_examples=60, deadline=None)
@given(prompts=PROMPTS, n_seq=st.integers(1, 6))
def test_each_sequence_gets_what_it_would_get_alone(prompts: list[tuple[list[int], int]], n_seq: int) -> None:
    """Slots shared, reused and moved never mix one sequence's history with another's."""
    _, outs = run(prompts, n_seq)
    assert outs == [alone(p, m) for p, m in prompts]


@settings(max_examples=60, deadline=None)
@given(prompts=PROMPTS, n_seq=st.integers(1, 6))
def test_a_step_of_generation_is_one_pass_for_all_its_sequences(prompts: list[tuple[list[int], int]], n_seq: int) -> None:
    """A decode call that feeds one token to each sequence lists them in slots 0..k-1, so
    llama.cpp computes it in one micro-batch, also when sequences ended at different steps."""
    context, _ = run(prompts, n_seq)
    for slots in context.calls:
        if len(set(slots)) == len(slots):  # one token per sequence: a step of generation
            assert slots == list(range(len(slots)))
            assert ubatches(slots) == 1


def test_sequences_that_end_early_leave_no_gap() -> None:
    """Eight sequences in eight slots, the even ones ending with their first token: the others
    move down, and each later step is one micro-batch (without the moves: four)."""
    prompts = [([5, 6, 7], 1 if n % 2 == 0 else 6) for n in range(8)]
    context, outs = run(prompts, 8)
    assert outs == [alone(p, m) for p, m in prompts]
    assert context.moves == 2
    steps = [slots for slots in context.calls if len(slots) > 1 and len(set(slots)) == len(slots)]
    assert steps and all(slots == [0, 1, 2, 3] for slots in steps[: min(len(o) for o in outs[1::2]) - 1])
    assert [ubatches(slots) for slots in context.calls] == [1] * len(context.calls)


@settings(max_examples=40, deadline=None)
@given(prompts=PROMPTS, n_seq=st.integers(1, 6), n_batch=st.integers(2, 12))
def test_a_prompt_is_fed_on_its_own_in_chunks(prompts: list[tuple[list[int], int]], n_seq: int, n_batch: int) -> None:
    """A call that feeds a sequence more than one token feeds nothing else, at most ``n_batch``
    tokens: a prompt's numbers are those of a plain one-prompt loop. The sequences already
    generating take a step between its chunks."""
    context, outs = run(prompts, n_seq, n_batch)
    assert outs == [alone(p, m) for p, m in prompts]
    for slots in context.calls:
        if len(set(slots)) < len(slots):
            assert len(set(slots)) == 1 and len(slots) <= n_batch


def test_the_others_keep_generating_while_a_long_prompt_is_fed() -> None:
    prompts = [([1, 2], 8), ([3, 4], 8), (list(range(1, 40)), 2)]
    context, outs = run(prompts, 3, n_batch=8)
    assert outs == [alone(p, m) for p, m in prompts]
    long_chunks = [n for n, slots in enumerate(context.calls) if slots == [2] * 8]
    assert len(long_chunks) == 4  # 38 of its 39 tokens in chunks of 8; then its last one with the others
    steps_between = [slots for slots in context.calls[long_chunks[0] : long_chunks[-1]] if slots[:2] == [0, 1]]
    assert len(steps_between) == 3


def test_a_sequence_longer_than_the_context_is_refused() -> None:
    job, _ = generating(list(range(1, 300)), 1)
    with pytest.raises(EngineError, match="exceeds the context of 256"):
        Engine(Context(), 2, 256).run([job])


def test_the_ubatch_model_splits_where_llama_cpp_does() -> None:
    assert ubatches([0, 1, 2, 3]) == 1
    assert ubatches([0, 1, 3]) == 2  # a gap
    assert ubatches([1, 0]) == 2  # out of order
    assert ubatches([0, 1, 1, 1]) == 2  # one token of each, then the rest of 1's prompt
    assert ubatches([0] * 600) == 2  # n_ubatch tokens at most


def shared_run(engine: Engine, prompts: list[tuple[list[int], int]], shared: int) -> list[list[int]]:
    made = [generating(p, m) for p, m in prompts]
    for job, _ in made:
        job.shared = shared
    engine.run([job for job, _ in made])
    return [out for _, out in made]


@settings(max_examples=60, deadline=None)
@given(preamble=st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=12), prompts=PROMPTS, n_seq=st.integers(1, 6),
       n_batch=st.integers(2, 12))
def test_a_shared_preamble_is_fed_once_and_each_sequence_gets_what_it_would_get_alone(
    preamble: list[int], prompts: list[tuple[list[int], int]], n_seq: int, n_batch: int
) -> None:
    """Jobs that start with the same ``shared`` tokens get them copied from the prefix's own slot
    (``n_seq``), fed there once for two runs; their outputs are those of the whole prompt alone."""
    prompts = [(preamble + p, m) for p, m in prompts]
    context = Context(max(n_batch, n_seq))
    engine = Engine(context, n_seq, 256, n_batch)
    for _ in range(2):
        assert shared_run(engine, prompts, len(preamble)) == [alone(p, m) for p, m in prompts]
    fed_to_prefix = sum(slots.count(n_seq) for slots in context.calls)
    assert fed_to_prefix == len(preamble)
    assert engine.shared == 2 * len(prompts) * len(preamble)


def test_another_preamble_replaces_the_kept_one() -> None:
    context = Context()
    engine = Engine(context, 2, 256)
    first, second = [([7, 8, 9, 1], 3), ([7, 8, 9, 2], 3)], [([5, 8, 9, 1], 3)]
    assert shared_run(engine, first, 3) == [alone(p, m) for p, m in first]
    assert shared_run(engine, second, 3) == [alone(p, m) for p, m in second]
    assert context.streams[2] == [5, 8, 9]
    assert sum(slots.count(2) for slots in context.calls) == 6


def test_a_preamble_that_is_the_whole_prompt_is_not_shared() -> None:
    """The last prompt token must be fed by the job itself (its logits pick the first token)."""
    context = Context()
    engine = Engine(context, 2, 256)
    prompts = [([4, 5, 6], 4), ([4, 5, 6, 7], 4)]
    assert shared_run(engine, prompts, 3) == [alone(p, m) for p, m in prompts]
    assert engine.shared == 3
