"""How many requests are in flight to a served model: adapted to what the server sustains.

A server that answers one request at a time (``transformers serve`` on a CPU) keeps the others
waiting in its queue; with a fixed number in flight they wait past their timeout, are sent again
and wait behind the requests they left, which the server still computes. So the number in flight
adapts the way TCP's congestion window does (additive increase, multiplicative decrease):

- it starts at :data:`START` (or ``llmeval_concurrency`` when that is lower) and never passes
  ``llmeval_concurrency``;
- an answer that came back within half the timeout grows it: by one per answer until the first
  cut (slow start), then by one per limit's worth of answers;
- a congestion signal halves it (at least 1): a timeout, an HTTP 429 or 503, or an answer that
  took longer than the timeout. Once per round: a signal from a request sent before the last cut
  does not cut again (it was sent into the queue that caused that cut);
- a request's timeout runs from the moment it is admitted, and is ``timeout`` for each request of
  ours in flight when it was admitted (itself included; at most ``timeout * llmeval_concurrency``):
  a request queued behind our own others is given the time they take, and the server is held to
  ``timeout`` per request. So a slow server makes the run slower, not wrong.

:class:`Flow` keeps the numbers across windows (each window runs on its own event loop);
:meth:`Flow.bind` makes the loop's condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

START = 4
"""Requests in flight at first (slow start grows it from there)."""


@dataclass
class Ticket:
    """One admitted request: when it was admitted, how many of ours were in flight then (itself
    included), and what it signalled (set by the sender before the slot is given back)."""

    admitted: float
    in_flight: int
    latency: float | None = None
    """Seconds to the answer (None: no answer)."""
    congestion: str | None = None
    """Why it signals congestion (``timeout``, ``HTTP 429``...), or None."""


@dataclass
class Flow:
    """The number of requests in flight to one server (see the module's docstring)."""

    maximum: int
    timeout: float
    limit: float = 0.0
    threshold: float = math.inf
    """Slow start below it (one more per quick answer), congestion avoidance above."""
    active: int = 0
    cuts: dict[str, int] = field(default_factory=dict)
    """Cuts by their cause."""
    last_cut: float = -math.inf
    _condition: asyncio.Condition | None = None

    def __post_init__(self) -> None:
        self.limit = float(self.limit or min(START, self.maximum))

    @property
    def allowed(self) -> int:
        return max(1, min(self.maximum, int(self.limit)))

    def bind(self) -> None:
        """Make the condition of the running event loop (one per window)."""
        self._condition = asyncio.Condition()
        self.active = 0

    def deadline(self, ticket: Ticket) -> float | None:
        """The timeout of ``ticket``'s request: ``timeout`` per request of ours in flight when it was
        admitted (None: no timeout, when ``timeout`` is infinite)."""
        seconds = self.timeout * min(ticket.in_flight, self.maximum)
        return seconds if math.isfinite(seconds) else None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Ticket]:
        """Wait for room, admit one request; on the way out, learn from what it signalled."""
        condition = self._condition
        assert condition is not None, "Flow.bind() first"
        async with condition:
            await condition.wait_for(lambda: self.active < self.allowed)
            self.active += 1
            ticket = Ticket(time.monotonic(), self.active)
        try:
            yield ticket
        finally:
            async with condition:
                self.active -= 1
                self.learn(ticket)
                condition.notify_all()

    def learn(self, ticket: Ticket) -> None:
        """Grow on a quick answer, cut on congestion (once per round)."""
        cause = ticket.congestion
        if cause is None and ticket.latency is not None and ticket.latency > self.timeout:
            cause = "slow answer"
        if cause is not None:
            if ticket.admitted >= self.last_cut:
                self.limit = self.threshold = max(1.0, self.limit / 2)
                self.last_cut = time.monotonic()
                self.cuts[cause] = self.cuts.get(cause, 0) + 1
            return
        if ticket.latency is not None and ticket.latency <= self.timeout / 2:
            step = 1.0 if self.limit < self.threshold else 1.0 / self.limit
            self.limit = min(float(self.maximum), self.limit + step)

    def summary(self) -> dict[str, object]:
        """For the usage report: the most in flight allowed, where it settled, and its cuts."""
        return {"max": self.maximum, "settled": self.allowed, "cuts": dict(sorted(self.cuts.items()))}
