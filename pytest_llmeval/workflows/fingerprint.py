"""Tool schemas as part of the prompt version: a stable hash per tool, and which tools changed.

A tool's schema (name, description, parameters: what its signature and docstring say) is what
the model reads, so it belongs to the prompt as much as the prompt's text. Hashes are of canonical
JSON (sorted keys), so they do not depend on dict order, the process or the platform.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from pytest_llmeval.workflows.tools import Tool

__all__ = ["changed_tools", "tool_hashes", "tools_fingerprint"]


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def tool_hashes(tools: Sequence[Tool]) -> dict[str, str]:
    """``{tool name: hash of its schema}``."""
    return {tool.name: _sha(tool.schema) for tool in tools}


def tools_fingerprint(tools: Sequence[Tool], *, instructions: str = "") -> dict[str, Any]:
    """The ``tools`` part of a suite's fingerprint: a hash per tool, the hash of all of them in order
    (the order is the order the model reads them in), and the hash of the tool instructions a
    format adds to the prompt (empty when the chat template renders the tools itself)."""
    hashes = tool_hashes(tools)
    return {
        "tools": hashes,
        "all": _sha([[name, value] for name, value in hashes.items()]),
        "instructions": _sha(instructions) if instructions else None,
    }


def changed_tools(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two :func:`tools_fingerprint`\\ s, one phrase per tool, in a stable order
    (``"get_weather (changed)"``, ``"book (added)"``, ``"search (removed)"``, ``"the order of the
    tools"``, ``"the tool instructions"``); empty when they match."""
    before, after = dict(old.get("tools") or {}), dict(new.get("tools") or {})
    out = [f"{name} (changed)" for name in after if name in before and before[name] != after[name]]
    out += [f"{name} (added)" for name in after if name not in before]
    out += [f"{name} (removed)" for name in before if name not in after]
    if not out and list(before) != list(after):
        out.append("the order of the tools")
    if old.get("instructions") != new.get("instructions"):
        out.append("the tool instructions")
    return out
