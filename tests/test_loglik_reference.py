"""Agreement with lm-evaluation-harness on SmolLM2-135M-Instruct.

reference/lmeval_reference.json holds what lm-eval itself logged (``--log_samples``) for the
data in reference/data/, in six configurations: plain, ``--apply_chat_template``, 2-shot,
2-shot with the chat template, ``max_length=24`` and ``add_bos_token=True``
(reference/make_reference.py rebuilds it). Here we build the same requests from the same
files with our loaders, few-shot and chat helpers, and check

- the (context, continuation) strings equal lm-eval's exactly;
- every per-choice loglikelihood is within the float32 bound below of lm-eval's;
- every greedy flag, acc and acc_norm decision equals lm-eval's. A decision whose two sides
  are closer than the bound (a near-tie) may come out either way on another CPU: near-ties
  are counted and reported, must be rare (at most 1 in 50), and only they may differ.

How far two correct float32 computations may drift apart
--------------------------------------------------------
lm-eval's numbers were made with one machine's kernels, ours with this machine's (and other
batch shapes: we pack the choices of an item into one row). Both round every operation to
float32, eps32 = 2**-23 = 1.19e-7, but in another order (SIMD width, blocking of the
reductions over the hidden size d = 576 and the vocabulary V = 49152), so the last bits
differ and the differences travel through the network. The bound reads the number of layers
L = 30 and V from the converted model's config:

1. One logit. The residual stream takes 2L = 60 float32 updates (attention and MLP in each
   layer); another kernel may round each one differently, by up to about eps32 of the
   stream. The RMSNorm in front of every sub-block passes a relative change on without
   amplifying it, so at worst the changes add up: every logit moves by at most rho * Z,
   rho = 2L * eps32 = 7.2e-6, where Z is the largest |logit| of the scoring forward passes
   (34 to 39 on these data; read with a hook on the output embedding).
2. One token's log-probability, z_y - logsumexp(z), is the difference of two numbers of
   size ~Z that each move by at most rho * Z: 2 * rho * Z; the log-sum-exp's own reduction
   over V terms adds ceil(log2 V) = 16 eps32.
3. A continuation of T tokens: T times that, at worst all in one direction, plus lm-eval's
   float32 sum of the T log-probabilities, (T - 1) * eps32/2 * |LL|:

       tol(T, LL) = T * eps32 * (4 L Z + ceil(log2 V)) + (T - 1) * eps32/2 * |LL|
                  ~ T * 5.5e-4 for Z = 38.5.

The size that matters is T * Z, not |LL|: a log-probability of -3 is the difference of two
numbers near 30, and it is their rounding that differs. So no tolerance relative to |LL|
alone is right: ARC doc 10 with the chat template (T = 9 tokens, LL = -28.73) moved by
1.1e-4 between an AVX-512 and an AVX2 machine, 33 eps32 relative to |LL| but 2.8 eps32
relative to T * Z = 328; its bound is 4.7e-3.

The bound assumes every rounding goes the same way, and the measured differences stay well
below it: at most 0.07 of the tolerance under this machine's AVX-512 kernels and under
ATEN_CPU_CAPABILITY=avx2 or =default, with the logits themselves moving by at most
33 eps32 * Z between those kernels (rho allows 60). A real mistake lands far above it: a
missing or extra BOS, a context one token short, or bfloat16/float16 arithmetic put most
requests beyond their tolerance.

A greedy flag is a near-tie when its deciding token leads (or trails) the best other token
by at most 2 * rho * Z; an acc (acc_norm) decision, when lm-eval's loglikelihoods (per
character) of the chosen and another choice are within the sum of their tolerances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.datasets import formats
from pytest_llmeval.datasets.fewshot import build_context
from pytest_llmeval.models.chat import chat_fewshot_context
from pytest_llmeval.models.loglik import encode_pair, model_max_length, rank_choices
from rounding import EPS32, Bound, watch_logits

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((ROOT / "reference" / "lmeval_reference.json").read_text(encoding="utf-8"))
NEAR_TIES_AT_MOST = 1 / 50  # of a run's decisions; with more, the data could not check decisions


LOADERS = {
    "ref_arc": formats.arc,
    "ref_hellaswag": formats.hellaswag,
    "ref_mmlu": formats.mmlu,
    "ref_truthfulqa_mc1": formats.truthfulqa_mc1,
    "ref_winogrande": formats.winogrande,
    "ref_raw": None,  # plain case rows: id, context, choices, answer
}
FEWSHOT_SPLIT = {"ref_arc": "train", "ref_mmlu": "dev"}


def load(task: str, split_files: dict[str, str], split: str) -> list[dict[str, Any]]:
    path = ROOT / "reference" / split_files[split]
    loader = LOADERS[task]
    if loader is None:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return loader(path)


def eval_split(task: str) -> str:
    return {"ref_hellaswag": "validation", "ref_truthfulqa_mc1": "validation", "ref_winogrande": "validation"}.get(task, "test")


def build_items(run: dict[str, Any], task: str, tokenizer: Any = None) -> tuple[list[tuple], list[dict], str]:
    """Our items for one task of one run (as rank_choices takes them), the rows, the delimiter."""
    spec = run["tasks"][task]
    options = run["options"]
    chat = options["apply_chat_template"]
    k = options["num_fewshot"]
    rows = load(task, spec["data"], eval_split(task))
    examples = load(task, spec["data"], FEWSHOT_SPLIT[task])[:k] if k else []  # lm-eval's first_n sampler
    delimiter = "" if chat else " "

    def context(row: dict[str, Any]) -> str:
        return chat_fewshot_context(tokenizer, row, examples) if chat else build_context(row, examples)

    items: list[tuple] = []
    for row in rows:
        if "continuation" in row:  # partial scoring: the choice fills the blank
            if chat:  # one chat context per choice; score each as its own item
                items.append([(context({**row, "context": row["context"] + c}), [row["continuation"]]) for c in row["choices"]])
            else:
                items.append((build_context(row, examples), row["choices"], row["continuation"]))
        else:
            items.append((context(row), row["choices"]))
    return items, rows, delimiter


def requests_of(item: Any, delimiter: str) -> list[list[str]]:
    if isinstance(item, list):  # chat partial scoring: one (context, [continuation]) per choice
        return [[ctx, delimiter + conts[0]] for ctx, conts in item]
    if len(item) == 3:
        context, choices, continuation = item
        return [[context + c, delimiter + continuation] for c in choices]
    context, choices = item
    return [[context, delimiter + c] for c in choices]


CASES = [(name, task) for name, run in REFERENCE["runs"].items() for task in run["tasks"]]


def _tokenizer_for(run: dict[str, Any], smol_dir: Any) -> Any:
    if not run["options"]["apply_chat_template"]:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir())


@pytest.fixture(scope="module")
def smol_dir(request: pytest.FixtureRequest):
    """A lazily converted SmolLM2 directory (only chat runs and scoring need one)."""
    found: list[Path] = []

    def get() -> Path:
        if not found:
            found.append(_converted(request))
        return found[0]

    return get


def _converted(request: pytest.FixtureRequest) -> Path:
    from pytest_llmeval.models.gguf import ensure_converted

    return ensure_converted(request.getfixturevalue("smollm2_gguf"))


def test_reference_covers_every_configuration():
    runs = REFERENCE["runs"]
    assert {"plain", "chat", "fewshot", "chat_fewshot", "truncate", "add_bos"} <= set(runs)
    assert runs["chat"]["options"]["apply_chat_template"] and runs["fewshot"]["options"]["num_fewshot"] == 2
    n = sum(len(d["arguments"]) for run in runs.values() for t in run["tasks"].values() for d in t["docs"])
    assert n > 400
    greedy = sum(g for run in runs.values() for t in run["tasks"].values() for d in t["docs"] for g in d["is_greedy"])
    assert greedy > 0  # both outcomes of is_greedy are checked


@pytest.mark.parametrize("run_name, task", [c for c in CASES if not REFERENCE["runs"][c[0]]["options"]["apply_chat_template"]])
def test_requests_equal_lm_eval_plain(run_name, task):
    run = REFERENCE["runs"][run_name]
    items, _, delimiter = build_items(run, task)
    docs = run["tasks"][task]["docs"]
    assert len(items) == len(docs)
    for item, doc in zip(items, docs):
        assert requests_of(item, delimiter) == doc["arguments"]


@pytest.mark.slow
@pytest.mark.parametrize("run_name, task", [c for c in CASES if REFERENCE["runs"][c[0]]["options"]["apply_chat_template"]])
def test_requests_equal_lm_eval_chat(run_name, task, smol_dir):
    run = REFERENCE["runs"][run_name]
    items, _, delimiter = build_items(run, task, _tokenizer_for(run, smol_dir))
    docs = run["tasks"][task]["docs"]
    assert len(items) == len(docs)
    for item, doc in zip(items, docs):
        assert requests_of(item, delimiter) == doc["arguments"]


@pytest.fixture(scope="module")
def smol(smol_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smol_dir()
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def near_tie(values: list[float], tolerances: list[float]) -> bool:
    """Whether the best value (the first of equals) is within the tolerances of another one."""
    best = max(range(len(values)), key=lambda i: (values[i], -i))
    return any(values[best] - values[i] <= tolerances[best] + tolerances[i] for i in range(len(values)) if i != best)


def greedy_margin(model: Any, tok: Any, request: tuple[str, str], options: dict[str, Any]) -> float:
    """How far a request's greedy flag is from flipping, in logits, signed like the flag: if
    every token is the argmax, the smallest lead over the best other token (> 0); else minus
    the largest deficit (all the trailing tokens would have to catch up)."""
    import torch

    ctx, cont = encode_pair(tok, *request, add_bos=options.get("add_bos_token"))
    limit = options.get("max_length") or model_max_length(model, tok)
    inp = (ctx + cont)[-(limit + 1):][:-1]
    with torch.inference_mode():
        logits = model(torch.tensor([inp])).logits[0, len(inp) - len(cont):].float()
        rows, target = torch.arange(len(cont)), torch.tensor(cont)
        chosen = logits[rows, target].clone()
        logits[rows, target] = float("-inf")
        leads = chosen - logits.max(dim=-1).values  # > 0: the token is the argmax
        behind = leads[leads <= 0]
        return float(leads.min()) if len(behind) == 0 else float(behind.min())


@dataclass(frozen=True)
class Scored:
    """One request: lm-eval's (context, continuation), its numbers and ours, the tolerance."""

    task: str
    doc: int
    choice: int
    request: tuple[str, str]
    ours: float
    want: float
    greedy: bool
    want_greedy: bool
    tol: float


