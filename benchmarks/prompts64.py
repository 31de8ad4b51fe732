"""The 64 short chat prompts every generation benchmark uses (deterministic)."""

from __future__ import annotations

TOPICS = ["the moon", "coffee", "rainbows", "bicycles", "volcanoes", "honey bees", "the ocean", "paper"]
ASKS = [
    "What is {a} plus {b}? Answer with a number.",
    "Name one fact about {t}.",
    "Say hello to a customer who asks about {t}.",
    "In one short sentence, why do people like {t}?",
    "What color is usually associated with {t}?",
    "Give a one-word synonym for 'happy'.",
    "Is {a} bigger than {b}? Answer yes or no.",
    "Write a four-word title about {t}.",
]


def prompts() -> list[dict]:
    rows = []
    for i in range(64):
        text = ASKS[i % len(ASKS)].format(a=3 + i, b=11 + 2 * i, t=TOPICS[(i // len(ASKS)) % len(TOPICS)])
        rows.append({"id": f"p{i:02d}", "prompt": text})
    return rows


MAX_NEW_TOKENS = 24
