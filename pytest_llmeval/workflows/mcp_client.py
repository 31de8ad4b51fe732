"""Tools from a Model Context Protocol server over stdio: ``le.mcp_tools("python -m my_server")``.

The ``mcp`` package (``pip install pytest-llmevals[mcp]``) is asynchronous; the tool runner is not.
So the server lives in one background thread that runs an asyncio loop: it starts the server
process, opens the client session, lists the tools, and stays open until :meth:`McpTools.close`
(or the end of the process). A tool call from any thread is handed to that loop
(``asyncio.run_coroutine_threadsafe``) and waited for, with a time limit. Several calls may be in
flight at once: they share the one session, as MCP allows.

A leading ``python`` or ``python3`` in the command is this interpreter (``sys.executable``), so a
server module of the project runs in the project's environment. The server gets the environment
the ``mcp`` package passes by default (PATH, HOME...), plus ``PYTHONPATH`` when set, plus ``env``.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import os
import shlex
import sys
import tempfile
import threading
from typing import Any, Iterator, Mapping, Sequence

from pytest_llmeval.workflows.tools import Tool, ToolFailure

__all__ = ["McpError", "McpTools", "mcp_tools"]

START_TIMEOUT = 60.0


class McpError(RuntimeError):
    """The MCP server could not be started or listed, or the ``mcp`` package is missing."""


class ToolReportedError(ToolFailure):
    """An MCP tool answered with ``isError``: its text is the error the model sees."""


def mcp_tools(command: str | Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None, timeout: float = 30.0) -> "McpTools":
    """The tools of the MCP server that ``command`` starts (over stdio), usable as ``tools=``.

    The server starts when its tools are first needed, once per process."""
    return McpTools(command, env=env, cwd=cwd, timeout=timeout)


class McpTools(Sequence[Tool]):
    """The tools of one MCP server, as :class:`~.tools.Tool`\\ s whose calls go to the server."""

    def __init__(self, command: str | Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None, timeout: float = 30.0) -> None:
        argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
        if not argv:
            raise McpError("mcp_tools() needs a command that starts the server, e.g. 'python -m my_server'")
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        self.command = command if isinstance(command, str) else shlex.join(argv)
        self._argv = argv
        self._env = {**({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}), **dict(env or {})}
        self._cwd = cwd
        self.timeout = timeout
        self._lock = threading.Lock()
        self._tools: tuple[Tool, ...] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Any = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._errlog: Any = None

    def __repr__(self) -> str:
        return f"mcp_tools({self.command!r})"

    # -- the tools, listed on first use

    @property
    def tools(self) -> tuple[Tool, ...]:
        with self._lock:
            if self._tools is None:
                self._tools = self._start()
            return self._tools

    def __len__(self) -> int:
        return len(self.tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools)

    def __getitem__(self, index: Any) -> Any:
        return self.tools[index]

    # -- the server's thread

    def _start(self) -> tuple[Tool, ...]:
        try:
            import mcp  # noqa: F401
        except ImportError:
            raise McpError("mcp_tools() needs the 'mcp' package: pip install 'pytest-llmevals[mcp]'") from None
        self._errlog = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        ready: dict[str, Any] = {}
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready, started), name="llmeval-mcp", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT):
            raise McpError(f"mcp_tools({self.command!r}): the server did not answer within {START_TIMEOUT:g} s{self._stderr_tail()}")
        if "error" in ready:
            self._thread.join(5)
            raise McpError(f"mcp_tools({self.command!r}): {ready['error']}{self._stderr_tail()}")
        atexit.register(self.close)
        return tuple(self._tool(item) for item in ready["tools"])

    def _serve(self, ready: dict[str, Any], started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._session_main(ready, started))
        except BaseException as exc:  # the server died or could not start: say so, once
            if not started.is_set():
                ready["error"] = _describe(exc)
        finally:
            started.set()
            loop.close()

    async def _session_main(self, ready: dict[str, Any], started: threading.Event) -> None:
        from mcp import ClientSession, StdioServerParameters, stdio_client

        params = StdioServerParameters(command=self._argv[0], args=self._argv[1:], env=self._env or None, cwd=self._cwd)
        self._stop = asyncio.Event()
        async with stdio_client(params, errlog=self._errlog) as streams:
            async with ClientSession(*streams) as session:
                await asyncio.wait_for(session.initialize(), START_TIMEOUT)
                listing = await asyncio.wait_for(session.list_tools(), START_TIMEOUT)
                ready["tools"] = [tool.model_dump(by_alias=True, mode="json") for tool in listing.tools]
                self._session = session
                started.set()
                await self._stop.wait()
                self._session = None

    def _tool(self, item: Mapping[str, Any]) -> Tool:
        name = str(item["name"])
        schema = item.get("inputSchema") or {"type": "object", "properties": {}}

        def call(**arguments: Any) -> str:
            return self.call(name, arguments)

        call.__name__ = name
        return Tool(name=name, description=str(item.get("description") or ""), parameters=schema, function=call, origin=f"mcp:{self.command}")

    def call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Call tool ``name`` on the server and wait (at most ``timeout`` s) for its text."""
        session, loop = self._session, self._loop
        if session is None or loop is None or loop.is_closed():
            raise McpError(f"mcp_tools({self.command!r}): the server is not running{self._stderr_tail()}")
        future = asyncio.run_coroutine_threadsafe(session.call_tool(name, dict(arguments)), loop)
        try:
            result = future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the MCP server did not answer within {self.timeout:g} s") from None
        data = result.model_dump(by_alias=True, mode="json")
        text = _result_text(data)
        if data.get("isError"):
            raise ToolReportedError(text or f"{name} reported an error")
        return text

    def close(self) -> None:
        """Stop the server (its process ends with the session); the tools cannot be called after."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if thread is not None:
            thread.join(15)
        if self._errlog is not None:
            self._errlog.close()
            self._errlog = None

    def __enter__(self) -> "McpTools":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _stderr_tail(self, lines: int = 5) -> str:
        if self._errlog is None or self._errlog.closed:
            return ""
        try:
            self._errlog.flush()
            self._errlog.seek(0)
            tail = [line.rstrip() for line in self._errlog.read().splitlines() if line.strip()][-lines:]
        except (OSError, ValueError):
            return ""
        return ("; the server's stderr ends: " + " | ".join(tail)) if tail else ""


def _describe(exc: BaseException) -> str:
    while getattr(exc, "exceptions", None):  # anyio wraps failures in exception groups
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FileNotFoundError):
        return f"the command was not found ({text})"
    return f"the server could not be used: {type(exc).__name__}{': ' + text if text else ''}"


def _result_text(data: Mapping[str, Any]) -> str:
    parts = []
    for item in data.get("content") or ():
        kind = item.get("type")
        if kind == "text":
            parts.append(str(item.get("text", "")))
        elif kind == "resource" and isinstance(item.get("resource"), Mapping) and "text" in item["resource"]:
            parts.append(str(item["resource"]["text"]))
        else:
            parts.append(f"[{kind} content{', ' + str(item['mimeType']) if item.get('mimeType') else ''}]")
    if not parts and data.get("structuredContent") is not None:
        parts.append(json.dumps(data["structuredContent"], ensure_ascii=False))
    return "\n".join(parts)
