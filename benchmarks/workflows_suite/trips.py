"""The benchmark's 64 workflow cases and two tools: a travel assistant asked about 16 cities.

Each case starts with one question and has two scripted user turns, so every conversation takes at
least three rounds (more when the model calls a tool). The tools answer from fixed data, so a
transcript depends on the model alone.
"""

from __future__ import annotations

CITIES = [
    "Paris", "Oslo", "Rome", "Lisbon", "Berlin", "Madrid", "Vienna", "Prague",
    "Dublin", "Athens", "Warsaw", "Helsinki", "Zurich", "Brussels", "Stockholm", "Budapest",
]  # fmt: skip
QUESTIONS = [
    "I fly to {city} tomorrow. What will the weather be like?",
    "What time is it in {city} right now?",
    "Should I take an umbrella to {city} today?",
    "Is it a good day for a walk in {city}?",
]
USER_TURNS = ["Thanks! What should I pack?", "Please sum up your advice in one sentence."]
SYSTEM = "You are a travel assistant. Use the tools to look up the weather and the local time before you answer."
MAX_TURNS = 5


def get_weather(city: str) -> str:
    """Today's weather in a city.

    Args:
        city: the city's name
    """
    n = sum(map(ord, city)) % 4
    return ["sunny, 24 C", "rain, 12 C", "cloudy, 17 C", "snow, -2 C"][n]


def local_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: the city's name
    """
    return f"{8 + sum(map(ord, city)) % 12}:30"


TOOLS = [get_weather, local_time]

CASES = [
    {"id": f"{city.lower()}-{k}", "question": question.format(city=city), "city": city, "user_turns": USER_TURNS}
    for city in CITIES
    for k, question in enumerate(QUESTIONS)
]
