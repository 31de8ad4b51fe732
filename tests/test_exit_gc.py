"""At interpreter exit the session's survivors are collected once, then frozen, so the shutdown's
collections do not walk them again (pytest_llmeval.plugin.exit_gc)."""

from __future__ import annotations

import pytest

from pytest_llmeval.plugin import exit_gc

pytest_plugins = ["pytester"]

CONFTEST = """
import atexit, gc, os

def _report():  # registered before the plugin's handler, so it runs after it
    with open(os.environ["FREEZE_REPORT"], "w") as out:
        out.write(str(gc.get_freeze_count()))

atexit.register(_report)
"""


def test_the_exit_handler_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(exit_gc, "_registered", False)
    monkeypatch.setattr(exit_gc.atexit, "register", calls.append)
    exit_gc.register()
    exit_gc.register()
    assert calls == [exit_gc._collect_then_freeze]


def test_a_session_process_freezes_its_survivors_at_exit(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    report = pytester.path / "freeze.txt"
    monkeypatch.setenv("FREEZE_REPORT", str(report))
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == 0
    assert int(report.read_text()) > 0  # without the handler nothing is frozen: 0
