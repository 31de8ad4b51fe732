"""Judges without a plugin run: rubrics, label probabilities, scores, the runner's batching and retries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_llmeval as le
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.scoring.judges import JudgeError, Pairwise, Rubric, parse_label, softmax
from pytest_llmeval.scoring.judging import JudgeItem, JudgeRunner

finite = st.floats(min_value=-200, max_value=0, allow_nan=False)


@given(st.lists(finite, min_size=2, max_size=8))
def test_softmax_is_a_distribution_in_the_order_of_the_loglikelihoods(values: list[float]) -> None:
    probs = softmax(values)
    # each term is in (0, 1] and fsum is exact to 1 ulp per term: 8 terms stay within 1e-12
    assert math.isclose(math.fsum(probs), 1.0, abs_tol=1e-12)
    for a, b in zip(values, values[1:]):
        assert (a > b) <= (probs[values.index(a)] >= probs[values.index(b)])


@given(st.lists(finite, min_size=2, max_size=8), st.floats(min_value=-50, max_value=50))
def test_softmax_ignores_a_shift_of_every_loglikelihood(values: list[float], shift: float) -> None:
    # exp(v - max) is computed after subtracting the max, so a shift changes each difference by at
    # most 2 ulp of |v| + |shift| (< 250): relative error ~1e-13, far below 1e-9
    for p, q in zip(softmax(values), softmax([v + shift for v in values])):
        assert p == pytest.approx(q, rel=1e-9, abs=1e-300)


def test_numeric_labels_score_the_expected_value() -> None:
    rubric = Rubric("How helpful, 1 to 5", labels=("1", "2", "3", "4", "5"))
    judged = rubric.judgement({"1": 0.1, "2": 0.0, "3": 0.2, "4": 0.3, "5": 0.4}, raw={}, prompts=["p"], method="rank", reference=None)
    assert judged.label == "5" and judged.score == pytest.approx(0.1 + 0.6 + 1.2 + 2.0)
    assert le.assert_judged(judged, min_score=3.9) == judged.score
    with pytest.raises(le.EvalFailure, match=r"judge scored 3.9 < 4 \(label 5, p=0.40\)"):
        le.assert_judged(judged, min_score=4)
    with pytest.raises(ValueError, match="no passing label: pass min_score="):
        le.assert_judged(judged)


def test_a_pass_fail_rubric_scores_the_probability_of_passing_and_names_the_label_when_it_fails() -> None:
    judged = Rubric("polite").judgement({"PASS": 0.25, "FAIL": 0.75}, raw={}, prompts=["p"], method="rank", reference=None)
    assert (judged.label, judged.score) == ("FAIL", 0.25)
    with pytest.raises(le.EvalFailure, match=r"judge said FAIL \(p=0.75\), not PASS") as failure:
        le.assert_judged(judged)
    assert failure.value.actual == "FAIL" and failure.value.score == 0.25
    assert le.assert_judged(Rubric("polite").judgement({"PASS": 0.5, "FAIL": 0.5}, raw={}, prompts=["p"], method="rank", reference=None)) == 0.5


@pytest.mark.parametrize(
    "answer,label",
    [("PASS", "PASS"), (" pass.\n", "PASS"), ('"FAIL"', "FAIL"), ("**PASS**", "PASS"), ("PASS, clearly", None), ("", None), ("PASSFAIL", None)],
)
def test_a_generated_label_is_parsed_strictly(answer: str, label: str | None) -> None:
    assert parse_label(answer, ("PASS", "FAIL")) == label


@pytest.mark.parametrize(
    "judge,problem",
    [
        (Rubric(""), "needs the criterion as text"),
        (Rubric("x", labels=("A", "A")), "must be distinct"),
        (Rubric("x", labels=("GOOD", "BAD"), pass_labels=("PASS",)), "pass_labels= must be some of the labels"),
        (Rubric("x", template="Judge {prompt}"), r"template= must show the judge \{completion\}"),
        (Rubric("x", template="{answer}{completion}"), "unknown fields"),
        (Rubric("x", min_kappa=0.6), "min_kappa= needs labels_file="),
        (Rubric("x", min_kappa=2, labels_file="l.csv"), "between -1 and 1"),
        (Pairwise("x"), "exactly one of against="),
        (Pairwise("x", against="a", against_model="m"), "exactly one of against="),
    ],
)
def test_a_judge_that_cannot_work_says_why(judge: object, problem: str) -> None:
    found = judge.judge_problem()  # type: ignore[attr-defined]
    assert found is not None
    assert __import__("re").search(problem, found), found


def test_labels_without_pass_have_no_passing_label_until_given() -> None:
    assert Rubric("x", labels=("GOOD", "BAD")).pass_labels == ()
    assert Rubric("x", labels=["GOOD", "BAD"], pass_labels=["GOOD"]).pass_labels == ("GOOD",)


def test_the_rubric_fingerprint_changes_with_what_the_judge_is_asked_only() -> None:
    base = Rubric("polite")
    assert base.fingerprint() == Rubric("polite", min_kappa=0.5, labels_file="l.csv").fingerprint()
    for other in (Rubric("kind"), Rubric("polite", reference="r"), Rubric("polite", labels=("PASS", "FAIL", "UNSURE")), Pairwise("polite", against="r")):
        assert other.fingerprint() != base.fingerprint()


class RankJudge:
    """Scores labels: the label named after 'VERDICT=' in the reply gets loglikelihood 0, others -3.
    With ``bias``, label A (pairwise) always gains ``bias``: a judge that prefers the first reply."""

    capabilities = frozenset({"generate", "rank"})

    def __init__(self, batch: int = 64, bias: float = 0.0) -> None:
        self.batch, self.bias, self.calls = batch, bias, []

    def batch_size(self) -> int:
        return self.batch

    def run_rank(self, requests, progress=None):
        self.calls.append([r.text for r in requests])
        out = []
        for r in requests:
            lls = tuple((0.0 if f"VERDICT={c}" in r.text else -3.0) + (self.bias if c == "A" else 0.0) for c in r.choices)
            out.append(Ranked(context=r.text, choices=r.choices, loglikelihoods=lls, is_greedy=(False,) * len(lls)))
        return out


def items(n: int) -> list[JudgeItem]:
    return [JudgeItem(Rubric("ok"), f"q{i}", f"answer {i} VERDICT={'PASS' if i % 3 else 'FAIL'}") for i in range(n)]


def test_the_runner_judges_in_chunks_of_the_batch_size_and_keeps_the_order() -> None:
    judge = RankJudge(batch=4)
    got = JudgeRunner(judge).judge(items(10))
    assert [len(c) for c in judge.calls] == [4, 4, 2]
    assert [j.label for j in got] == ["FAIL" if i % 3 == 0 else "PASS" for i in range(10)]  # type: ignore[union-attr]
    one = JudgeRunner(RankJudge(batch=1)).judge(items(10))
    assert got == one


def test_an_item_whose_judge_prompt_cannot_be_made_errors_alone() -> None:
    """A template that fails when filled (possible only for a rubric made outside le.cases, which
    checks templates) errors its own items; the rest of the batch is judged."""
    broken = Rubric("ok", template="Reply: {completion} {} Verdict:")
    batch = [*items(2), JudgeItem(broken, "q", "answer VERDICT=PASS"), *items(2)]
    got = JudgeRunner(RankJudge()).judge(batch)
    assert isinstance(got[2], JudgeError) and "could not be made from the rubric's template=" in str(got[2])
    assert [g.label for g in got if not isinstance(g, JudgeError)] == ["FAIL", "PASS", "FAIL", "PASS"]  # type: ignore[union-attr]


@pytest.mark.parametrize("labels", [("1", "2", "10"), ("PASS", "PASSABLE"), ("pass", "PASS"), ("A", "AB", "B")])
def test_labels_one_of_which_begins_another_are_refused(labels: tuple[str, ...]) -> None:
    problem = Rubric("x", labels=labels).judge_problem()
    assert problem is not None and ("is the start of" in problem or "letter case" in problem)
    assert Rubric("x", labels=("01", "02", "10")).judge_problem() is None and Rubric("x", labels=("1", "2", "3", "4", "5")).judge_problem() is None


def test_a_judge_prompt_ends_where_the_label_begins_with_a_space_or_under_a_chat_template() -> None:
    seen = []

    class Spy(RankJudge):
        def run_rank(self, requests, progress=None):
            seen.extend(requests)
            return super().run_rank(requests, progress)

    JudgeRunner(Spy()).judge(items(1))
    JudgeRunner(Spy(), chat=True).judge(items(1))
    assert [(r.chat, r.target_delimiter, r.choices) for r in seen] == [(False, " ", ("PASS", "FAIL")), (True, "", ("PASS", "FAIL"))]
    assert seen[0].text.endswith("Verdict:")


def test_pairwise_judges_both_orders_so_a_position_bias_cancels() -> None:
    pair = Pairwise("better", against="other")
    item = JudgeItem(pair, "q", "mine VERDICT=A", "theirs")
    # without bias: the completion wins as reply A (p(A)=1/(1+e^-3)) and, shown second, its
    # VERDICT=A text still favours A, i.e. the other reply: the two orders cancel to 0.5
    biased = JudgeRunner(RankJudge(bias=5.0)).judge([JudgeItem(pair, "q", "mine", "theirs")])[0]
    assert biased.label == "TIE" and biased.score == pytest.approx(0.5)  # type: ignore[union-attr]
    fair = JudgeRunner(RankJudge()).judge([item])[0]
    assert fair.judge_prompts[0].index("mine") < fair.judge_prompts[0].index("theirs")  # type: ignore[union-attr]
    assert fair.judge_prompts[1].index("theirs") < fair.judge_prompts[1].index("mine")  # type: ignore[union-attr]
    assert fair.score == pytest.approx(0.5)  # type: ignore[union-attr]


def test_pairwise_prefers_the_better_answer_in_both_orders() -> None:
    class Prefers(RankJudge):
        def run_rank(self, requests, progress=None):
            out = []
            for r in requests:
                first = r.text.index("Reply A:") < r.text.index("good") < r.text.index("Reply B:")
                lls = (0.0, -2.0) if first else (-2.0, 0.0)
                out.append(Ranked(context=r.text, choices=r.choices, loglikelihoods=lls, is_greedy=(False, False)))
            return out

    judged = JudgeRunner(Prefers()).judge([JudgeItem(Pairwise("x", against="o"), "q", "good answer", "weak answer")])[0]
    assert judged.label == "WIN" and judged.score == pytest.approx(1 / (1 + math.exp(-2)))  # type: ignore[union-attr]
    assert le.assert_judged(judged) == judged.score  # type: ignore[arg-type]


class GenJudge:
    """A judge without loglikelihoods that answers from a script: the first answer, then the retry's."""

    capabilities = frozenset({"generate"})

    def __init__(self, first: str, second: str) -> None:
        self.first, self.second, self.calls = first, second, []

    def run_generate(self, requests, progress=None):
        self.calls.append(requests)
        return [Completion(self.second if "That is not one of" in r.text else self.first) for r in requests]


