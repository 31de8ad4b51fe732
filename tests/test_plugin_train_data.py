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
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llmeval: --llmeval-train-data=*train.jsonl: *train.jsonl:2: not valid JSON*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom"])
def test_training_data_that_never_ends_a_line_is_one_line_not_all_the_memory(pytester: pytest.Pytester, source: str) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile("import pytest_llmeval as le\n\n@le.cases([{'id': 'a', 'q': 'x'}], prompt='{q}')\ndef test_x(case):\n    pass\n")
    result = pytester.runpytest(f"--llmeval-train-data={source}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: llmeval: --llmeval-train-data={source}: {source}:*: *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_each_case_of_every_suite_is_checked_in_one_pass_and_marked(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makefile(".txt", train="What is the capital of France? Paris\n" + "filler line\n" * 50 + "what is the capital of france paris\n")
    pytester.makepyfile(
        test_a="import pytest_llmeval as le\n\n@le.cases([{'id': 'fr', 'q': 'What is the capital of France?', 'answer': 'Paris'}, {'id': 'de', 'q': 'Capital of Germany?', 'answer': 'Berlin'}], prompt='{q}')\ndef test_caps(case):\n    pass\n",
        test_b="import pytest_llmeval as le\n\n@le.cases([{'id': 'fr', 'q': 'what is the capital of france', 'answer': 'paris'}], prompt='{q}', repeats=2)\ndef test_again(case):\n    pass\n",
    )
    result = pytester.runpytest("--llmeval-train-data=train.txt", "-m", "llmeval_train_overlap", "-W", "always")
    result.assert_outcomes(passed=3, deselected=1)  # fr of test_caps, both samples of fr in test_again
    result.stdout.fnmatch_lines(["*1 of 2 cases of test_a.py::test_caps appear in the training data*fr: its prompt+answer appears verbatim*train.txt:1*"])
