"""The openai: backend against a real server: ``transformers serve`` with SmolLM2 on CPU.

One session server (started on a free port, waited for with a deadline, stopped also on failure).
The example arithmetic suite runs through a fault-injecting proxy in front of it with a distinctive
API key, then in-process; the completions are compared and the key is looked for everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

MISSING = [m for m in ("httpx", "fastapi", "uvicorn", "openai", "pydantic") if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"transformers serve needs {', '.join(MISSING)} (pip install -e '.[test]')"),
]

from http_servers import FaultProxy, transformers_serve  # noqa: E402

from pytest_llmeval.models import http_client  # noqa: E402
from pytest_llmeval.results.samplefile import read_samples  # noqa: E402

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-serve-9d41c7e2aa-DISTINCTIVE-KEY"
CASES = 4


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf: Path) -> Path:
    from pytest_llmeval.models.gguf import ensure_converted

    return ensure_converted(smollm2_gguf)


@pytest.fixture(scope="session")
def served(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    try:
        with transformers_serve(smollm2_dir, deadline_s=600, log=log) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(f"{exc}; its log:\n{log.read_text()[-3000:] if log.exists() else ''}", pytrace=False)


def transient_faults(key: int, attempt: int) -> str:
    """A 429, a 500 or a dropped connection on a request's first try (by its body), never after."""
    return ("429", "500", "drop", "ok")[key % 4] if attempt == 1 else "ok"


def run_arithmetic(pytester: pytest.Pytester, *model_args: str, cases: int = CASES) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
    suite = pytester.path / "arithmetic"
    if not suite.exists():
        shutil.copytree(ROOT / "example_suites" / "arithmetic", suite)
        pytester.makeini("[pytest]\nllmeval_max_new_tokens = 32\nllmeval_seed = 1234\n")
    out = pytester.path / "out"
    shutil.rmtree(out, ignore_errors=True)
    result = pytester.runpytest("arithmetic", "-p", "no:cacheprovider", f"--llmeval-limit={cases}", "--llmeval-output=out", *model_args)
    results = json.loads((out / "results.json").read_text())
    samples = {s["id"]: s for s in read_samples(out / "samples.jsonl")}
    return result, results, samples


def test_arithmetic_through_a_faulty_proxy_matches_in_process_and_writes_no_key(
    pytester: pytest.Pytester, served: str, smollm2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Greedy decoding of the same float32 weights under the same chat template: the server (one
    request at a time, no padding) and the in-process backend (left-padded batches) compute the
    same logits up to float32 rounding, so a completion can differ only where two tokens nearly
    tie. An outcome is a function of the completion, so identical completions must give identical
    outcomes, and the pass counts can differ by at most the number of differing completions."""
    monkeypatch.setattr(http_client, "BACKOFF_BASE", 0.05)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    proxy = FaultProxy(served, transient_faults)
    with proxy.run() as url:
        result, results, server = run_arithmetic(
            pytester, f"--llmeval-model=openai:{smollm2_dir}", f"--llmeval-base-url={url}", "--llmeval-request-timeout=900",
            "--llmeval-history=.llmeval/history.sqlite", "--llmeval-baseline=baseline.json", "--llmeval-update-baseline",
        )  # fmt: skip
    assert {s["outcome"] for s in server.values()} <= {"pass", "fail"} and len(server) == CASES  # transient faults only
    requests = results["usage"]["requests"]
    assert requests["retries"] == sum(1 for k in proxy.attempts if transient_faults(k, 1) != "ok")
    assert requests["requests"] == CASES + requests["retries"] and requests["failed"] == 0
    written = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in pytester.path.rglob("*") if p.is_file())
    assert KEY not in written and KEY not in result.stdout.str() + result.stderr.str()

    _, _, local = run_arithmetic(pytester, f"--llmeval-model={smollm2_dir}", "--llmeval-history=off", "--llmeval-baseline=")
    differ = [k for k in local if local[k]["completion"] != server[k]["completion"]]
    for k in local:
        if k not in differ:
            assert local[k]["outcome"] == server[k]["outcome"]
    passed = {name: sum(s["outcome"] == "pass" for s in samples.values()) for name, samples in (("server", server), ("local", local))}
    assert abs(passed["server"] - passed["local"]) <= len(differ)
    print(f"arithmetic, first {CASES} cases: {len(differ)} completions differ; passed: server {passed['server']}, in-process {passed['local']}")


def test_ranking_against_transformers_serve_errors_once_clearly(pytester: pytest.Pytester, served: str, smollm2_dir: Path) -> None:
    """transformers serve ignores echo and logprobs: the probe finds out, one request is spent."""
    pytester.makefile(".jsonl", mc='{"id": "a", "q": "Sky?", "choices": ["blue", "green"], "answer": 0}\n{"id": "b", "q": "Grass?", "choices": ["blue", "green"], "answer": 1}')
    pytester.makepyfile(
        test_mc="import pytest_llmeval as le\n\n@le.cases('mc.jsonl', prompt='{q}', choices='choices', chat=False)\n"
        "def test_mc(case, ranked):\n    le.assert_choice(ranked, case['answer'])\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", f"--llmeval-model=openai:{smollm2_dir}", f"--llmeval-base-url={served}",
                                "--llmeval-history=off")  # fmt: skip
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*returned no prompt logprobs*", "requests: 1 request sent, 0 retries"])


def test_a_server_that_answers_one_at_a_time_makes_the_run_slower_never_wrong(
    pytester: pytest.Pytester, served: str, smollm2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers serve on CPU computes one request at a time. The timeout is set to three times
    what one request alone takes on this machine now: at 16 requests in flight the later ones wait
    in the server's queue past it, so their slow answers must cut the number in flight. Every case
    is answered, none errs. A loaded machine (another test computing beside the server) can make a
    single request take longer than three times what it took alone; that request times out and is
    sent again, so retries are allowed and counted, never asserted away: the run is slower, not
    wrong."""
    import time

    import httpx

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    body = {"model": str(smollm2_dir), "messages": [{"role": "user", "content": "What is 12 + 30? Answer with a number."}],
            "max_tokens": 24, "temperature": 0.0}  # fmt: skip
    started = time.monotonic()
    httpx.post(f"{served}/chat/completions", json=body, timeout=600).raise_for_status()
    alone = time.monotonic() - started
    timeout = max(5.0, 3 * alone)
    n = 16
    result, results, samples = run_arithmetic(
        pytester, f"--llmeval-model=openai:{smollm2_dir}", f"--llmeval-base-url={served}", "--llmeval-concurrency=16",
        f"--llmeval-request-timeout={timeout:.1f}", "--llmeval-max-retries=3", "--llmeval-cache=off", "--llmeval-history=off", cases=n,
    )  # fmt: skip
    assert len(samples) == n and not [s for s in samples.values() if s["outcome"] == "error"], result.stdout.str()[-3000:]
    requests = results["usage"]["requests"]
    assert requests["requests"] == n + requests["retries"] and requests["failed"] == 0, requests
    assert requests["in_flight"]["settled"] < 16, requests
    print(f"one request alone {alone:.1f}s, timeout {timeout:.1f}s; retries {requests['retries']}; in flight: {requests['in_flight']}")