def run_items(run: dict[str, Any], tok: Any) -> tuple[list[tuple], list[tuple[str, int, int | None]], str]:
    """A run's items as rank_choices takes them, where each came from (task, doc, choice for
    split items) and the target delimiter."""
    items: list[tuple] = []
    where: list[tuple[str, int, int | None]] = []
    delimiter = " "
    for task in run["tasks"]:
        task_items, _, delimiter = build_items(run, task, tok if run["options"]["apply_chat_template"] else None)
        for d, item in enumerate(task_items):
            if isinstance(item, list):  # chat partial scoring: one item per choice
                items.extend(item)
                where.extend((task, d, c) for c in range(len(item)))
            else:
                items.append(item)
                where.append((task, d, None))
    return items, where, delimiter


def scored_requests(run: dict[str, Any], ranked: list[Any], where: list[tuple], tok: Any, bound: Bound) -> list[Scored]:
    add_bos = run["options"].get("add_bos_token")
    out = []
    for r, (task, d, c) in zip(ranked, where, strict=True):
        doc = run["tasks"][task]["docs"][d]
        choices = range(len(doc["arguments"])) if c is None else [c]
        for k, ours, greedy in zip(choices, r.loglikelihoods, r.is_greedy, strict=True):
            context, continuation = doc["arguments"][k]
            n_tokens = len(encode_pair(tok, context, continuation, add_bos=add_bos)[1])
            want = doc["loglikelihoods"][k]
            tol = bound.loglikelihood(n_tokens, want)
            out.append(Scored(task, d, k, (context, continuation), ours, want, greedy, doc["is_greedy"][k], tol))
    return out


