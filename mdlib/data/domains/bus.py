"""The bus domain: its slots and values, phrasings, parser and listener words, corpus seed."""

from __future__ import annotations

from mdlib.data.domains.record import Domain, Slot
from mdlib.data.domains.rest_pitt import PLACES

USER_SLOTS = (
    Slot("from_loc",
        values=PLACES,
        noun="departure place",
        user_inform=("I'm leaving from {v}.", "From {v}.", "I am at {v} now.",
                     "Departing from {v}."),
        sys_request=("Where are you leaving from?", "What's the departure place?",
                     "Where do you start?"),
        name_words=("departure", "leaving", "start"),
        cues="depart departing departure from leaving start starting",
        wh="where"),
    Slot("to_loc",
        values=PLACES,
        noun="destination",
        user_inform=("I'm going to {v}.", "To {v}.", "I need to get to {v}.",
                     "My destination is {v}."),
        sys_request=("Where are you going?", "What's your destination?",
                     "Where do you want to go?"),
        name_words=("destination", "going"),
        cues="destination get go going to",
        wh="where"),
    Slot("datetime",
        values=(("today", "tomorrow", "tonight", "this morning", "this afternoon")
                + tuple(str(t) for t in range(1, 25))),
        noun="time",
        user_inform=("{v}.", "I'm leaving {v}.", "I need the bus {v}.", "Departure {v}."),
        sys_request=("When are you leaving?", "What time do you need the bus?",
                     "When do you travel?"),
        name_words=("time", "day", "when"),
        cues="date day time travel when",
        wh="when",
        digits="at {v}"),
)
SYSTEM_SLOTS = (
    Slot("arrive_in",
        values=tuple(str(t) for t in range(0, 30, 5)),
        noun="arrival time",
        user_request=("When will the bus arrive?", "How long do I have to wait?",
                      "When is the next bus?"),
        user_yn=("Will the bus come in {v} minutes?", "Is the bus here in {v} minutes?"),
        sys_inform=("The bus will arrive in {v} minutes.", "It will be there in {v} minutes."),
        request_patterns=(r"\barriv", r"\bwait\b", r"\bnext bus\b", r"\bcome in\b",
                          r"\bhere in\b"),
        cues="arrival arrive arrives come comes next there wait waiting"),
    Slot("duration",
        values=tuple(str(t) for t in range(0, 60, 5)),
        noun="duration",
        user_request=("How long is the ride?", "How long will it take?", "How long is the trip?"),
        user_yn=("Does the ride take {v} minutes?", "Is it a {v} minute trip?"),
        sys_inform=("The ride takes {v} minutes.", "It will take {v} minutes."),
        request_patterns=(r"\bhow long\b", r"\bride\b", r"\btrip\b", r"\btake\b"),
        cues="duration journey long ride take takes trip"),
)

DOMAIN = Domain(
    "bus", USER_SLOTS, SYSTEM_SLOTS, db_size=150,
    corpus_seed=14,
    greetings=("Ask me about bus information. How can I help?",
               "Welcome to the bus information system."),
    needs=("I need a bus.", "I'm looking for bus information."),
)
