"""What pytest shows for eval suites it cannot run or for misses it reports as failures: le.cases
on a unittest.TestCase method is one collection error line, and under --llmeval-strict a miss shows
the test's line and the reason, not the scorer's code."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_le_cases_on_a_unittest_method_is_one_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import unittest
        import pytest_llmeval as le

        class TestMath(unittest.TestCase):
            @le.cases([{"id": "a", "v": 1}])
            def test_values(self, case):
                assert case["v"] == 1

            def test_plain(self):
                pass

        @le.cases([{"id": "a", "v": 1}])
        def test_function(case):
            assert case["v"] == 1
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_le_cases_on_a_unittest_method_is_one_collection_error.py*",
            "llmeval: le.cases does not work on a unittest.TestCase method (TestMath.test_values): pytest does not "
            "parametrize unittest tests, so its cases would never reach it; make it a plain test function, or a method "
            "of a class that does not derive from unittest.TestCase",
        ]
    )
    result.stdout.fnmatch_lines(["ERROR *::TestMath"])
    result.stdout.no_fnmatch_line("*TypeError*")
    result.stdout.no_fnmatch_line("*Traceback*")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors", "-q")
    result.assert_outcomes(passed=1, errors=1)  # the function suite runs; the class (its plain test too) is refused


def test_a_plain_unittest_class_is_left_to_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import unittest\n\nclass TestPlain(unittest.TestCase):\n    def test_a(self):\n        pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


STRICT_SUITE = """
import pytest_llmeval as le

@le.cases([{"id": "a", "answer": 4, "reply": "The answer is 5."}])
def test_numbers(case):
    le.assert_number(case["reply"], case["answer"])

@le.cases([{"id": "b", "reply": "hello"}])
def test_bad_call(case):
    le.assert_max_words(case["reply"], "three")
"""


def test_strict_shows_the_reason_and_the_tests_line_not_the_scorers_code(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_strict=STRICT_SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-strict", "-p", "no:randomly")
    text = result.stdout.str()
    section = text[text.index("_ test_numbers[a] _") : text.index("= llmeval =")]
    assert ">       le.assert_number(case[\"reply\"], case[\"answer\"])" in section
    assert "E       pytest_llmeval.scoring.failures.EvalFailure: answer number is 5, expected 4" in section
    assert "def assert_number" not in section and "scoring/numbers.py" not in section
    assert len(section.splitlines()) < 20, section
    # an exception that is not a miss (the scorer called wrongly) keeps the scorer's frames, to see where
    rest = text[text.index("_ ERROR at call of test_bad_call[b] _") : text.index("_ test_numbers[a] _")]
    assert "scoring/text.py" in rest
