"""The HTML report's beyond-accuracy section: robustness per perturbation with its baseline verdict,
CircularEval and the positions chosen, calibration with a reliability diagram, and the smallest
breaking changes a search found; from a real run of a pytester project, and in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from browser import open_page, start_browser
from echo_project import CONFTEST, INI, results

pytest_plugins = ["pytester"]

SUITES = """
import pytest_llmeval as le

QA = [{"id": f"qa-{i}", "question": f"Name the capital city of country number {i}.", "answer": "capital"} for i in range(6)]
COLOURS = ["red", "green", "blue", "amber"]
MC = [{"id": f"q-{i}", "question": f"Pick {COLOURS[i % 4]}.", "choices": COLOURS, "answer": i % 4} for i in range(8)]


@le.cases(QA, prompt="{question}", perturb=[le.perturb.typos(rate=0.1), le.perturb.case("upper")], search=5)
def test_qa(case, completion):
    le.assert_contains(completion, case["answer"])


@le.cases(MC, prompt="{question}", choices="choices", permute="cyclic")
def test_mc(case, ranked):
    le.assert_choice(ranked, case["answer"])


@le.cases(MC, prompt="{question}", choices="choices")
def test_rank(case, ranked):
    le.assert_choice(ranked, case["answer"])
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, dict]]:
    """One run of the three suites with --llmeval-html (a module-wide project: it is slow to make)."""
    root = tmp_path_factory.mktemp("beyond")
    (root / "tox.ini").write_text(INI)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_suites.py").write_text(SUITES)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--llmeval-html=report.html"], cwd=root,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert (root / "report.html").is_file(), done.stdout[-3000:] + done.stderr[-2000:]
    text = (root / "report.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="llmeval-data">(.*?)</script>', text, re.S).group(1))
    yield root, data, results(root)


def test_the_page_holds_each_suites_figures_beyond_accuracy(run: tuple[Path, dict, dict]) -> None:
    _, data, found = run
    rows = {s["name"]: s for s in data["suites"]}
    qa, mc, rank = rows["test_suites.py::test_qa"], rows["test_suites.py::test_mc"], rows["test_suites.py::test_rank"]
    suites = found["suites"]
    assert qa["beyond"]["robustness"] == suites["test_suites.py::test_qa"]["robustness"]
    assert set(qa["beyond"]["verdicts"]) == {"typos", "upper"}
    assert qa["beyond"]["search"]["searched"] == suites["test_suites.py::test_qa"]["search"]["searched"]
    assert mc["beyond"]["cyclic"] == suites["test_suites.py::test_mc"]["cyclic"]
    assert rank["beyond"]["calibration"] == suites["test_suites.py::test_rank"]["calibration"]
    assert "robustness" not in rank["beyond"] and "calibration" not in qa["beyond"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from start_browser()


def test_the_browser_draws_the_section(browser: Any, run: tuple[Path, dict, dict]) -> None:
    root, data, found = run
    logs = open_page(browser, root / "report.html")
    assert [e for e in logs if e["level"] in ("SEVERE", "WARNING")] == []
    boxes = {b.get_attribute("data-suite"): b for b in browser.find_elements("css selector", ".beyond")}
    assert set(boxes) == {"test_suites.py::test_qa", "test_suites.py::test_mc", "test_suites.py::test_rank"}
    qa = boxes["test_suites.py::test_qa"]
    perturbations = [r.get_attribute("data-perturbation") for r in qa.find_elements("css selector", "table.robustness tr[data-perturbation]")]
    assert perturbations == ["typos", "upper"]
    assert qa.find_element("css selector", ".worst").text.startswith("worst case ")
    searched = found["suites"]["test_suites.py::test_qa"]["search"]["searched"]
    assert len(qa.find_elements("css selector", "ul.findings li")) == sum(bool(f.get("broken")) for f in searched)
    mc = boxes["test_suites.py::test_mc"]
    assert "positions chosen: A 8, B 8, C 8, D 8" in mc.find_element("css selector", ".positions").text
    rank = boxes["test_suites.py::test_rank"]
    bins = [b for b in found["suites"]["test_suites.py::test_rank"]["calibration"]["reliability"] if b["count"]]
    assert len(rank.find_elements("css selector", "svg.reliability rect")) == len(bins)
    assert "ECE" in rank.find_element("css selector", ".calibration").text
