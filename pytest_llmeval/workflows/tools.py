"""Tools: plain Python functions (or MCP tools) with the JSON schemas a chat template is given.

A function becomes a tool through ``transformers.utils.get_json_schema``: its name, the first part
of its docstring as the description, and a parameter per argument from the type hints and the
docstring's ``Args:`` section. A tool call's arguments are checked against that schema before the
function runs; a call that does not fit is recorded as malformed, never run.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = ["Tool", "ToolDefinitionError", "ToolFailure", "argument_problem", "as_tools", "tool_from_function", "tool_schemas"]


class ToolDefinitionError(ValueError):
    """A tool that cannot be described to a model (no docstring, a missing type hint, a duplicate name)."""


class ToolFailure(Exception):
    """Raise it in a tool to fail with exactly this message: the model sees ``error: <message>``
    (any other exception is shown with its type, ``error: KeyError: 'order 7'``)."""


@dataclass(frozen=True)
class Tool:
    """A callable the model may call by name with JSON arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    """The JSON schema of the arguments (``{"type": "object", "properties": ..., "required": ...}``)."""
    function: Callable[..., Any] = field(compare=False, repr=False)
    """Called with the arguments as keywords; may be ``async``."""
    origin: str = "python"
    """Where the tool comes from: ``"python"`` or ``"mcp:<command>"``."""
    returns: Mapping[str, Any] | None = None
    """The schema of the return value, where the function's return hint gives one (some templates show it)."""

    @property
    def schema(self) -> dict[str, Any]:
        """The tool as chat templates and OpenAI-compatible servers take it."""
        function: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(dict(self.parameters)),
        }
        if self.returns is not None:
            function["return"] = copy.deepcopy(dict(self.returns))
        return {"type": "function", "function": function}


def tool_from_function(function: Callable[..., Any]) -> Tool:
    """``function`` as a :class:`Tool`, its schema built the way transformers builds it."""
    if not callable(function):
        raise ToolDefinitionError(f"a tool must be a function, got {type(function).__name__}; pass the function itself")
    from transformers.utils import chat_template_utils as ctu

    name = getattr(function, "__name__", type(function).__name__)
    try:
        schema = ctu.get_json_schema(function)
    except (ctu.DocstringParsingException, ctu.TypeHintParsingException) as exc:
        raise ToolDefinitionError(
            f"tool {name}: {exc} Give it a docstring with a description and an 'Args:' line per argument, and type hints"
        ) from None
    schema = schema.get("function", schema)  # transformers 5 wraps it as {"type": "function", "function": ...}
    return Tool(
        name=schema["name"],
        description=schema.get("description") or "",
        parameters=schema.get("parameters") or {"type": "object", "properties": {}},
        function=function,
        returns=schema.get("return"),
    )


def as_tools(tools: Iterable[Any]) -> tuple[Tool, ...]:
    """Functions, :class:`Tool` objects and tool sets (``le.mcp_tools(...)``) as one tuple of tools
    with distinct names, in the order given."""
    if isinstance(tools, (str, bytes, Mapping)) or callable(tools) and not isinstance(tools, Iterable):
        raise ToolDefinitionError(f"tools= must be a list of functions, got {type(tools).__name__}; pass tools=[my_function]")
    out: list[Tool] = []
    for item in tools:
        if isinstance(item, Tool):
            out.append(item)
        elif callable(item):
            out.append(tool_from_function(item))
        elif isinstance(item, Iterable) and not isinstance(item, (str, bytes, Mapping)):
            out.extend(as_tools(item))
        else:
            raise ToolDefinitionError(f"tools=: {item!r:.60} is not a function or a tool; pass functions or le.mcp_tools(...)")
    seen: dict[str, str] = {}
    for tool in out:
        if tool.name in seen:
            raise ToolDefinitionError(f"two tools are named {tool.name!r} ({seen[tool.name]} and {tool.origin}); rename one")
        seen[tool.name] = tool.origin
    return tuple(out)


def tool_schemas(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    return [tool.schema for tool in tools]


def argument_problem(tool: Tool, arguments: Any) -> str | None:
    """Why ``arguments`` do not fit ``tool``'s schema (one line), or ``None`` when they do."""
    if not isinstance(arguments, Mapping):
        return f"arguments must be a JSON object, got {_json_type(arguments)}"
    schema = dict(tool.parameters)
    properties = schema.get("properties") or {}
    missing = [name for name in schema.get("required") or () if name not in arguments]
    if missing:
        return f"missing required argument(s) {', '.join(map(repr, missing))} of {tool.name}"
    if properties and not _takes_any_keyword(tool):
        unknown = [name for name in arguments if name not in properties]
        if unknown:
            return f"unknown argument(s) {', '.join(map(repr, unknown))}; {tool.name} takes {', '.join(map(repr, properties))}"
    import jsonschema

    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_nullable(schema)).iter_errors(dict(arguments)))
    except jsonschema.exceptions.SchemaError as exc:  # the tool's schema, not the model, is wrong: do not judge
        del exc
        return None
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)
    return f"argument {where!r}: {error.message:.200}" if where else f"arguments: {error.message:.200}"


def _takes_any_keyword(tool: Tool) -> bool:
    if tool.origin != "python":
        return False
    try:
        parameters = inspect.signature(tool.function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _nullable(schema: Any) -> Any:
    """transformers writes ``Optional[X]`` as ``{"type": X, "nullable": true}`` (OpenAPI); JSON Schema
    spells that as a type list with ``"null"``."""
    if isinstance(schema, list):
        return [_nullable(v) for v in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {k: _nullable(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"] if "null" not in types else types
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return type(value).__name__
