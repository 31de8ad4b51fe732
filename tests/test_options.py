"""The options table: every option on the command line and in the ini, parsed once, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.plugin.options import OPTIONS, VALUE_FLAGS, space_form_paths

pytest_plugins = ["pytester"]

NUMERIC = [o for o in OPTIONS if o.parse.__qualname__.split(".")[0] in {"_int", "_float", "_batch_size"}]


def test_every_option_has_a_flag_an_ini_key_and_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in OPTIONS:
        result.stdout.fnmatch_lines([f"*{option.flag}*"])
        result.stdout.fnmatch_lines([f"*{option.dest} (*"])


def test_numeric_options_are_all_in_the_table() -> None:
    names = {o.name for o in NUMERIC}
    assert {"seed", "max-new-tokens", "temperature", "top-p", "max-length", "window", "limit", "tolerance", "alpha", "min-pass-rate", "batch-size"} <= names


@pytest.mark.parametrize("option", NUMERIC, ids=lambda o: o.name)
def test_a_non_numeric_value_on_the_command_line_is_a_one_line_usage_error(pytester: pytest.Pytester, option) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(f"{option.flag}=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: llmeval: {option.flag}: expected a * got 'abc'"])
    assert "Traceback" not in result.stderr.str() and "INTERNALERROR" not in result.stderr.str()


@pytest.mark.parametrize("option", NUMERIC, ids=lambda o: o.name)
def test_a_non_numeric_value_in_the_ini_is_a_one_line_usage_error(pytester: pytest.Pytester, option) -> None:
    pytester.makeini(f"[pytest]\n{option.dest} = abc\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: llmeval: {option.dest} (in tox.ini): expected a * got 'abc'"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["--llmeval-tolerance=1.5"], "*--llmeval-tolerance: must be between 0 and 1, got '1.5'"),
        (["--llmeval-max-new-tokens=0"], "*--llmeval-max-new-tokens: must be from 1 to 1000000000, got 0"),
        (["--llmeval-dtype=float8"], "*--llmeval-dtype: expected one of auto, float32, float16, bfloat16, got 'float8'"),
        (["--llmeval-device=gpu"], "*--llmeval-device: expected auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
        (["--llmeval-alpha=nan"], "*--llmeval-alpha: must be between 0 and 1, got 'nan'"),
    ],
)
def test_out_of_range_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_boolean_in_the_ini_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_strict = maybe\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llmeval: llmeval_strict (in tox.ini): expected true or false, got 'maybe'"])
    assert "Traceback" not in result.stderr.str() and "INTERNALERROR" not in result.stdout.str()


def test_value_flags_come_from_the_table() -> None:
    assert "--llmeval-output" in VALUE_FLAGS and "--llmeval-model" in VALUE_FLAGS
    assert "--llmeval-strict" not in VALUE_FLAGS and "--llmeval-update-baseline" not in VALUE_FLAGS


def test_space_form_paths_finds_existing_values_only(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    args = ("--llmeval-output", "out", "--llmeval-markdown", "missing.md", "--llmeval-model", "out", "--llmeval-baseline=out")
    assert space_form_paths(args, tmp_path) == [("--llmeval-output", "out")]


def test_space_form_path_value_that_exists_warns_with_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.mkdir("out")
    result = pytester.runpytest("--llmeval-output", "out", "-W", "always")
    result.stdout.fnmatch_lines(["*pytest read the value of '--llmeval-output out' as a test path*write '--llmeval-output=out'*"])
    result = pytester.runpytest("--llmeval-output=out")
    result.stdout.no_fnmatch_line("*as a test path*")


def test_a_relative_path_option_is_relative_to_the_ini_file_or_the_invocation_dir(pytester: pytest.Pytester) -> None:
    sub = pytester.mkdir("sub")
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_output = from-ini\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a"}])
        def test_x(case):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == 0
    assert (pytester.path / "from-ini" / "results.json").exists()
    result = pytester.runpytest(f"--rootdir={pytester.path}", "--llmeval-output=from-cli", str(pytester.path), "-p", "no:cacheprovider")
    assert result.ret == 0
    assert (pytester.path / "from-cli" / "results.json").exists()
    assert not (sub / "from-cli").exists()


def test_the_output_folder_never_moves_the_ini_file_on_a_second_run(pytester: pytest.Pytester) -> None:
    """The README's main command, in miniature: a suite folder with its own ini file, run twice."""
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n")
    suites = pytester.mkdir("suites")
    (suites / "pytest.ini").write_text("[pytest]\nllmeval_history = off\n")
    (suites / "test_s.py").write_text("import pytest_llmeval as le\n\n@le.cases([{'id': 'a'}])\ndef test_s(case):\n    pass\n")
    for _ in range(2):
        result = pytester.runpytest("suites", "--llmeval-output=out")
        assert result.ret == 0
        result.stdout.fnmatch_lines(["configfile: pytest.ini"])
        assert (pytester.path / "out" / "results.json").exists()
    # the space form: now that out/ exists, pytest takes it for a test path and picks the other ini file
    result = pytester.runpytest("suites", "--llmeval-output", "out", "-W", "always")
    result.stdout.fnmatch_lines(["configfile: pyproject.toml", "*write '--llmeval-output=out'*"])


def test_space_form_path_in_pytest_addopts_warns_too(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.mkdir("out")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--llmeval-output out")
    result = pytester.runpytest("-W", "always")
    result.stdout.fnmatch_lines(["*pytest read the value of '--llmeval-output out' as a test path*"])
