"""Secrets, as a class: the API key and the base URL's credentials appear in no file the plugin
writes and no line it prints, whatever a hostile server sends back, in any encoding it may echo
them in; and the one redaction that makes it so (:mod:`pytest_llmeval.redaction`)."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from pytest_llmeval import redaction
from pytest_llmeval.redaction import MASK, Redactor, Secret, redact_args, redact_url

pytest_plugins = ["pytester"]

KEY = "sk-Ab3/Zz+9Qy_hostile/KEY-7f3a9c1e5b"
PASSWORD = "pa55word-SECRET-91"
QUERY_KEY = "QUERYSECRET-c0ffee-42"
SECRETS = (KEY, PASSWORD, QUERY_KEY)


def encodings(secret: str) -> dict[str, str]:
    """The forms a server may plausibly echo ``secret`` in (written here independently of the
    redaction module): each must be absent from what the plugin writes and prints."""
    data = secret.encode()
    forms = {
        "raw": secret,
        "upper": secret.upper(),
        "json": json.dumps(secret)[1:-1],
        "json-slash": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "json-unicode": "".join(f"\\u{ord(c):04x}" for c in secret),
        "url": quote(secret, safe=""),
        "url-plus": quote_plus(secret),
        "html": "".join(f"&#{ord(c)};" for c in secret),
        "hex": data.hex(),
    }
    for start in range(3):
        whole = data[start : start + 3 * ((len(data) - start) // 3)]
        forms[f"base64-{start}"] = base64.b64encode(whole).decode()
    return forms


def leaks(text: str) -> list[str]:
    """Which secret, in which form, ``text`` holds (also any 12 characters in a row of one)."""
    found = []
    folded = text.casefold()
    for secret in SECRETS:
        for name, form in encodings(secret).items():
            if (form in text) if name.startswith("base64") else (form.casefold() in folded):
                found.append(f"{secret[:4]}... as {name}")
        found += [f"{secret[:4]}... part {i}" for i in range(len(secret) - 11) if secret[i : i + 12].casefold() in folded]
    return found


# ---------------------------------------------------------------- the redaction on its own


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.add(KEY + "\xa0")  # as pasted, with a non-breaking space
    return r


@pytest.mark.parametrize("form", sorted(encodings(KEY)))
def test_every_encoding_of_a_secret_is_redacted(redactor: Redactor, form: str) -> None:
    text = f'{{"error": "bad key: {encodings(KEY)[form]}", "n": 1}}'
    assert not leaks(redactor.redact(text)) and MASK in redactor.redact(text)


def test_encodings_stacked_and_mixed_are_redacted(redactor: Redactor) -> None:
    for text in (
        quote(json.dumps({"k": KEY})),
        json.dumps(json.dumps(KEY)),
        json.dumps(KEY, ensure_ascii=True).replace("-", "\\u002d").replace("/", "\\/"),
        html.escape(json.dumps({"k": KEY})),
        f"b'Bearer {KEY}\\xa0'",  # as h11 quotes a header value it refuses
        base64.b64encode(f"user:{KEY}".encode()).decode(),  # basic auth
    ):
        assert not leaks(redactor.redact(text)), text


@hsettings(max_examples=80, deadline=None)
@given(before=st.text(max_size=20), after=st.text(max_size=20), form=st.sampled_from(sorted(encodings(KEY))))
def test_a_secret_anywhere_in_any_text_is_redacted(before: str, after: str, form: str) -> None:
    r = Redactor()
    r.add(KEY)
    assert not leaks(r.redact(before + encodings(KEY)[form] + after))


@hsettings(max_examples=80, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_text_without_a_secret_is_left_as_it_is(text: str) -> None:
    r = Redactor()
    r.add(KEY)
    if not leaks(text):
        assert r.redact(text) == text


def test_short_placeholder_keys_are_not_secrets() -> None:
    r = Redactor()
    r.add("EMPTY")
    assert r.redact("EMPTY answer") == "EMPTY answer" and not r


def test_a_secret_holds_its_value_out_of_sight() -> None:
    secret = Secret(KEY)
    assert KEY not in repr(secret) + str(secret) + f"{secret}" + repr([secret]) and secret.reveal() == KEY
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)
    problem = Secret(KEY + "\xa0").header_problem()
    assert problem is not None and "U+00A0 (a non-breaking space) at character" in problem and KEY not in problem
    assert Secret(KEY).header_problem() is None


def test_urls_and_command_lines_lose_their_credentials_and_keep_the_rest() -> None:
    url = f"https://user:{PASSWORD}@host.example:8443/v1?api-key={QUERY_KEY}&api-version=2024-06"
    assert redact_url(url) == "https://***@host.example:8443/v1?api-key=***&api-version=2024-06"
    args = redact_args(["tests", f"--llmeval-base-url={url}", "--llmeval-base-url", url, "-k", "x"])
    assert args == ["tests", f"--llmeval-base-url={redact_url(url)}", "--llmeval-base-url", redact_url(url), "-k", "x"]
    assert redaction.url_credentials(url) == ["user", PASSWORD, QUERY_KEY]


def test_settings_never_show_the_base_url_credentials() -> None:
    from pytest_llmeval.settings import LLMSettings

    settings = LLMSettings(model="openai:m", base_url=f"http://user:{PASSWORD}@h/v1?key={QUERY_KEY}")
    assert not leaks(repr(settings) + json.dumps(settings.to_json()))


def test_a_url_with_credentials_too_short_to_register_is_still_shown_without_them() -> None:
    line = 'HTTP Request: POST http://ab:pw@h:8/v1/completions?key=k1&x=1 "HTTP/1.1 200 OK" see https://h/docs'
    assert redaction.redact_line(line) == 'HTTP Request: POST http://***@h:8/v1/completions?key=***&x=1 "HTTP/1.1 200 OK" see https://h/docs'


def test_log_records_are_redacted_as_they_are_made(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    redaction.register(KEY)
    log = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO, logger="some.library"):
        log.info("POST %s with %r", f"http://h/v1?api-key={quote(KEY)}", {"auth": KEY})
        try:
            raise ValueError(f"bad {KEY}")
        except ValueError:
            log.exception("failed")
    shown = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert "failed" in shown and "ValueError: bad ***" in shown and not leaks(shown)


# ---------------------------------------------------------------- hostile servers, end to end

httpx = pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import FakeVLLM, free_port  # noqa: E402

from pytest_llmeval.models import http_client  # noqa: E402

SUITES = '''
import pytest_llmeval as le

@le.cases("numbers.jsonl", prompt="{question}", chat=True, max_new_tokens=8)
def test_numbers(case, completion):
    print("the model said:", completion)
    le.assert_number(completion, case["answer"])

@le.cases("numbers.jsonl", prompt="{question}", chat=True, max_new_tokens=8,
          judge=le.Rubric("The reply gives a number."))
def test_judged(case, completion, judgement):
    le.assert_judged(judgement)

@le.cases("choices.jsonl", prompt="{question}", choices="choices", chat=False)
def test_choices(case, ranked):
    le.assert_choice(ranked, case["answer"])

@le.cases("numbers.jsonl", prompt="{question}", chat=True, max_new_tokens=8)
def test_broken_scorer(case, completion, llm, llm_settings):
    kept = str(completion)
    raise RuntimeError("a scorer bug, shown with its locals under -l")
'''
N = 10


def _echo(n: int) -> str:
    """The key as the n-th request's answer echoes it."""
    forms = list(encodings(KEY).values())
    return forms[n % len(forms)]


