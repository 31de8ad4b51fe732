"""Sending requests to an OpenAI-compatible server: concurrency, retries, faults and the budget.

:class:`Engine` runs a window's jobs at once on one ``httpx.AsyncClient``; how many of their
requests are in flight adapts to what the server sustains (:mod:`.http_flow`, at most
``concurrency``). Each request:

- times out after ``timeout`` seconds for each request of ours in flight when it was admitted
  (:meth:`~.http_flow.Flow.deadline`);
- is retried on 429, 5xx, a timeout, a dropped connection or an unreadable answer, at most
  ``max_retries`` times, after an exponential backoff with jitter (``base * 2**(try-1)``, capped,
  drawn uniformly from its upper half) or the server's ``Retry-After`` when that is longer;
- on 401, 403 or 404, or a redirect (3xx: never followed, so the key never goes elsewhere), stops
  the session's requests: that first answer becomes one :class:`Fatal` line that every case still
  waiting gets, and nothing more is sent;
- when a request's every try timed out and the server answered nothing meanwhile, the server is
  taken for silent: nothing more is sent (:class:`Fatal`);
- is not sent once the cost budget is spent (:class:`BudgetSpent`);
- otherwise fails for good with one :class:`RequestFailed` line (a 400, an answer with numbers
  that are not finite or token counts that are not counts, or retries used up).

The key is a :class:`~pytest_llmeval.redaction.Secret`, put in the ``Authorization`` header only
when a client is made. Every answer is redacted (:func:`~pytest_llmeval.redaction.redact_json`)
before anything reads it, and every message passes through
:func:`~pytest_llmeval.redaction.redact`; an error body is redacted before it is cut short. Reading an
answer (its size, its JSON, an error's message) is :mod:`pytest_llmeval.models.http_answers`.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pytest_llmeval.escaping import one_line
from pytest_llmeval.models.http_answers import MAX_ANSWER_BYTES, NotFinite, Unusable, error_detail, read_answer, read_json
from pytest_llmeval.models.http_flow import Flow, Ticket
from pytest_llmeval.models.http_shapes import ShapeError, usage_of
from pytest_llmeval.models.protocol import OutputError
from pytest_llmeval.redaction import Secret, redact, redact_json, redact_url

T = TypeVar("T")
Post = Callable[[str, dict], Awaitable[tuple[Any, float]]]
Job = Callable[[Post], Awaitable[T]]
FATAL_STATUS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
CONGESTION_STATUS = (429, 503)
"""Answers that say the server has more than it can take: they cut the requests in flight."""
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


def endpoint(base_url: str, path: str) -> str:
    """``path`` under ``base_url``, which may carry a query (``?api-key=...``): kept after the path."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


@dataclass
class _Try:
    """What one attempt came to: an answer, or a fault to retry (``problem``) with its ``Retry-After``."""

    answer: tuple[Any, float] | None = None
    problem: str = ""
    retry_after: float | None = None


