"""The cases table of the HTML report: one row per sample of ``samples.jsonl``, with the detail
its panel shows (the prompt exactly as sent, chat turns, a workflow's transcript, the programs
``le.assert_code`` ran, the choices and their loglikelihoods, any other field as it came), the
other side's outcome (the baseline's, or run A's) and the flips. The page renders every text with
``textContent`` only (:mod:`~pytest_llmeval.results.html`)."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

__all__ = ["as_text", "case_rows", "chat_turns", "transcript"]

# keys of a samples.jsonl line the page shows in their own place; any other key is listed as it came
_KNOWN = {
    "id", "suite", "outcome", "prompt", "completion", "choices", "loglikelihoods", "scores", "reason", "latency_s",
    "tokens_in", "tokens_out", "duration_s", "markers", "limited", "expected", "suite_size", "conversation",
    "reasoning", "reasoning_tokens", "thinking_ended", "code",
    "search", "min_worst_case",  # the search item's findings show in the beyond-accuracy section
}  # fmt: skip


def chat_turns(prompt: Any) -> list[list[str]] | None:
    """The chat turns ``[role, text]`` of a prompt sent as a list of messages; ``None`` for a
    prompt sent as text (the page finds the turns of a text rendered by a chat template itself,
    so the file holds the text once)."""
    if not isinstance(prompt, list):
        return None
    turns = [[str(m.get("role", "")), str(m.get("content", ""))] for m in prompt if isinstance(m, Mapping)]
    return turns or None


def transcript(conversation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A workflow case's messages for the page: role, text, and each tool call (name, arguments as
    JSON text) of an assistant message; a tool result names its tool. Shown with ``textContent``."""
    out = []
    for message in conversation.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        entry: dict[str, Any] = {"role": str(message.get("role", "")), "text": as_text(message.get("content")) or ""}
        calls = []
        for call in message.get("tool_calls") or ():
            function = call.get("function", call) if isinstance(call, Mapping) else {}
            calls.append({"name": str(function.get("name", "")), "arguments": as_text(function.get("arguments")) or ""})
        if calls:
            entry["calls"] = calls
        if message.get("role") == "tool":
            entry["name"] = str(message.get("name", ""))
        out.append(entry)
    if conversation.get("error"):
        out.append({"role": "error", "text": str(conversation["error"])})
    return out


def _flip(before: str | None, after: str | None) -> str:
    if before is None or after is None:
        return ""
    if before == "pass" and after in ("fail", "error"):
        return "newly failing"
    if before in ("fail", "error") and after == "pass":
        return "newly passing"
    return ""


def as_text(value: Any) -> str | None:
    """A value of a sample as the page shows it: text as it is, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _case_detail(sample: Mapping[str, Any]) -> dict[str, Any]:
    """What the case panel shows for one sample (the prompt exactly as sent, and the rest)."""
    prompt = sample.get("prompt")
    detail: dict[str, Any] = {"prompt": as_text(prompt), "completion": as_text(sample.get("completion"))}
    if chat_turns(prompt):
        detail["turns"] = chat_turns(prompt)
    for key in ("expected", "reason", "latency_s", "tokens_in", "tokens_out"):
        if sample.get(key) not in (None, ""):
            detail[key] = sample[key] if key != "expected" else as_text(sample[key])
    if sample.get("scores"):
        detail["scores"] = sample["scores"]
    if sample.get("reasoning") is not None or sample.get("thinking_ended") is False:  # shown folded, as text
        detail["reasoning"] = as_text(sample.get("reasoning")) or ""
        detail["reasoning_note"] = _reasoning_note(sample)
    if isinstance(sample.get("conversation"), Mapping):
        detail["transcript"] = transcript(sample["conversation"])
    code = _code_runs(sample.get("code"))
    if code:
        detail["code"] = code
    if sample.get("choices"):
        lls = list(sample.get("loglikelihoods") or [])
        detail["choices"] = [[str(c), lls[i] if i < len(lls) else None] for i, c in enumerate(sample["choices"])]
    extra = {k: v for k, v in sample.items() if k not in _KNOWN and v not in (None, "", [], {})}
    if extra:
        detail["extra"] = {k: as_text(v) if not isinstance(v, (int, float, bool)) else v for k, v in sorted(extra.items())}
    return detail


def _reasoning_note(sample: Mapping[str, Any]) -> str:
    """The folded reasoning's summary line: ``Reasoning (212 tokens)``, and whether it was cut."""
    tokens = sample.get("reasoning_tokens")
    size = f" ({tokens} tokens)" if isinstance(tokens, int) and not isinstance(tokens, bool) else ""
    return f"Reasoning{size}" + (", cut before an answer" if sample.get("thinking_ended") is False else "")


def _code_runs(verdicts: Any) -> str | None:
    """The programs ``le.assert_code`` ran for the case, as text: status, exit status, duration,
    reason and the output's end, per run (the page shows it as text, never as markup)."""
    if not isinstance(verdicts, list) or not verdicts:
        return None
    from pytest_llmeval.scoring.code.verdict import format_verdict

    texts = []
    for verdict in verdicts:
        try:
            texts.append(format_verdict(verdict, tail_lines=20))
        except (TypeError, ValueError, AttributeError, KeyError):  # a hand-edited samples.jsonl: show what it holds
            texts.append(as_text(verdict) or "")
    return "\n\n".join(texts)


def _flaky(samples: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Cases sampled more than once with differing outcomes, or marked flaky by their record."""
    seen: dict[tuple[str, str], set[str]] = {}
    out = set()
    for s in samples:
        key = (str(s.get("suite")), str(s.get("id")))
        seen.setdefault(key, set()).add(str(s.get("outcome")))
        if s.get("flaky"):
            out.add(key)
    return out | {k for k, outcomes in seen.items() if len(outcomes) > 1}


def case_rows(
    samples: Sequence[Mapping[str, Any]], suites: Sequence[str], other: Mapping[tuple[str, str], str] | None = None
) -> list[dict[str, Any]]:
    """One row per sample: suite index, id, outcome, the other side's outcome (baseline or run A),
    the flip, flaky, and the case's detail; flips first, then by suite and id."""
    index = {name: i for i, name in enumerate(suites)}
    flaky = _flaky(samples)
    rows = []
    for s in samples:
        suite, case_id, outcome = str(s.get("suite")), str(s.get("id")), str(s.get("outcome"))
        base = (other or {}).get((suite, case_id))
        row = {"s": index.setdefault(suite, len(index)), "id": case_id, "o": outcome, "d": _case_detail(s)}
        if base is not None:
            row["b"] = base
        if _flip(base, outcome):
            row["f"] = _flip(base, outcome)
        if (suite, case_id) in flaky:
            row["k"] = 1
        repeats = s.get("repeats")
        if s.get("repeat") is not None and (not isinstance(repeats, int) or repeats > 1):  # a sample of a repeated case
            row["r"] = s.get("repeat")
        rows.append(row)
    rows.sort(key=lambda r: (not r.get("f"), r["s"], r["id"], r.get("r") or 0))
    return rows
