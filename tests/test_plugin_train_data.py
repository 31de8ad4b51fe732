"""--llmeval-train-data: eval cases seen in training are flagged, marked and deselectable."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def test_cases_found_in_training_data_are_flagged(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    train = [{"prompt": "12+34=", "completion": "46"}, {"text": "the quick brown fox jumps over the lazy dog " * 3}]
    pytester.makefile(".jsonl", train="".join(json.dumps(r) + "\n" for r in train))
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        CASES = [{"id": "seen", "q": "12+34=", "answer": "46"}, {"id": "fresh", "q": "51+27=", "answer": "78"}]

        @le.cases(CASES, prompt="{q}")
        def test_sums(case):
            pass
        """
    )
    result = pytester.runpytest("--llmeval-train-data", "train.jsonl", "-W", "always")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*1 of 2 cases of test_cases_found_in_training_data_are_flagged.py::test_sums appear in the training data*seen:*"])
    result.stdout.no_fnmatch_line("*fresh: *")
    deselected = pytester.runpytest("--llmeval-train-data", "train.jsonl", "-m", "not llmeval_train_overlap")
    deselected.assert_outcomes(passed=1, deselected=1)
    clean = pytester.runpytest("-W", "always")
    clean.stdout.no_fnmatch_line("*training data*")


def test_unreadable_training_data_is_a_clear_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makefile(".jsonl", train='{"text": "ok"}\n{"text": \n')
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}], prompt="{q}")
        def test_x(case):
            pass
        """
    )
    result = pytester.runpytest("--llmeval-train-data", "train.jsonl")
    result.stdout.fnmatch_lines(["*llmeval: --llmeval-train-data*train.jsonl*2*"])
    result.stdout.no_fnmatch_line("*Traceback*")
