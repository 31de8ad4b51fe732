"""``python -m pytest_llmeval init``: a first suite that collects and runs, its ini keys where pytest
reads them, the README's workflow, and never a file replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.cli.init import BASELINE, DEFAULT_MODEL, WORKFLOW, pytest_config, template
from pytest_llmeval.cli.main import main

pytest_plugins = ["pytester"]

WRITTEN = ["evals/test_math.py", "evals/math.jsonl", WORKFLOW]


def init(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["init", str(folder), *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_init_in_an_empty_folder_writes_a_suite_that_runs(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    status, out, err = init(pytester.path, capsys)
    assert status == 0 and err == ""
    assert out.splitlines()[0] == f"llmeval: wrote {', '.join([*WRITTEN, 'pytest.ini'])}"
    assert "pytest evals/ --llmeval-update-baseline" in out and "git add evals/ .github/workflows/llmeval.yml" in out
    assert (pytester.path / "pytest.ini").read_text() == f"[pytest]\nllmeval_model = {DEFAULT_MODEL}\nllmeval_baseline = {BASELINE}\n"
    assert (pytester.path / WORKFLOW).read_text() == template("llmeval.yml")
    collected = pytester.runpytest("evals/", "--collect-only", "-q", "-p", "no:cacheprovider")
    collected.stdout.fnmatch_lines([f"evals/test_math.py::test_addition[[]add-00{i}]" for i in range(1, 5)])
    assert collected.ret == 0
    # the model the ini names needs a package; a tiny one given on the command line runs the same suite
    result = pytester.runpytest("evals/", f"--llmeval-model={tiny_model_dir}", "--llmeval-history=off", "-p", "no:cacheprovider")
    counts = result.parseoutcomes()
    assert counts.get("passed", 0) + counts.get("missed", 0) == 4 and "error" not in counts and "errors" not in counts
    result.stdout.fnmatch_lines([f"no baseline at {BASELINE} yet: suites are not gated against one", "llmeval gate passed*"])
    assert result.ret == 0


def test_a_pyproject_without_a_pytest_table_gets_one_at_its_end(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    before = '[project]\nname = "mine"\nversion = "1.0"'  # no newline at the end
    (pytester.path / "pyproject.toml").write_text(before)
    status, out, _ = init(pytester.path, capsys, "--model=openai:my-model")
    assert status == 0
    assert (pytester.path / "pyproject.toml").read_text() == (
        f'{before}\n\n[tool.pytest.ini_options]\nllmeval_model = "openai:my-model"\nllmeval_baseline = "{BASELINE}"\n'
    )
    assert "added a [tool.pytest.ini_options] table with llmeval_model and llmeval_baseline to pyproject.toml" in out
    assert not (pytester.path / "pytest.ini").exists()
    result = pytester.runpytest("evals/", "--collect-only", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*configfile: pyproject.toml*", "*4 tests collected*"])
    assert result.ret == 0


@pytest.mark.parametrize(
    "name,text,shown",
    [
        ("pyproject.toml", '[project]\nname = "mine"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n', f'    llmeval_baseline = "{BASELINE}"'),
        ("pyproject.toml", "[tool.pytest]\nminversion = '9.0'\n", f'    llmeval_model = "{DEFAULT_MODEL}"'),
        ("pytest.ini", "[pytest]\naddopts = -q\n", f"    llmeval_baseline = {BASELINE}"),
        ("tox.ini", "[tox]\nenvlist = py3\n\n[pytest]\naddopts = -q\n", f"    llmeval_model = {DEFAULT_MODEL}"),
        ("setup.cfg", "[metadata]\nname = mine\n\n[tool:pytest]\naddopts = -q\n", f"    llmeval_baseline = {BASELINE}"),
    ],
)
def test_a_pytest_configuration_init_would_edit_is_left_alone_and_the_keys_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, shown: str
) -> None:
    (tmp_path / name).write_text(text)
    status, out, _ = init(tmp_path, capsys)
    assert status == 0
    assert (tmp_path / name).read_text() == text
    assert f"llmeval: pytest reads its settings from {name}; add these keys to its pytest section:" in out
    assert shown in out.splitlines()
    assert not (tmp_path / "pytest.ini").exists() or name == "pytest.ini"
    assert all((tmp_path / rel).is_file() for rel in WRITTEN)


def test_a_configuration_in_a_folder_above_gets_a_baseline_path_relative_to_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    sub = tmp_path / "service"
    sub.mkdir()
    assert pytest_config(sub) == tmp_path / "pytest.ini"
    status, out, _ = init(sub, capsys)
    assert status == 0 and "    llmeval_baseline = service/evals/llmeval-baseline.json" in out.splitlines()
    assert (tmp_path / "pytest.ini").read_text() == "[pytest]\n"


@pytest.mark.parametrize("existing", WRITTEN)
def test_init_writes_nothing_when_one_of_its_files_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: str) -> None:
    path = tmp_path / existing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("mine\n")
    status, out, err = init(tmp_path, capsys)
    assert status == 3 and out == ""
    assert err == f"error: {existing} exists; init never replaces a file, so it wrote nothing: move it, or run init in another folder\n"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [existing]
    assert path.read_text() == "mine\n"


def test_init_needs_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = init(tmp_path / "missing", capsys)
    assert status == 3 and err.startswith("error: ") and "is not a folder" in err
