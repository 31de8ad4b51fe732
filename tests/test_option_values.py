"""Option values: a value the start-up check accepts works in every case; one that would fail later
(or hang, or cut every completion) is a one-line usage error before anything runs."""

from __future__ import annotations

import json
import math
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.options import OPTIONS, settings_from
from pytest_llmeval.settings import MAX_REPEATS, GenerationSettings, LLMSettings, SettingsError, stop_problem

pytest_plugins = ["pytester"]

HOSTILE = [
    "", " ", "0", "-0", "-1", "1", "0.5", "1e-9", "1e308", "1e400", "inf", "-inf", "nan", "Infinity",
    str(2**63 - 1), str(2**63), str(2**64), str(10**30), "1_000", "0x10", "abc", "\x1b[32m", "1\n2",
    "http://h:99999/v1", "http://h:0/v1", "http://h:-1/v1", "http://[::1/v1", "http://h:abc/v1",
    "ftp://h/v1", "http:///v1", "h:8000", "http://h /v1", "http://127.0.0.1:8000/v1", "https://api.example.com/v1",
]
SETTING_OPTIONS = [o for o in OPTIONS if o.setting is not None]


def _accepted(name: str, text: str) -> LLMSettings | None:
    """The settings an option value gives when the start-up check takes it, else None."""
    option = next(o for o in OPTIONS if o.name == name)
    try:
        value = option.parse(text) if option.kind != "append" else (option.parse(text),)
        values = {name: value}
        if name in ("temperature", "top-p"):
            values["do-sample"] = True
        return settings_from(values)
    except (ValueError, SettingsError):  # SettingsError is a ValueError too: a usage error at start-up
        return None


def _use(settings: LLMSettings) -> None:
    """What the backends do with the settings, for every case: any failure here is the bug."""
    from pytest_llmeval.models.hf_loading import seed_everything
    from pytest_llmeval.models.http_shapes import generate_payload

    for chat in (False, True):
        _, body = generate_payload("m", Request(kind="generate", text="q", chat=chat, stop=None), settings)
        json.dumps(body, allow_nan=False)  # a server takes only finite JSON numbers
    seed_everything(settings.seed)
    seed_everything(settings.seed + 1000)  # each batch's seed
    assert math.isfinite(settings.request_timeout) and settings.request_timeout > 0, "a request that may never end"
    if settings.base_url is not None:
        parts = urlsplit(settings.base_url)
        assert parts.scheme in ("http", "https") and parts.hostname and parts.port != 0
    assert all(settings.generation.stop), "an empty stop string cuts every completion"
    if settings.generation.do_sample and settings.generation.temperature is not None:
        assert settings.generation.temperature > 0, "temperature 0 while sampling"


@pytest.mark.parametrize("option", SETTING_OPTIONS, ids=lambda o: o.name)
def test_every_value_the_start_up_check_accepts_works_in_every_case(option) -> None:
    for text in HOSTILE:
        settings = _accepted(option.name, text)
        if settings is not None:
            _use(settings)