def hostile(path: str, body: dict[str, Any], answer: dict[str, Any]) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
    """Echoes the key (from the Authorization header it was sent, known here as KEY) and the URL's
    credentials in every place and form it can: completions, model names, system fingerprints,
    logprob tokens, an error body (a 400 with the key past character 290, escaped)."""
    text = json.dumps(body)
    n = sum(map(ord, text)) % 97
    if "Give the number 3." in text and "Verdict" not in text:
        detail = "x" * 290 + KEY.replace("/", "\\/")  # cut at 300 characters only after the key is removed
        return 400, ('{"error": {"message": "' + detail + '"}}').encode()
    answer = json.loads(json.dumps(answer))
    answer["model"] = f"served-{KEY}"
    answer["system_fingerprint"] = f"fp-{PASSWORD}-{n % 3}"
    for choice in answer["choices"]:
        if "message" in choice:
            choice["message"]["content"] += f" (key {_echo(n)}; pw {PASSWORD}; q {quote(QUERY_KEY)})"
        elif choice.get("logprobs"):
            choice["logprobs"]["tokens"] = [t.replace("!", KEY) for t in choice["logprobs"]["tokens"]]
        else:
            choice["text"] += f" {_echo(n)}"
    raw = json.dumps(answer).replace(json.dumps(KEY)[1:-1], json.dumps(KEY)[1:-1].replace("/", "\\/"))
    return 200, raw.encode()


