"""The distribution: its name is ours (not the other project's on PyPI with our import name), the
code reads its version under that name, the plugin's entry point is ours, and the source archive
carries the docs, the examples, the workflow files and the scripts the README points to."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import pytest
from project_files import OTHER_PROJECT, ROOT, distribution_name

import pytest_llmeval
from pytest_llmeval.models.cache import _plugin_version
from pytest_llmeval.results.session import versions


def installed() -> metadata.Distribution:
    try:
        return metadata.distribution(distribution_name())
    except metadata.PackageNotFoundError:  # pragma: no cover - tests run from an install of this checkout
        pytest.skip(f"{distribution_name()} is not installed (pip install -e .)")


def test_the_distribution_name_is_not_the_other_projects():
    assert distribution_name() != OTHER_PROJECT
    assert distribution_name().replace("-", "_").lower() != OTHER_PROJECT.replace("-", "_")


def test_the_installed_distribution_is_this_checkout_and_provides_the_plugin():
    dist = installed()
    assert dist.version == pytest_llmeval.__version__
    plugins = [(ep.name, ep.value) for ep in dist.entry_points if ep.group == "pytest11"]
    # The install check first (pytest loads a distribution's entry points in this order): it stops
    # the run with one line when the other project's files stand where ours should.
    assert plugins == [("check_llmeval_install", "pytest_llmevals_guard"), ("llmeval", "pytest_llmeval.plugin")]


def test_the_code_reads_its_version_under_the_distribution_name():
    installed()
    assert _plugin_version() == pytest_llmeval.__version__, "the completion cache's key must carry this version"
    assert versions()["pytest-llmeval"] == pytest_llmeval.__version__


def test_the_source_archive_carries_the_docs_examples_workflows_and_scripts(tmp_path: Path):
    pytest.importorskip("setuptools", reason="building the source archive needs setuptools")
    source = tmp_path / "source"  # a copy: the build writes an .egg-info folder beside pyproject.toml
    junk = (".git", ".venv*", "*.egg-info", "__pycache__", ".llmeval", "llmeval-out", "runs", ".hypothesis", ".pytest_cache")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*junk))
    build = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    made = subprocess.run([sys.executable, "-c", build, str(tmp_path)], cwd=source, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    archive = tmp_path / made.stdout.split()[-1]
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {"README.md", "docs/ci.md", "docs/configuration.md", "example_suites/github-actions.yml",
              "example_suites/github-actions-shards.yml", "example_suites/skypilot.yaml", "example_suites/pytest.ini",
              "scripts/examples", "scripts/setup", "scripts/test", "conftest.py", "pytest_llmeval/__init__.py",
              "pytest_llmevals_guard.py"}
    assert wanted <= names, sorted(wanted - names)
    assert not [name for name in names if name.endswith(".pyc") or "/.llmeval/" in f"/{name}"]
    assert archive.name.startswith(distribution_name().replace("-", "_") + "-")
