"""Time multiple-choice scoring: pytest-llmeval's rank_choices against lm-evaluation-harness.

Both score the same requests with the same model (a transformers directory, float32, CPU by
default) on the same local data: ARC-, HellaSwag- and MMLU-shaped tasks (5-shot for MMLU)
generated here with a fixed seed, read by lm-eval through its own default task configs.
lm-eval's time is that of its ``loglikelihood`` call (tokenization and forward passes, as
``lm.loglikelihood`` is wrapped by a timer); ours that of ``rank_choices`` over the items
built by our loaders. Model loading is excluded on both sides. Accuracies are printed side by
side; the per-choice loglikelihoods are compared too.

    .venv/bin/python benchmarks/bench_loglik.py                      # needs .venv-lmeval
    .venv/bin/python benchmarks/bench_loglik.py --scale 0.3 --batch-size 16

The lm-eval environment is made by reference/make_reference.py (.venv-lmeval).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENV_PYTHON = ROOT / ".venv-lmeval" / "bin" / "python"

WORDS = (
    "the a man woman child dog cat teacher student river mountain city house car tree garden water fire light "
    "energy plant animal cell body heart blood bone rock soil air cloud rain snow wind storm sun moon star planet "
    "earth ocean island forest desert field farm road bridge tower market school library museum hospital kitchen "
    "table chair door window book letter paper pencil computer phone music song dance game ball team player coach "
    "walks runs jumps reads writes builds opens closes carries pushes pulls finds loses keeps gives takes makes "
    "quickly slowly carefully happily quietly loudly suddenly finally often always never sometimes "
    "red blue green small large heavy light warm cold bright dark old new young strong weak simple "
    "because although while after before during through across under over into onto with without"
).split()
ACTIVITIES = ["Cooking", "Gardening", "Playing soccer", "Washing dishes", "Painting a fence", "Riding a bike",
              "Home and Garden", "Sports and Fitness", "Cleaning the house", "Making tea"]


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize()


def make_data(folder: Path, scale: float, seed: int = 7) -> dict[str, dict[str, str]]:
    """ARC, HellaSwag and MMLU files (published schemas) with random but unique content."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, rows: list[dict]) -> str:
        path = folder / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    arc = []
    for i in range(int(200 * scale)):
        texts = [_sentence(rng, 1, 5).lower() for _ in range(4)]
        arc.append({"id": f"bench-arc-{i}", "question": _sentence(rng, 8, 20) + "?",
                    "choices": {"text": texts, "label": list("ABCD")}, "answerKey": rng.choice("ABCD")})
    hs = []
    for i in range(int(120 * scale)):
        hs.append({"ind": i, "activity_label": rng.choice(ACTIVITIES), "ctx_a": _sentence(rng, 15, 35) + ".",
                   "ctx_b": _sentence(rng, 2, 5).lower(), "endings": [_sentence(rng, 8, 20).lower() + "." for _ in range(4)],
                   "label": str(rng.randrange(4))})

    def mmlu_row() -> dict:
        return {"question": _sentence(rng, 10, 30) + "?", "subject": "high_school_geography",
                "choices": [_sentence(rng, 1, 6).lower() for _ in range(4)], "answer": rng.randrange(4)}

    mmlu_test = [mmlu_row() for _ in range(int(60 * scale))]
    mmlu_dev = [mmlu_row() for _ in range(5)]
    return {
        "arc": {"test": write("arc.jsonl", arc)},
        "hellaswag": {"validation": write("hellaswag.jsonl", hs)},
        "mmlu": {"test": write("mmlu_test.jsonl", mmlu_test), "dev": write("mmlu_dev.jsonl", mmlu_dev)},
    }


TASK_YAML = {
    "arc": ("arc/arc_easy.yaml", "test_split: test\ntraining_split: null\nvalidation_split: null\n"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "training_split: null\nvalidation_split: validation\ntest_split: null\n"),
    "mmlu": ("mmlu/default/mmlu_high_school_geography.yaml", "test_split: test\nfewshot_split: dev\ntag: []\nnum_fewshot: 5\n"),
}

LMEVAL_DRIVER = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
model_dir, task_dir, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
lm = HFLM(pretrained=model_dir, dtype="float32", batch_size=batch, device="cpu")
load = time.perf_counter() - t
timing = {"seconds": 0.0, "requests": 0}
inner = lm.loglikelihood
def timed(requests, *a, **k):
    t = time.perf_counter()
    out = inner(requests, *a, **k)
    timing["seconds"] += time.perf_counter() - t
    timing["requests"] += len(requests)
    return out
lm.loglikelihood = timed
t = time.perf_counter()
res = simple_evaluate(model=lm, tasks=["bench_arc", "bench_hellaswag", "bench_mmlu"],
                      task_manager=TaskManager(include_path=task_dir), log_samples=True)
total = time.perf_counter() - t
acc = {k: {m: v for m, v in r.items() if m in ("acc,none", "acc_norm,none")} for k, r in res["results"].items()}
lls = {k: [[float(x[0]) for x in s["filtered_resps"]] for s in sorted(v, key=lambda s: s["doc_id"])] for k, v in res["samples"].items()}
print("BENCH_JSON " + json.dumps({"load_s": load, "loglikelihood_s": timing["seconds"], "requests": timing["requests"],
                                   "evaluate_s": total, "acc": acc, "lls": lls, "threads": torch.get_num_threads()}))
