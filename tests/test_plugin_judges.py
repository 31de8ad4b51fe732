"""Judged suites end to end: batching, the judge model, errors, fingerprints and calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judge_fakes import install_fake_package
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

SUITE = """
import pytest_llmeval as le

CASES = [{{"id": f"c{{i}}", "q": f"reply {{i}} " + ("good" if i % 2 == 0 else "bad")}} for i in range(6)]  # six prompts: none computed once for two

@le.cases(CASES, prompt="{{q}}", judge=le.Rubric({rubric!r}{extra}))
def test_judged(case, completion, judgement):
    le.assert_judged(judgement)

def test_zz_calls():
    import fake_backend
    print("CALLS", fake_backend.CALLS)
"""


def setup(pytester: pytest.Pytester, judge: str | None = "fake:rank", rubric: str = "The reply is good.", extra: str = "") -> None:
    install_fake_package(pytester.path)
    pytester.syspathinsert()
    ini = "[pytest]\nllmeval_model = fake:model\nllmeval_history = off\nllmeval_baseline = baseline.json\n"
    if judge:
        ini += f"llmeval_judge_model = {judge}\n"
    pytester.makeini(ini)
    pytester.makepyfile(test_suite=SUITE.format(rubric=rubric, extra=extra))


def samples(pytester: pytest.Pytester) -> list[dict]:
    return read_samples(pytester.path / "out" / "samples.jsonl")


def test_a_window_is_judged_in_one_batched_rank_call(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--llmeval-output=out")
    result.stdout.fnmatch_lines(["*loaded judge fake rank*", "*CALLS [[]('model', 'generate', 6), ('rank', 'rank', 6)[]]*"])
    by_id = {s["id"]: s for s in samples(pytester)}
    assert [by_id[f"c{i}"]["outcome"] for i in range(6)] == ["pass", "fail"] * 3
    judged = by_id["c1"]["judgement"]
    assert judged["label"] == "FAIL" and judged["method"] == "rank"
    # softmax of loglikelihoods (0, -2): p(FAIL) = 1 / (1 + e^-2)
    assert judged["probabilities"]["FAIL"] == pytest.approx(1 / (1 + 2.718281828459045**-2), rel=1e-12)
    assert by_id["c1"]["reason"] == "judge said FAIL (p=0.88), not PASS"
    assert "Reply:\nbad" in judged["judge_prompt"] and judged["judge_prompt"].endswith("Verdict:")


def test_the_window_option_caps_a_judging_run(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--llmeval-window=4")
    result.stdout.fnmatch_lines(["*CALLS [[]('model', 'generate', 4), ('rank', 'rank', 4), ('model', 'generate', 2), ('rank', 'rank', 2)[]]*"])


def test_a_generating_judge_answers_the_label_and_is_asked_once_more(pytester: pytest.Pytester) -> None:
    setup(pytester, judge="fake:gen-chatty")
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--llmeval-output=out")
    # first answers are chatty, so every case is asked once more, in one batch
    result.stdout.fnmatch_lines(["*('gen-chatty', 'generate', 6), ('gen-chatty', 'generate', 6)*"])
    assert [s["outcome"] for s in sorted(samples(pytester), key=lambda s: s["id"])] == ["pass", "fail"] * 3
    assert {s["judgement"]["method"] for s in samples(pytester)} == {"generate"}


def test_an_unparseable_judge_answer_is_an_error_showing_the_text_never_a_miss(pytester: pytest.Pytester) -> None:
    setup(pytester, judge="fake:gen-bad")
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-output=out")
    result.assert_outcomes(passed=1, errors=6)
    result.stdout.fnmatch_lines(["*the judge answered 'maybe, hard to tell', then 'maybe, hard to tell' when asked again*"])
    assert {s["outcome"] for s in samples(pytester)} == {"error"}


def test_a_strict_generated_label_passes(pytester: pytest.Pytester) -> None:
    setup(pytester, judge="fake:gen-good")
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--llmeval-output=out")
    result.stdout.fnmatch_lines(["*('model', 'generate', 6), ('gen-good', 'generate', 6)[]]*"])
    assert sorted(s["judgement"]["raw"] for s in samples(pytester)) == [" FAIL."] * 3 + [" PASS."] * 3


def test_without_a_judge_model_the_model_under_test_judges_itself_with_one_warning(pytester: pytest.Pytester) -> None:
    setup(pytester, judge=None)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.stdout.str().count("LLMEvalSelfJudgeWarning") == 1
    result.stdout.fnmatch_lines(["*a model judging its own answers flatters them*"])


def test_changing_the_rubric_or_the_judge_makes_the_baseline_incomparable(pytester: pytest.Pytester) -> None:
    setup(pytester)
    assert pytester.runpytest("-p", "no:cacheprovider", "--llmeval-update-baseline").ret == 0
    stored = json.loads((pytester.path / "baseline.json").read_text())["suites"]["test_suite.py::test_judged"]["fingerprint"]
    assert stored["judge"]["model"] == "fake:rank" and stored["judge"]["method"] == "rank"
    assert pytester.runpytest("-p", "no:cacheprovider").ret == 0
    pytester.makepyfile(test_suite=SUITE.format(rubric="The reply is kind.", extra=""))
    changed = pytester.runpytest("-p", "no:cacheprovider")
    changed.stdout.fnmatch_lines(["*INCOMPARABLE*judge*"])
    assert changed.ret == 1
    setup_again = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-judge-model=fake:gen-good")
    setup_again.stdout.fnmatch_lines(["*INCOMPARABLE*judge*"])


def test_judgement_without_a_judge_and_a_bad_rubric_are_one_line_each(pytester: pytest.Pytester) -> None:
    setup(pytester, extra=", labels=('PASS',)")
    pytester.makepyfile(
        test_plain="""
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}], prompt="{q}")
        def test_no_judge(case, completion, judgement):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "test_suite.py")
    result.stdout.fnmatch_lines(["*judge=: le.Rubric labels= must be two or more non-empty strings, got ('PASS',)*"])
    plain = pytester.runpytest("-p", "no:cacheprovider", "test_plain.py")
    plain.stdout.fnmatch_lines(["*asks for 'judgement' but its suite has no judge; pass judge=le.Rubric('...') to le.cases*"])
    plain.assert_outcomes(errors=1)


