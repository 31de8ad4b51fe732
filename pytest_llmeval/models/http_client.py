"""Sending requests to an OpenAI-compatible server: concurrency, retries, faults and the budget.

:class:`Engine` runs a window's jobs at once on one ``httpx.AsyncClient`` with at most
``concurrency`` requests in flight. Each request:

- times out after ``timeout`` seconds;
- is retried on 429, 5xx, a timeout, a dropped connection or an unreadable answer, at most
  ``max_retries`` times, after an exponential backoff with jitter (``base * 2**(try-1)``, capped,
  drawn uniformly from its upper half) or the server's ``Retry-After`` when that is longer;
- on 401, 403 or 404 stops the session's requests: that first answer becomes one
  :class:`Fatal` line that every case still waiting gets, and nothing more is sent;
- is not sent once the cost budget is spent (:class:`BudgetSpent`);
- otherwise fails for good with one :class:`RequestFailed` line (a 400, or retries used up).

Every message passes through a scrubber that removes the API key; the key is sent only in the
``Authorization`` header and never appears in a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from pytest_llmeval.models.protocol import OutputError

T = TypeVar("T")
Post = Callable[[str, dict], Awaitable[tuple[Any, float]]]
Job = Callable[[Post], Awaitable[T]]
FATAL_STATUS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
BACKOFF_BASE = 0.5
"""Seconds before the first retry (doubled each try, drawn from its upper half)."""
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
"""The longest ``Retry-After`` honoured, in seconds."""


class Fatal(OutputError):
    """The server refused the credentials or does not know the path or model: nothing more is sent."""


class BudgetSpent(OutputError):
    """The cost budget was spent before this request was sent."""


class RequestFailed(OutputError):
    """A request failed for good (a client error, or its retries ran out)."""


@dataclass
class Counters:
    """What the session's requests did, for the report."""

    sent: int = 0
    """Attempts sent, retries included."""
    retries: int = 0
    failed: int = 0
    not_sent: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    spent_usd: float = 0.0
    by_problem: dict[str, int] = field(default_factory=dict)
    """Faults by kind (``HTTP 429``, ``timeout``...): each retry's, and each final failure's."""


