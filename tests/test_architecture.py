"""The walls between the package's parts hold: checked from the code's own imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llmeval"

# part -> the parts and libraries it must never import (DESIGN.md, "Layout")
NEVER = {
    "results": ("pytest_llmeval.plugin", "pytest_llmeval.models", "pytest_llmeval.training", "pytest", "_pytest", "torch", "transformers"),
    "datasets": ("pytest_llmeval.models", "pytest_llmeval.plugin", "pytest_llmeval.results", "torch", "transformers"),
    "scoring": ("pytest_llmeval.plugin", "pytest_llmeval.results", "pytest_llmeval.training", "pytest"),
    "models": ("pytest_llmeval.results", "pytest_llmeval.plugin", "pytest_llmeval.training", "pytest"),
    "training": ("pytest_llmeval.models", "pytest_llmeval.plugin"),
    "perturb": ("pytest_llmeval.plugin", "pytest_llmeval.models", "pytest_llmeval.results", "pytest_llmeval.training", "pytest", "_pytest", "torch", "transformers"),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.add("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("part", sorted(NEVER))
def test_no_import_crosses_a_wall(part: str) -> None:
    crossings = []
    for path in sorted((PACKAGE / part).rglob("*.py")):
        for name in sorted(imports_of(path)):
            if name.startswith("."):
                crossings.append(f"{path.name}: relative import {name}")
            elif name in ("pytest_llmeval", "pytest_llmeval.__version__") and part != "training":
                crossings.append(f"{path.relative_to(PACKAGE)}: the public API module (the plugin's face)")
            elif any(name == banned or name.startswith(banned + ".") for banned in NEVER[part]):
                crossings.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert crossings == []


def test_the_check_would_see_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import torch\nfrom pytest_llmeval.models import hf\n\ndef f():\n    import pytest\n")
    assert {"torch", "pytest_llmeval.models", "pytest_llmeval.models.hf", "pytest"} <= imports_of(module)