def test_a_case_without_the_reference_field_is_a_collection_error(pytester: pytest.Pytester) -> None:
    setup(pytester, extra=", reference='answer'")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*case 'c0' has no field 'answer', which the judge is shown (it has: id, q)*"])


@pytest.mark.parametrize(
    "extra,problem",
    [
        (", labels=('PASS', 'PASSABLE', 'FAIL')", "labels= 'PASS' is the start of 'PASSABLE', so they cannot be scored fairly"),
        (", labels=tuple(str(i) for i in range(1, 11))", "labels= '1' is the start of '10'*'01'...'10' for a scale of ten"),
        (", labels=('PASS', 'pass')", "labels= must differ in more than letter case"),
        (", template='Reply: {completion} {}'", "template= has a field without a name ({} or {0})"),
        (", template='Reply: {completion!r} Verdict:'", "template= field {completion!r} has a conversion or format; write it as {completion}"),
        (", template='Verdict on this reply: {completion}'", "template= must end where the judge's label begins, with text after its last field"),
        (", template='Reply: {completion}\\nVerdict:\\n'", "template= must end where the judge's label begins, without a space or newline at the end"),
    ],
)
def test_judges_that_cannot_be_fair_or_filled_are_refused_at_collection_in_one_line(pytester: pytest.Pytester, extra: str, problem: str) -> None:
    setup(pytester, extra=extra)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*judge=: *{problem}*"])
    assert "Traceback" not in result.stdout.str() and result.ret == pytest.ExitCode.INTERRUPTED


NO_LABELLED_ROW = "labels_file='labels.csv' has no labelled row (no row with a human_label), so min_kappa= cannot be checked"
NOT_A_LABELS_FILE = "labels.csv:1: not a labels file (its header is 'an empty first line'); it needs the columns 'id' and 'human_label'"


@pytest.mark.parametrize(
    "content,problem",
    [("", NOT_A_LABELS_FILE), ("suite,id,human_label\n", NO_LABELLED_ROW), ("suite,id,human_label\ntest_suite.py::test_judged,c0,\n", NO_LABELLED_ROW)],
)
def test_min_kappa_with_no_labelled_row_is_refused(pytester: pytest.Pytester, content: str, problem: str) -> None:
    setup(pytester, extra=", min_kappa=0.6, labels_file='labels.csv'")
    (pytester.path / "labels.csv").write_text(content)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*{problem}*"])
    assert result.ret != 0 and "Traceback" not in result.stdout.str()


