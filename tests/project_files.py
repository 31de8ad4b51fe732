"""The project's own files, for tests that check the docs, the workflows and the packaging."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
WORKFLOW = ROOT / "example_suites" / "github-actions.yml"
SHARDS_WORKFLOW = ROOT / "example_suites" / "github-actions-shards.yml"

OTHER_PROJECT = "pytest-llmeval"
"""The name on PyPI of another project with our import name and plugin name: never ours to install."""


def distribution_name() -> str:
    """``[project] name`` of pyproject.toml (read without tomllib, which Python 3.10 lacks)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^name\s*=\s*"([^"]+)"\s*$', project, re.M)
    assert found, "pyproject.toml has no [project] name"
    return found.group(1)


def installs_the_other_project(text: str) -> list[str]:
    """``pip install`` commands in ``text`` that would install the other project (its bare name,
    with or without extras); a command ends at a line end, a backtick, ``;``, ``&`` or ``|``."""
    bare = re.compile(rf"(?<![\w./-]){re.escape(OTHER_PROJECT)}(?![\w-])")
    return [command for command in re.findall(r"pip install[^\n`;&|]*", text) if bare.search(command)]
