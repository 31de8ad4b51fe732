"""One comparison engine behind three surfaces: the gate, ``compare`` and the HTML compare view
find the same thing for the same two runs and only say it in their own words."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.results.compare import compare_runs
from pytest_llmeval.results.comparison import NO_SHARED_CASES, Verdict, compare_suite, compare_suites
from pytest_llmeval.results.html import compare_page
from pytest_llmeval.results.stats import SuiteResult
from pytest_llmeval.results.verdicts import comparison_json

FP = {"model": "sha256:m", "prompt": "sha256:p", "generation": {"max_new_tokens": 8}}
COMPARE_WORDS = {Verdict.REGRESSED: (-1, "WORSE"), Verdict.IMPROVED: (1, "BETTER"), Verdict.UNCHANGED: (0, "UNCHANGED")}


def suite(name: str, passes: list[bool], **fingerprint: Any) -> SuiteResult:
    outcomes = {f"c{i:03d}": "pass" if ok else "fail" for i, ok in enumerate(passes)}
    return SuiteResult.from_outcomes(name, outcomes, fingerprint={**FP, **fingerprint})


def run_files(suites: dict[str, SuiteResult]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = {"suites": {name: s.to_json() for name, s in suites.items()}}
    samples = [{"suite": name, "id": k, "outcome": o.value} for name, s in suites.items() for k, o in s.outcomes.items()]
    return results, samples


@st.composite
def pair(draw: st.DrawFn) -> tuple[list[bool], list[bool]]:
    """Two runs of the same cases: some newly failing, some newly passing (often enough to matter)."""
    n = draw(st.integers(20, 60))
    down, up = draw(st.integers(0, n // 2)), draw(st.integers(0, n // 4))
    return [True] * (n - up) + [False] * up, [False] * down + [True] * (n - up - down) + [True] * up


runs = st.lists(pair(), min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(runs)
def test_the_gate_compare_and_the_html_view_agree(pairs: list[tuple[list[bool], list[bool]]]) -> None:
    before = {f"t.py::s{i}": suite(f"t.py::s{i}", a) for i, (a, _) in enumerate(pairs)}
    after = {f"t.py::s{i}": suite(f"t.py::s{i}", b) for i, (_, b) in enumerate(pairs)}
    gate = compare_suites(before, after.values(), tolerance=0.02, alpha=0.05)
    cli = {d.suite: d for d in compare_runs(before, after).deltas}
    page = compare_page(run_files(before), run_files(after))
    html = {row["name"]: row["verdict"] for row in page["suites"]}
    for name, c in gate.items():
        direction, word = COMPARE_WORDS[c.verdict]
        assert cli[name].direction == direction and html[name]["verdict"] == word
        assert cli[name].paired == c.paired and html[name]["p"] == c.paired.p_value  # Holm-adjusted alike
        assert (c.paired.adjusted_p is None) == (len(pairs) == 1)


def test_an_incomparable_suite_is_paired_only_where_the_surface_shows_it() -> None:
    before, after = suite("t.py::s", [True] * 30), suite("t.py::s", [False] * 30, prompt="sha256:other")
    gate = compare_suite(after, before, tolerance=0.02, alpha=0.05)
    assert gate.verdict is Verdict.INCOMPARABLE and gate.paired is None and gate.differing == ("prompt",)
    assert gate.before_rate == 1.0 and "p_value" not in comparison_json(gate, recorded=False, tolerance=0.02, alpha=0.05)  # type: ignore[operator]
    result = compare_runs({"t.py::s": before}, {"t.py::s": after})
    (shown,) = result.incomparable
    assert not result.deltas and shown.paired is not None and shown.paired.delta == -1.0
    forced = compare_suite(after, before, tolerance=0.02, alpha=0.05, force=True)
    assert forced.verdict is Verdict.REGRESSED and forced.differing == ("prompt",)


def test_no_shared_cases_in_each_surfaces_words() -> None:
    before = SuiteResult.from_outcomes("t.py::s", {"a": "pass"}, fingerprint=FP)
    after = SuiteResult.from_outcomes("t.py::s", {"b": "pass"}, fingerprint=FP)
    c = compare_suite(after, before, tolerance=0.02, alpha=0.05)
    assert (c.verdict, c.note, c.tested) == (Verdict.INCOMPARABLE, NO_SHARED_CASES, False)
    assert comparison_json(c, recorded=False, tolerance=0.02, alpha=0.05)["note"] == "no case ids in common with the baseline"  # type: ignore[index]
    result = compare_runs({"t.py::s": before}, {"t.py::s": after})
    assert not result.deltas and not result.incomparable and result.warnings == ("t.py::s: no case ids in common, nothing to compare",)


def test_prompt_diff_shows_the_changed_lines_with_one_line_of_context():
    from pytest_llmeval.results.comparison import prompt_diff
    from pytest_llmeval.results.records import Fingerprint

    def fp(text):
        return Fingerprint(prompt="sha256:x", prompt_text=text)

    assert prompt_diff(fp("a\nb\nc"), fp("a\nB\nc")) == (" a", "-b", "+B", " c")
    many = "\n".join(f"line {i}" for i in range(20))
    changed = many.replace("line 2\n", "line two\n").replace("line 17", "line seventeen")
    diff = prompt_diff(fp(many), fp(changed))
    assert diff[0].startswith("@@") and sum(d.startswith("@@") for d in diff) == 2  # two places: their headers say where
    assert prompt_diff(fp(many), fp("x"), limit=4)[-1] == "... (17 more lines)"  # 20 lines out, 1 in
    assert prompt_diff(Fingerprint(prompt="sha256:x"), fp("a")) == ()  # a baseline recorded before the text was kept
    assert prompt_diff(fp("a"), fp("a")) == ()
