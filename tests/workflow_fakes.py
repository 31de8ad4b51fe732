"""Helpers for the workflow tests: tools, a scripted model, and tokenizers carrying real chat templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

TEMPLATES = Path(__file__).parent / "data" / "chat_templates"

WEATHER = {"Paris": "sunny, 21 C", "Lyon": "rain, 14 C", "Oslo": "snow, -3 C"}


def get_weather(city: str) -> str:
    """Today's weather in a city.

    Args:
        city: the city's name
    """
    return WEATHER.get(city, "unknown city")


def convert(amount: float, currency: str = "EUR") -> dict:
    """Convert an amount of US dollars.

    Args:
        amount: how many dollars
        currency: the currency to convert to (choices: ["EUR", "GBP"])
    """
    rate = {"EUR": 0.5, "GBP": 0.25}[currency]
    return {"amount": amount * rate, "currency": currency}


def template_tokenizer(template: str, **kwargs: Any) -> Any:
    """A tokenizer with a two-word vocabulary and ``template`` as its chat template: rendering a
    chat template needs no vocabulary, so this builds in milliseconds and loads no weights."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1}, unk_token="<unk>")),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<s>",
        **kwargs,
    )
    tokenizer.chat_template = template
    return tokenizer


def load_template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def call_text(name: str, **arguments: Any) -> str:
    """A model output calling ``name`` in the ``<tool_call>`` form."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


class ScriptedModel:
    """A model whose next message is a function of the conversation so far (so it never depends on
    the batch), recording each batch it was asked for."""

    def __init__(self, respond: Callable[[list[dict]], Any]) -> None:
        self.respond = respond
        self.batches: list[int] = []

    def __call__(self, batch: Sequence[list[dict]]) -> list[Any]:
        self.batches.append(len(batch))
        return [self.respond(messages) for messages in batch]


def weather_agent(messages: list[dict]) -> str:
    """Calls get_weather for the city named in the last user message, then answers with the result."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"The weather: {last['content']}."
    city = last["content"].split()[-1].strip("?.!")
    return call_text("get_weather", city=city)
