"""Usage of a served model: tokens, latency and cost per suite, and what the requests did.

Built from the case records (each carries its request's token counts and latency) and from the
backend's own counters (requests sent, retried, failed or not sent, the budget): a backend that
reports no counters (a local model) gets no usage section.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

from pytest_llmeval.results.messages import Markup, plural
from pytest_llmeval.results.records import CaseRecord


def _cost(tokens_in: int, tokens_out: int, backend: Mapping[str, Any]) -> float | None:
    price_in, price_out = backend.get("price_in"), backend.get("price_out")
    if price_in is None or price_out is None:
        return None
    return (tokens_in * float(price_in) + tokens_out * float(price_out)) / 1e6


def _totals(records: Sequence[CaseRecord], backend: Mapping[str, Any]) -> dict[str, Any]:
    answered = [r for r in records if r.tokens_in is not None and r.latency_s is not None and (r.tokens_in or r.tokens_out)]
    tokens_in = sum(r.tokens_in or 0 for r in answered)
    tokens_out = sum(r.tokens_out or 0 for r in answered)
    n = len(answered)
    data: dict[str, Any] = {
        "cases": n,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "mean_tokens_in": round(tokens_in / n, 3) if n else None,
        "mean_tokens_out": round(tokens_out / n, 3) if n else None,
        "latency_s": round(math.fsum(r.latency_s or 0.0 for r in answered), 3),
        "mean_latency_s": round(math.fsum(r.latency_s or 0.0 for r in answered) / n, 3) if n else None,
    }
    cost = _cost(tokens_in, tokens_out, backend)
    if cost is not None:
        data["cost_usd"] = round(cost, 6)
    return data


def usage_json(records: Sequence[CaseRecord], backend: Mapping[str, Any]) -> dict[str, Any]:
    """``{"suites": {name: totals}, "total": totals, "requests": backend counters}``; empty
    when the backend reported no counters. ``cases`` counts the cases with an answer."""
    if not backend:
        return {}
    by_suite: dict[str, list[CaseRecord]] = {}
    for r in records:
        by_suite.setdefault(r.suite, []).append(r)
    return {
        "suites": {name: _totals(rs, backend) for name, rs in sorted(by_suite.items())},
        "total": _totals(records, backend),
        "requests": dict(backend),
    }


def _money(value: Any) -> str:
    return "-" if value is None else f"${value:.4f}"


def _mean(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def usage_lines(usage: Mapping[str, Any]) -> Iterator[tuple[str, Markup]]:
    """The usage section of the terminal summary: a table per suite, then one line on the requests."""
    if not usage:
        return
    priced = "cost_usd" in usage["total"]
    header = ["usage", "answered", "tokens in", "tokens out", "mean in", "mean out", "mean latency", *(["cost"] if priced else [])]
    rows = [header]
    for name, t in [*usage["suites"].items(), ("total", usage["total"])]:
        rows.append([
            name, str(t["cases"]), str(t["tokens_in"]), str(t["tokens_out"]), _mean(t["mean_tokens_in"]),
            _mean(t["mean_tokens_out"]), "-" if t["mean_latency_s"] is None else f"{t['mean_latency_s']:.2f}s",
            *([_money(t.get("cost_usd"))] if priced else []),
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    yield "", {}
    for i, row in enumerate(rows):
        cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
        yield "  ".join(cells).rstrip(), {"bold": i == 0}
    yield from _request_lines(usage["requests"])


def _request_lines(req: Mapping[str, Any]) -> Iterator[tuple[str, Markup]]:
    parts = [plural(int(req.get("requests", 0)), "request") + " sent", plural(int(req.get("retries", 0)), "retry", "retries")]
    if req.get("failed"):
        parts.append(f"{req['failed']} failed")
    if req.get("not_sent"):
        parts.append(f"{req['not_sent']} not sent")
    if "cost_usd" in req:
        limit = f" of ${req['max_cost']:g}" if req.get("max_cost") is not None else ""
        parts.append(f"cost {_money(req['cost_usd'])}{limit}")
    faults = req.get("faults") or {}
    seen = f" (faults: {', '.join(f'{k}: {v}' for k, v in faults.items())})" if faults else ""
    bad = bool(req.get("failed") or req.get("not_sent"))
    yield "requests: " + ", ".join(parts) + seen, {"yellow": bad}
    for key in ("fatal", "stopped"):
        if req.get(key):
            yield f"  {req[key]}", {"red": True}
    flow = req.get("in_flight")
    if isinstance(flow, Mapping) and flow.get("cuts"):
        causes = ", ".join(plural(int(n), str(cause)) for cause, n in flow["cuts"].items())
        yield f"llmeval: served requests in flight settled at {flow.get('settled')} of at most {flow.get('max')} (cut on {causes})", {}
