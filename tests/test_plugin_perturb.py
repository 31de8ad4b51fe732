"""``le.cases(..., perturb=[...])``: each case's variants are items of their own (``qa-007~typos``),
drawn the same in every run, batch size, ``-k`` selection and xdist worker; the suite's own figures
stay those of its cases as written; the report shows accuracy under each perturbation, the worst
case, invariance and each drop's paired test; ``min_worst_case`` gates; the baseline stores the
variants like cases and a robustness regression is REGRESSED naming the perturbation."""

from __future__ import annotations

import json

import pytest
from echo_project import CONFTEST, INI, calls, results, samples

from pytest_llmeval.results.robustness import robustness

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le

CASES = [{{"id": f"qa-{{i:03d}}", "question": f"What is the capital city of country number {{i}}?", "answer": "capital"}}
         for i in range({n})]

@le.cases(CASES, prompt="{{question}}", perturb=[{perturb}]{extra})
def test_qa(case, completion):
    if case.perturbation is not None:
        assert case.id == case.original_id + "~" + case.perturbation
    le.assert_contains(completion, case["answer"])
"""

PERTURB = 'le.perturb.typos(rate=0.1), le.perturb.case("upper")'


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_qa=SUITE.format(n=12, perturb=PERTURB, extra=""))
    return pytester


def variant_prompts(path, out: str = "out") -> dict[str, str]:
    return {cid: row["prompt"] for (_, cid), row in samples(path, out).items() if "~" in cid}


def test_each_variant_is_an_item(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_qa.py::test_qa[[]qa-000[]]", "test_qa.py::test_qa[[]qa-000~typos[]]", "test_qa.py::test_qa[[]qa-000~upper[]]"])
    assert "36 tests collected" in result.stdout.str()


def test_k_selects_one_perturbation(project: pytest.Pytester) -> None:
    result = project.runpytest("-k", "~typos", "--llmeval-output=k")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("missed", 0) == 12 and outcomes["deselected"] == 24
    assert {cid.split("~")[1] for (_, cid) in samples(project.path, "k")} == {"typos"}
    result = project.runpytest("-k", "not ~typos and not ~upper", "--llmeval-output=originals")
    assert all("~" not in cid for (_, cid) in samples(project.path, "originals"))


def test_variants_are_the_same_across_runs_batch_sizes_selection_and_workers(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.runpytest("--llmeval-output=a")
    monkeypatch.setenv("ECHO_BATCH", "5")
    project.runpytest("--llmeval-output=b")
    project.runpytest("-k", "~typos", "--llmeval-output=k")
    project.runpytest("-n", "2", "--llmeval-output=x")
    a = variant_prompts(project.path, "a")
    assert len(a) == 24 and sum(p != p.upper() for p in a.values()) == 12  # the typos variants are not all caps
    assert any(a[f"qa-{i:03d}~typos"] != f"What is the capital city of country number {i}?" for i in range(12))
    assert variant_prompts(project.path, "b") == a
    assert variant_prompts(project.path, "x") == a
    assert variant_prompts(project.path, "k") == {k: v for k, v in a.items() if k.endswith("~typos")}
    assert 5 in [n for _, n in calls(project.path)]  # the second run did batch by 5


def test_a_new_seed_draws_other_variants(project: pytest.Pytester) -> None:
    project.runpytest("--llmeval-output=a")
    project.runpytest("--llmeval-seed=7", "--llmeval-output=b")
    a, b = variant_prompts(project.path, "a"), variant_prompts(project.path, "b")
    assert {k: v for k, v in a.items() if k.endswith("~upper")} == {k: v for k, v in b.items() if k.endswith("~upper")}
    assert {k: v for k, v in a.items() if k.endswith("~typos")} != {k: v for k, v in b.items() if k.endswith("~typos")}


def test_the_suite_keeps_the_figures_and_fingerprint_of_its_cases_as_written(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    plain = SUITE.format(n=12, perturb="", extra="").replace(", perturb=[]", "")
    pytester.makepyfile(test_qa=plain)
    pytester.runpytest("--llmeval-output=plain")
    pytester.makepyfile(test_qa=SUITE.format(n=12, perturb=PERTURB, extra=""))
    pytester.runpytest("--llmeval-output=perturbed")
    before = results(pytester.path, "plain")["suites"]["test_qa.py::test_qa"]
    after = results(pytester.path, "perturbed")["suites"]["test_qa.py::test_qa"]
    for key in ("n", "passed", "failed", "errors", "pass_rate", "ci", "cases"):
        assert before[key] == after[key], key
    assert "perturb" not in before["fingerprint"] and set(after["fingerprint"]["perturb"]) == {"typos", "upper"}
    assert {k: v for k, v in after["fingerprint"].items() if k != "perturb"} == before["fingerprint"]


def test_the_report_shows_robustness(project: pytest.Pytester) -> None:
    result = project.runpytest("--llmeval-markdown=summary.md")
    result.stdout.fnmatch_lines(["beyond accuracy:", "  test_qa.py::test_qa", "    worst case *", "*~typos *", "*~upper *"])
    suite = results(project.path)["suites"]["test_qa.py::test_qa"]
    rows = samples(project.path)
    original = {cid: r["outcome"] == "pass" for (_, cid), r in rows.items() if "~" not in cid}
    variants = {name: {cid.split("~")[0]: r["outcome"] == "pass" for (_, cid), r in rows.items() if cid.endswith("~" + name)}
                for name in ("typos", "upper")}  # fmt: skip
    assert suite["robustness"] == json.loads(json.dumps(robustness(original, variants).as_dict()))
    assert suite["robustness"]["perturbations"]["upper"]["accuracy"] == 1.0
    assert suite["variants"]["typos"]["n"] == 12
    markdown = (project.path / "summary.md").read_text()
    assert "**Beyond accuracy** `test_qa.py::test_qa`" in markdown and "| ~typos | 12 |" in markdown


def test_min_worst_case_gates_the_worst_case(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_qa=SUITE.format(n=12, perturb=PERTURB, extra=", min_pass_rate=0.9, min_worst_case=0.95"))
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_qa.py::test_qa: worst case *% over its perturbations is under min_worst_case 95.0%*"])
    assert "under min_pass_rate" not in result.stdout.str()  # min_pass_rate is over the cases as written: all pass


def test_a_robustness_regression_is_regressed_naming_the_perturbation(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.runpytest("--llmeval-update-baseline").ret == 0
    stored = json.loads((project.path / "baseline.json").read_text())["suites"]["test_qa.py::test_qa"]
    assert stored["n"] == 12 and "qa-000~upper" in stored["cases"] and len(stored["cases"]) == 36
    assert project.runpytest().ret == 0
    monkeypatch.setenv("ECHO_BREAK_UPPER", "1")
    result = project.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_qa.py::test_qa~upper: REGRESSED 100.0% -> 0.0%*12 newly failing*"])
    out = result.stdout.str()
    assert "test_qa.py::test_qa: REGRESSED" not in out  # the cases as written did not change
    assert "pytest --llmeval-update-baseline test_qa.py::test_qa" in " ".join(out.split()) or "test_qa.py::test_qa --llmeval-update-baseline" in out
    verdict = results(project.path)["suites"]["test_qa.py::test_qa"]["variants"]["upper"]["verdict"]
    assert verdict["verdict"] == "REGRESSED" and len(verdict["newly_failing"]) == 12


def test_a_perturbation_added_later_is_new(project: pytest.Pytester) -> None:
    project.runpytest("--llmeval-update-baseline")
    project.makepyfile(test_qa=SUITE.format(n=12, perturb=PERTURB + ", le.perturb.punctuation()", extra=""))
    result = project.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_qa.py::test_qa~punctuation: NEW, not in the baseline*"])


@pytest.mark.parametrize(
    ("perturb", "extra", "line"),
    [
        ('le.perturb.from_function("bad", lambda t, r: 3)', "", "*perturbation 'bad' returned int 3 for case 'qa-000'*"),
        ("le.perturb.from_strategy('never', lambda t: st.nothing())", "", "*perturbation 'never' could not draw a variant for case 'qa-000'*"),
        ('"typos"', "", "*perturb= entry 0 is str 'typos', not a perturbation*"),
        ("le.perturb.typos(), le.perturb.typos(rate=0.2)", "", "*two perturbations are named 'typos'*"),
        (None, ", search=5", "*search= needs perturb=*"),
        (None, ", choices='question', permute='cyclic'", "*permute='cyclic' rotates the options that 'ranked' scores, so it cannot apply to a generation suite*"),
        ("le.perturb.typos()", ", permute='sorted'", "*permute= must be 'cyclic'*"),
    ],
    ids=["non-string", "cannot-draw", "not-a-perturbation", "same-name", "search-alone", "permute-generation", "permute-value"],
)
def test_bad_arguments_are_one_line(pytester: pytest.Pytester, perturb: str | None, extra: str, line: str) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    source = SUITE.format(n=3, perturb=perturb or "", extra=extra)
    if perturb is None:
        source = source.replace(", perturb=[]", "")
    pytester.makepyfile(test_qa="from hypothesis import strategies as st\n" + source)
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str()