def greedy_near_ties(model: Any, tok: Any, run: dict[str, Any], scored: list[Scored], bound: Bound) -> list[str]:
    """Every greedy flag equals lm-eval's, or is a near-tie (checked with one more forward pass)."""
    near = []
    for s in scored:
        if s.greedy != s.want_greedy:
            margin = greedy_margin(model, tok, s.request, run["options"])
            assert abs(margin) <= bound.margin, (s, f"greedy flag differs, {abs(margin):.2e} from flipping > {bound.margin:.2e}")
            near.append(f"{s.task} doc {s.doc} choice {s.choice} greedy flag ({abs(margin):.1e} from flipping)")
    return near


def decision_near_ties(run: dict[str, Any], tok: Any, ranked: list[Any], where: list[tuple], scored: list[Scored]) -> tuple[int, list[str]]:
    """Every acc and acc_norm equals lm-eval's, or is a near-tie; the number of decisions, the near-ties."""
    parts: dict[tuple[str, int], list[Any]] = {}
    for r, (task, d, _) in zip(ranked, where, strict=True):
        parts.setdefault((task, d), []).append(r)
    tols = {(s.task, s.doc, s.choice): s.tol for s in scored}
    count, near = 0, []
    for task in run["tasks"]:
        _, rows, _ = build_items(run, task, tok if run["options"]["apply_chat_template"] else None)
        for d, (row, doc) in enumerate(zip(rows, run["tasks"][task]["docs"], strict=True)):
            want, (first, *rest) = doc["loglikelihoods"], parts[(task, d)]
            tol = [tols[(task, d, k)] for k in range(len(want))]
            checks = []
            if not rest:  # one Ranked per document: its own acc and acc_norm predictions
                checks.append(("acc", first.pred, want, tol))
                lengths = [max(n, 1) for n in first.norm_lengths]
                per_char = ([w / n for w, n in zip(want, lengths)], [t / n for t, n in zip(tol, lengths)])
                checks.append(("acc_norm", first.pred_norm, *per_char))
            else:  # chat partial scoring, one Ranked per choice (acc only)
                values = [p.loglikelihoods[0] for p in (first, *rest)]
                checks.append(("acc", max(range(len(values)), key=lambda i: (values[i], -i)), want, tol))
            for metric, pred, values, tolerances in checks:
                if doc.get(metric) is None:
                    continue
                count += 1
                tie = near_tie(values, tolerances)
                near.extend([f"{task} doc {d} {metric}"] if tie else [])
                assert tie or float(pred == row["answer"]) == doc[metric], (task, d, metric)
    return count, near


