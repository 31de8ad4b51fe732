"""A backend in a worker process, with an engine that really crashes: a segfault (a read of
address 0 through ctypes) or an abort (``os.abort``) ends the worker, never pytest; the cases of
the batch it was computing error and the rest of the run goes on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models import ModelLoadError, OutputError
from pytest_llmeval.models import worker as worker_module
from pytest_llmeval.models.worker import WorkerBackend
from pytest_llmeval.settings import LLMSettings

from backend_packages import register_scheme

pytest_plugins = ["pytester"]

ENGINE = '''
"""An engine that answers in upper case, and crashes on request (as a native engine may)."""
import ctypes
import os

from pytest_llmeval.models.outputs import Completion, Ranked


class Engine:
    capabilities = frozenset({"generate", "rank"})

    def __init__(self, settings):
        self.settings = settings

    @property
    def fingerprint(self):
        return {"model": "sha256:upper", "engine": "upper"}

    def describe(self):
        return "the upper-case engine"

    def batch_size(self):
        return self.settings.batch_size if isinstance(self.settings.batch_size, int) else 2

    def max_length(self):
        return 99

    def _act(self, text):
        if "segfault" in text:
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        if "abort" in text:
            os.abort()
        if "bug" in text:
            raise ValueError("a bug in the engine's Python: " + text)

    def run_generate(self, requests, progress=None):
        out = []
        for r in requests:
            self._act(r.text)
            out.append(Completion(r.text.upper(), prompt=r.text, tokens_in=os.getpid()))
            if progress is not None:
                progress(1)
        return out

    def run_rank(self, requests, progress=None):
        for r in requests:
            self._act(r.text)
        return [Ranked(context=r.text, choices=r.choices, loglikelihoods=tuple(-float(len(c)) for c in r.choices),
                       is_greedy=tuple(i == 0 for i in range(len(r.choices)))) for r in requests]

    def generate(self, prompt, **overrides):
        return self.run_generate([Request("generate", prompt)])[0]


from pytest_llmeval.datasets.suite import Request  # noqa: E402


def make(spec, settings, rootdir=None):
    if spec == "segfault-at-load":
        ctypes.string_at(0)
    if spec == "missing":
        from pytest_llmeval.models import ModelLoadError
        raise ModelLoadError("missing: no such model; point llmeval_model at one")
    return Engine(settings)


def in_worker(spec, settings, rootdir=None):
    from pytest_llmeval.models.worker import WorkerBackend
    return WorkerBackend("upper_engine:make", spec, settings, rootdir, engine="the upper-case engine",
                         hint="see the engine's build notes")
'''


@pytest.fixture
def engine_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake engine as an importable module (the worker inherits ``sys.path``)."""
    (tmp_path / "upper_engine.py").write_text(ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "upper_engine:make"


@pytest.fixture
def worker(engine_module: str):
    made = WorkerBackend(engine_module, "ok", LLMSettings(batch_size=2), engine="the upper-case engine", hint="see the notes")
    yield made
    made.close()


def gen(*texts: str) -> list[Request]:
    return [Request("generate", t) for t in texts]


def test_outputs_come_from_a_worker_process(worker: WorkerBackend) -> None:
    seen: list[int] = []
    out = worker.run_generate(gen("one", "two"), progress=seen.append)
    assert [str(c) for c in out] == ["ONE", "TWO"]
    assert out[0].prompt == "one"  # a Completion, with its fields
    assert out[0].tokens_in == worker.pid != os.getpid()
    assert seen == [1, 1]
    assert worker.fingerprint == {"model": "sha256:upper", "engine": "upper"}
    assert worker.capabilities == frozenset({"generate", "rank"})
    assert worker.batch_size() == 2 and worker.max_length() == 99
    assert worker.describe() == "the upper-case engine in a worker process"
    ranked = worker.run_rank([Request("rank", "q", choices=("a", "bbb"))])
    assert ranked[0].loglikelihoods == (-1.0, -3.0)


@pytest.mark.parametrize("word, signal_name", [("segfault", "SIGSEGV"), ("abort", "SIGABRT")])
def test_a_crash_errors_the_batch_it_was_computing_and_the_next_batch_runs(
    worker: WorkerBackend, word: str, signal_name: str
) -> None:
    first = worker.pid
    out = worker.run_generate(gen("one", word))
    assert all(isinstance(o, OutputError) for o in out) and len(out) == 2
    message = str(out[0])
    assert "\n" not in message
    assert message.startswith(f"the upper-case engine crashed while computing this case's batch (its worker process was killed by {signal_name})")
    assert message.endswith("the other cases go on in a new worker; see the notes")
    again = worker.run_generate(gen("three"))
    assert [str(c) for c in again] == ["THREE"]
    assert worker.pid != first and worker.workers_started == 2 and worker.crashes == 0


def test_a_crash_while_ranking_errors_those_rankings(worker: WorkerBackend) -> None:
    out = worker.run_rank([Request("rank", "segfault", choices=("a", "b")), Request("rank", "q", choices=("a",))])
    assert all(isinstance(o, OutputError) and "SIGSEGV" in str(o) for o in out)


def test_an_exception_in_python_comes_back_as_itself_and_the_worker_stays(worker: WorkerBackend) -> None:
    first = worker.pid
    with pytest.raises(ValueError, match="a bug in the engine's Python: bug"):
        worker.run_generate(gen("bug"))
    assert worker.pid == first
    assert [str(c) for c in worker.run_generate(gen("ok"))] == ["OK"]


def test_after_crashes_in_a_row_no_worker_starts_again(worker: WorkerBackend) -> None:
    for _ in range(worker_module.MAX_CRASHES):
        assert isinstance(worker.run_generate(gen("segfault"))[0], OutputError)
    assert worker.pid is None
    started = worker.workers_started
    (out,) = worker.run_generate(gen("fine"))
    assert isinstance(out, OutputError)
    assert str(out) == f"the upper-case engine crashed {worker_module.MAX_CRASHES} times in a row; no new worker is started for the rest of the run; see the notes"
    assert worker.workers_started == started


def test_imperative_generate_raises_the_crash(worker: WorkerBackend) -> None:
    assert str(worker.generate("hi")) == "HI"
    with pytest.raises(OutputError, match="SIGSEGV"):
        worker.generate("segfault")


def test_a_crash_or_an_error_while_loading_is_a_load_error(engine_module: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        WorkerBackend(engine_module, "segfault-at-load", LLMSettings(), engine="the upper-case engine")
    assert str(info.value) == (
        "segfault-at-load: the upper-case engine crashed while loading the model (its worker process was killed by SIGSEGV)"
    )
    with pytest.raises(ModelLoadError, match=r"^missing: no such model; point llmeval_model at one$"):
        WorkerBackend(engine_module, "missing", LLMSettings())


def test_close_ends_the_worker(engine_module: str) -> None:
    made = WorkerBackend(engine_module, "ok", LLMSettings())
    process = made._process
    made.close()
    assert made.pid is None and not process.is_alive() and process.exitcode == 0


def test_a_segfault_in_the_engine_errors_its_cases_and_the_session_reports(pytester: pytest.Pytester) -> None:
    """Through the plugin, in a pytest process of its own: six cases in batches of two, one
    segfaults the engine. Its batch (two cases) errors, the other four pass, and the report is
    written."""
    pytester.makepyfile(upper_engine=ENGINE)
    register_scheme(pytester.path, "upper", "upper_engine:in_worker")
    pytester.makeini("[pytest]\nllmeval_model = upper:ok\nllmeval_history = off\nllmeval_batch_size = 2\nllmeval_cache = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        CASES = [{"id": f"c{i}", "q": "segfault" if i == 3 else f"word{i}"} for i in range(6)]

        @le.cases(CASES, prompt="{q}")
        def test_upper(case, completion):
            assert completion == case["q"].upper()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--llmeval-output", "out")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 4 and outcomes.get("errors") == 2, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*the upper-case engine crashed while computing this case's batch (its worker process was killed by SIGSEGV)*"])
    assert result.ret != 0  # errors fail the session
    samples = (pytester.path / "out" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 6