def write_suites(pytester: pytest.Pytester) -> None:
    numbers = [{"id": f"n{i}", "question": f"Give the number {i}.", "answer": i} for i in range(N)]
    choices = [{"id": f"c{i}", "question": f"Pick {i}:", "choices": ["yes", "absolutely"], "answer": i % 2} for i in range(3)]
    pytester.makefile(".jsonl", numbers="\n".join(json.dumps(c) for c in numbers))
    pytester.makefile(".jsonl", choices="\n".join(json.dumps(c) for c in choices))
    pytester.makepyfile(test_suites=SUITES)
    pytester.makeini("[pytest]\nllmeval_api_key_env = LLMEVAL_HOSTILE_KEY\nfilterwarnings = ignore::UserWarning\n")


def every_file(root: Path) -> dict[str, str]:
    """Every file under ``root`` (binary ones, SQLite included, decoded leniently)."""
    return {str(p.relative_to(root)): p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def hostile_url(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(http_client, "BACKOFF_BASE", 0.01)
    monkeypatch.setenv("LLMEVAL_HOSTILE_KEY", KEY)
    fake = FakeVLLM(hostile=hostile)
    with fake.run() as url:
        yield fake, url.replace("http://", f"http://user:{PASSWORD}@") + f"?api-key={QUERY_KEY}"


@pytest.mark.parametrize("tb", [["-l", "--tb=long"], ["--showlocals", "--tb=short", "-rA", "-v"]])
def test_a_hostile_server_echoing_the_secrets_gets_them_written_and_printed_nowhere(
    pytester: pytest.Pytester, hostile_url: Any, tb: list[str]
) -> None:
    fake, url = hostile_url
    write_suites(pytester)
    common = ["-p", "no:cacheprovider", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}", "--llmeval-output=out",
              "--llmeval-baseline=baseline.json", "--llmeval-history=.llmeval/history.sqlite", *tb]  # fmt: skip
    first = pytester.runpytest(*common)  # no baseline yet: prints the command that records one
    second = pytester.runpytest(*common, "--llmeval-update-baseline", "--llmeval-force", "--llmeval-markdown=summary.md",
                                "--junitxml=junit.xml", "--llmeval-html=report.html")  # fmt: skip
    third = pytester.runpytest(*common, "--llmeval-cache=refresh")  # the answers again, over the cached ones
    export = subprocess.run([sys.executable, "-m", "pytest_llmeval", "review", "export", "out", "labels.csv"],
                            cwd=pytester.path, capture_output=True, text=True)  # fmt: skip
    assert fake.requests and all(r["authorization"] == f"Bearer {KEY}" or r["authorization"].startswith("Basic ") for r in fake.requests)

    # the outcomes are what the server did: a redacted answer is still an answer
    samples = [json.loads(line) for line in (pytester.path / "out" / "samples.jsonl").read_text().splitlines()]
    by = {(s["suite"].split("::")[1], s["id"]): s for s in samples}
    for i in range(N):
        expected = "error" if i == 3 else "pass" if i % 2 == 0 else "fail"
        assert by[("test_numbers", f"n{i}")]["outcome"] == expected, by[("test_numbers", f"n{i}")]
        assert by[("test_broken_scorer", f"n{i}")]["outcome"] == "error"
    assert {by[("test_choices", f"c{i}")]["outcome"] for i in range(3)} <= {"pass", "fail"}
    assert by[("test_numbers", "n0")]["completion"].startswith("The answer is 0. (key ***")
    assert "x" * 200 in by[("test_numbers", "n3")]["reason"]  # the error body is shown, the key cut out of it first
    for run in (first, second, third):
        assert "Traceback" not in run.stdout.str() or "a scorer bug" in run.stdout.str()
    first.stdout.fnmatch_lines(["*record one with:*--llmeval-base-url=http://***@127.0.0.1:*/v1?api-key=***"])

    written = every_file(pytester.path)
    for name in ("out/results.json", "out/samples.jsonl", "baseline.json", ".llmeval/history.sqlite", ".llmeval/cache.sqlite",
                 "summary.md", "junit.xml", "report.html", "labels.csv"):  # fmt: skip
        assert name in written, (name, export.stderr)
    problems = {name: leaks(text) for name, text in written.items() if name != "tox.ini" and leaks(text)}
    printed = "".join(r.stdout.str() + r.stderr.str() for r in (first, second, third)) + export.stdout + export.stderr
    assert not problems and not leaks(printed), (problems, leaks(printed))


def test_live_logs_and_log_files_never_show_the_secrets(pytester: pytest.Pytester, hostile_url: Any) -> None:
    """The HTTP client logs every request's URL (with the base URL's credentials); live logging
    and --log-file write records as they are made, outside any test report."""
    fake, url = hostile_url
    write_suites(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}",
                                "-o", "log_cli=true", "--log-level=DEBUG", "--log-file=log.txt", "--log-file-level=DEBUG",
                                "-k", "test_numbers", "-rA")  # fmt: skip
    assert result.parseoutcomes()["errors"] == 1, result.parseoutcomes()  # the 400 with the key in its body
    printed = result.stdout.str() + result.stderr.str()
    assert re.search(r"HTTP Request: POST http://\*\*\*@127\.0\.0\.1:\d+/v1/chat/completions\?api-key=\*\*\* ", printed)
    assert not leaks(printed) and not leaks((pytester.path / "log.txt").read_text())


