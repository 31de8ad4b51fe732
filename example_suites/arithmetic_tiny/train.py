"""Train a tiny GPT-2 (under 1M parameters) on two-digit addition, evaluating it inline.

    python example_suites/arithmetic_tiny/train.py --out runs/tiny             # about 2 min on a CPU
    python example_suites/arithmetic_tiny/train.py --out runs/tiny --quick     # seconds (for tests)

Every ``--save-every`` steps it saves ``checkpoint-<step>/`` (weights + a character tokenizer
that ``AutoTokenizer`` loads); every ``--eval-every`` steps it runs this directory's eval suite
on the live model with ``pytest_llmeval.EvalEvery`` (no copy of the weights, training mode
restored afterwards) and logs ``eval/<suite>/pass_rate``. It also writes ``train.jsonl`` (the
training texts, for ``--llmeval-train-data``) and ``log.jsonl`` (loss and eval figures by step).

Then decide on a checkpoint:

    python -m pytest_llmeval compare runs/tiny/checkpoint-500/llmeval runs/tiny/checkpoint-1000/llmeval
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402  (this directory's data module)

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
ALPHABET = list("0123456789+= ")
MAX_LEN = 16  # position embeddings; "99+99=198" plus <eos> is 10 tokens
SEQ_LEN = 10


@dataclass(frozen=True)
class ModelSize:
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4


SIZES = {
    "tiny": ModelSize(n_embd=32, n_layer=1, n_head=2),
    "small": ModelSize(n_embd=96, n_layer=3, n_head=4),
    "base": ModelSize(n_embd=128, n_layer=4, n_head=4),
}


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    seconds: float
    checkpoints: list[Path] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)


def build_tokenizer() -> Any:
    """A character-level tokenizer (digits, ``+``, ``=``, space) with ``<pad>``/``<eos>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *ALPHABET])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    fast.padding_side = "left"
    fast.model_max_length = MAX_LEN
    return fast


def build_model(tokenizer: Any, size: ModelSize = SIZES["small"], seed: int = 0) -> Any:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=MAX_LEN,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def encode(tokenizer: Any, pairs: Sequence[tuple[int, int]]) -> tuple[Any, Any, Any]:
    """Right-padded ``input_ids``/``attention_mask`` of ``"a+b=c<eos>"`` and labels that score
    only the answer and its ``<eos>`` (the prompt is given, not learned)."""
    import torch

    ids = torch.full((len(pairs), SEQ_LEN), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (a, b) in enumerate(pairs):
        prompt = tokenizer(f"{a}+{b}=")["input_ids"]
        answer = tokenizer(str(a + b))["input_ids"] + [tokenizer.eos_token_id]
        seq = prompt + answer
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, len(prompt) : len(seq)] = torch.tensor(answer)
    return ids, mask, labels


