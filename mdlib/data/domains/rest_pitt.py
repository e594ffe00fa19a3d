"""The rest_pitt domain: the restaurant task in Pittsburgh, with new slot values (adaptation to
new vocabulary): its slots and values, phrasings, parser and listener words, corpus seed."""

from __future__ import annotations

from dataclasses import replace

from mdlib.data.domains import restaurant
from mdlib.data.domains.record import Domain, Slot

#: Pittsburgh places (also the bus stops of :mod:`.bus`).
PLACES = ("Downtown", "CMU", "Forbes and Murray", "Craig", "Waterfront", "Airport", "U Pitt",
          "Mellon Park", "Lawrence", "Monroeville", "Shadyside", "Squirrel Hill")

USER_SLOTS = (
    Slot("loc",
        values=PLACES,
        noun="location",
        user_inform=("I am near {v}.", "{v}.", "Somewhere around {v}.", "Close to {v} please."),
        sys_request=("Which part of town are you in?", "Where are you?", "Which neighbourhood?"),
        name_words=("location", "city", "place", "area", "neighbourhood", "neighborhood",
                    "where"),
        cues="area city location neighborhood neighbourhood part place town where",
        wh="where"),
    Slot("food_pref",
        values=("healthy", "fried", "pan-fried", "steamed", "hot pot", "grilled", "salad",
                "boiled", "raw", "stewed"),
        noun="food",
        user_inform=("I like {v} dishes.", "Something {v}.", "{v} food.", "{v}, please."),
        sys_request=("How should the food be cooked?", "What kind of dishes?",
                     "Which cooking style?"),
        name_words=("food", "cuisine", "dishes", "cooking"),
        cues="cooked cooking cuisine dishes eat food mood restaurant"),
)
#: The restaurant's system slots, said and recognised alike, with new values.
_OPEN, _PRICE, _PARKING = restaurant.SYSTEM_SLOTS
SYSTEM_SLOTS = (
    replace(_OPEN, values=("open", "going to start", "going to close", "closed")),
    replace(_PRICE, values=("cheap", "average", "fancy")),
    replace(_PARKING, values=("garage parking", "street parking", "no parking")),
)

DOMAIN = Domain(
    "rest_pitt", USER_SLOTS, SYSTEM_SLOTS, db_size=150,
    corpus_seed=13,
    greetings=("I am an expert on Pittsburgh restaurants. How can I help you?",
               "Welcome to the Pittsburgh restaurant guide. What are you looking for?"),
    needs=restaurant.DOMAIN.needs,
)
