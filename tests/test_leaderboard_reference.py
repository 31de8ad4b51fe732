"""Agreement with lm-evaluation-harness on the Open LLM Leaderboard tasks added to
test_loglik_reference.py's: ARC-Challenge, TruthfulQA MC2 and GSM8K's two answer extractions.

reference/lmeval_leaderboard_reference.json holds what lm-eval 0.4.13 itself logged
(``--log_samples``, SmolLM2-135M-Instruct in float32) with its own ``arc_challenge``,
``truthfulqa_mc2`` and ``gsm8k`` task configs over the files in reference/data/
(reference/make_reference.py rebuilds it):

- ``leaderboard``: every request, loglikelihood and greedy flag of ARC-Challenge and MC2, with
  ARC's acc/acc_norm and each MC2 document's mc2 value;
- ``gsm8k`` (3-shot) and ``gsm8k_zeroshot``: each prompt, generated text, and both filters'
  (``strict-match``, ``flexible-extract``) answers and exact_match;
- ``gsm8k_probes``: hand-written texts passed through lm-eval's gsm8k filters and exact_match
  as its task config builds them.

Here our loaders must build the same request strings; ``mc2_score`` must give lm-eval's mc2
from lm-eval's own loglikelihoods (1e-13: both are the same float64 ratio, a handful of
roundings of relative size 2**-53 apart), and from ours within half the largest per-choice
loglikelihood difference (mc2's gradient with respect to the loglikelihoods has 1-norm
2P(1-P) <= 1/2, so by the mean value theorem |mc2(a) - mc2(b)| <= max|a - b| / 2;
tests/test_scorers_leaderboard.py checks that bound); our loglikelihoods must be within the
per-choice tolerance of test_loglik_reference.py; and ``gsm8k_answer`` / ``gsm8k_exact_match``
must give lm-eval's filtered answer and exact_match on every logged response and probe.

The per-choice tolerance is tests/rounding.py's float32 bound (see test_loglik_reference.py):
it grows with the continuation's tokens and the largest logit. Greedy flags and acc/acc_norm
must be equal, and are CPU-independent here because no scored position and no decision is a
near-tie: the top logit leads by more than twice the bound, and the chosen choice's lm-eval
loglikelihood beats every other by more than their summed tolerances (asserted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rounding import Bound, watch_logits

from pytest_llmeval.datasets import formats
from pytest_llmeval.datasets.fewshot import build_context
from pytest_llmeval.scoring.leaderboard import gsm8k_answer, gsm8k_exact_match, mc2_score

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((ROOT / "reference" / "lmeval_leaderboard_reference.json").read_text(encoding="utf-8"))
MC2_ROUNDING = 1e-13
FILTERS = {"strict-match": "strict", "flexible-extract": "flexible"}
INVALID = "[invalid]"  # lm-eval's fallback where a filter finds nothing

MC = REFERENCE["runs"]["leaderboard"]
GSM8K_RUNS = [name for name in REFERENCE["runs"] if "ref_gsm8k" in REFERENCE["runs"][name]["tasks"]]
LOADERS = {"ref_arc_challenge": formats.arc, "ref_truthfulqa_mc2": formats.truthfulqa_mc2}


def rows_of(task_spec: dict[str, Any], split: str, loader: Any) -> list[dict[str, Any]]:
    return loader(ROOT / "reference" / task_spec["data"][split])


def mc_rows(task: str) -> list[dict[str, Any]]:
    spec = MC["tasks"][task]
    return rows_of(spec, "test" if "test" in spec["data"] else "validation", LOADERS[task])


def gsm8k_docs() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(run name, lm-eval's doc, our row) for every logged GSM8K document."""
    found = []
    for name in GSM8K_RUNS:
        spec = REFERENCE["runs"][name]["tasks"]["ref_gsm8k"]
        rows = rows_of(spec, "test", formats.gsm8k)
        assert len(rows) == len(spec["docs"])
        found += [(name, doc, row) for doc, row in zip(spec["docs"], rows)]
    return found


def test_reference_covers_the_leaderboard_tasks():
    assert {"ref_arc_challenge", "ref_truthfulqa_mc2"} <= set(MC["tasks"])
    assert {"gsm8k", "gsm8k_zeroshot"} <= set(GSM8K_RUNS)
    mc2 = [d["mc2"] for d in MC["tasks"]["ref_truthfulqa_mc2"]["docs"]]
    assert len(mc2) == 8 and len(set(mc2)) == 8 and all(0 < v < 1 for v in mc2)
    assert len(MC["tasks"]["ref_arc_challenge"]["docs"]) == 10
    answers = [(doc["filters"]["strict-match"], doc["filters"]["flexible-extract"]) for _, doc, _ in gsm8k_docs()]
    answers += [(p["filters"]["strict-match"], p["filters"]["flexible-extract"]) for p in REFERENCE["gsm8k_probes"]]
    # every branch is exercised: a strict answer, a strict miss, the two filters disagreeing,
    # and each filter's exact_match both ways
    assert any(s["answer"] != INVALID for s, _ in answers) and any(s["answer"] == INVALID for s, _ in answers)
    assert any(s["answer"] != f["answer"] for s, f in answers)
    for which in (0, 1):
        assert {pair[which]["exact_match"] for pair in answers} == {0.0, 1.0}


@pytest.mark.parametrize("task", sorted(LOADERS))
def test_multiple_choice_requests_equal_lm_eval(task):
    rows, docs = mc_rows(task), MC["tasks"][task]["docs"]
    assert len(rows) == len(docs)
    for row, doc in zip(rows, docs):
        assert [[row["context"], " " + c] for c in row["choices"]] == doc["arguments"]


