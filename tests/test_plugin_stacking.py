"""le.cases with other parameters on the same test: refused at collection, one line that says what to do,
never items folded into one case or a source silently dropped."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HEAD = "import pytest\nimport pytest_llmeval as le\n\nCASES = [{'id': 'a'}, {'id': 'b'}]\n\n"
PLAIN = "\n\n@le.cases(CASES)\ndef test_fine(case):\n    pass\n\n\n@pytest.mark.parametrize('n', [1, 2])\ndef test_plain(n):\n    pass\n"


@pytest.mark.parametrize(
    "suite,what",
    [
        ("@pytest.mark.parametrize('temp', [0.1, 0.7])\n@le.cases(CASES)\ndef test_s(case, temp):\n    pass\n",
         "@pytest.mark.parametrize(temp)"),
        ("@le.cases(CASES)\n@pytest.mark.parametrize('temp, n', [(0.1, 1), (0.7, 2)])\ndef test_s(case, temp, n):\n    pass\n",
         "@pytest.mark.parametrize(n, temp)"),
        ("@pytest.fixture(params=['x', 'y'])\ndef style(request):\n    return request.param\n\n\n"
         "@le.cases(CASES)\ndef test_s(case, style):\n    pass\n", "the parametrized fixture style"),
        ("@pytest.mark.parametrize('temp', [0.1, 0.7])\nclass TestS:\n    @le.cases(CASES)\n    def test_s(self, case, temp):\n        pass\n",
         "@pytest.mark.parametrize(temp)"),
    ],
    ids=["parametrize-above", "parametrize-below", "fixture-params", "class-parametrize"],
)
def test_le_cases_with_other_parameters_is_one_collection_error(pytester: pytest.Pytester, suite: str, what: str) -> None:
    pytester.makepyfile(test_stack=HEAD + suite)
    pytester.makepyfile(test_other=HEAD + PLAIN)
    result = pytester.runpytest("--continue-on-collection-errors")
    result.stdout.fnmatch_lines([f"*llmeval: le.cases cannot be combined with {what} on test_s: each case would run once per value*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1 and outcomes.get("passed") == 4, outcomes  # the other file's tests all run
    assert "Traceback" not in result.stdout.str()


def test_two_stacked_le_cases_are_one_collection_error_not_a_dropped_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stack=HEAD + "@le.cases([{'id': 'c'}])\n@le.cases(CASES)\ndef test_s(case):\n    pass\n"
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*llmeval: le.cases is given 2 times to test_s: a suite has one source of cases*"])
    assert result.parseoutcomes().get("errors") == 1 and "passed" not in result.parseoutcomes()


def test_parameters_from_a_generate_tests_hook_stop_the_run_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "def pytest_generate_tests(metafunc):\n"
        "    if 'temp' in metafunc.fixturenames:\n"
        "        metafunc.parametrize('temp', [0.1, 0.7])\n"
    )
    pytester.makepyfile(test_stack=HEAD + "@le.cases(CASES)\ndef test_s(case, temp):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llmeval: test_stack.py::test_s[[]0.1-a[]]: le.cases cannot be combined with the parameters temp*"])


def test_a_suite_alone_and_plain_parametrized_tests_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_other=HEAD + PLAIN)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes().get("passed") == 4