def test_bound_grows_with_tokens_and_logit_scale_not_with_the_value():
    smollm2 = Bound(layers=30, vocab=49152, logit_scale=38.5)
    assert smollm2.logit == pytest.approx(60 * EPS32 * 38.5)
    assert smollm2.loglikelihood(1, -0.01) == pytest.approx(5.5e-4, rel=0.01)  # the docstring's numbers
    assert Bound(30, 49152, 36.4).loglikelihood(9, -28.73) == pytest.approx(4.7e-3, rel=0.01)
    # ARC doc 10 (chat) moved by 1.1e-4 between two CPUs: over 30 eps32 of |LL|, within the bound
    assert 1.1e-4 > 30 * EPS32 * 28.73 and Bound(30, 49152, 36.4).loglikelihood(9, -28.73) > 1.1e-4
    # twice the tokens or twice the logit scale: about twice the tolerance; the value barely counts
    assert smollm2.loglikelihood(18, -28.73) == pytest.approx(2 * smollm2.loglikelihood(9, -28.73), rel=0.01)
    assert Bound(30, 49152, 77.0).loglikelihood(9, -28.73) == pytest.approx(2 * smollm2.loglikelihood(9, -28.73), rel=0.01)
    assert smollm2.loglikelihood(9, -280.0) == pytest.approx(smollm2.loglikelihood(9, -28.73), rel=0.05)


