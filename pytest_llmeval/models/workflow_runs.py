"""Workflow cases in batches: the round loop of :mod:`pytest_llmeval.workflows` on a backend.

The scheduler (:mod:`.scheduler`) hands over a window of workflow items. Items that share their
tools, ``max_turns`` and tool limits run as one :func:`~pytest_llmeval.workflows.run_conversations`:
in each round, every unfinished conversation's next message is one request (its ``messages``: the
conversation so far, tool results included; its ``tools``: their schemas) and the round's requests
go through the one cached, batched path (:class:`~.batched.CachedRun`): the cached rounds are
read, the others computed in chunks of the backend's batch size and stored. So a re-run whose
tools return the same results loads no model, and a tool that returns something new computes
from that round on.

Each round of a sample has its own seed, drawn from the sample's (session seed, case id, repeat)
and the round number: with seeded sampling, as with greedy decoding, a transcript does not depend
on the batch or on the other cases.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.datasets.workflow_cases import DEFAULT_MAX_TURNS
from pytest_llmeval.models.batched import CachedRun
from pytest_llmeval.models.sampling import mix_seed
from pytest_llmeval.models.tool_calls import reply_of
from pytest_llmeval.workflows.runner import DEFAULT_TIMEOUT, MAX_RESULT_CHARS, ToolRunner

__all__ = ["DEFAULT_WORKERS", "Done", "ToolLimits", "Workflow", "round_request", "run_workflows"]

DEFAULT_WORKERS = 8
"""Tool calls run at once (each in its own thread)."""


@dataclass(frozen=True)
class ToolLimits:
    """How tool calls run: seconds each may take, how many run at once, the most characters of a
    result the model is shown (``--llmeval-tool-timeout``, ``-tool-workers``, ``-tool-result-chars``)."""

    timeout: float = DEFAULT_TIMEOUT
    workers: int = DEFAULT_WORKERS
    max_result_chars: int = MAX_RESULT_CHARS


@dataclass(frozen=True)
class Workflow:
    """What a workflow item runs beyond its first request: the tools, its turn limit, its scripted
    user turns and the tool limits."""

    tools: tuple[Any, ...] = field(default=(), compare=False)
    max_turns: int = DEFAULT_MAX_TURNS
    user_turns: tuple[str, ...] = ()
    limits: ToolLimits = ToolLimits()

    def group(self) -> tuple[Any, ...]:
        """Items with equal groups run in one loop: the same tool functions, turn limit and limits."""
        return (tuple((t.name, id(t.function)) for t in self.tools), self.max_turns, self.limits)


@dataclass(frozen=True)
class Done:
    """One workflow item's result: its conversation (or the exception that ended its window), and
    whether every round of it came from the completion cache."""

    conversation: Any
    cached: bool


def round_request(first: Request, messages: Sequence[Any], round_index: int) -> Request:
    """The request of round ``round_index`` of a conversation whose first request is ``first``:
    the conversation so far, and a seed of its own when the sample has one."""
    seed = None if first.seed is None else mix_seed(first.seed, round_index)
    return replace(first, messages=tuple(dict(m) for m in messages), seed=seed)


Sink = Callable[[int], Any]
"""``progress(total)``: the progress of one round's computed requests (``.update(n)``, ``.close(seconds)``)."""


def run_workflows(items: Sequence[tuple[Request, Workflow]], backend: Any, cache: Any = None, *, progress: Sink | None = None) -> list[Done]:
    """Run every item's conversation to its end; one :class:`Done` per item, in order.

    ``backend`` may be a :class:`~.batched.Deferred` one (loaded only when a round is not cached);
    ``cache`` a :class:`~.cache.CompletionCache` or None."""
    from pytest_llmeval.workflows.loop import run_conversations

    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (_, workflow) in enumerate(items):
        groups.setdefault(workflow.group(), []).append(i)
    out: list[Done | None] = [None] * len(items)
    for members in groups.values():
        workflow = items[members[0]][1]
        all_cached = {i: True for i in members}
        generate = _round_generator(items, backend, cache, all_cached, progress)
        limits = workflow.limits
        runner = ToolRunner(workflow.tools, timeout=limits.timeout, max_workers=limits.workers, max_result_chars=limits.max_result_chars)
        conversations = run_conversations(
            [items[i][0].messages or () for i in members],
            generate,
            tools=workflow.tools,
            max_turns=workflow.max_turns,
            user_turns=[items[i][1].user_turns for i in members],
            runner=runner,
            keys=members,
        )
        formats = generate.formats  # type: ignore[attr-defined]
        for i, conversation in zip(members, conversations):
            out[i] = Done(replace(conversation, tool_format=formats.get(i)), cached=all_cached[i] and conversation.turns > 0)
    return [d for d in out if d is not None]


def _round_generator(
    items: Sequence[tuple[Request, Workflow]], backend: Any, cache: Any, all_cached: dict[int, bool], progress: Sink | None
) -> Callable[[list[list[dict]], list[tuple[int, int]]], list[Any]]:
    """The ``generate_batch`` of one loop: a round's requests through the cached, batched path."""
    formats: dict[int, str] = {}

    def generate(batch: list[list[dict]], asked: list[tuple[int, int]]) -> list[Any]:
        requests = [round_request(items[i][0], messages, r) for messages, (i, r) in zip(batch, asked)]
        run = CachedRun(requests, cache)
        for position in run.misses:
            all_cached[asked[position][0]] = False
        sink = progress(len(run.misses)) if progress is not None and run.misses else None
        started = time.perf_counter()
        try:
            outputs = run.complete(backend, progress=sink.update if sink is not None else None)
        finally:
            if sink is not None:
                sink.close(time.perf_counter() - started)
        for (i, _), output in zip(asked, outputs):
            shown = (getattr(output, "reply", None) or {}).get("format") if not isinstance(output, BaseException) else None
            if shown and i not in formats:
                formats[i] = shown
        return [reply_of(output) for output in outputs]

    generate.formats = formats  # type: ignore[attr-defined]
    return generate