@dataclass(frozen=True)
class Budget:
    price_in: float | None = None
    price_out: float | None = None
    max_cost: float | None = None

    @property
    def priced(self) -> bool:
        return self.price_in is not None and self.price_out is not None

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        if not self.priced:
            return 0.0
        return (tokens_in * float(self.price_in) + tokens_out * float(self.price_out)) / 1e6  # type: ignore[arg-type]


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) in seconds; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_seconds(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """The wait before retry number ``attempt`` (1-based)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    wait = rng.uniform(ceiling / 2, ceiling)
    return max(wait, min(retry_after, RETRY_AFTER_CAP)) if retry_after is not None else wait


class Engine:
    """Sends jobs' requests to one server; keeps the counters and the session's fatal answer."""

    def __init__(
        self,
        base_url: str,
        *,
        shown_url: str,
        headers: dict[str, str],
        timeout: float,
        max_retries: int,
        concurrency: int,
        budget: Budget,
        scrub: Callable[[str], str],
        key_env: str,
        transport: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = shown_url
        self.headers = headers
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.budget = budget
        self.scrub = scrub
        self.key_env = key_env
        self.transport = transport
        self.counters = Counters()
        self.fatal: Fatal | None = None
        self.stopped: BudgetSpent | None = None
        self.rng = random.Random(0)
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    # running ------------------------------------------------------------------

    def run(self, jobs: Sequence[Job[T]], progress: Callable[[int], None] | None = None) -> list[T | OutputError]:
        """Every job's result (or its :class:`OutputError`), in order; all issued at once."""
        if not jobs:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_all(jobs, progress))
        box: list[Any] = []  # called from inside a running loop: run ours in a thread

        def in_thread() -> None:
            try:
                box.append(asyncio.run(self._run_all(jobs, progress)))
            except BaseException as exc:  # handed to the caller below
                box.append(exc)

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    async def _run_all(self, jobs: Sequence[Job[T]], progress: Callable[[int], None] | None) -> list[T | OutputError]:
        import httpx

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(headers=self.headers, timeout=self.timeout, limits=limits, transport=self.transport) as client:
            gate = asyncio.Semaphore(self.concurrency)

            async def post(path: str, body: dict) -> tuple[Any, float]:
                return await self._post(client, gate, path, body)

            async def one(job: Job[T]) -> T | OutputError:
                try:
                    result: T | OutputError = await job(post)
                except OutputError as exc:
                    result = exc
                if progress is not None:
                    progress(1)
                return result

            return list(await asyncio.gather(*(one(job) for job in jobs)))

    # one request --------------------------------------------------------------

    async def _post(self, client: Any, gate: asyncio.Semaphore, path: str, body: dict) -> tuple[Any, float]:
        """The answer's JSON and the latency of the attempt that got it."""
        attempt = 0
        while True:
            async with gate:
                self._may_send()
                self.counters.sent += 1
                problem, retry_after, answer = await self._attempt(client, path, body)
            if answer is not None:
                return answer
            attempt += 1
            self.counters.by_problem[problem] = self.counters.by_problem.get(problem, 0) + 1
            if attempt > self.max_retries:
                self.counters.failed += 1
                tries = f"{attempt} tries" if attempt > 1 else "1 try"
                raise RequestFailed(self.scrub(f"POST {self.shown_url}{path} failed: {problem} after {tries} (llmeval_max_retries = {self.max_retries})"))
            self.counters.retries += 1
            await self.sleep(backoff_seconds(attempt, retry_after, self.rng))

    def _may_send(self) -> None:
        if self.fatal is not None:
            self.counters.not_sent += 1
            raise self.fatal
        if self.stopped is not None:
            self.counters.not_sent += 1
            raise self.stopped
        limit = self.budget.max_cost
        if limit is not None and self.counters.spent_usd >= limit:
            self.stopped = BudgetSpent(
                f"not sent: the cost budget llmeval_max_cost = ${limit:g} was spent (${self.counters.spent_usd:.4f}); "
                "raise llmeval_max_cost to evaluate the rest"
            )
            self.counters.not_sent += 1
            raise self.stopped

    async def _attempt(self, client: Any, path: str, body: dict) -> tuple[str, float | None, tuple[Any, float] | None]:
        """(problem, Retry-After, None) for a retryable fault, (.., .., (json, latency)) on success."""
        import httpx

        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(client.post(self.base_url + path, json=body), self.timeout)
        except (httpx.TimeoutException, asyncio.TimeoutError):
            return "timeout", None, None
        except (httpx.TransportError, OSError) as exc:
            return f"connection: {type(exc).__name__}", None, None
        except Exception as exc:  # httpcore's own, when httpx did not map it (modules imported twice)
            if type(exc).__module__.split(".")[0] != "httpcore":
                raise
            return f"connection: {type(exc).__name__}", None, None
        latency = time.perf_counter() - started
        status = response.status_code
        if status in FATAL_STATUS:
            raise self._fatal(status, path, body)
        if status == 429 or status >= 500:
            return f"HTTP {status}", retry_after_seconds(response.headers.get("retry-after")), None
        if status >= 400:
            self.counters.failed += 1
            detail = self.scrub(response.text.strip().replace("\n", " ")[:300])
            raise RequestFailed(f"POST {self.shown_url}{path} answered HTTP {status}: {detail}")
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "an answer that is not JSON", None, None
        self._charge(data)
        return "", None, (data, latency)

    def _charge(self, data: Any) -> None:
        usage = data.get("usage") if isinstance(data, dict) else None
        if not isinstance(usage, dict):
            return
        tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self.counters.tokens_in += tokens_in
        self.counters.tokens_out += tokens_out
        self.counters.spent_usd += self.budget.cost(tokens_in, tokens_out)

    def _fatal(self, status: int, path: str, body: dict) -> Fatal:
        if self.fatal is None:
            self.counters.failed += 1
            if status == 404:
                hint = f"check llmeval_base_url (it usually ends in /v1) and that the server serves the model {body.get('model')!r}"
            else:
                hint = f"check the API key in ${self.key_env} (llmeval_api_key_env names the variable)"
            self.fatal = Fatal(
                self.scrub(f"POST {self.shown_url}{path} answered HTTP {status} {FATAL_STATUS[status]}; no more requests are sent: {hint}")
            )
        return self.fatal
