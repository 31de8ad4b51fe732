"""The code-execution options: ``llmeval_code_sandbox`` / ``--llmeval-code-sandbox`` and
``llmeval_code_workers``, parsed with the plugin's other options."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_an_unknown_sandbox_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_code_sandbox = docker\nllmeval_history = off\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llmeval: llmeval_code_sandbox (in tox.ini): expected one of bwrap, none*, got 'docker'"])


def test_the_sandbox_and_workers_options_are_read(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_code_sandbox = none\nllmeval_history = off\n")
    pytester.makeconftest(
        """
        from pytest_llmeval.plugin.options import read_options

        def pytest_configure(config):
            values = read_options(config)
            print("sandbox", values["code-sandbox"], "workers", values["code-workers"])
        """
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-s", "--llmeval-code-workers", "3")
    result.stdout.fnmatch_lines(["sandbox none workers 3"])
    assert result.ret == 0


def test_the_session_runs_programs_in_the_chosen_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_code_sandbox = none\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le
        from pytest_llmeval.scoring.code import recording_verdicts

        def test_x():
            with recording_verdicts() as verdicts:
                le.assert_code("def f():\\n    return 1\\n", "assert f() == 1")
            [verdict] = verdicts
            print("ran under", verdict.sandbox, "protections", ",".join(verdict.protections))
        """
    )
    result = pytester.runpytest("-s", "--llmeval-code-workers=2")
    result.stdout.fnmatch_lines(["*ran under none protections *private-tmpdir*"])
    assert result.ret == 0
