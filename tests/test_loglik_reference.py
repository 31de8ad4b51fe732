"""Agreement with lm-evaluation-harness on SmolLM2-135M-Instruct.

reference/lmeval_reference.json holds what lm-eval itself logged (``--log_samples``) for the
data in reference/data/, in six configurations: plain, ``--apply_chat_template``, 2-shot,
2-shot with the chat template, ``max_length=24`` and ``add_bos_token=True``
(reference/make_reference.py rebuilds it). Here we build the same requests from the same
files with our loaders, few-shot and chat helpers, and check

- the (context, continuation) strings equal lm-eval's exactly;
- every per-choice loglikelihood is within 1e-4 of lm-eval's and every greedy flag equal;
- acc and acc_norm agree on every document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.datasets import benchmarks as formats
from pytest_llmeval.datasets.fewshot import build_context
from pytest_llmeval.models.chat import chat_fewshot_context
from pytest_llmeval.models.loglik import rank_choices

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((ROOT / "reference" / "lmeval_reference.json").read_text(encoding="utf-8"))
TOLERANCE = 1e-4

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
    gguf = request.getfixturevalue("smollm2_gguf")
    try:
        from pytest_llmeval.models.gguf import ensure_converted
    except ImportError:  # pragma: no cover - the converter lives in the HF backend
        ensure_converted = None
    if ensure_converted is not None:
        return ensure_converted(gguf)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # pragma: no cover

    target = request.config.cache.mkdir("llmeval-smollm2")  # pragma: no cover
    if not (target / "model.safetensors").exists():  # pragma: no cover
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(target)
        tok.save_pretrained(target)
    return target  # pragma: no cover


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


@pytest.mark.slow
@pytest.mark.parametrize("run_name", list(REFERENCE["runs"]))
def test_loglikelihoods_and_predictions_match_lm_eval(run_name, smol):
    model, tok = smol
    run = REFERENCE["runs"][run_name]
    options = run["options"]
    items: list[tuple] = []
    where: list[tuple[str, int, int | None]] = []  # (task, doc index, choice index for split items)
    delimiter = " "
    for task in run["tasks"]:
        task_items, _, delimiter = build_items(run, task, tok if options["apply_chat_template"] else None)
        for d, item in enumerate(task_items):
            if isinstance(item, list):
                for c, sub in enumerate(item):
                    items.append(sub)
                    where.append((task, d, c))
            else:
                items.append(item)
                where.append((task, d, None))
    ranked = rank_choices(
        model, tok, items, batch_size=8, target_delimiter=delimiter,
        max_length=options.get("max_length"), add_bos=options.get("add_bos_token"),
    )
    worst = 0.0
    per_doc: dict[tuple[str, int], list[Any]] = {}
    for r, (task, d, c) in zip(ranked, where):
        doc = run["tasks"][task]["docs"][d]
        want_ll = doc["loglikelihoods"] if c is None else [doc["loglikelihoods"][c]]
        want_greedy = doc["is_greedy"] if c is None else [doc["is_greedy"][c]]
        for got, want in zip(r.loglikelihoods, want_ll, strict=True):
            worst = max(worst, abs(got - want))
            assert abs(got - want) <= TOLERANCE, (run_name, task, d, got, want)
        assert list(r.is_greedy) == want_greedy, (run_name, task, d)
        per_doc.setdefault((task, d), []).append(r)
    for task in run["tasks"]:
        _, rows, _ = build_items(run, task, tok if options["apply_chat_template"] else None)
        for d, (row, doc) in enumerate(zip(rows, run["tasks"][task]["docs"])):
            parts = per_doc[(task, d)]
            if len(parts) == 1:  # one Ranked per document: its own acc and acc_norm predictions
                pred, pred_norm = parts[0].pred, parts[0].pred_norm
            else:  # chat partial scoring, one Ranked per choice (acc only)
                values = [p.loglikelihoods[0] for p in parts]
                pred, pred_norm = max(range(len(values)), key=lambda i: (values[i], -i)), None
            assert float(pred == row["answer"]) == doc["acc"], (run_name, task, d)
            if doc.get("acc_norm") is not None:
                assert float(pred_norm == row["answer"]) == doc["acc_norm"], (run_name, task, d)
    print(f"{run_name}: {len(where)} items, max |ours - lm-eval| = {worst:.2e}")
