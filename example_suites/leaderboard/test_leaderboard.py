"""The six tasks of the original Open LLM Leaderboard, scored as lm-evaluation-harness scores them:
MMLU, ARC-Challenge, HellaSwag, WinoGrande, TruthfulQA MC2 and GSM8K.

The data are the small hand-written samples in reference/data/ (each benchmark's published schema),
so this runs in seconds; point the loaders at local copies of the real files for real figures, and
set the leaderboard's shot counts with num_fewshot= and fewshot_source= (ARC 25, HellaSwag 10,
MMLU 5, WinoGrande 5, TruthfulQA 0, GSM8K 5). reference/make_reference.py runs lm-eval itself on
the same files; tests/test_loglik_reference.py and tests/test_leaderboard_reference.py check that
these prompts, loglikelihoods, mc2 values and GSM8K answers are lm-eval's.
"""

from pathlib import Path

import pytest_llmeval as le
from pytest_llmeval import formats

DATA = Path(__file__).resolve().parents[2] / "reference" / "data"


@le.cases(formats.mmlu(DATA / "mmlu_test.jsonl"), prompt="{context}", choices="choices")
def test_mmlu(case, ranked):
    le.assert_choice(ranked, case["answer"])  # acc


@le.cases(formats.arc(DATA / "arc_challenge_test.jsonl"), prompt="{context}", choices="choices")
def test_arc_challenge(case, ranked):
    le.score("acc", float(ranked.pred == case["answer"]))
    le.assert_choice(ranked, case["answer"], norm=True)  # acc_norm, the leaderboard's figure


@le.cases(formats.hellaswag(DATA / "hellaswag.jsonl"), prompt="{context}", choices="choices")
def test_hellaswag(case, ranked):
    le.score("acc", float(ranked.pred == case["answer"]))
    le.assert_choice(ranked, case["answer"], norm=True)  # acc_norm


@le.cases(
    formats.winogrande(DATA / "winogrande.jsonl"), prompt="{context}", choices="choices", continuation="continuation"
)
def test_winogrande(case, ranked):
    le.assert_choice(ranked, case["answer"])  # acc; each option fills the blank


@le.cases(formats.truthfulqa_mc2(DATA / "truthfulqa_mc2.jsonl"), prompt="{context}", choices="choices")
def test_truthfulqa_mc2(case, ranked):
    le.assert_mc2(ranked, case["labels"], min_score=0.5)  # records mc2; passes with most mass on true answers


@le.cases(
    formats.gsm8k(DATA / "gsm8k.jsonl"),
    prompt="{context}",
    chat=False,  # lm-eval's gsm8k prompt, plain text
    num_fewshot=3,
    fewshot_source=formats.gsm8k(DATA / "gsm8k_train.jsonl"),
    target="target",
    stop=["Question:"],
    max_new_tokens=96,
)
def test_gsm8k(case, completion):
    le.assert_gsm8k(completion, case["answer"])  # records strict_match and flexible_extract; passes on strict
