"""The README and the docs/ pages: what a new user reads first, links that work where the README is
shown (PyPI has no repository files: no relative links there), one form for options that take a
value, every option documented, install lines that get this package, and the README's claims
about recording a new suite and about small suites checked in real runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from project_files import DOCS, README, ROOT, WORKFLOW, distribution_name, installs_the_other_project

from pytest_llmeval.plugin.options import OPTIONS

PAGES = sorted(DOCS.glob("*.md"))
TEXTS = [README, *PAGES, *sorted((ROOT / "example_suites").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def python_block(text: str, first_line: str) -> str:
    [block] = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if b.startswith(first_line)]
    return block


def test_the_readme_is_short_and_opens_with_install_a_first_eval_the_ci_gate_and_accepting_a_change():
    text = readme()
    assert len(text.splitlines()) <= 350
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[:4] == ["Install", "A first eval", "Gate every pull request", "Accept a change"]
    assert text[: text.index("```yaml")].count("\n") < 100, "the workflow to copy sits on the first screens"


def test_the_readme_shows_the_one_job_workflow_file_as_it_is():
    """One text: the README's block, the example file and the file `init` writes."""
    from pytest_llmeval.cli.init import template

    blocks = re.findall(r"```yaml\n(.*?)```", readme(), re.S)
    assert WORKFLOW.read_text(encoding="utf-8") in blocks
    assert template("llmeval.yml") == WORKFLOW.read_text(encoding="utf-8")


def test_the_readme_first_eval_is_what_init_writes():
    from pytest_llmeval.cli.init import template

    text = readme()
    assert python_block(text, "# evals/test_math.py\n") == template("test_math.py.txt")
    assert re.findall(r"```jsonl\n(.*?)```", text, re.S)[0] == template("math.jsonl")


def test_the_readme_has_no_relative_links_or_images():
    for target in LINK.findall(readme()):
        assert target.startswith(("https://", "http://", "#")), f"{target} breaks where PyPI shows the README"
    assert "<img" not in readme()


def test_every_docs_page_is_in_the_readme_index_and_every_page_it_names_exists():
    text = readme()
    for page in PAGES:
        assert f"`docs/{page.name}`" in text, f"docs/{page.name} is missing from the README's index"
    for named in re.findall(r"`(docs/[\w.-]+\.md)", re.sub(r"<!--.*?-->", "", text, flags=re.S)):
        assert (ROOT / named).exists(), named


def test_relative_links_between_docs_pages_resolve():
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("https://", "http://", "#")):
                continue
            assert (page.parent / target.split("#")[0]).exists(), f"{page.name}: {target}"


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_options_that_take_a_value_are_written_with_equals(path: Path):
    valued = "|".join(re.escape(o.flag) for o in OPTIONS if o.takes_value)
    space_form = re.compile(rf"({valued})(?![\w-]) +(?!-)[^\s`|]")
    found = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if space_form.search(line)]
    assert not found, f"write --llmeval-NAME=VALUE: {found}"


def test_every_option_is_in_the_configuration_page():
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for option in OPTIONS:
        assert option.flag in page or option.dest in page, option.flag


def test_install_lines_get_this_package_from_pypi_or_from_a_clone():
    text = readme()
    name = distribution_name()
    assert name != "pytest-llmeval"
    assert f"pip install {name} " in text and "pip install -e .  " in text
    assert f'pip install "{name}[http]"' in text and 'pip install -e ".[http]"' in text
    texts = [*TEXTS, *(ROOT / "scripts").iterdir(), *(ROOT / "example_suites").glob("*.y*ml")]
    texts += sorted((ROOT / "pytest_llmeval").rglob("*.py"))
    for path in texts:
        assert not installs_the_other_project(path.read_text(encoding="utf-8")), path


def test_the_readme_explains_the_other_package_with_the_same_import_name():
    text = readme()
    section = text[text.index("## Another package named pytest-llmeval"):]
    assert "pip uninstall pytest-llmeval" in section and "-p no:check_llmeval_install" in section
    assert f"pip install --force-reinstall --no-deps {distribution_name()}" in section
    # the line pytest prints is the guard's own (tests/test_other_package.py checks the guard says it)


README_ARGS = ("-p", "no:cacheprovider", "--llmeval-history=off")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nllmeval_baseline = "evals/llmeval-baseline.json"\n')
    evals = pytester.mkdir("evals")
    (evals / "test_old.py").write_text("import pytest_llmeval as le\n\n@le.cases([{'id': 'a'}, {'id': 'b'}])\ndef test_old(case):\n    pass\n")
    assert pytester.runpytest("evals/", "--llmeval-update-baseline", *README_ARGS).ret == 0
    return pytester


def test_the_readme_example_of_your_own_application_runs_and_its_record_command_records_only_it(project: pytest.Pytester):
    text = readme()
    (project.path / "evals" / "test_rag.py").write_text(python_block(text, "# evals/test_rag.py\n"))
    baseline = project.path / "evals" / "llmeval-baseline.json"
    before = baseline.read_text()

    result = project.runpytest("evals/", *README_ARGS)
    result.assert_outcomes(passed=5)
    assert result.ret == 1, "a NEW suite fails the gate until it is recorded"
    result.stdout.fnmatch_lines(["*record with: pytest * evals/test_rag.py::test_rag --llmeval-update-baseline"])

    refused = project.runpytest("evals/", "-k", "test_rag", "--llmeval-update-baseline", *README_ARGS)
    assert refused.ret == 1 and baseline.read_text() == before
    refused.stdout.fnmatch_lines(["*baseline update refused: the selection was narrowed by -k*"])
    assert "baseline update\nrefused: the selection was narrowed by -k" in text

    command = re.search(r"^pytest (evals/test_rag\.py) --llmeval-update-baseline$", text, re.M)
    assert command, "the README shows the command that records only the new suite"
    assert project.runpytest(command.group(1), "--llmeval-update-baseline", *README_ARGS).ret == 0
    after = baseline.read_text()
    assert '"evals/test_rag.py::test_rag"' in after
    old = lambda t: t[t.index('"evals/test_old.py::test_old"'):].split("\n    }", 1)[0]  # noqa: E731
    assert old(after) == old(before), "the other suites' entries stay as they are"
    project.runpytest("evals/", *README_ARGS).stdout.fnmatch_lines(["llmeval gate passed: 5 passed, 0 missed in 2 suites"])


def test_the_readme_figure_for_a_small_suite_is_what_a_run_prints(pytester: pytest.Pytester):
    quoted = re.search(r"`(UNCHANGED -40\.0 pts \(p=0\.12; n=10 can only detect drops of 60\+ pts\s+at alpha 0\.05\))`", readme())
    assert quoted, "the README quotes the small-suite verdict"
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nllmeval_baseline = "b.json"\n')
    pytester.makepyfile(test_ten="import pytest_llmeval as le\nLIMIT = 9\n\n@le.cases([{'id': f'c{i}', 'v': i} for i in range(10)])\ndef test_ten(case):\n    assert case['v'] < LIMIT\n")
    assert pytester.runpytest("--llmeval-update-baseline", *README_ARGS).ret == 0
    (pytester.path / "test_ten.py").write_text((pytester.path / "test_ten.py").read_text().replace("LIMIT = 9", "LIMIT = 5"))
    result = pytester.runpytest(*README_ARGS)
    assert result.ret == 0, "90% -> 50% on 10 cases passes a gate without min_pass_rate"
    assert " ".join(quoted.group(1).split()) in result.stdout.str()
