"""Through the plugin: a generation suite that sends raw prompts to a model with a chat template
is flagged once per suite; every suite's fingerprint says whether the template was applied and
which versions computed it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.models import has_chat_template

pytest_plugins = ["pytester"]

WARNING = "the model has a chat template, but this generation suite sends raw prompts"

SUITES = """
import pytest_llmeval as le

CASES = [{"id": f"c{i}", "q": f"What is {i} + 1?", "choices": ["yes", "no"]} for i in range(3)]

@le.cases(CASES, prompt="{q}", max_new_tokens=2)
def test_unsaid(case, completion):
    pass

@le.cases(CASES, prompt="{q}", max_new_tokens=2, chat=False)
def test_raw(case, completion):
    pass

@le.cases(CASES, prompt="{q}", max_new_tokens=2, chat=True)
def test_chat(case, completion):
    pass

@le.cases(CASES, prompt="{q}", choices="choices")
def test_ranked(case, ranked):
    pass
"""


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    out = pytester.path / "out"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--llmeval-output={out}", *args)
    return result, json.loads((out / "results.json").read_text())


def warned_suites(result: pytest.RunResult) -> list[str]:
    return [line.split(": ", 1)[0] for line in result.outlines if WARNING in line]


def test_an_instruct_model_without_chat_is_flagged_once_per_generation_suite(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\n")
    pytester.makepyfile(test_suites=SUITES)
    result, data = run(pytester)
    result.assert_outcomes(passed=12)
    # three cases, one line; not for chat=False, chat=True, nor the multiple-choice suite
    assert warned_suites(result) == ["test_suites.py::test_unsaid"]
    hint = result.outlines[result.outlines.index(next(line for line in result.outlines if WARNING in line)) + 1]
    assert "le.cases(..., chat=True)" in hint and "chat=False" in hint
    assert [m["text"].split(": ")[0] for m in data["messages"] if WARNING in m["text"]] == ["test_suites.py::test_unsaid"]
    fingerprints = {name.split("::")[1]: s["fingerprint"] for name, s in data["suites"].items()}
    assert {name: fp["chat"] for name, fp in fingerprints.items()} == {
        "test_unsaid": False, "test_raw": False, "test_chat": True, "test_ranked": False,
    }  # fmt: skip
    import tokenizers
    import torch
    import transformers

    import pytest_llmeval

    assert fingerprints["test_ranked"]["versions"] == {
        "pytest-llmeval": pytest_llmeval.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
    }
    # not said and chat=False send the same prompt: the same prompt hash, so they compare
    assert fingerprints["test_unsaid"]["prompt"] == fingerprints["test_raw"]["prompt"] != fingerprints["test_chat"]["prompt"]


FAKE_BACKEND = """
from pytest_llmeval import Completion


class Backend:
    capabilities = frozenset({"generate"})

    def __init__(self, settings, fingerprint, has_template):
        self.settings = settings
        self.fingerprint = fingerprint
        if has_template is not None:
            self.has_chat_template = has_template

    def describe(self):
        return "fake"

    def run_generate(self, requests, progress=None):
        return [Completion("x", prompt=r.text) for r in requests]

    def check(self):
        return None


def pytest_llmeval_make_backend(config, settings):
    return Backend(settings, FINGERPRINT, HAS_TEMPLATE)
"""


@pytest.mark.parametrize(
    "fingerprint,has_template,warned",
    [
        ({"model": "m"}, None, False),  # nothing says there is a template
        ({"model": "m", "chat_template": None}, None, False),
        ({"model": "m", "chat_template": "sha256:t"}, None, True),
        ({"model": "m"}, True, True),  # the attribute says so
        ({"model": "m", "chat_template": "sha256:t"}, False, False),  # the attribute wins
    ],
)
def test_a_backend_says_whether_it_has_a_chat_template(
    pytester: pytest.Pytester, fingerprint: dict[str, Any], has_template: bool | None, warned: bool
) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    fp = dict(fingerprint, versions={"server": "1.2"})
    pytester.makeconftest(f"FINGERPRINT = {fp!r}\nHAS_TEMPLATE = {has_template!r}\n" + FAKE_BACKEND)
    pytester.makepyfile(
        test_gen="""
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}, {"id": "b", "q": "y"}], prompt="{q}")
        def test_gen(case, completion):
            pass
        """
    )
    result, data = run(pytester)
    result.assert_outcomes(passed=2)
    assert warned_suites(result) == (["test_gen.py::test_gen"] if warned else [])
    versions = data["suites"]["test_gen.py::test_gen"]["fingerprint"]["versions"]
    assert set(versions) == {"server", "pytest-llmeval"} and versions["server"] == "1.2"


class _Fake:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def test_has_chat_template_reads_the_attribute_then_the_fingerprint() -> None:
    assert has_chat_template(_Fake(fingerprint={"chat_template": "sha256:t"}))
    assert not has_chat_template(_Fake(fingerprint={"chat_template": None}))
    assert not has_chat_template(_Fake(fingerprint={}))
    assert not has_chat_template(_Fake())
    assert has_chat_template(_Fake(has_chat_template=True, fingerprint={}))
    assert not has_chat_template(_Fake(has_chat_template=False, fingerprint={"chat_template": "sha256:t"}))