def test_a_key_that_cannot_go_in_a_header_is_one_line_that_does_not_show_it(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_HOSTILE_KEY", KEY + "\xa0")
    write_suites(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "-l", "--tb=long", "--llmeval-model=openai:fake-model",
                                f"--llmeval-base-url=http://127.0.0.1:{free_port()}/v1", "--junitxml=junit.xml", "-k", "test_numbers")  # fmt: skip
    result.assert_outcomes(errors=N)
    result.stdout.fnmatch_lines([f"*llmeval: the API key in $LLMEVAL_HOSTILE_KEY holds U+00A0 (a non-breaking space) at character {len(KEY) + 1} of {len(KEY) + 1}, "
                                 "which cannot be sent in an HTTP header; set it again without that character*"])  # fmt: skip
    out = result.stdout.str() + result.stderr.str() + (pytester.path / "junit.xml").read_text()
    assert "Traceback" not in out and not leaks(out)


def test_a_redirect_is_not_followed_and_its_location_is_shown_without_credentials(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3xx with a JSON body is no answer: the key would go where it points. One line, once."""
    monkeypatch.setenv("LLMEVAL_HOSTILE_KEY", KEY)
    location = f"http://u:{PASSWORD}@elsewhere.test/v1?key={QUERY_KEY}&x={quote(KEY)}"
    fake = FakeVLLM(hostile=lambda path, body, answer: (301, {**answer, "note": KEY}, {"Location": location}))
    write_suites(pytester)
    with fake.run() as url:
        result = pytester.runpytest("-p", "no:cacheprovider", "-l", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}",
                                    "--llmeval-concurrency=1", "-k", "test_numbers")  # fmt: skip
    result.assert_outcomes(errors=N)
    result.stdout.fnmatch_lines(["*answered HTTP 301, a redirect to http://***@elsewhere.test/v1?key=***&x=***; no more requests are sent*"])
    assert len(fake.requests) == 1 and not leaks(result.stdout.str() + result.stderr.str())