def test_a_judge_without_loglikelihoods_generates_its_labels_with_one_notice(pytester: pytest.Pytester) -> None:
    """A judge that claims loglikelihoods but has none (a server without prompt log-probabilities)
    answers by generating its label, parsed strictly: said once, judged right."""
    setup(pytester, judge="fake:norank")
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--llmeval-output=out")
    result.stdout.fnmatch_lines(["*llmeval: the judge (fake:norank) returns no prompt log-probabilities, so it answers by generating its label*"])
    assert result.stdout.str().count("returns no prompt log-probabilities") == 1 and "Traceback" not in result.stdout.str()
    by_id = {s["id"]: s for s in samples(pytester)}
    assert [by_id[f"c{i}"]["outcome"] for i in range(6)] == ["pass", "fail"] * 3
    assert {by_id[f"c{i}"]["judgement"]["method"] for i in range(6)} == {"generate"}


@pytest.mark.parametrize("judge,fragment", [("fake:failing", "the judge gave no usable answer: POST http://judge.test/v1/completions failed"),
                                            ("fake:nan", "the loglikelihood nan, not a finite number")])  # fmt: skip
def test_a_judge_request_that_fails_or_answers_nan_errors_its_cases_in_one_line(pytester: pytest.Pytester, judge: str, fragment: str) -> None:
    setup(pytester, judge=judge)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-output=out")
    judged = [s for s in samples(pytester) if s["id"].startswith("c")]
    assert {s["outcome"] for s in judged} == {"error"} and all(fragment in s["reason"] and "\n" not in s["reason"] for s in judged)
    assert "Traceback" not in result.stdout.str() and "AttributeError" not in result.stdout.str()


TWO_SUITES = """
import pytest_llmeval as le

CASES = [{"id": f"c{i}", "q": f"say word{i}"} for i in range(3)]

@le.cases(CASES, prompt="{q}", judge=le.Pairwise("The reply is shorter.", against_model="fake:down"))
def test_against_down(case, completion, judgement):
    pass

@le.cases(CASES, prompt="{q}", judge=le.Rubric("The reply is good."))
def test_rubric(case, completion, judgement):
    pass
"""


def test_a_second_model_that_fails_errors_only_its_pairwise_cases(pytester: pytest.Pytester) -> None:
    """Its error message is never judged as its answer, and the other suite of the batch is judged."""
    setup(pytester)
    pytester.makepyfile(test_suite=TWO_SUITES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-output=out")
    by = {(s["suite"].split("::")[1], s["id"]): s for s in samples(pytester)}
    for i in range(3):
        down = by[("test_against_down", f"c{i}")]
        assert down["outcome"] == "error" and "against_model='fake:down') got no answer to compare with: POST http://down.test" in down["reason"]
        assert by[("test_rubric", f"c{i}")]["outcome"] == "pass"
    assert "Traceback" not in result.stdout.str()


def write_labels(path: Path, labels: dict[str, str]) -> None:
    rows = "".join(f"test_suite.py::test_judged,{cid},{label}\n" for cid, label in labels.items())
    path.write_text("suite,id,human_label\n" + rows)


def test_min_kappa_fails_the_gate_when_the_judge_disagrees_with_people(pytester: pytest.Pytester) -> None:
    setup(pytester, extra=", min_kappa=0.6, labels_file='labels.csv'")
    # people agree with the judge on c0..c3 and disagree on c4, c5: kappa = (4/6 - 1/2) / (1 - 1/2) = 1/3
    write_labels(pytester.path / "labels.csv", {"c0": "PASS", "c1": "FAIL", "c2": "PASS", "c3": "FAIL", "c4": "FAIL", "c5": "PASS"})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*test_suite.py::test_judged: the judge agrees with people at kappa 0.33 *on 6 labelled cases (labels.csv), below min_kappa 0.6*",
        "*llmeval gate FAILED*",
    ])  # fmt: skip
    assert result.ret == 1
    write_labels(pytester.path / "labels.csv", {"c0": "PASS", "c1": "FAIL", "c2": "PASS", "c3": "FAIL"})
    agreed = pytester.runpytest("-p", "no:cacheprovider")
    agreed.stdout.fnmatch_lines(["*kappa 1.00 * on 4 labelled cases (labels.csv), at least min_kappa 0.6*"])
    assert agreed.ret == 0


