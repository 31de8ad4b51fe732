"""pytest-timeout shorter than a batch: the batch runs off the item's clock, once, and every case
gets its answer; the item's own work keeps its full timeout."""

from __future__ import annotations

import pytest

from backend_packages import register_scheme

pytest_plugins = ["pytester"]

SLOW = '''
import time
from pytest_llmeval import Completion

CALLS = []

class Slow:
    capabilities = frozenset({"generate"})

    def __init__(self, spec, settings):
        self.settings = settings

    @property
    def fingerprint(self):
        return {"model": "slow"}

    def describe(self):
        return "slow"

    def batch_size(self):
        return 64

    def run_generate(self, requests, progress=None):
        CALLS.append(len(requests))
        time.sleep(3)  # a batch longer than any item may take
        return [Completion(r.text.split()[-1], prompt=r.text) for r in requests]

    def check(self):
        return None

def make(spec, settings):
    return Slow(spec, settings)
'''

SUITE = """
import time
import pytest_llmeval as le

CASES = [{"id": f"c{i}", "q": f"say {i}"} for i in range(4)]

@le.cases(CASES, prompt="{q}")
def test_say(case, completion):
    le.assert_exact(completion, case["id"][1:])

def test_zz_calls():
    import slow_backend
    print("CALLS", slow_backend.CALLS)

def test_zz_own_work_still_times_out():
    time.sleep(30)
"""


@pytest.mark.parametrize("method", ["signal", "thread"])
def test_a_batch_longer_than_the_timeout_is_computed_once_and_every_case_counts(pytester: pytest.Pytester, method: str) -> None:
    register_scheme(pytester.path, "slow", "slow_backend:make", module="slow_backend", source=SLOW)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_model = slow:m\nllmeval_history = off\nllmeval_cache = off\n")
    pytester.makepyfile(test_say=SUITE if method == "signal" else SUITE.split("def test_zz_own_work")[0])  # the thread method ends the process
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--timeout=1.5", f"--timeout-method={method}", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*CALLS [[]4[]]*"])  # one batch, never restarted
    outcomes = result.parseoutcomes()
    if method == "signal":
        assert outcomes.get("passed") == 5 and outcomes.get("failed") == 1, outcomes  # the sleeping test still times out
        result.stdout.fnmatch_lines(["*Failed: Timeout*"])
    else:
        assert outcomes.get("passed") == 5 and "failed" not in outcomes and "errors" not in outcomes, outcomes