def test_a_generating_judge_gets_one_retry_and_then_an_error_with_the_raw_text() -> None:
    ok = GenJudge("PASS", "FAIL")
    judged = JudgeRunner(ok).judge(items(2))
    assert [j.label for j in judged] == ["PASS", "PASS"] and len(ok.calls) == 1  # type: ignore[union-attr]
    assert judged[0].probabilities == {"PASS": 1.0, "FAIL": 0.0} and judged[0].raw == "PASS"  # type: ignore[union-attr]
    request = ok.calls[0][0]
    assert request.kind == "generate" and request.max_new_tokens == 8 and request.stop == ("\n",)
    retried = GenJudge("I think it passes", "fail")
    assert [j.label for j in JudgeRunner(retried).judge(items(2))] == ["FAIL", "FAIL"]  # type: ignore[union-attr]
    assert [len(c) for c in retried.calls] == [2, 2]
    broken = JudgeRunner(GenJudge("hmm", "no idea")).judge(items(1))[0]
    assert isinstance(broken, JudgeError)
    assert "answered 'hmm', then 'no idea'" in str(broken) and not isinstance(broken, AssertionError)


@pytest.mark.slow
def test_smollm2_judge_verdicts_do_not_depend_on_the_batch_size(smollm2_gguf) -> None:
    """SmolLM2 judging the same completions in one batch and one at a time gives the same labels.

    Label loglikelihoods agree to 1e-5 relative across batch sizes (tests/test_loglik.py); with
    |loglikelihood| < 100 a softmax input moves by < 1e-3, a probability by < 1e-3."""
    from pytest_llmeval.models import has_chat_template, load_backend
    from pytest_llmeval.settings import LLMSettings

    backend = load_backend(LLMSettings(model=str(smollm2_gguf), batch_size=6))
    rubric = Rubric("The reply is polite, and it does not promise or guarantee the customer a refund.")
    replies = [
        "I'm sorry about the delay. The billing team will review your refund request.",
        "We will refund you in full right away, guaranteed.",
        "Whatever. Read the FAQ.",
        "Thank you for reaching out! You can track the parcel from the link in your email.",
        "Sure, PayPal is accepted at checkout.",
        "I understand your frustration; I cannot promise a refund, but I will ask billing.",
    ]
    judged_items = [JudgeItem(rubric, "My order is late. Can I get my money back?", reply) for reply in replies]
    runner = JudgeRunner(backend, chat=has_chat_template(backend))
    batched = runner.judge(judged_items)
    single = [runner.judge([item])[0] for item in judged_items]
    assert runner.calls[0] == ("rank", 6) and all(call == ("rank", 1) for call in runner.calls[1:])
    for a, b in zip(batched, single):
        assert a.label == b.label  # type: ignore[union-attr]
        assert a.probabilities["PASS"] == pytest.approx(b.probabilities["PASS"], abs=1e-3)  # type: ignore[union-attr]
