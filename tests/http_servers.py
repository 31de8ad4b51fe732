"""HTTP servers for the tests of the openai: backend: a fake vLLM, a fault-injecting proxy, and a
real ``transformers serve`` process.

- :class:`FakeVLLM` answers ``/v1/chat/completions`` and ``/v1/completions`` in the shapes vLLM
  documents (``usage``, ``system_fingerprint``; with ``echo`` and ``logprobs`` the prompt's
  ``tokens``, ``token_logprobs``, ``top_logprobs`` and ``text_offset``, then one generated token).
  Its "model" answers the number that the prompt's last line asks for, wrong when that number is
  odd, so a suite through it has known passes and misses. Given ``tools``, it calls the first one
  natively (``tool_calls``) and then answers with the result (:func:`fake_tool_answer`). Tokens are
  words with their leading space; a token's logprob is ``-len(token) / 10``. With ``reasoning`` set
  it is a reasoning model (:func:`fake_thinking`): it thinks before it answers, as vLLM with a
  reasoning parser returns it.
- :class:`FaultProxy` forwards to an upstream server and injects faults by a rule of the request
  body and the attempt number: 429 with Retry-After, 500, a dropped connection, a slow answer.
- :func:`transformers_serve` starts ``transformers serve DIR`` on a free port and stops it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

SERVED = "fake-model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def word_tokens(text: str) -> list[tuple[str, int]]:
    """(token, offset): words with their leading whitespace, as a BPE tokenizer splits them."""
    return [(m.group(0), m.start()) for m in re.finditer(r"\s*\S+|\s+$", text)]


def logprob(token: str) -> float:
    return -len(token) / 10


def echo_logprobs(prompt: str, generated: str = "!") -> dict[str, Any]:
    """The ``logprobs`` object vLLM returns for ``echo=True, logprobs=1, max_tokens=1``."""
    toks = word_tokens(prompt) + [(generated, len(prompt))]
    return {
        "tokens": [t for t, _ in toks],
        "text_offset": [o for _, o in toks],
        "token_logprobs": [None] + [logprob(t) for t, _ in toks[1:]],
        "top_logprobs": [None] + [{t: logprob(t)} for t, _ in toks[1:]],
    }


def fake_answer(text: str) -> str:
    numbers = re.findall(r"-?\d+", text.strip().splitlines()[-1] if text.strip() else "")
    if not numbers:
        return "I do not know."
    n = int(numbers[-1])
    return f"The answer is {n if n % 2 == 0 else n + 1}."


def fake_thinking(question: str) -> str:
    """What the fake reasoning model thinks about ``question`` (a word a token); a question that
    asks to think long thinks 40 words."""
    words = "Question: is the number even? Let me check.\n\nIf it is odd I add one."
    return words + " Again, I check once more." * (6 if "think long" in question else 0)


def reasoning_answer(fake: "FakeVLLM", body: dict[str, Any], answer: str) -> tuple[dict[str, Any], str, int]:
    """(message, finish reason, reasoning tokens) of the fake reasoning model, which behaves as
    vLLM does: ``chat_template_kwargs.enable_thinking=false`` turns thinking off, ``thinking_token_budget``
    ends it after that many tokens, ``max_tokens`` may cut it, and ``stop`` strings apply to the whole
    output, thinking included."""
    question = body["messages"][-1]["content"]
    thinking = "" if (body.get("chat_template_kwargs") or {}).get("enable_thinking") is False else fake_thinking(question)
    tokens = word_tokens(thinking)
    if body.get("thinking_token_budget") is not None:
        tokens = tokens[: body["thinking_token_budget"]]
    finish, content = "stop", answer
    if len(tokens) >= body["max_tokens"]:
        tokens, content, finish = tokens[: body["max_tokens"]], None, "length"
    thinking = "".join(t for t, _ in tokens)
    for stop in body.get("stop") or ():
        if stop in thinking:  # the server's stop fires inside the thinking
            thinking, content, finish = thinking[: thinking.index(stop)], None, "stop"
        elif content is not None and stop in content:
            content, finish = content[: content.index(stop)], "stop"
    if fake.reasoning == "inline":
        text = f"<think>{thinking}" + ("" if content is None else f"</think>\n\n{content}")
        return {"role": "assistant", "content": text}, finish, len(tokens)
    return {"role": "assistant", "content": content, fake.reasoning: thinking}, finish, len(tokens)


def fake_tool_answer(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A served model with tools: after a tool result it answers with it; otherwise it calls the
    first tool with its first required argument set to the last word of the last message."""
    last = messages[-1]
    if last["role"] == "tool":
        return {"role": "assistant", "content": f"The result: {last['content']}"}
    function = tools[0]["function"]
    argument = (function["parameters"].get("required") or ["value"])[0]
    word = last["content"].split()[-1].strip("?.!")
    call = {"id": f"call_{len(messages)}", "type": "function", "function": {"name": function["name"], "arguments": json.dumps({argument: word})}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")


def vllm_answer(path: str, body: dict[str, Any], *, logprobs: bool = True) -> dict[str, Any]:
    """What the fake vLLM answers to ``body`` at ``path``."""
    common = {"id": "cmpl-1", "created": 1, "model": SERVED, "system_fingerprint": "fp_test"}
    if path.endswith("/chat/completions") and body.get("tools"):  # a workflow round: native tool calls
        message = fake_tool_answer(body["messages"], body["tools"])
        usage = {"prompt_tokens": len(word_tokens(json.dumps(body))), "completion_tokens": len(word_tokens(json.dumps(message)))}
        reason = "tool_calls" if message.get("tool_calls") else "stop"
        choice = {"index": 0, "message": message, "finish_reason": reason}
        return {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
    if path.endswith("/chat/completions"):
        text = fake_answer(body["messages"][-1]["content"])
        usage = {"prompt_tokens": len(word_tokens(json.dumps(body["messages"]))), "completion_tokens": len(word_tokens(text))}
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
    prompt = body["prompt"]
    if body.get("echo") and body.get("logprobs") is not None and logprobs:
        lp = echo_logprobs(prompt)
        choice = {"index": 0, "text": prompt + "!", "logprobs": lp, "finish_reason": "length"}
        usage = {"prompt_tokens": len(lp["tokens"]) - 1, "completion_tokens": 1}
    else:
        text = fake_answer(prompt)
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        usage = {"prompt_tokens": len(word_tokens(prompt)), "completion_tokens": len(word_tokens(text))}
    return {**common, "object": "text_completion", "choices": [choice], "usage": usage}


class _FakeHandler(_Handler):
    def do_POST(self) -> None:
        body = self._body()
        fake: FakeVLLM = self.server.fake
        fake.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
        if fake.status is not None:
            return self._send(fake.status, {"error": {"message": fake.error_text}})
        path = self.path.split("?")[0]
        answer = vllm_answer(path, body, logprobs=fake.logprobs)
        if fake.reasoning and path.endswith("/chat/completions") and not body.get("tools"):
            choice, usage = answer["choices"][0], answer["usage"]
            text = choice["message"]["content"]
            message, finish, thought = reasoning_answer(fake, body, text)
            answered = len(word_tokens(text)) if message.get("content") else 0
            usage.update(completion_tokens=thought + answered, completion_tokens_details={"reasoning_tokens": thought})
            answer["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
        if fake.service_s:
            with fake.lock:  # one request at a time, as transformers serve on CPU
                time.sleep(fake.service_s)
        with fake.lock:
            fake.answered += 1
        if fake.hostile is not None:
            return self._send(*fake.hostile(path, body, answer))
        self._send(200, answer)


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler], **attrs: Any) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # a dropped connection is the point, not news
    for k, v in attrs.items():
        setattr(server, k, v)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


Hostile = Callable[[str, dict, dict], "tuple[int, Any] | tuple[int, Any, dict[str, str]]"]
"""(path, request body, the answer it would give) -> (status, answer[, headers]): the answer as
JSON data, or raw bytes."""


class FakeVLLM:
    """A vLLM-shaped server; ``status`` set: every request gets that error status. ``hostile``:
    every request gets what it returns (see :data:`Hostile`). ``service_s``: it computes one
    request at a time, each taking that long (and goes on with a request its client gave up on).
    ``reasoning``: a reasoning model whose thinking comes in that message field
    (``"reasoning_content"``, ``"reasoning"``), or in the content between ``<think>`` delimiters (``"inline"``)."""

    def __init__(
        self, *, logprobs: bool = True, status: int | None = None, error_text: str = "error", hostile: Hostile | None = None,
        service_s: float = 0.0, reasoning: str | None = None,
    ) -> None:  # fmt: skip
        self.reasoning = reasoning
        self.logprobs = logprobs
        self.status = status
        self.error_text = error_text
        self.hostile = hostile
        self.service_s = service_s
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.answered = 0

    @contextlib.contextmanager
    def run(self) -> Iterator[str]:
        with serving(_FakeHandler, fake=self) as url:
            yield url


def body_key(body: bytes) -> int:
    return int(hashlib.sha256(body).hexdigest()[:8], 16)


Rule = Callable[[int, int], str]
"""(key of the request body, attempt number from 1) -> a fault: ok, 429, 500, drop, slow, always500."""


def first_try_faults(key: int, attempt: int) -> str:
    """Each request's first try gets one of the faults (by its body), later tries pass; one body in
    seven always gets a 500."""
    if key % 7 == 0:
        return "500"
    if attempt > 1:
        return "ok"
    return ("ok", "429", "500", "drop", "slow")[key % 5]


class _ProxyHandler(_Handler):
    def do_POST(self) -> None:
        proxy: FaultProxy = self.server.proxy
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = body_key(raw)
        with proxy.lock:
            proxy.attempts[key] = proxy.attempts.get(key, 0) + 1
            fault = proxy.rule(key, proxy.attempts[key])
            proxy.faults.append(fault)
        if fault == "429":
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": proxy.retry_after})
        if fault == "500":
            return self._send(500, {"error": {"message": "internal error"}})
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "slow":
            time.sleep(proxy.slow_s)
        request = urllib.request.Request(proxy.upstream + self.path[len("/v1") :], data=raw, method="POST")
        for name in ("Content-Type", "Authorization"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:
                status, data = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


class FaultProxy:
    """Between the plugin and ``upstream`` (a base URL ending in /v1)."""

    def __init__(self, upstream: str, rule: Rule = first_try_faults, *, retry_after: str = "0", slow_s: float = 1.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule = rule
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.attempts: dict[int, int] = {}
        self.faults: list[str] = []
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def run(self) -> Iterator[str]:
        with serving(_ProxyHandler, proxy=self) as url:
            yield url


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def transformers_serve(model_dir: str | Path, *, deadline_s: float = 300.0, log: Path | None = None) -> Iterator[str]:
    """``transformers serve MODEL_DIR`` on CPU, float32, on a free port: its base URL (ending in
    /v1) once ``GET /health`` answers; stopped on the way out, also on failure."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    out = open(log, "wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    base = f"http://127.0.0.1:{port}"
    try:
        stop_at = time.monotonic() + deadline_s
        while not _ready(base):
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {proc.returncode} before it was ready")
            if time.monotonic() > stop_at:
                raise RuntimeError(f"transformers serve was not ready after {deadline_s:.0f} s")
            time.sleep(1)
        yield base + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]
