"""The walls between the package's parts hold: checked from the code's own imports.

Every ``import`` and ``from ... import`` counts, lazy ones inside functions and those under
``TYPE_CHECKING`` included: a circle that only closes at run time is still a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llmeval"
TOP = "pytest_llmeval"

# The parts, lowest layer first: a part may import parts of its own layer or below, never above
# (DESIGN.md, "Layout"; ../shared/architecture/README.md). A module's part is its folder, or for a
# module at the top: its name, as below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("leaves",),  # settings.py, files.py, jsonfiles.py, redaction.py, escaping.py, memo.py, version.py, options.py (the option table), own_warnings.py
    ("workflows",),  # conversations, tools, tool-call formats, the round loop (no model, no pytest)
    ("datasets", "perturb"),  # the cases: sources, few-shot, benchmark files, held-out check; perturbations
    ("models", "decorator"),  # the backends, scheduler and cache; le.cases (decorator.py)
    ("scoring", "results"),
    ("plugin", "training", "cli"),  # the pytest face; evaluate() and callbacks; the command line
    ("face",),  # __init__.py: what users import
)
TOP_MODULES = {
    "settings": "leaves",
    "files": "leaves",
    "jsonfiles": "leaves",
    "redaction": "leaves",
    "escaping": "leaves",
    "memo": "leaves",
    "version": "leaves",
    "options": "leaves",
    "own_warnings": "leaves",
    "decorator": "decorator",
    "__main__": "cli",
    "__init__": "face",
}
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
HEAVY = ("torch", "transformers")

# part -> the parts and libraries it must never import, layers aside (same layer, libraries)
NEVER = {
    "leaves": ("pytest", "_pytest", *HEAVY),
    "results": ("pytest_llmeval.plugin", "pytest_llmeval.models", "pytest_llmeval.training", "pytest", "_pytest", *HEAVY),
    "workflows": ("pytest_llmeval.datasets", "pytest_llmeval.models", "pytest_llmeval.plugin", "pytest_llmeval.results", "pytest", "_pytest", "torch"),
    "datasets": ("pytest_llmeval.models", "pytest_llmeval.plugin", "pytest_llmeval.results", *HEAVY),
    "scoring": ("pytest_llmeval.plugin", "pytest_llmeval.results", "pytest_llmeval.training", "pytest"),
    "models": ("pytest_llmeval.results", "pytest_llmeval.plugin", "pytest_llmeval.training", "pytest"),
    "decorator": ("pytest_llmeval.plugin", "pytest_llmeval.cli", *HEAVY),
    "training": ("pytest_llmeval.models", "pytest_llmeval.plugin", "pytest_llmeval.cli"),
    "plugin": ("pytest_llmeval.training", "pytest_llmeval.cli", "pytest_llmeval.__main__"),
    "cli": ("pytest_llmeval.plugin",),
    "face": ("pytest_llmeval.plugin", "pytest_llmeval.cli", "pytest_llmeval.__main__"),
    "perturb": ("pytest_llmeval.plugin", "pytest_llmeval.models", "pytest_llmeval.results", "pytest_llmeval.training", "pytest", "_pytest", *HEAVY),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written (absolute) and as the module it loads."""

    source: str
    """The importing module (``pytest_llmeval.plugin.state``)."""
    line: int
    name: str
    """The module the statement names, made absolute (``from .hf import HFBackend`` in
    ``pytest_llmeval.models``: ``pytest_llmeval.models.hf``)."""
    module: str | None
    """The package's own module it loads (``pytest_llmeval.models.hf``), or None for a library."""
    relative: bool = False

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.name}"