def test_near_tie_compares_the_best_with_every_other_choice():
    assert near_tie([-1.0, -1.0003], [2e-4, 2e-4])
    assert not near_tie([-1.0, -1.0005], [2e-4, 2e-4])
    assert near_tie([-1.0, -2.0, -1.0005], [2e-4, 1.0, 4e-4])  # the third choice, not the runner-up
    assert near_tie([-3.0, -1.0, -1.0], [0.0, 0.0, 0.0])  # an exact tie
    assert not near_tie([-5.0, -1.0, -3.0], [0.5, 0.5, 0.5])


def test_greedy_margin_has_the_sign_of_the_greedy_flag(tiny_model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_llmeval.models.loglik import loglikelihood

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    requests = []
    for context in ("What is two plus two?", "The quick brown fox", "Question: What is"):
        ids = tok(context, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
        greedy = tok.decode(out[0, ids.shape[1]:])
        requests += [(context, greedy), (context, greedy + " x"), (context, " Paris")]
    flags = [flag for _, flag in loglikelihood(model, tok, requests)]
    margins = [greedy_margin(model, tok, r, {}) for r in requests]
    assert any(flags) and not all(flags)
    assert [m > 0 for m in margins] == flags


@pytest.mark.slow
@pytest.mark.parametrize("run_name", list(REFERENCE["runs"]))
def test_loglikelihoods_and_predictions_match_lm_eval(run_name, smol):
    model, tok = smol
    run = REFERENCE["runs"][run_name]
    options = run["options"]
    items, where, delimiter = run_items(run, tok)
    with watch_logits(model) as seen:
        ranked = rank_choices(
            model, tok, items, batch_size=8, target_delimiter=delimiter,
            max_length=options.get("max_length"), add_bos=options.get("add_bos_token"),
        )
    bound = Bound.of(model, seen.largest)
    scored = scored_requests(run, ranked, where, tok, bound)
    beyond = [s for s in scored if abs(s.ours - s.want) > s.tol]
    assert not beyond, f"{len(beyond)} loglikelihoods beyond the float32 bound, e.g. {beyond[:3]}"
    decisions, near = decision_near_ties(run, tok, ranked, where, scored)
    near += greedy_near_ties(model, tok, run, scored, bound)
    decisions += len(scored)
    argmax_ties = sum(lead <= bound.margin for lead in seen.leads)
    worst = max(scored, key=lambda s: abs(s.ours - s.want) / s.tol)
    print(
        f"{run_name}: {len(scored)} requests, Z = {bound.logit_scale:.1f}, max |ours - lm-eval| = "
        f"{max(abs(s.ours - s.want) for s in scored):.2e}, at most {abs(worst.ours - worst.want) / worst.tol:.3f} "
        f"of its tolerance; near-ties: {len(near)} of {decisions} decisions {near}, "
        f"{argmax_ties} of {len(seen.leads)} argmax positions"
    )
    assert len(near) <= NEAR_TIES_AT_MOST * decisions, f"too many near-ties to check decisions: {near}"
    assert argmax_ties <= NEAR_TIES_AT_MOST * len(seen.leads), f"{argmax_ties} argmax near-ties"
