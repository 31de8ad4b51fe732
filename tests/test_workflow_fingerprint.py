"""Tool schemas as part of the prompt version: stable hashes, and the changed tool named."""

from __future__ import annotations

import subprocess
import sys

from pytest_llmeval.workflows.fingerprint import changed_tools, tool_hashes, tools_fingerprint
from pytest_llmeval.workflows.formats import GENERIC_INSTRUCTIONS
from pytest_llmeval.workflows.tools import tool_from_function
from workflow_fakes import convert, get_weather


def _weather_v2(city: str, unit: str = "C") -> str:
    """Today's weather in a city.

    Args:
        city: the city's name
        unit: C or F
    """
    return city


_weather_v2.__name__ = "get_weather"


def test_hashes_are_stable_across_processes():
    here = tool_hashes([tool_from_function(get_weather)])
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from workflow_fakes import get_weather;"
        "from pytest_llmeval.workflows.fingerprint import tool_hashes;"
        "from pytest_llmeval.workflows.tools import tool_from_function;"
        "print(tool_hashes([tool_from_function(get_weather)])['get_weather'])"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert here == {"get_weather": there}
    assert there.startswith("sha256:") and len(there) == 71


def test_a_changed_signature_names_the_tool():
    old = tools_fingerprint([tool_from_function(get_weather), tool_from_function(convert)])
    new = tools_fingerprint([tool_from_function(_weather_v2), tool_from_function(convert)])
    assert old["tools"]["convert"] == new["tools"]["convert"]
    assert old["all"] != new["all"]
    assert changed_tools(old, new) == ["get_weather (changed)"]
    assert changed_tools(old, old) == []


def test_added_removed_reordered_and_instructions():
    a, b = tool_from_function(get_weather), tool_from_function(convert)
    assert changed_tools(tools_fingerprint([a]), tools_fingerprint([a, b])) == ["convert (added)"]
    assert changed_tools(tools_fingerprint([a, b]), tools_fingerprint([b])) == ["get_weather (removed)"]
    assert changed_tools(tools_fingerprint([a, b]), tools_fingerprint([b, a])) == ["the order of the tools"]
    generic = tools_fingerprint([a], instructions=GENERIC_INSTRUCTIONS)
    assert changed_tools(tools_fingerprint([a]), generic) == ["the tool instructions"]