class Engine:
    """Sends jobs' requests to one server; keeps the counters and the session's fatal answer."""

    def __init__(
        self,
        base_url: str,
        *,
        shown_url: str,
        key: Secret | None,
        timeout: float,
        max_retries: int,
        concurrency: int,
        budget: Budget,
        key_env: str,
        transport: Any = None,
    ) -> None:
        self.base_url = base_url
        self.shown_url = shown_url
        self.key = key
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.flow = Flow(concurrency, timeout)
        self.budget = budget
        self.key_env = key_env
        self.transport = transport
        self.counters = Counters()
        self.fatal: Fatal | None = None
        self.stopped: BudgetSpent | None = None
        self.rng = random.Random(0)
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self._last_answer = -math.inf
        """When the server last answered anything (monotonic seconds)."""

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
        longest = self.timeout * self.concurrency if math.isfinite(self.timeout) else None
        timeout = httpx.Timeout(longest, connect=self.timeout if longest is not None else None)
        self.flow.bind()
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.key.reveal()}"} if self.key is not None else None,
            timeout=timeout, limits=limits, transport=self.transport, follow_redirects=False,
        ) as client:  # fmt: skip

            async def post(path: str, body: dict) -> tuple[Any, float]:
                return await self._post(client, path, body)

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

    async def _post(self, client: Any, path: str, body: dict) -> tuple[Any, float]:
        """The answer's JSON and the latency of the attempt that got it."""
        attempt = 0
        started = time.monotonic()
        while True:
            async with self.flow.slot() as ticket:
                self._may_send()
                self.counters.sent += 1
                got = await self._attempt(client, path, body, ticket)
            if got.answer is not None:
                return got.answer
            attempt += 1
            problem = got.problem
            self.counters.by_problem[problem] = self.counters.by_problem.get(problem, 0) + 1
            if attempt > self.max_retries:
                self.counters.failed += 1
                tries = f"{attempt} tries" if attempt > 1 else "1 try"
                if problem == "timeout" and self._last_answer < started and self.fatal is None:
                    self.fatal = Fatal(
                        f"POST {self.shown_url}{path}: {tries} timed out and the server answered nothing meanwhile "
                        f"(llmeval_request_timeout = {self.timeout:g} s); no more requests are sent: check that the server "
                        "is up, or raise llmeval_request_timeout"
                    )
                raise RequestFailed(redact(f"POST {self.shown_url}{path} failed: {problem} after {tries} (llmeval_max_retries = {self.max_retries})"))
            self.counters.retries += 1
            await self.sleep(backoff_seconds(attempt, got.retry_after, self.rng))

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

    async def _attempt(self, client: Any, path: str, body: dict, ticket: Ticket) -> _Try:
        """One try: its answer, or the fault to retry; the ticket learns what it signals."""
        import httpx

        started = time.monotonic()
        failure: str | None = None
        try:
            response = await asyncio.wait_for(read_answer(client, endpoint(self.base_url, path), body), self.flow.deadline(ticket))
        except (httpx.TimeoutException, asyncio.TimeoutError):
            ticket.congestion = "timeout"
            return _Try(problem="timeout")
        except (httpx.TransportError, OSError) as exc:
            return _Try(problem=f"connection: {type(exc).__name__}")
        except Exception as exc:  # httpcore's own, when httpx did not map it (modules imported twice); else a bug
            if type(exc).__module__.split(".")[0] == "httpcore":
                return _Try(problem=f"connection: {type(exc).__name__}")
            failure = type(exc).__name__  # its message may quote the request's headers: never shown
        if failure is not None:  # raised outside the except block: no chained traceback to show
            self.counters.failed += 1
            raise RequestFailed(f"POST {self.shown_url}{path} failed: the HTTP client raised {failure}")
        latency = time.monotonic() - started
        self._last_answer = time.monotonic()
        status = response.status_code
        if response.too_large:
            self.counters.failed += 1
            raise RequestFailed(f"POST {self.shown_url}{path} answered HTTP {status} with more than {MAX_ANSWER_BYTES // 2**20} MiB; the server's answer was not used")
        if status in CONGESTION_STATUS:
            ticket.congestion = f"HTTP {status}"
        if status in FATAL_STATUS or 300 <= status < 400:
            raise self._fatal(status, path, body, response.headers.get("location"))
        if status == 429 or status >= 500:
            return _Try(problem=f"HTTP {status}", retry_after=retry_after_seconds(response.headers.get("retry-after")))
        if status >= 400:
            self.counters.failed += 1
            raise RequestFailed(f"POST {self.shown_url}{path} answered HTTP {status}: {error_detail(response.text)}")
        try:
            data = redact_json(read_json(response.text))
        except NotFinite as exc:
            self.counters.failed += 1
            raise RequestFailed(f"POST {self.shown_url}{path}: the answer holds {exc}, which is not a number; the server's answer was not used") from None
        except Unusable as exc:
            self.counters.failed += 1
            raise RequestFailed(f"POST {self.shown_url}{path}: the answer has {exc}; the server's answer was not used") from None
        except (ValueError, UnicodeDecodeError):
            return _Try(problem="an answer that is not JSON")
        self._charge(path, data)
        ticket.latency = latency  # an answer: the flow grows on it when it was quick
        return _Try(answer=(data, latency))

    def _charge(self, path: str, data: Any) -> None:
        try:
            tokens_in, tokens_out = usage_of(data)
        except ShapeError as exc:
            self.counters.failed += 1
            raise RequestFailed(f"POST {self.shown_url}{path}: {exc}; the answer was not used") from None
        self.counters.tokens_in += tokens_in
        self.counters.tokens_out += tokens_out
        self.counters.spent_usd += self.budget.cost(tokens_in, tokens_out)

    def _fatal(self, status: int, path: str, body: dict, location: str | None) -> Fatal:
        if self.fatal is None:
            self.counters.failed += 1
            if status == 404:
                reason = f"HTTP {status} {FATAL_STATUS[status]}"
                hint = f"check llmeval_base_url (it usually ends in /v1) and that the server serves the model {body.get('model')!r}"
            elif status in FATAL_STATUS:
                reason = f"HTTP {status} {FATAL_STATUS[status]}"
                hint = f"check the API key in ${self.key_env} (llmeval_api_key_env names the variable)"
            else:
                where = f" to {redact_url(location)}" if location else ""
                reason = f"HTTP {status}, a redirect{where}"
                hint = "redirects are not followed (the key would go with them): set llmeval_base_url to the address that answers"
            self.fatal = Fatal(one_line(redact(f"POST {self.shown_url}{path} answered {reason}; no more requests are sent: {hint}")))
        return self.fatal