def test_arc_challenge_acc_from_lm_eval_loglikelihoods():
    """The answer index our loader reads is the one lm-eval scores against."""
    for row, doc in zip(mc_rows("ref_arc_challenge"), MC["tasks"]["ref_arc_challenge"]["docs"]):
        lls = doc["loglikelihoods"]
        best = max(range(len(lls)), key=lambda i: (lls[i], -i))
        assert float(best == row["answer"]) == doc["acc"]


def test_mc2_from_lm_eval_loglikelihoods_equals_its_mc2():
    rows, docs = mc_rows("ref_truthfulqa_mc2"), MC["tasks"]["ref_truthfulqa_mc2"]["docs"]
    for row, doc in zip(rows, docs):
        assert abs(mc2_score(doc["loglikelihoods"], row["labels"]) - doc["mc2"]) <= MC2_ROUNDING, doc["doc_id"]


def test_gsm8k_prompts_equal_lm_eval():
    """3-shot prompts: lm-eval's first_n examples from the train file, rendered by build_context."""
    for name, doc, row in gsm8k_docs():
        spec = REFERENCE["runs"][name]
        k = spec["options"]["num_fewshot"]
        examples = rows_of(spec["tasks"]["ref_gsm8k"], "train", formats.gsm8k)[:k] if k else []
        assert build_context(row, examples) == doc["context"], (name, doc["doc_id"])
        assert row["target"] == doc["target"]


def test_gsm8k_extraction_and_exact_match_equal_lm_eval_on_every_response():
    checked = 0
    for name, doc, row in gsm8k_docs():
        for lm_eval_filter, mode in FILTERS.items():
            want = doc["filters"][lm_eval_filter]
            got = gsm8k_answer(doc["response"], mode)
            assert (INVALID if got is None else got) == want["answer"], (name, doc["doc_id"], mode)
            assert gsm8k_exact_match(doc["response"], doc["target"], mode) == want["exact_match"], (name, doc["doc_id"])
            assert gsm8k_exact_match(doc["response"], row["answer"], mode) == want["exact_match"], (name, doc["doc_id"])
            checked += 1
    assert checked == 2 * 20


@pytest.mark.parametrize("probe", REFERENCE["gsm8k_probes"], ids=lambda p: repr(p["text"])[:40])
def test_gsm8k_extraction_and_exact_match_equal_lm_eval_on_probes(probe):
    for lm_eval_filter, mode in FILTERS.items():
        want = probe["filters"][lm_eval_filter]
        got = gsm8k_answer(probe["text"], mode)
        assert (INVALID if got is None else got) == want["answer"], mode
        assert gsm8k_exact_match(probe["text"], probe["gold"], mode) == want["exact_match"], mode


def assert_clear_decision(lls: list[float], tols: list[float], lengths: list[int]) -> None:
    """acc and acc_norm pick a choice that beats every other by more than both tolerances, so no
    CPU's rounding could pick another."""
    for scores, scale in ((lls, [1] * len(lls)), ([ll / n for ll, n in zip(lls, lengths)], lengths)):
        best = max(range(len(scores)), key=scores.__getitem__)
        for i, s in enumerate(scores):
            if i != best:
                assert scores[best] - s > tols[best] / scale[best] + tols[i] / scale[i], ("near-tie", lls)


@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_llmeval.models.gguf import ensure_converted

    path = ensure_converted(smollm2_gguf)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.mark.slow
def test_loglikelihoods_acc_and_mc2_match_lm_eval(smol):
    from pytest_llmeval.models.loglik import encode_pair, rank_choices

    model, tok = smol
    tasks = sorted(LOADERS)
    rows = {task: mc_rows(task) for task in tasks}
    items = [(row["context"], row["choices"]) for task in tasks for row in rows[task]]
    with watch_logits(model) as seen:
        ranked = iter(rank_choices(model, tok, items, batch_size=8))
    bound = Bound.of(model, seen.largest)
    assert min(seen.leads) > 2 * bound.margin, "a greedy near-tie: the flags could differ on another CPU"
    worst_ll = worst_mc2 = 0.0
    for task in tasks:
        for row, doc in zip(rows[task], MC["tasks"][task]["docs"]):
            r = next(ranked)
            tols = [bound.loglikelihood(len(encode_pair(tok, row["context"], " " + c)[1]), want)
                    for c, want in zip(row["choices"], doc["loglikelihoods"], strict=True)]  # fmt: skip
            diffs = [abs(a - b) for a, b in zip(r.loglikelihoods, doc["loglikelihoods"], strict=True)]
            worst_ll = max(worst_ll, *diffs)
            assert all(d <= t for d, t in zip(diffs, tols)), (task, doc["doc_id"], r.loglikelihoods, doc["loglikelihoods"], tols)
            assert list(r.is_greedy) == doc["is_greedy"], (task, doc["doc_id"])
            if task == "ref_truthfulqa_mc2":
                delta = abs(mc2_score(r, row["labels"]) - doc["mc2"])
                worst_mc2 = max(worst_mc2, delta)
                assert delta <= max(diffs) / 2 + MC2_ROUNDING, (doc["doc_id"], delta, max(diffs))
            else:
                assert_clear_decision(doc["loglikelihoods"], tols, [len(c) for c in row["choices"]])
                assert float(r.pred == row["answer"]) == doc["acc"], doc["doc_id"]
                assert float(r.pred_norm == row["answer"]) == doc["acc_norm"], doc["doc_id"]
    print(f"leaderboard: {len(items)} items, max |ours - lm-eval| loglikelihood {worst_ll:.2e}, mc2 {worst_mc2:.2e}")
