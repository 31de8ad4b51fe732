"""Text from cases, models and files never reaches a terminal raw, and never breaks out of its
place in the Markdown summary: one escaping function for every terminal line, code spans fenced
longer than any backtick run, free text escaped; the JUnit XML and the HTML report too."""

from __future__ import annotations

import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.__main__ import main
from pytest_llmeval.escaping import html_text, markdown_code, markdown_text, one_line, terminal

markdown_it = pytest.importorskip("markdown_it")

HOSTILE = ["\x1b[2J\x1b[1;1Hllmeval gate passed", "a\nb", "x\rllmeval gate passed", "\u202eevil", "\x9b31m", "`", "``a``", "|", "<img src=x>", "[l](http://e)", "*e*", "\ud800"]
texts = st.text(st.characters(blacklist_categories=()) | st.sampled_from("`|<>[]()*_\\\x1b\x9b\n\r\t\u2028\u202e "), max_size=20)
UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _unsafe(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in UNSAFE and c not in "\u200c\u200d"]


@given(texts)
def test_a_terminal_line_holds_no_control_character_and_keeps_plain_text(text: str) -> None:
    shown = terminal(text)
    assert _unsafe(shown) == []
    if not _unsafe(text):
        assert shown == text


@given(texts)
def test_one_line_is_a_terminal_line_with_whitespace_runs_as_single_spaces(text: str) -> None:
    shown = one_line(text)
    assert _unsafe(shown) == [] and shown == shown.strip() and "  " not in shown
    assert not any(c.isspace() and c != " " for c in shown)
    assert one_line(shown) == shown
    if not _unsafe(text):
        assert shown == " ".join(text.split())


def test_one_line_writes_what_a_terminal_acts_on_as_escapes() -> None:
    """The words a server's error answer may hold: cursor and colour sequences, a right-to-left
    override, line breaks of every kind."""
    said = "\x1b[2J\x1b[32m 10 passed,\n\tgate passed \u202e\u2028end\x85"
    assert one_line(said) == "\\x1b[2J\\x1b[32m 10 passed, gate passed \\u202e end"


def _inline(source: str) -> list:
    tokens = markdown_it.MarkdownIt("commonmark").parse(source)
    inline = [t for t in tokens if t.type == "inline"]
    assert len(inline) == 1, source
    return inline[0].children or []


@given(texts)
def test_a_code_span_shows_exactly_its_text(text: str) -> None:
    children = _inline(f"see {markdown_code(text)} here")
    code = [t for t in children if t.type == "code_inline"]
    assert len(code) == 1 and code[0].content == (terminal(text) or " ")
    assert [t.content for t in children if t.type == "text"] == ["see ", " here"]


@given(texts)
def test_free_text_renders_as_itself(text: str) -> None:
    children = _inline(f"x {markdown_text(text)} y")
    assert {t.type for t in children} <= {"text", "softbreak"}
    assert "".join(t.content for t in children) == f"x {terminal(text)} y"


@given(texts)
def test_html_text_is_inert(text: str) -> None:
    assert not re.search(r"[<>\"']", html_text(text)) and _unsafe(html_text(text)) == []


@given(st.lists(texts.filter(lambda t: t.strip()), min_size=1, max_size=3, unique=True), st.lists(texts.filter(bool), min_size=2, max_size=4, unique=True))
def test_the_markdown_summary_keeps_every_name_in_its_place(names: list[str], ids: list[str]) -> None:
    """Any suite name and case id: the table keeps its rows and columns, each name is one code span
    showing it, and the only HTML is the summary's own."""
    from dataclasses import replace

    from html_runs import make_records

    from pytest_llmeval.results.gate import GateOptions
    from pytest_llmeval.results.messages import Message
    from pytest_llmeval.results.session import EvalSession

    session = EvalSession(GateOptions(rootdir=Path(".")), cwd=Path("."))
    for name in names:
        records = make_records(name, len(ids), failing=[0])
        session.add_all([replace(r, case_id=case_id) for r, case_id in zip(records, ids)])
    report = session.finish()
    report = replace(report, messages=(*report.messages, Message("warning", f"about {names[0]}", hint=ids[0], command=f"pytest -k {ids[-1]}")))
    md = report.markdown()
    parser = markdown_it.MarkdownIt("commonmark").enable("table")
    tokens = parser.parse(md)
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == len(names) + 1
    first_cells = []
    in_row = False
    for i, t in enumerate(tokens):
        if t.type == "tr_open":
            in_row, cell = True, 0
        elif t.type == "td_open" and in_row:
            if cell == 0:
                first_cells.append([c.content for c in tokens[i + 1].children or [] if c.type == "code_inline"])
            cell += 1
    assert sorted(first_cells) == sorted([[terminal(n).replace("\\|", "|")] if "\\|" in terminal(n) else [terminal(n)] for n in names])
    html = [t.content for t in tokens if t.type.startswith("html")] + [c.content for t in tokens if t.children for c in t.children if c.type.startswith("html")]
    assert all(re.fullmatch(r"(<details><summary><code>[^<>]*</code>: [^<>]*</summary>|</details>)\s*", h) for h in html), html
    last = [t for t in tokens if t.type == "inline"][-1]
    assert [c.content for c in last.children if c.type == "code_inline"] == [terminal(f"pytest -k {ids[-1]}")]


SUITE = '''
import pytest_llmeval as le

IDS = {ids!r}

@le.cases([{{"id": i, "n": k}} for k, i in enumerate(IDS)])
def test_x(case):
    assert case["n"] == 0, "the answer was \\x1b[32mllmeval gate passed\\x1b[0m"
'''


def test_a_hostile_case_id_and_reason_never_reach_the_terminal_raw(pytester: pytest.Pytester) -> None:
    ids = ["ok", *HOSTILE[:5]]
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(test_ids=SUITE.format(ids=ids))
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "--color=no", "-v", "--llmeval-output=out",
                                "--llmeval-markdown=summary.md", "--junitxml=junit.xml", "--llmeval-html=report.html")  # fmt: skip
    text = result.stdout.str() + result.stderr.str()
    assert _unsafe(text.replace("\n", "")) == [], [c for c in text if _unsafe(c)]
    assert "missed cases" in text and "\\x1b[2J\\x1b[1;1Hllmeval gate passed" in text
    assert sum(line.startswith("llmeval gate passed") for line in result.stdout.lines) == 1
    md = (pytester.path / "summary.md").read_text(encoding="utf-8")
    assert _unsafe(md.replace("\n", "")) == []
    ET.parse(pytester.path / "junit.xml")  # well-formed: no raw control character
    raw = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    assert "\x1b" not in raw
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in page and "<img" not in page
    data = json.loads(re.search(r'id="llmeval-data">(.*?)</script>', page, re.S).group(1))
    assert {row["id"] for row in data["cases"]} == set(ids)


def test_commands_print_no_control_character(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from html_runs import make_records, write_run

    name = "e/t.py::test_\x1b[2Jx"
    write_run(tmp_path / "a", make_records(name, 6, failing=[1]))
    write_run(tmp_path / "b", make_records(name, 6, failing=[1, 2, 3, 4]))
    capsys.readouterr()
    main(["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    main(["merge", str(tmp_path / "m"), str(tmp_path / "b")])
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "test_\\x1b[2Jx" in captured.out
