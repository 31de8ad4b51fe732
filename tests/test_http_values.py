"""Values from a server that no answer may have: NaN and infinite log-probabilities, text that is
not a string, token counts that are not counts, answers of the wrong shape, redirects. Each is an
error of its case in one line, never scored, never charged, never a traceback; and nothing a server
sends stops results.json from being written."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import FakeVLLM  # noqa: E402

from pytest_llmeval.models import http_client  # noqa: E402
from pytest_llmeval.models.batched import checked  # noqa: E402
from pytest_llmeval.models.outputs import Completion, Ranked  # noqa: E402
from pytest_llmeval.models.protocol import OutputError  # noqa: E402

pytest_plugins = ["pytester"]
N = 6

SUITES = '''
import pytest_llmeval as le

@le.cases("numbers.jsonl", prompt="{question}", chat=True, max_new_tokens=8)
def test_numbers(case, completion):
    le.assert_number(completion, case["answer"])

@le.cases("plain.jsonl", prompt="{question}", max_new_tokens=8)
def test_plain(case, completion):
    le.assert_number(completion, case["answer"])

@le.cases("choices.jsonl", prompt="{question}", choices="choices", chat=False)
def test_choices(case, ranked):
    le.assert_choice(ranked, case["answer"])
'''


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, "BACKOFF_BASE", 0.01)
    monkeypatch.setenv("LLMEVAL_TEST_KEY", "sk-values-test-key-0123456789")


def write_suites(pytester: pytest.Pytester) -> None:
    numbers = [{"id": f"n{i}", "question": f"Give the number {i}.", "answer": i} for i in range(N)]
    choices = [{"id": f"c{i}", "question": f"Pick {i}:", "choices": ["yes", "absolutely"], "answer": 0} for i in range(N)]
    pytester.makefile(".jsonl", numbers="\n".join(json.dumps(c) for c in numbers))
    pytester.makefile(".jsonl", plain="\n".join(json.dumps(c) for c in numbers))
    pytester.makefile(".jsonl", choices="\n".join(json.dumps(c) for c in choices))
    pytester.makepyfile(test_suites=SUITES)
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_api_key_env = LLMEVAL_TEST_KEY\n")


def run(pytester: pytest.Pytester, hostile: Callable[..., Any], *args: str) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
    write_suites(pytester)
    fake = FakeVLLM(hostile=hostile)
    with fake.run() as url:
        result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}",
                                    "--llmeval-output=out", "--llmeval-cache=off", *args)  # fmt: skip
    out = pytester.path / "out"
    results = json.loads((out / "results.json").read_text())  # always written
    samples = {f"{s['suite'].split('::')[1]}/{s['id']}": s for s in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    return result, results, samples


def only(kind: str, change: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    """A server that answers like vLLM but passes its ``kind`` answers (chat, plain, rank) through ``change``."""

    def hostile(path: str, body: dict[str, Any], answer: dict[str, Any]) -> tuple[int, Any]:
        mine = "chat" if path.endswith("/chat/completions") else "rank" if body.get("echo") else "plain"
        is_probe = body.get("prompt") == "The capital of France is Paris."
        if mine == kind and not is_probe:
            changed = change(answer)
            return (200, changed) if not isinstance(changed, tuple) else changed
        return 200, answer

    return hostile


def one_line_errors(result: Any, samples: dict[str, dict[str, Any]], prefix: str, fragment: str) -> None:
    """Every case of the suite ``prefix`` errors, each with one line saying ``fragment``; no traceback."""
    mine = [s for k, s in samples.items() if k.startswith(prefix + "/")]
    assert len(mine) == N and {s["outcome"] for s in mine} == {"error"}, [s["outcome"] for s in mine]
    assert all(fragment in s["reason"] and "\n" not in s["reason"] for s in mine), mine[0]["reason"]
    assert "Traceback" not in result.stdout.str() and "AttributeError" not in result.stdout.str()
    assert "\x1b" not in result.stdout.str() and "\u202e" not in result.stdout.str()  # a server's text cannot drive the terminal


def untouched(samples: dict[str, dict[str, Any]], prefix: str) -> None:
    mine = [s for k, s in samples.items() if k.startswith(prefix + "/")]
    assert len(mine) == N and {s["outcome"] for s in mine} <= {"pass", "fail"}


def _nan_logprobs(answer: dict[str, Any]) -> bytes:
    text = json.dumps(answer)
    for value in ("-0.4", "-1.1"):  # " yes" and " absolutely"
        text = text.replace(value, "NaN")
    return text.encode()


@pytest.mark.parametrize(
    "change,fragment",
    [
        (_nan_logprobs, "holds NaN, which is not a number"),
        (lambda a: json.dumps(a).replace("-0.4", "-Infinity").encode(), "holds -Infinity, which is not a number"),
        (lambda a: json.dumps(a).replace("-0.4", "-1e999").encode(), "holds -1e999, which is not a number"),
        (lambda a: {**a, "choices": [{**a["choices"][0], "logprobs": {**a["choices"][0]["logprobs"], "token_logprobs": [None, 3.5] * 9}}]},
         "must be at most 0.001"),
        (lambda a: {**a, "choices": "nope"}, "the answer's choices is a string, not an array"),
    ],
)
def test_log_probabilities_that_are_not_finite_or_not_log_probabilities_are_never_scored(
    pytester: pytest.Pytester, change: Callable[..., Any], fragment: str
) -> None:
    result, _, samples = run(pytester, only("rank", change))
    one_line_errors(result, samples, "test_choices", fragment)
    untouched(samples, "test_numbers")


@pytest.mark.parametrize(
    "kind,change,fragment",
    [
        ("plain", lambda a: {**a, "choices": [{**a["choices"][0], "text": {"answer": 4}}]}, "choices[0].text is an object, not a string"),
        ("plain", lambda a: {**a, "choices": [{**a["choices"][0], "text": 4}]}, "choices[0].text is a number, not a string"),
        ("chat", lambda a: {**a, "choices": [{"message": {"content": ["4"]}}]}, "message.content is an array, not a string or null"),
        ("chat", lambda a: {**a, "choices": {"0": a["choices"][0]}}, "the answer's choices is an object, not an array"),
        ("chat", lambda a: [a], "the answer is an array, not an object"),
        ("chat", lambda a: {**a, "choices": []}, "the answer's choices is empty"),
        ("chat", lambda a: {**a, "usage": "lots"}, "the answer's usage is a string"),
        ("chat", lambda a: {**a, "usage": {"prompt_tokens": -50, "completion_tokens": 3}}, "usage.prompt_tokens is -50; it must be at least 0"),
        ("chat", lambda a: {**a, "usage": {"prompt_tokens": 1e308, "completion_tokens": 1e308}}, "usage.prompt_tokens is 1e+308; it must be at most"),
        ("chat", lambda a: {**a, "usage": {"prompt_tokens": "12", "completion_tokens": 3}}, "usage.prompt_tokens is a string, not a whole number"),
        ("chat", lambda a: json.dumps({**a, "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).replace('"completion_tokens": 1', '"completion_tokens": NaN').encode(),
         "holds NaN"),
        ("chat", lambda a: (302, {**a, "note": "a JSON body"}), "answered HTTP 302, a redirect"),
        ("chat", lambda a: (200, b"[" * 100000 + b"]" * 100000), "the answer has nesting deeper than 64 levels"),
        ("chat", lambda a: {**a, "extra": json.loads("[" * 70 + "]" * 70)}, "the answer has nesting deeper than 64 levels"),
        ("chat", lambda a: (400, b"[" * 100000), "answered HTTP 400: [[[["),
        ("chat", lambda a: (400, {"error": {"message": "\x1b[2J\x1b[32m 10 passed, gate passed \u202e"}}),
         "answered HTTP 400: \\x1b[2J\\x1b[32m 10 passed, gate passed \\u202e"),
    ],
)
def test_answers_of_the_wrong_shape_or_with_impossible_values_error_their_cases_in_one_line(
    pytester: pytest.Pytester, kind: str, change: Callable[..., Any], fragment: str
) -> None:
    result, results, samples = run(pytester, only(kind, change), "--llmeval-price-in=1", "--llmeval-price-out=1")
    one_line_errors(result, samples, "test_numbers" if kind == "chat" else "test_plain", fragment)
    untouched(samples, "test_plain" if kind == "chat" else "test_numbers")
    usage = results["usage"]["requests"]
    assert usage["cost_usd"] >= 0 and usage["tokens_in"] >= 0 and usage["tokens_in"] < 10**6  # nothing impossible was charged


def test_text_no_utf8_file_can_hold_is_replaced_and_scored(pytester: pytest.Pytester) -> None:
    """Lone surrogates (``\\ud800`` in JSON) in a completion, the model's name and the fingerprint
    become U+FFFD: the cases are scored on the rest, and every file is written."""

    def change(a: dict[str, Any]) -> bytes:
        text = json.dumps({**a, "model": "m\\udc80", "system_fingerprint": "fp\\ud83d"}).replace("\\\\u", "\\u")
        return text.replace("The answer is", "The \\ud800 answer is").encode()

    result, _, samples = run(pytester, only("chat", change), "--llmeval-html=report.html", "--llmeval-markdown=summary.md")
    mine = [s for k, s in samples.items() if k.startswith("test_numbers/")]
    assert {s["outcome"] for s in mine} == {"pass", "fail"} and all("\ufffd answer is" in s["completion"] for s in mine)
    assert (pytester.path / "report.html").exists() and (pytester.path / "summary.md").exists()
    assert "Traceback" not in result.stdout.str()


def test_an_answer_past_the_size_limit_is_never_held_whole_and_errors_its_cases(pytester: pytest.Pytester) -> None:
    """A gzip bomb (0.4 MB on the wire, 80 MiB unpacked): read up to 64 MiB, then dropped."""
    import zlib

    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: the gzip format
    bomb = b"".join(packer.compress(b" " * 2**20) for _ in range(80)) + packer.flush()
    result, _, samples = run(pytester, only("chat", lambda a: (200, bomb, {"Content-Encoding": "gzip"})))
    one_line_errors(result, samples, "test_numbers", "answered HTTP 200 with more than 64 MiB; the server's answer was not used")
    untouched(samples, "test_plain")


def test_a_charset_that_is_no_text_encoding_reads_as_utf8(pytester: pytest.Pytester) -> None:
    result, _, samples = run(pytester, only("chat", lambda a: (200, a, {"Content-Type": "application/json; charset=rot13"})))
    untouched(samples, "test_numbers")
    assert "Traceback" not in result.stdout.str()


def test_negative_token_counts_never_make_the_budget_grow(pytester: pytest.Pytester) -> None:
    """A server that reports negative counts on some answers: those cases error, the others are
    charged, and llmeval_max_cost still stops the run."""

    def hostile(path: str, body: dict[str, Any], answer: dict[str, Any]) -> tuple[int, Any]:
        if "Give the number 1." in json.dumps(body):
            return 200, {**answer, "usage": {"prompt_tokens": -10**9, "completion_tokens": -10**9}}
        return 200, answer

    result, results, samples = run(pytester, hostile, "--llmeval-concurrency=1", "--llmeval-price-in=1000", "--llmeval-price-out=1000",
                                   "--llmeval-max-cost=0.02", "-k", "test_numbers or test_plain")  # fmt: skip
    requests = results["usage"]["requests"]
    assert requests["cost_usd"] >= 0.02 and requests["not_sent"] > 0
    assert any("not sent: the cost budget" in s["reason"] for s in samples.values() if s["outcome"] == "error")


def test_the_one_check_of_what_any_backend_returns() -> None:
    """Every backend's outputs pass one check before they are cached or scored."""
    good = Ranked("Q", ("a", "b"), (-1.0, -2.0), (True, False))
    assert checked("rank", good) is good
    for values in ((float("nan"), -1.0), (float("-inf"), -1.0), (-1.0,), ("x", -1.0)):
        bad = checked("rank", Ranked("Q", ("a", "b"), values, (False, False)))
        assert isinstance(bad, OutputError) and "\n" not in str(bad)
    assert checked("generate", Completion("4")) == "4"
    assert isinstance(checked("generate", {"text": "4"}), OutputError)
