"""The plugin's progress lines beside pytest's own: status letters never sit on a line of their
own, ``-q`` letters end their line before a plugin line, ``--durations`` says where the batched
runs are billed, xdist workers' lines reach the controller, and a GGUF conversion is announced."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le

@le.cases([{{"id": f"c{{i}}", "q": w}} for i, w in enumerate({words!r})], prompt="Question: {{q}}\\nAnswer:", max_new_tokens=4, chat=False)
def test_answer(case, completion):
    assert "zzz-never" in completion

def test_plain():
    pass
"""
WORDS = ["two plus two", "the capital of France", "the quick brown fox"]


def project(pytester: pytest.Pytester, model: Path | str, words: list[str] = WORDS) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\nllmeval_cache = off\n")
    pytester.makepyfile(test_evals=SUITE.format(words=words))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_status_letters_stay_on_the_files_line(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    project(pytester, tiny_model_dir)
    result = run(pytester)
    assert result.ret == 0, result.stdout.str()
    lines = result.stdout.lines
    done = next(i for i, line in enumerate(lines) if re.match(r"llmeval: 3/3 completions in ", line))
    assert lines[done + 1].startswith("test_evals.py mmm."), lines  # the file's name, then every letter
    assert not [line for line in lines if re.fullmatch(r"[.msEF]+(\s+\[\s*\d+%\])?", line.strip())], lines


def test_quiet_letters_end_their_line_before_a_plugin_line(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    project(pytester, tiny_model_dir)
    pytester.makepyfile(test_aaa="def test_first():\n    pass\n")  # runs first: its letter is on the line
    result = run(pytester, "-q")
    assert result.ret == 0, result.stdout.str()
    assert "llmeval: 3 completions in batches of up to 64" in result.stdout.lines, result.stdout.lines
    assert not [line for line in result.stdout.lines if re.match(r"^[.m]+llmeval:", line)]


def test_one_completion_reads_singular(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    project(pytester, tiny_model_dir, words=["two plus two"])
    result = run(pytester)
    result.stdout.fnmatch_lines(["llmeval: 1 completion in batches of up to 64", "llmeval: 1/1 completions in *"])


def test_durations_say_where_the_batched_run_is_billed(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    project(pytester, tiny_model_dir)
    result = run(pytester, "--durations=0")
    result.stdout.fnmatch_lines(
        [
            "llmeval: --durations bills each batched run to the setup of the test that started it:",
            "  *s 3 completions, in the setup of test_evals.py::test_answer[[]c0[]]",
        ]
    )
    assert "--durations" not in run(pytester).stdout.str()  # said only when asked for durations


def test_xdist_workers_lines_reach_the_controller_and_not_junit(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytest.importorskip("xdist")
    project(pytester, tiny_model_dir)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2", "--junitxml=junit.xml")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "llmeval: each xdist worker computes its eval outputs 64 items at a time (--llmeval-window=); *",
            "[[]gw?[]] llmeval: loaded * in *s",
            "[[]gw?[]] llmeval: */* completions in *s",
        ]
    )
    names = {p.get("name") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert "llmeval_outcome" in names and "llmeval_lines" not in names


def test_a_gguf_conversion_is_announced(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(pytester.path / "cache"))
    (pytester.path / "broken.gguf").write_bytes(b"not a gguf file")
    project(pytester, "broken.gguf")
    result = run(pytester)
    result.stdout.fnmatch_lines(
        ["llmeval: converting broken.gguf to a transformers copy under *cache*converted (once per file: later runs load the copy *)"]
    )
    assert result.stdout.str().count("llmeval: converting") == 1  # the failed load is not tried again
    result.assert_outcomes(passed=1, errors=3)


class _Writer:
    def __init__(self, text: str) -> None:
        self.text = text

    @property
    def width_of_current_line(self) -> int:
        return len(self.text.rsplit("\n", 1)[-1])

    def write(self, text: str) -> None:
        self.text += text

    def line(self, text: str = "") -> None:
        self.text += text + "\n"


class _Reporter:
    """The parts of pytest's terminal reporter the progress lines use."""

    def __init__(self, tmp_path: Path, text: str, tty: bool) -> None:
        self._tw = _Writer(text)
        self.isatty = tty
        self.startpath = tmp_path
        self.currentfspath: object = tmp_path / "test_x.py" if text else None

    def write_line(self, line: str) -> None:
        if self.currentfspath is not None:
            self._tw.line()
            self.currentfspath = None
        self._tw.line(line)


@pytest.mark.parametrize(
    ("tty", "before", "shown"),
    [
        (True, "test_x.py ", "llmeval: 3 completions\n"),  # a terminal: the bare name is replaced
        (False, "test_x.py ", "test_x.py \nllmeval: 3 completions\n"),  # a log cannot take a line back
        (True, "test_x.py ..", "test_x.py ..\nllmeval: 3 completions\n"),  # letters are never erased
    ],
)
def test_a_bare_file_name_is_replaced_on_a_terminal_only(tmp_path: Path, tty: bool, before: str, shown: str) -> None:
    from types import SimpleNamespace

    from pytest_llmeval.plugin.progress import write_line

    reporter = _Reporter(tmp_path, before, tty)
    plugins = {"terminalreporter": reporter, "capturemanager": None}
    config = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=plugins.get))
    write_line(config, "llmeval: 3 completions")  # type: ignore[arg-type]
    assert reporter._tw.text.replace("\r\x1b[K", "\r").split("\r")[-1] == shown