def modules_of(package: Path) -> dict[str, Path]:
    """Module name -> file, for every module of the package at ``package``."""
    found = {}
    for path in package.rglob("*.py"):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_in(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import in one module (at any depth: in functions, under ``if``), made absolute."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = ".".join(package[: len(package) - node.level + 1])
                base = f"{stem}.{base}" if base else stem
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        relative = isinstance(node, ast.ImportFrom) and node.level > 0
        for name in names:
            found.append(Import(module, node.lineno, name, _loaded(name, modules), relative))
    return found


def _loaded(name: str, modules: dict[str, Path]) -> str | None:
    """The longest module of the package that ``name`` starts with (``a.b.C`` -> ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package: Path) -> dict[str, list[Import]]:
    modules = modules_of(package)
    return {module: imports_in(module, path, modules) for module, path in sorted(modules.items())}


def circles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Every import circle: the strongly connected groups of two or more modules (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in {i.module for i in graph[module] if i.module in graph and i.module != module}:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return sorted(found)


def describe(circle: list[str], graph: dict[str, list[Import]]) -> str:
    """A circle and the imports that close it, for a failure message."""
    inside = dict.fromkeys(str(i) for m in circle for i in graph[m] if i.module in circle and i.module != m)
    return " <-> ".join(circle) + "".join(f"\n    {line}" for line in inside)


def part_of(module: str, package: Path = PACKAGE) -> str | None:
    """The part a module belongs to (its folder, or for a module at the top :data:`TOP_MODULES`)."""
    parts = module.split(".")
    if len(parts) == 1:
        return TOP_MODULES["__init__"]
    if len(parts) == 2 and (package / f"{parts[1]}.py").is_file():
        return TOP_MODULES.get(parts[1])
    return parts[1] if parts[1] in RANK else None


def wall_crossings(graph: dict[str, list[Import]], part: str, package: Path = PACKAGE) -> list[str]:
    """The imports of ``part``'s modules that go up a layer, or to what :data:`NEVER` bans, or are relative."""
    crossings = []
    for module, imports in graph.items():
        if part_of(module, package) != part:
            continue
        for i in imports:
            target = part_of(i.module, package) if i.module is not None else None
            if i.relative:
                crossings.append(f"{i}: a relative import")
            elif target is not None and target != part and RANK[target] > RANK[part]:
                crossings.append(f"{i}: {part} sits below {target}")
            elif any(i.name == banned or i.name.startswith(banned + ".") for banned in NEVER.get(part, ())):
                crossings.append(f"{i}: {part} never imports {i.name.split('.')[0] if i.module is None else target}")
    return crossings


GRAPH = import_graph(PACKAGE)
PARTS = sorted(RANK)


def test_every_module_belongs_to_a_part() -> None:
    unplaced = [m for m in GRAPH if part_of(m) is None]
    assert unplaced == [], "place these modules' parts in LAYERS (and their walls in NEVER): " + ", ".join(unplaced)


@pytest.mark.parametrize("part", PARTS)
def test_no_import_circle(part: str) -> None:
    """No circle through this part (a circle between parts fails for each part it touches)."""
    found = [c for c in circles(GRAPH) if any(part_of(m) == part for m in c)]
    assert not found, f"{len(found)} import circle(s):\n" + "\n".join(describe(c, GRAPH) for c in found)


def test_nothing_imports_the_top_level_package_from_inside_it() -> None:
    up = [str(i) for imports in GRAPH.values() for i in imports if i.module == TOP and i.source != TOP]
    assert up == [], "import the module that defines it instead:\n" + "\n".join(up)


@pytest.mark.parametrize("part", PARTS)
def test_no_import_crosses_a_wall(part: str) -> None:
    assert wall_crossings(GRAPH, part) == []


def test_importing_the_library_loads_no_plugin_module() -> None:
    code = f"import sys, {TOP}; print('\\n'.join(m for m in sys.modules if m.startswith('{TOP}.plugin') or m.startswith('{TOP}.cli')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_importing_workflows_loads_no_heavy_library() -> None:
    """Tools are described with transformers and MCP servers reached with mcp, only once used."""
    code = (
        f"import sys; import {TOP}.workflows, {TOP}.scoring.workflow;"
        "print(sorted(m for m in ('transformers', 'torch', 'mcp', 'jsonschema', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_version_has_one_home() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    import pytest_llmeval
    from pytest_llmeval.version import __version__

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pytest_llmeval.version.__version__"}
    assert pytest_llmeval.__version__ == __version__


# the checks can fail -------------------------------------------------------------------------


def fake_package(root: Path, files: dict[str, str]) -> Path:
    package = root / TOP
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_the_check_would_see_a_crossing(tmp_path: Path) -> None:
    package = fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "results/__init__.py": "",
            "results/m.py": "import torch\nfrom pytest_llmeval.models import hf\n\ndef f():\n    import pytest\n",
            "models/__init__.py": "",
            "models/hf.py": "from .. import results\n",
            "options.py": "from pytest_llmeval.plugin.state import x\n",
            "plugin/__init__.py": "",
            "plugin/state.py": "",
            "cli/__init__.py": "from pytest_llmeval.plugin import state\n",
        },
    )
    graph = import_graph(package)
    assert {i.name for i in graph["pytest_llmeval.results.m"]} == {"torch", "pytest_llmeval.models.hf", "pytest"}
    assert wall_crossings(graph, "results", package) == [
        "pytest_llmeval.results.m:1 imports torch: results never imports torch",
        "pytest_llmeval.results.m:2 imports pytest_llmeval.models.hf: results never imports models",
        "pytest_llmeval.results.m:5 imports pytest: results never imports pytest",
    ]
    assert wall_crossings(graph, "models", package) == ["pytest_llmeval.models.hf:1 imports pytest_llmeval.results: a relative import"]
    assert wall_crossings(graph, "leaves", package) == ["pytest_llmeval.options:1 imports pytest_llmeval.plugin.state: leaves sits below plugin"]
    assert wall_crossings(graph, "cli", package) == ["pytest_llmeval.cli:1 imports pytest_llmeval.plugin.state: cli never imports plugin"]


def test_the_check_would_see_a_circle_closed_by_a_lazy_import(tmp_path: Path) -> None:
    package = fake_package(
        tmp_path,
        {
            "__init__.py": "from pytest_llmeval.a import x\n",
            "a.py": "from . import b\nx = 1\n",
            "b.py": "def f():\n    from pytest_llmeval.sub.c import y\n",
            "sub/__init__.py": "",
            "sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import x\ny = 2\n",
            "d.py": "import pytest_llmeval.sub.c\n",
        },
    )
    graph = import_graph(package)
    assert circles(graph) == [["pytest_llmeval.a", "pytest_llmeval.b", "pytest_llmeval.sub.c"]]
    assert "pytest_llmeval.b:2 imports pytest_llmeval.sub.c" in describe(circles(graph)[0], graph)


def test_the_check_would_see_an_import_of_the_top_level_package(tmp_path: Path) -> None:
    package = fake_package(tmp_path, {"__init__.py": "from .a import x\n", "a.py": "def f():\n    import pytest_llmeval as le\n"})
    graph = import_graph(package)
    assert [i.module for i in graph["pytest_llmeval.a"]] == ["pytest_llmeval"]
    assert circles(graph) == [["pytest_llmeval", "pytest_llmeval.a"]]


def test_every_wall_belongs_to_a_layer() -> None:
    assert set(NEVER) <= set(RANK) and set(TOP_MODULES.values()) <= set(RANK)
    assert part_of("pytest_llmeval") == "face" and part_of("pytest_llmeval.plugin.state") == "plugin"
    assert part_of("pytest_llmeval.options") == "leaves" and part_of("pytest_llmeval.cli.main") == "cli"
