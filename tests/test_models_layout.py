"""The models package's own walls: backends and the registry never import each other, so that
adding a backend never makes a circle (counting imports inside functions too)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "pytest_llmeval" / "models"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (``from X import y`` counts as X and X.y)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(p for p in MODELS.glob("*.py") if p.stem not in ("__init__", "registry")), ids=lambda p: p.stem)
def test_no_module_imports_the_registry_or_the_package_face(path: Path) -> None:
    names = imported_modules(path)
    assert "pytest_llmeval.models.registry" not in names
    assert "pytest_llmeval.models" not in names  # the face re-exports the registry: take names from their modules


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pytest_llmeval.models import load_backend\n")
    assert "pytest_llmeval.models" in imported_modules(module)


def test_the_protocol_is_a_leaf_of_the_models_package() -> None:
    inside = {n for n in imported_modules(MODELS / "protocol.py") if n.startswith("pytest_llmeval.models.")}
    assert inside <= {"pytest_llmeval.models.outputs", "pytest_llmeval.models.outputs.Completion", "pytest_llmeval.models.outputs.Ranked"}


def test_the_registry_reaches_backends_by_name_only() -> None:
    from pytest_llmeval.models.registry import BUILT_IN

    inside = {n for n in imported_modules(MODELS / "registry.py") if n.startswith("pytest_llmeval.models.")}
    assert {n.rsplit(".", 1)[0] if n.count(".") > 2 else n for n in inside} == {"pytest_llmeval.models.protocol"}
    for scheme, target in BUILT_IN.items():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), scheme
