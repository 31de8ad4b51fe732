"""Settings: parsing, validation, precedence of options over ini keys, model paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.plugin.options import OPTIONS, setting_of, settings_from
from pytest_llmeval.settings import GenerationSettings, LLMSettings, SettingsError, resolve_model_path

pytest_plugins = ["pytester"]


def test_defaults_are_greedy_and_pinned() -> None:
    s = settings_from({})
    assert s.generation.do_sample is False and s.generation.max_new_tokens == 64
    assert s.batch_size == "auto" and s.seed == 1234
    assert s.generation.to_json() == {"do_sample": False, "max_new_tokens": 64}


def test_every_model_option_reaches_its_setting() -> None:
    values = {"model": "m", "dtype": "float16", "device": "cpu", "batch-size": 3, "seed": 7, "max-new-tokens": 5,
              "stop": ("END",), "do-sample": True, "temperature": 0.5, "top-p": 0.9, "max-length": 99, "cpu-matmul": "torch",
              "base-url": "http://h/v1", "api-key-env": "K", "concurrency": 3, "request-timeout": 2.5, "max-retries": 1,
              "price-in": 0.5, "price-out": 1.5, "max-cost": 2.0, "thinking": False, "max-reasoning-tokens": 256}
    settings = settings_from(values)
    model_options = [o for o in OPTIONS if o.setting]
    assert sorted(o.name for o in model_options) == sorted(values)
    for option in model_options:
        assert setting_of(settings, option) == values[option.name], option.name


def test_reasoning_settings_are_fingerprinted_only_when_set() -> None:
    plain = GenerationSettings()
    assert "thinking" not in plain.to_json() and "max_reasoning_tokens" not in plain.to_json()
    set_ = plain.merged(thinking=False, max_reasoning_tokens=0)
    assert set_.to_json() == {"do_sample": False, "max_new_tokens": 64, "thinking": False, "max_reasoning_tokens": 0}
    assert set_.merged(thinking=None) == set_  # a suite that says nothing keeps the session's
    with pytest.raises(SettingsError, match="max_reasoning_tokens must be at least 0"):
        GenerationSettings(max_reasoning_tokens=-1)


def test_sampling_options_need_do_sample() -> None:
    with pytest.raises(SettingsError, match="only apply when sampling"):
        GenerationSettings(temperature=0.7)
    sampled = GenerationSettings(do_sample=True, temperature=0.7)
    assert sampled.to_json() == {"do_sample": True, "max_new_tokens": 64, "temperature": 0.7, "top_p": 1.0}


@pytest.mark.parametrize("value,expected", [("auto", "auto"), ("8", 8), (4, 4)])
def test_batch_size_is_a_number_or_auto(value: object, expected: object) -> None:
    assert LLMSettings(batch_size=value).batch_size == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs,message", [({"batch_size": "many"}, "number or 'auto'"), ({"batch_size": 0}, "at least 1"), ({"dtype": "int3"}, "dtype must be")])
def test_bad_settings_say_what_is_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        LLMSettings(**kwargs)


def test_merged_overrides_only_given_fields() -> None:
    base = GenerationSettings(max_new_tokens=10, stop=("\n",))
    assert base.merged(max_new_tokens=None, stop=None) == base
    assert base.merged(stop="END").stop == ("END",)


def test_pkg_model_paths_resolve_inside_installed_packages() -> None:
    path = resolve_model_path("pkg:pytest_llmeval/settings.py")
    assert Path(path).name == "settings.py" and Path(path).exists()
    with pytest.raises(SettingsError, match="is not installed"):
        resolve_model_path("pkg:no_such_package_xyz/model.gguf")
    with pytest.raises(SettingsError, match="does not exist"):
        resolve_model_path("pkg:pytest_llmeval/missing.gguf")
    assert resolve_model_path("org/some-model") == "org/some-model"  # a hub id stays as it is


def test_command_line_overrides_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_max_new_tokens = 7\nllmeval_seed = 5\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        def test_settings(llm_settings):
            print("SETTINGS", llm_settings.seed, llm_settings.generation.max_new_tokens)
        """
    )
    result = pytester.runpytest("-s", "--llmeval-seed", "9")
    result.stdout.fnmatch_lines(["*SETTINGS 9 7*"])


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_batch_size = lots\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*llmeval: llmeval_batch_size (in tox.ini): expected a number or 'auto', got 'lots'"])


def test_stop_strings_end_completions(tiny_model_dir: Path) -> None:
    from pytest_llmeval.models.hf import HFBackend

    backend = HFBackend.load(LLMSettings(model=str(tiny_model_dir), generation=GenerationSettings(max_new_tokens=12)))
    full = backend.generate("What is two plus two?")
    assert full.finish_reason == "length" and len(full) > 3
    stop = full[2:4]
    cut = backend.generate("What is two plus two?", stop=[stop])
    assert cut == full[: full.find(stop)] and cut.finish_reason == "stop"
