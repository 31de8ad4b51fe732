"""Workflows: conversations, tool calls and agent loops as eval cases.

What a workflow case produced (:mod:`.conversation`), a case's messages checked (:mod:`.messages`),
tools and their schemas (:mod:`.tools`), running tool calls (:mod:`.runner`), reading tool calls out
of a local model's text (:mod:`.parsers`) and showing tools to it (:mod:`.formats`), the round loop
that advances many conversations with one batched model call per round (:mod:`.loop`), tool schemas
in the prompt version (:mod:`.fingerprint`) and tools from an MCP server (:mod:`.mcp_client`).

Nothing here imports pytest or the plugin: the plugin hands the loop a ``generate_batch`` callable
and reads the conversations it returns. transformers and mcp are imported only when used.
"""

from __future__ import annotations

from pytest_llmeval.workflows.conversation import Conversation, Step, ToolCall
from pytest_llmeval.workflows.fingerprint import changed_tools, tool_hashes, tools_fingerprint
from pytest_llmeval.workflows.formats import RenderError, ToolFormat, choose_format, template_supports_tools
from pytest_llmeval.workflows.loop import RoundInfo, run_conversations
from pytest_llmeval.workflows.mcp_client import McpError, McpTools, mcp_tools
from pytest_llmeval.workflows.messages import WorkflowDataError, check_messages, check_user_turns, start_messages
from pytest_llmeval.workflows.parsers import CallRequest, Reply, parse_llama3_json, parse_tagged, parse_with_tokenizer
from pytest_llmeval.workflows.runner import CallOutcome, ToolRunner
from pytest_llmeval.workflows.tools import Tool, ToolDefinitionError, ToolFailure, as_tools, tool_from_function

__all__ = [
    "CallOutcome",
    "CallRequest",
    "Conversation",
    "McpError",
    "McpTools",
    "RenderError",
    "Reply",
    "RoundInfo",
    "Step",
    "Tool",
    "ToolCall",
    "ToolDefinitionError",
    "ToolFailure",
    "ToolFormat",
    "ToolRunner",
    "WorkflowDataError",
    "as_tools",
    "changed_tools",
    "check_messages",
    "check_user_turns",
    "choose_format",
    "mcp_tools",
    "parse_llama3_json",
    "parse_tagged",
    "parse_with_tokenizer",
    "run_conversations",
    "start_messages",
    "template_supports_tools",
    "tool_from_function",
    "tool_hashes",
    "tools_fingerprint",
]
