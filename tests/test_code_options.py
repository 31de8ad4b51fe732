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