@given(name=st.sampled_from([o.name for o in SETTING_OPTIONS]), text=st.text(max_size=30) | st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,5})?(e[+-]?[0-9]{1,3})?", fullmatch=True))
@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_for_any_model_option_is_refused_or_works(name: str, text: str) -> None:
    settings = _accepted(name, text)
    if settings is not None:
        _use(settings)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--llmeval-stop="], "*--llmeval-stop: an empty stop string would cut every completion*"),
        (["--llmeval-stop=END", "--llmeval-stop="], "*--llmeval-stop: an empty stop string*"),
        ([f"--llmeval-seed={2**64}"], f"*--llmeval-seed: must be from 0 to {2**63 - 1}, got {2**64}"),
        (["--llmeval-seed=-1"], "*--llmeval-seed: must be from 0 to *"),
        (["--llmeval-do-sample", "--llmeval-temperature=0"], "*temperature 0 (--llmeval-temperature) while sampling*"),
        (["--llmeval-do-sample", "--llmeval-temperature=inf"], "*--llmeval-temperature: must be a finite number of at least 0, got 'inf'"),
        (["--llmeval-do-sample", "--llmeval-top-p=0"], "*top_p (--llmeval-top-p) must be above 0 and at most 1, got 0.0"),
        (["--llmeval-request-timeout=inf"], "*--llmeval-request-timeout: must be between 0.001 and 86400, got 'inf'"),
        (["--llmeval-request-timeout=1e9"], "*--llmeval-request-timeout: must be between 0.001 and 86400, got '1e9'"),
        (["--llmeval-repeats=1000000"], f"*--llmeval-repeats: must be from 1 to {MAX_REPEATS}, got 1000000"),
        (["--llmeval-pass-k=5,1000000"], f"*--llmeval-pass-k: expected whole numbers from 1 to {MAX_REPEATS}*"),
        (["--llmeval-base-url=http://127.0.0.1:99999/v1"], "*--llmeval-base-url: not a valid URL (Port out of range*"),
        (["--llmeval-base-url=http://127.0.0.1:0/v1"], "*--llmeval-base-url: port 0 is not a server's port*"),
        (["--llmeval-base-url=127.0.0.1:8000"], "*--llmeval-base-url: expected an http:// or https:// URL with a host*"),
        (["--llmeval-base-url=http://[::1/v1"], "*--llmeval-base-url: not a valid URL*"),
        (["--llmeval-max-new-tokens=1e3"], "*--llmeval-max-new-tokens: expected a whole number, got '1e3'"),
    ],
)
def test_values_that_would_fail_in_every_case_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: llmeval: {message.lstrip('*')}" if message.startswith("*--") else message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_an_empty_stop_line_in_the_ini_is_skipped_like_any_empty_line(pytester: pytest.Pytester) -> None:
    """The ini's line list has no empty entries (pytest drops blank lines): only the stops written count."""
    pytester.makeini("[pytest]\nllmeval_stop =\n    END\n\n    STOP\n")
    pytester.makeconftest(
        "import pytest\n"
        "def pytest_sessionfinish(session):\n"
        "    from pytest_llmeval.plugin.state import STATE\n"
        "    print('STOPS', session.config.stash[STATE].settings.generation.stop)\n"
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*STOPS ('END', 'STOP')"])


def test_the_stop_rule_is_one_rule_for_the_option_the_ini_and_le_cases(pytester: pytest.Pytester) -> None:
    assert stop_problem(("",)) is not None and stop_problem(("a", "")) is not None and stop_problem(("a",)) is None
    with pytest.raises(SettingsError, match="empty stop string"):
        GenerationSettings(stop=("",))
    with pytest.raises(SettingsError, match="empty stop string"):
        GenerationSettings().merged(stop="")  # llm.generate(stop="") in a test
    pytester.makepyfile(
        "import pytest_llmeval as le\n"
        "@le.cases([{'id': 'a', 'q': 'x'}], prompt='{q}', stop=['END', ''])\n"
        "def test_gen(case, completion):\n    pass\n"
    )
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["*llmeval: le.cases of test_gen: stop= must be a string or a list of non-empty strings*"])


def test_le_cases_repeats_has_the_bound_of_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest_llmeval as le\n"
        "@le.cases([{'id': 'a', 'q': 'x'}], prompt='{q}', repeats=1000000)\n"
        "def test_gen(case, completion):\n    pass\n"
    )
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines([f"*repeats= must be a whole number from 1 to {MAX_REPEATS}, got 1000000*"])


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"seed": 2**64}, "seed"),
        ({"seed": True}, "seed"),
        ({"request_timeout": math.inf}, "request_timeout"),
        ({"request_timeout": math.nan}, "request_timeout"),
        ({"base_url": "http://h:70000/v1"}, "base_url"),
        ({"base_url": "http://user:secret@h:70000/v1"}, "base_url"),
    ],
)
def test_settings_made_in_code_are_checked_the_same_way(changes: dict, match: str) -> None:
    """``llm_settings`` returning LLMSettings(...) gets the rule of the options, and a URL's password is never repeated."""
    with pytest.raises(SettingsError, match=match) as caught:
        LLMSettings(**changes)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("changes", [{"temperature": math.inf}, {"temperature": math.nan}, {"temperature": 0.0}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": 2.5}])
def test_generation_settings_made_in_code_are_checked(changes: dict) -> None:
    with pytest.raises(SettingsError):
        GenerationSettings(do_sample=True, **changes)