def save_checkpoint(model: Any, tokenizer: Any, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(
    out_dir: Path,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 3e-3,
    save_every: int = 250,
    size: ModelSize = SIZES["small"],
    seed: int = 0,
    on_step: Callable[[int, Any, Any], dict[str, float] | None] | None = None,
    log_every: int = 100,
    quiet: bool = False,
) -> TrainResult:
    """Train from scratch; ``on_step(step, model, tokenizer)`` runs after every optimizer step
    (1-based) and may return figures to log (an inline eval)."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    random.seed(seed)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, size, seed)
    pairs = data.train_pairs()
    data.write_train_jsonl(out_dir / "train.jsonl", pairs)
    ids, mask, labels = encode(tokenizer, pairs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(seed)
    warmup = max(1, min(100, steps // 10))
    result = TrainResult(out_dir=out_dir, steps=steps, seconds=0.0)
    log_file = (out_dir / "log.jsonl").open("w", encoding="utf-8")
    params = sum(p.numel() for p in model.parameters())
    if not quiet:
        print(f"training a {params / 1e6:.2f}M-parameter GPT-2 on {len(pairs)} additions for {steps} steps")
    model.train()
    started = time.perf_counter()
    order = torch.randperm(len(pairs), generator=generator)
    cursor = 0
    running = 0.0
    for step in range(1, steps + 1):
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(pairs), generator=generator), 0
        batch = order[cursor : cursor + batch_size]
        cursor += batch_size
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step - 1, steps, lr, warmup)
        loss = model(input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += float(loss.detach())
        entry: dict[str, Any] = {}
        if step % log_every == 0 or step == steps:
            count = log_every if step % log_every == 0 else step % log_every
            entry.update(step=step, loss=round(running / count, 4), seconds=round(time.perf_counter() - started, 2))
            running = 0.0
        if on_step is not None:
            figures = on_step(step, model, tokenizer)
            if figures:
                entry.update(step=step, seconds=round(time.perf_counter() - started, 2), **figures)
        if save_every and (step % save_every == 0 or step == steps):
            result.checkpoints.append(save_checkpoint(model, tokenizer, out_dir / f"checkpoint-{step}"))
        if entry:
            result.log.append(entry)
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()
            if not quiet:
                shown = {k: v for k, v in entry.items() if not k.startswith("eval/") or k.endswith("/pass_rate")}
                print("  " + "  ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
        if model.training is False:  # an eval hook must hand the model back as it found it
            raise RuntimeError(f"the model was left in eval mode after step {step}")
    final = getattr(on_step, "final", None)
    if callable(final):  # an eval hook that skipped the last step evaluates it now
        figures = final(steps, model, tokenizer)
        if figures:
            entry = {"step": steps, "seconds": round(time.perf_counter() - started, 2), **figures}
            result.log.append(entry)
            log_file.write(json.dumps(entry) + "\n")
    result.seconds = time.perf_counter() - started
    log_file.close()
    return result


def greedy_accuracy(model: Any, tokenizer: Any, pairs: Sequence[tuple[int, int]]) -> float:
    """Exact-match accuracy of greedy answers, computed directly (a cross-check for the suite)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        prompts = [f"{a}+{b}=" for a, b in pairs]
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=4, do_sample=False)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        return sum(t.strip() == str(a + b) for t, (a, b) in zip(texts, pairs)) / len(pairs)
    finally:
        model.train(was_training)


def inline_evals(every: int, out_dir: Path, *, quiet: bool = False, history: Path | None = None) -> Any:
    """The hook ``train`` calls after each step: this directory's suite every ``every`` steps,
    on the live model, its results written next to the checkpoint of that step."""
    from pytest_llmeval import EvalEvery

    return EvalEvery(
        every,
        str(HERE),
        output_dir=str(out_dir / "checkpoint-{step}" / "llmeval"),
        history=history if history is not None else out_dir / "history.sqlite",
        train_data=out_dir / "train.jsonl",
        log=None if quiet else print,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the tiny arithmetic GPT-2 with inline evals.")
    parser.add_argument("--out", type=Path, default=Path("runs/arithmetic_tiny"), help="output directory")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--eval-every", type=int, default=250, help="run the eval suite inline every N steps (0: never)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for a model this small on a shared CPU; 0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long run for tests: 60 steps, tiny model")
    parser.add_argument("--history", type=Path, default=None, help="run-history file for the inline evals (default OUT/history.sqlite)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    if args.quick:
        args.steps, args.save_every, args.eval_every, size = 60, 30, 30, SIZES["tiny"]
    on_step = inline_evals(args.eval_every, args.out, quiet=args.quiet, history=args.history) if args.eval_every else None
    result = train(
        args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
        size=size, seed=args.seed, on_step=on_step, quiet=args.quiet,
    )
    if not args.quiet:
        evals = on_step.eval_seconds if on_step is not None else 0.0
        print(
            f"trained {result.steps} steps in {result.seconds:.1f}s ({evals:.1f}s of it in inline evals); "
            "checkpoints: " + ", ".join(p.name for p in result.checkpoints)
        )
        evaluated = [p for p in result.checkpoints if (p / "llmeval" / "results.json").exists()]
        if len(evaluated) >= 2:
            a, b = evaluated[-2], evaluated[-1]
            print(f"decide: python -m pytest_llmeval compare {a / 'llmeval'} {b / 'llmeval'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
