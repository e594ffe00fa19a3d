"""The weather domain: its slots and values, phrasings, parser and listener words, corpus seed."""

from __future__ import annotations

from mdlib.data.domains.record import Domain, Slot
from mdlib.data.domains.restaurant import CITIES

USER_SLOTS = (
    Slot("loc",
        values=CITIES,
        noun="location",
        user_inform=("In {v}.", "{v}.", "The weather in {v}.", "I'm asking about {v}."),
        sys_request=("Which city?", "Where do you want the weather for?", "Which place?"),
        name_words=("location", "city", "place", "area", "neighbourhood", "neighborhood",
                    "where"),
        cues="area city location neighborhood neighbourhood part place town where",
        wh="where"),
    Slot("datetime",
        values=("today", "tomorrow", "tonight", "this morning", "the day after tomorrow",
                "this weekend"),
        noun="time",
        user_inform=("{v}.", "For {v}.", "The forecast for {v}.", "I'm asking about {v}."),
        sys_request=("For which time?", "Which day are you interested in?", "When?"),
        name_words=("time", "day", "when"),
        cues="date day time travel when",
        wh="when"),
)
SYSTEM_SLOTS = (
    Slot("temperature",
        values=tuple(str(t) for t in range(20, 40, 2)),
        noun="temperature",
        user_request=("What's the temperature?", "How warm will it be?",
                      "What temperature will it be?"),
        user_yn=("Will it be {v} degrees?", "Is it going to be {v} degrees?"),
        sys_inform=("It will be {v} degrees.", "The temperature will be {v}."),
        request_patterns=(r"\btemperature\b", r"\bwarm\b", r"\bdegrees?\b", r"\bcold\b",
                          r"\bhot\b"),
        cues="cold degrees temperature warm"),
    Slot("weather_type",
        values=("raining", "snowing", "windy", "sunny", "foggy", "cloudy"),
        noun="weather",
        user_request=("What will the weather be like?", "What's the weather?",
                      "Will it rain or shine?"),
        user_yn=("Is it going to be {v}?", "Will it be {v}?"),
        sys_inform=("It will be {v}.", "The forecast says {v}."),
        request_patterns=(r"\bweather\b", r"\brain\b", r"\bshine\b", r"\bforecast\b"),
        cues="forecast weather"),
)

DOMAIN = Domain(
    "weather", USER_SLOTS, SYSTEM_SLOTS, db_size=40,
    corpus_seed=15,
    greetings=("Weather bot is here. What would you like to know?",
               "Welcome to the weather service."),
    needs=("I want the weather.", "What's the weather going to be?"),
)
