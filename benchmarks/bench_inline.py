"""Inline evaluation cost during training: 500 eval cases on the tiny arithmetic model, against
the training steps between two evals.

    python benchmarks/bench_inline.py                      # 4 rounds of 250 steps + one eval each
    python benchmarks/bench_inline.py --rounds 2 --json out.json

Each round trains ``--steps-between`` optimizer steps (timed), then runs the example suite
(``example_suites/arithmetic_tiny``, 500 held-out cases) inline with
``pytest_llmeval.evaluate`` on the live model (timed). For scale it also times a bare batched
``model.generate`` over the same 500 prompts: the difference is what the pytest machinery
(collection, 500 test items, scoring, reports) costs. Figures are wall-clock seconds on this
machine; on a shared CPU they vary between runs, so compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_suites" / "arithmetic_tiny"
sys.path.insert(0, str(EXAMPLE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-between", type=int, default=250, help="training steps between two evals (default 250)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 keeps torch's default)")
    parser.add_argument("--size", default="small", help="model size of train.py (tiny, small, base)")
    parser.add_argument("--batch-size", type=int, default=None, help="eval batch size (default: the plugin's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    import pytest_llmeval as le
    import train as tiny  # example_suites/arithmetic_tiny/train.py
    import data

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = tiny.build_tokenizer()
    size = tiny.SIZES[args.size]
    model = tiny.build_model(tokenizer, size, seed=0)
    params = sum(p.numel() for p in model.parameters())
    pairs = data.train_pairs()
    ids, mask, labels = tiny.encode(tokenizer, pairs)
    eval_pairs = data.eval_pairs()
    total_steps = args.steps_between * args.rounds
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01, betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(0)
    batch_size = 128
    print(
        f"model: GPT-2 {params / 1e6:.2f}M parameters ({args.size}), torch threads {torch.get_num_threads()}, "
        f"batch {batch_size}, {args.rounds} rounds of {args.steps_between} steps + 1 inline eval of {len(eval_pairs)} cases"
    )
    # warm up imports and the first pytest session so round 1 is not all import time
    warm_started = time.perf_counter()
    le.evaluate(model, tokenizer, str(EXAMPLE), limit=1, history=False, batch_size=args.batch_size)
    warmup_s = time.perf_counter() - warm_started

    rows = []
    step = 0
    for round_ in range(1, args.rounds + 1):
        model.train()
        started = time.perf_counter()
        for _ in range(args.steps_between):
            batch = torch.randint(0, len(pairs), (batch_size,), generator=generator)
            for group in optimizer.param_groups:
                group["lr"] = tiny.lr_at(step, total_steps, 3e-3, 100)
            loss = model(input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        train_s = time.perf_counter() - started

        started = time.perf_counter()
        result = le.evaluate(model, tokenizer, str(EXAMPLE), history=False, batch_size=args.batch_size)
        eval_s = time.perf_counter() - started
        assert model.training, "evaluate() must hand the model back in training mode"

        started = time.perf_counter()
        direct_acc = tiny.greedy_accuracy(model, tokenizer, eval_pairs)
        direct_s = time.perf_counter() - started

        rate = result.pass_rate("test_addition")
        row = {
            "round": round_,
            "step": step,
            "train_s": round(train_s, 3),
            "train_step_ms": round(1000 * train_s / args.steps_between, 2),
            "eval_s": round(eval_s, 3),
            "eval_cases": result.n,
            "eval_ms_per_case": round(1000 * eval_s / result.n, 3),
            "eval_vs_train": round(eval_s / train_s, 4),
            "bare_generate_s": round(direct_s, 3),
            "pass_rate": rate,
            "bare_generate_accuracy": direct_acc,
        }
        rows.append(row)
        print(
            f"round {round_}: step {step:>5}  train {train_s:7.2f}s ({row['train_step_ms']:.1f} ms/step)  "
            f"inline eval {eval_s:6.2f}s for {result.n} cases ({row['eval_ms_per_case']:.2f} ms/case, "
            f"{100 * eval_s / train_s:.1f}% of the training time)  bare generate {direct_s:5.2f}s  pass rate {rate:.1%}"
        )

    med_train = statistics.median(r["train_s"] for r in rows)
    med_eval = statistics.median(r["eval_s"] for r in rows)
    med_bare = statistics.median(r["bare_generate_s"] for r in rows)
    summary = {
        "params": params,
        "threads": torch.get_num_threads(),
        "steps_between_evals": args.steps_between,
        "warmup_s": round(warmup_s, 3),
        "median_train_s": med_train,
        "median_eval_s": med_eval,
        "median_bare_generate_s": med_bare,
        "eval_overhead_vs_training": round(med_eval / med_train, 4),
        "pytest_overhead_s": round(med_eval - med_bare, 3),
        "rounds": rows,
    }
    print(
        f"median: {args.steps_between} training steps {med_train:.2f}s, inline eval of 500 cases {med_eval:.2f}s "
        f"({100 * med_eval / med_train:.1f}% of the training time between two evals; bare generate {med_bare:.2f}s, "
        f"so the pytest machinery adds {med_eval - med_bare:.2f}s); first-eval warm-up {warmup_s:.2f}s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