"""


def run_lmeval(model_dir: Path, data: dict, work: Path, batch: int, threads: int) -> dict:
    tasks_root = subprocess.run(
        [str(VENV_PYTHON), "-c", "import lm_eval.tasks, os; print(os.path.dirname(lm_eval.tasks.__file__))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    task_dir = work / "tasks"
    task_dir.mkdir(exist_ok=True)
    for name, (include, extra) in TASK_YAML.items():
        text = (f"include: {json.dumps(str(Path(tasks_root) / include))}\ntask: bench_{name}\n"
                f"dataset_path: json\ndataset_name: null\ndataset_kwargs: {json.dumps({'data_files': data[name]})}\n{extra}")
        (task_dir / f"bench_{name}.yaml").write_text(text)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_CACHE=str(work / "datasets-cache"))
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", LMEVAL_DRIVER, str(model_dir), str(task_dir), str(batch), str(threads)],
        capture_output=True, text=True, env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    sys.exit(f"lm-eval failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def run_ours(model_dir: Path, data: dict, batch: int, threads: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_llmeval.datasets import formats
    from pytest_llmeval.datasets.fewshot import build_context
    from pytest_llmeval.models.loglik import rank_choices

    torch.set_num_threads(threads)
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    load = time.perf_counter() - t
    tasks = {
        "bench_arc": (formats.arc(data["arc"]["test"]), []),
        "bench_hellaswag": (formats.hellaswag(data["hellaswag"]["validation"]), []),
        "bench_mmlu": (formats.mmlu(data["mmlu"]["test"]), formats.mmlu(data["mmlu"]["dev"])[:5]),  # first_n
    }
    items, owners = [], []
    for name, (rows, examples) in tasks.items():
        for row in rows:
            items.append((build_context(row, examples), row["choices"]))
            owners.append((name, row))
    t = time.perf_counter()
    ranked = rank_choices(model, tok, items, batch_size=batch)
    seconds = time.perf_counter() - t
    acc: dict[str, dict[str, float]] = {}
    lls: dict[str, list[list[float]]] = {}
    for (name, row), r in zip(owners, ranked):
        a = acc.setdefault(name, {"acc,none": 0.0, "acc_norm,none": 0.0, "n": 0})
        a["acc,none"] += r.pred == row["answer"]
        a["acc_norm,none"] += r.pred_norm == row["answer"]
        a["n"] += 1
        lls.setdefault(name, []).append(list(r.loglikelihoods))
    for a in acc.values():
        n = a.pop("n")
        a["acc,none"] /= n
        a["acc_norm,none"] /= n
    return {"load_s": load, "loglikelihood_s": seconds, "requests": sum(len(i[1]) for i in items), "acc": acc, "lls": lls,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/exp/smol"))
    parser.add_argument("--scale", type=float, default=1.0, help="data size factor (1.0: 200 ARC, 120 HellaSwag, 60 MMLU 5-shot)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not VENV_PYTHON.exists():
        sys.exit("no .venv-lmeval: run reference/make_reference.py first (it builds the lm-eval environment)")
    if not (args.model_dir / "config.json").exists():
        sys.exit(f"{args.model_dir} is not a transformers model directory; reference/make_reference.py converts SmolLM2 there")
    with tempfile.TemporaryDirectory(prefix="bench-loglik-") as tmp:
        work = Path(tmp)
        data = make_data(work / "data", args.scale)
        ours = run_ours(args.model_dir, data, args.batch_size, args.threads)
        theirs = run_lmeval(args.model_dir, data, work, args.batch_size, args.threads)
    worst = 0.0
    for name, docs in ours["lls"].items():
        for a, b in zip(docs, theirs["lls"][name]):
            worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
    print(f"model {args.model_dir}, float32, CPU threads {ours['threads']}/{theirs['threads']}, batch size {args.batch_size}")
    print(f"requests: {ours['requests']} ours, {theirs['requests']} lm-eval")
    print(f"scoring phase: pytest-llmeval {ours['loglikelihood_s']:.1f} s, lm-eval {theirs['loglikelihood_s']:.1f} s, "
          f"speed-up {theirs['loglikelihood_s'] / ours['loglikelihood_s']:.2f}x")
    print(f"model load: pytest-llmeval {ours['load_s']:.1f} s, lm-eval {theirs['load_s']:.1f} s (not counted)")
    print(f"max |loglikelihood difference| {worst:.2e}")
    for name in sorted(ours["acc"]):
        o, t = ours["acc"][name], theirs["acc"].get(name, {})
        print(f"  {name:16s} acc {o['acc,none']:.4f} vs {t.get('acc,none', float('nan')):.4f}   "
              f"acc_norm {o['acc_norm,none']:.4f} vs {t.get('acc_norm,none', float('nan')):.4f}")
    if args.json:
        summary = {k: v for k, v in ours.items() if k != "lls"}, {k: v for k, v in theirs.items() if k != "lls"}
        args.json.write_text(json.dumps({"ours": summary[0], "lm_eval": summary[1], "max_abs_diff": worst}, indent=2) + "\n")


if __name__ == "__main__":
    main()
