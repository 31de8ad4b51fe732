"""A small MCP server for the tests, over stdio: ``python -m mcp_weather`` from this folder."""

from __future__ import annotations

import time

try:  # mcp 2
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1
    from mcp.server.fastmcp import FastMCP as Server

server = Server("weather")

WEATHER = {"Paris": "sunny, 21 C", "Lyon": "rain, 14 C"}


@server.tool()
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return WEATHER.get(city, "unknown city")


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ValueError(reason)


@server.tool()
def wait(seconds: float) -> str:
    """Waits, then answers."""
    time.sleep(seconds)
    return f"waited {seconds}"


if __name__ == "__main__":
    server.run()
