"""Stops pytest with one line when another project's files stand where pytest-llmevals' should.

``pytest-llmeval`` (without the s) on PyPI is another project with our import name
(``pytest_llmeval``) and our pytest plugin name (``llmeval``). Installed beside this package, its
files replace ours or hide them, and pytest fails in ways that do not say why (an
``INTERNALERROR``, or our plugin silently not loaded). This module is a second ``pytest11``
entry point of pytest-llmevals; it lives outside the ``pytest_llmeval`` folder, so the other
project's files cannot replace it, and it runs when pytest loads its plugins, before any test.

It imports nothing of the ``pytest_llmeval`` package: it reads the installs' metadata and
hashes one file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import metadata
from pathlib import Path

OURS = "pytest-llmevals"
OTHER = "pytest-llmeval"
IMPORT_NAME = "pytest_llmeval"


def _distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def from_source(dist: metadata.Distribution | None) -> bool:
    """Whether ``dist`` runs from a source folder (``pip install -e``, or a checkout's
    ``.egg-info`` on the path) rather than from files an install wrote, which another install
    can overwrite."""
    if dist is None or dist.read_text("RECORD") is None:
        return True
    text = dist.read_text("direct_url.json")
    try:
        info = json.loads(text) if text else {}
    except ValueError:
        return False
    return isinstance(info, dict) and isinstance(info.get("dir_info"), dict) and bool(info["dir_info"].get("editable"))


def other_project_problem() -> str | None:
    """The line that says the other project is installed beside this one, and the fix; or None."""
    other = _distribution(OTHER)
    if other is None:
        return None
    where = getattr(other, "_path", None)  # the metadata folder (importlib's PathDistribution)
    if other.read_text("RECORD") is None and where is not None and str(where).endswith(".egg-info"):
        # No install wrote it: a checkout's build folder, left by an earlier `pip install -e .`
        # (of this project under its old name, or of the other project). pip cannot remove it.
        return (
            f"llmeval: {where} names another project, {OTHER} {other.version}, which shares our import name "
            f"{IMPORT_NAME}; it is a build folder left by an earlier install from source: delete that folder"
        )
    ours = _distribution(OURS)
    fix = f"pip uninstall {OTHER}"
    if not from_source(ours):  # its install or uninstall took our files: put them back
        fix += f", then pip install --force-reinstall --no-deps {OURS}"
    return (
        f"llmeval: another project, {OTHER} {other.version}, is installed beside {OURS} and shares its import name "
        f"{IMPORT_NAME}: {fix}"
    )


def damaged_package_problem() -> str | None:
    """The line that says ``pytest_llmeval/__init__.py`` is not the file this package installed
    (another project's install replaced it, or its uninstall deleted it), and the fix; or None.
    Compared with the hash in the install's ``RECORD``; an editable install keeps its files in the
    source folder, which no other install touches."""
    ours = _distribution(OURS)
    if ours is None or from_source(ours):
        return None
    record = next((f for f in ours.files or () if f.as_posix() == f"{IMPORT_NAME}/__init__.py"), None)
    if record is None:
        return None
    path = Path(str(ours.locate_file(record)))
    try:
        data = path.read_bytes()
    except OSError:
        found = "is missing"
    else:
        if record.hash is None or record.hash.mode != "sha256":
            return None
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest == record.hash.value:
            return None
        found = f"is not the file {OURS} installed"
    return (
        f"llmeval: {path} {found} (another project's install or uninstall changed it): "
        f"pip install --force-reinstall --no-deps {OURS}"
    )


def check() -> None:
    """Raise ``pytest.UsageError`` (pytest prints ``ERROR: <line>`` and exits 4) when the
    ``pytest_llmeval`` files are not this package's."""
    problem = other_project_problem() or damaged_package_problem()
    if problem is not None:
        import pytest

        raise pytest.UsageError(problem)


check()  # when pytest loads its plugins: before it reads the options or collects a test
