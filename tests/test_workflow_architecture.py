"""The workflow package stands alone: no pytest, no plugin, no backend; heavy libraries only when used."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llmeval"
BANNED = ("pytest", "_pytest", "pytest_llmeval.plugin", "pytest_llmeval.results", "pytest_llmeval.training", "pytest_llmeval.models", "torch")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_workflows_import_nothing_across_its_walls():
    crossings = []
    for path in sorted((PACKAGE / "workflows").glob("*.py")) + [PACKAGE / "scoring" / "workflow.py"]:
        for name in sorted(_imports(path)):
            if name.startswith(".") or name == "pytest_llmeval" or any(name == b or name.startswith(b + ".") for b in BANNED):
                crossings.append(f"{path.name}: {name}")
    assert crossings == []


def test_importing_workflows_loads_no_heavy_library():
    code = (
        "import sys; import pytest_llmeval.workflows, pytest_llmeval.scoring.workflow;"
        "print(sorted(m for m in ('transformers', 'torch', 'mcp', 'jsonschema', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
