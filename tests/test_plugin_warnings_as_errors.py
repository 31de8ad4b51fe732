"""``-W error`` / ``filterwarnings = error``: a warning the plugin (or a library inside the batched run)
emits is shown, never a traceback, a collection error or every case of a batch erroring."""

from __future__ import annotations

import warnings

import pytest

from backend_packages import register_scheme
from pytest_llmeval.own_warnings import errors_as_default, warn
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

NOISY = '''
import warnings
from pytest_llmeval import Completion

class Noisy:
    capabilities = frozenset({"generate"})

    def __init__(self, spec, settings):
        warnings.warn("this loader is deprecated", DeprecationWarning)  # what libraries do while loading
        self.settings = settings

    @property
    def fingerprint(self):
        return {"model": "noisy"}

    def describe(self):
        return "noisy"

    def batch_size(self):
        return 64

    def run_generate(self, requests, progress=None):
        warnings.warn("padding side changed", FutureWarning)  # ... and while generating
        return [Completion(r.text.split()[-1], prompt=r.text) for r in requests]

    def check(self):
        return None

def make(spec, settings):
    return Noisy(spec, settings)
'''

SUITE = """
import pytest_llmeval as le

@le.cases([{"id": "a", "q": "say yes"}, {"id": "b", "q": "say no"}, {"id": "c", "q": "say maybe"}], prompt="{q}")
def test_say(case, completion):
    le.assert_exact(completion, "yes")
"""


def _project(pytester: pytest.Pytester, ini_error: bool) -> None:
    register_scheme(pytester.path, "noisy", "noisy_backend:make", module="noisy_backend", source=NOISY)
    pytester.syspathinsert()
    (pytester.path / "train.txt").write_text("say no\n")  # case b was trained on: a warning at collection
    (pytester.path / "hist").mkdir()
    (pytester.path / "hist" / "history.sqlite").mkdir()  # the run history cannot be written: a warning at the end
    (pytester.path / "blocked").write_text("a file where the cache's folder should be\n")  # the cache warns and is off
    pytester.makeini(
        "[pytest]\nllmeval_model = noisy:m\nllmeval_train_data = train.txt\nllmeval_history = hist/history.sqlite\n"
        "llmeval_cache_path = blocked/cache.sqlite\n" + ("filterwarnings =\n    error\n" if ini_error else "")
    )
    pytester.makepyfile(test_say=SUITE)


@pytest.mark.parametrize("how", ["-W error", "filterwarnings = error"])
def test_a_run_under_warnings_as_errors_counts_every_case_and_writes_its_results(pytester: pytest.Pytester, how: str) -> None:
    _project(pytester, ini_error=how.startswith("filterwarnings"))
    args = ["-p", "no:cacheprovider", "--llmeval-output=out"] + (["-W", "error"] if how == "-W error" else [])
    result = pytester.runpytest_subprocess(*args)
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    outcomes = {s["id"]: s["outcome"] for s in read_samples(pytester.path / "out" / "samples.jsonl")}
    assert outcomes == {"a": "pass", "b": "fail", "c": "fail"}
    assert (pytester.path / "out" / "results.json").is_file()
    for shown in ("appear in the training data", "could not append to the run history", "the completion cache", "this loader is deprecated", "padding side changed"):
        assert shown in out, shown


def test_errors_as_default_keeps_every_other_filter() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.filterwarnings("ignore", message="quiet")
        warnings.simplefilter("error", UserWarning, append=True)
        with errors_as_default():
            warnings.warn("loud", UserWarning)  # shown, not raised
            warnings.warn("quiet please", UserWarning)  # still ignored
            warn(UserWarning("ours"))
        with pytest.raises(UserWarning):
            warnings.warn("raised again", UserWarning)  # the user's filters are back
    assert [str(w.message) for w in seen] == ["loud", "ours"]