def test_a_missing_labels_file_is_a_collection_error(pytester: pytest.Pytester) -> None:
    setup(pytester, extra=", min_kappa=0.6, labels_file='nowhere.csv'")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*labels_file='nowhere.csv' does not exist*review export RESULTS_DIR labels.csv*"])


PAIRWISE = """
import pytest_llmeval as le

CASES = [{"id": f"c{i}", "q": f"say word{i}", "other": f"other{i}"} for i in range(3)]

@le.cases(CASES, prompt="{q}", judge=le.Pairwise("The reply is shorter.", against_model="fake:model"))
def test_pairwise(case, completion, judgement):
    assert judgement.judge_prompts[0].count("word") == 3 and len(judgement.judge_prompts) == 2
    assert judgement.label == "TIE" and judgement.score == 0.5   # a judge without a preference
"""


def test_pairwise_against_a_second_model_generates_its_answers_in_one_batch(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.makepyfile(test_suite=PAIRWISE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*loaded second model fake model*"])


TINY_SUITE = """
import pytest_llmeval as le

CASES = [{"id": f"c{i}", "q": f"What is {i} plus {i}? Answer politely.", "ref": str(2 * i)} for i in range(7)]

@le.cases(CASES, prompt="{q}", chat=True, max_new_tokens=6,
          judge=le.Rubric("The reply is correct and polite.", reference="ref"))
def test_judged(case, completion, judgement):
    le.assert_judged(judgement)

@le.cases(CASES, prompt="{q}", max_new_tokens=4, judge=le.Rubric("How good, 1 to 3", labels=("1", "2", "3")))
def test_scale(case, completion, judgement):
    le.assert_judged(judgement, min_score=2)
"""


def test_verdicts_of_a_local_judge_do_not_depend_on_the_batch_size(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_judge_model = {tiny_model_dir}\nllmeval_history = off\n")
    pytester.makepyfile(test_tiny=TINY_SUITE)
    runs = {}
    for size in (1, 5):
        result = pytester.runpytest("-p", "no:cacheprovider", f"--llmeval-batch-size={size}", f"--llmeval-output=out{size}")
        assert result.ret == 0
        runs[size] = {(s["suite"], s["id"]): s for s in read_samples(pytester.path / f"out{size}" / "samples.jsonl")}
    assert len(runs[1]) == 14 and runs[1].keys() == runs[5].keys()
    suites = json.loads((pytester.path / "out1" / "results.json").read_text())["suites"]
    judge = suites["test_tiny.py::test_judged"]["fingerprint"]["judge"]
    assert judge["method"] == "rank" and judge["chat"] is True and judge["model"].startswith("sha256:")  # the reused model's
    for key, one in runs[1].items():
        many = runs[5][key]["judgement"]
        # label loglikelihoods agree to 1e-5 relative across batch sizes (tests/test_loglik.py), |ll| < 100
        # here, so each softmax input moves by < 1e-3 and a probability by < 1e-3 / 4 * 2 < 1e-3; a label
        # can only change where its two likeliest labels are within 2e-3: no case may come that close
        top = sorted(one["judgement"]["probabilities"].values(), reverse=True)
        assert top[0] - top[1] > 2e-3, f"{key}: the judge's labels are a near-tie on this CPU; change the prompts"
        assert (one["judgement"]["label"], one["outcome"]) == (many["label"], runs[5][key]["outcome"])
        for label, p in one["judgement"]["probabilities"].items():
            assert many["probabilities"][label] == pytest.approx(p, abs=1e-3)
        assert set(one["judgement"]["probabilities"]) in ({"PASS", "FAIL"}, {"1", "2", "3"})


def test_judgements_travel_from_xdist_workers(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--llmeval-output=out")
    assert result.ret == 0
    by_id = {s["id"]: s["judgement"]["label"] for s in samples(pytester)}
    assert by_id == {f"c{i}": "PASS" if i % 2 == 0 else "FAIL" for i in range(6)}
