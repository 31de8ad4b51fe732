"""Another project, pytest-llmeval (without the s), shares our import name and plugin name: pytest
stops with one line that names it and the fix, whether its files hide ours or replace them."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import pytest_llmevals_guard as guard
from project_files import README

pytest_plugins = ["pytester"]

OTHER_PLUGIN = "import pytest\n\n\ndef pytest_configure(config):\n    config.addinivalue_line('markers', 'llmeval: the other project')\n"


def fake_distribution(root: Path, name: str, version: str, files: dict[str, bytes], *, entry_points: str = "", editable: bool = False) -> Path:
    """Install ``files`` into ``root`` the way pip would: the files, and a ``.dist-info`` folder
    with METADATA, a RECORD of their hashes and the entry points."""
    dist = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if entry_points:
        (dist / "entry_points.txt").write_text(entry_points)
    if editable:
        (dist / "direct_url.json").write_text(json.dumps({"url": "file:///src", "dir_info": {"editable": True}}))
    rows = []
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={digest},{len(data)}")
    (dist / "RECORD").write_text("\n".join([*rows, f"{dist.name}/RECORD,,"]) + "\n")
    return dist


def the_other_project(root: Path) -> Path:
    return fake_distribution(
        root, "pytest-llmeval", "0.0.0", {"pytest_llmeval/__init__.py": b"", "pytest_llmeval/plugin.py": OTHER_PLUGIN.encode()},
        entry_points="[pytest11]\nllmeval = pytest_llmeval.plugin\n",
    )  # fmt: skip


def test_pytest_stops_with_one_line_when_the_other_project_hides_ours(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its files first on the path (as after `pip install -e .` of ours): its plugin would load
    instead of ours, and every eval file would fail to collect; the run stops before that."""
    site = pytester.mkdir("site")
    the_other_project(site)
    pytester.makeini("[pytest]\nllmeval_baseline = evals/llmeval-baseline.json\n")
    pytester.makepyfile("def test_plain():\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    fix = "pip uninstall pytest-llmeval" + ("" if guard.from_source(guard._distribution(guard.OURS)) else ", then pip install --force-reinstall --no-deps pytest-llmevals")
    assert result.stderr.lines[0] == (
        "ERROR: llmeval: another project, pytest-llmeval 0.0.0, is installed beside pytest-llmevals and shares its "
        f"import name pytest_llmeval: {fix}"
    )
    assert [line for line in result.stderr.lines if line.strip()] == [result.stderr.lines[0]]
    assert "Traceback" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()


def test_the_check_can_be_turned_off_like_any_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    site = pytester.mkdir("site")
    the_other_project(site)
    pytester.makepyfile("def test_plain():\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = pytester.runpytest_subprocess("-p", "no:check_llmeval_install")
    result.assert_outcomes(passed=1)


def test_the_other_project_installed_over_ours_is_named_with_the_reinstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed after ours, its empty __init__.py replaced ours: uninstall it, then put ours back."""
    ours = {"pytest_llmeval/__init__.py": b"from pytest_llmeval.decorator import cases\n"}
    fake_distribution(tmp_path, "pytest-llmevals", "0.1.0", ours)
    the_other_project(tmp_path)  # writes its empty __init__.py over ours, as pip does
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = guard.other_project_problem()
    assert problem == (
        "llmeval: another project, pytest-llmeval 0.0.0, is installed beside pytest-llmevals and shares its import name "
        "pytest_llmeval: pip uninstall pytest-llmeval, then pip install --force-reinstall --no-deps pytest-llmevals"
    )
    assert f"\nERROR: {problem}\n" in README.read_text(encoding="utf-8"), "the README shows the line pytest prints"
    assert guard.damaged_package_problem() == (
        f"llmeval: {tmp_path / 'pytest_llmeval' / '__init__.py'} is not the file pytest-llmevals installed "
        "(another project's install or uninstall changed it): pip install --force-reinstall --no-deps pytest-llmevals"
    )


def test_after_uninstalling_the_other_project_our_missing_init_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(tmp_path, "pytest-llmevals", "0.1.0", {"pytest_llmeval/__init__.py": b"# ours\n"})
    (tmp_path / "pytest_llmeval" / "__init__.py").unlink()  # pip uninstall of the other project deletes the shared file
    monkeypatch.syspath_prepend(str(tmp_path))
    assert guard.other_project_problem() is None
    problem = guard.damaged_package_problem()
    assert problem is not None and problem.startswith(f"llmeval: {tmp_path / 'pytest_llmeval' / '__init__.py'} is missing")
    assert problem.endswith(": pip install --force-reinstall --no-deps pytest-llmevals")


def test_an_intact_install_passes_and_an_editable_one_needs_only_the_uninstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(tmp_path, "pytest-llmevals", "0.1.0", {"pytest_llmeval/__init__.py": b"# ours\n"}, editable=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert guard.other_project_problem() is None
    assert guard.damaged_package_problem() is None
    guard.check()  # raises nothing
    site = tmp_path / "site"
    the_other_project(site)
    monkeypatch.syspath_prepend(str(site))
    problem = guard.other_project_problem()
    assert problem is not None and problem.endswith("shares its import name pytest_llmeval: pip uninstall pytest-llmeval")
    with pytest.raises(pytest.UsageError, match="^llmeval: another project, pytest-llmeval 0.0.0"):
        guard.check()


def test_a_build_folder_left_by_an_earlier_install_from_source_is_named_with_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout's ``pytest_llmeval.egg-info`` (from an earlier ``pip install -e .`` under the old
    name) is on the path whenever pytest runs from that folder: pip cannot remove it, so the line
    names the folder to delete instead of an uninstall that would do nothing."""
    egg = tmp_path / "pytest_llmeval.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: pytest-llmeval\nVersion: 0.1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = guard.other_project_problem()
    assert problem == (
        f"llmeval: {egg} names another project, pytest-llmeval 0.1.0, which shares our import name pytest_llmeval; "
        "it is a build folder left by an earlier install from source: delete that folder"
    )
    egg.joinpath("PKG-INFO").unlink()
    egg.rmdir()
    assert guard.other_project_problem() is None
