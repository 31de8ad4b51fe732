"""The shipped SkyPilot task: it cannot run here (no cloud), so its shape is checked: it serves with
vLLM across the node's GPUs and runs pytest with options this plugin has."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from project_files import distribution_name

from pytest_llmeval.plugin.options import OPTIONS

TASK = Path(__file__).resolve().parent.parent / "example_suites" / "skypilot.yaml"


def test_the_skypilot_task_serves_with_vllm_and_runs_the_evals_against_it():
    task = yaml.safe_load(TASK.read_text())
    assert {"resources", "setup", "run", "envs"} <= set(task)
    run = task["run"]
    assert "vllm serve" in run and "--tensor-parallel-size" in run and "/health" in run
    assert task["envs"]["LLMEVAL_PACKAGE"] == f"{distribution_name()}[http]"
    assert 'pip install "vllm>=0.6" "$LLMEVAL_PACKAGE"' in task["setup"]
    flags = set(re.findall(r"(--llmeval-[a-z-]+)=", run))
    assert {"--llmeval-model", "--llmeval-base-url"} <= flags
    assert flags <= {o.flag for o in OPTIONS}
    assert '--llmeval-model="openai:$MODEL"' in run
