"""The restaurant domain: its slots and values, phrasings, parser and listener words, corpus seed."""

from __future__ import annotations

from mdlib.data.domains.record import Domain, Slot

#: US cities (also the places of :mod:`.weather`).
CITIES = ("Pittsburgh", "New York", "Boston", "Seattle", "Los Angeles", "San Francisco",
          "San Jose", "Philadelphia", "Washington DC", "Austin")

USER_SLOTS = (
    Slot("loc",
        values=CITIES,
        noun="location",
        user_inform=("I am in {v}.", "{v}.", "Somewhere in {v}.", "I'm looking around {v}.",
                     "In {v} please."),
        sys_request=("Which city are you interested in?", "Where are you?", "Which location?"),
        name_words=("location", "city", "place", "area", "neighbourhood", "neighborhood",
                    "where"),
        cues="area city location neighborhood neighbourhood part place town where",
        wh="where"),
    Slot("food_pref",
        values=("Thai", "Chinese", "Korean", "Japanese", "American", "Italian", "Indian",
                "French", "Greek", "Mexican", "Russian", "Hawaiian"),
        noun="food",
        user_inform=("I like {v} food.", "{v} food.", "I'd like a {v} restaurant.",
                     "{v}, please."),
        sys_request=("What kind of food do you like?", "What type of restaurant?",
                     "Which cuisine?"),
        name_words=("food", "cuisine", "dishes", "cooking"),
        cues="cooked cooking cuisine dishes eat food mood restaurant"),
)
SYSTEM_SLOTS = (
    Slot("open",
        values=("open", "closed"),
        noun="opening status",
        user_request=("Is it open now?", "What are the hours?", "Tell me if it is open."),
        user_yn=("Is it {v}?", "Is the place {v} now?"),
        sys_inform=("The restaurant is {v}.", "It is {v} right now."),
        request_patterns=(r"\bopen\b", r"\bhours\b", r"\bclosed\b"),
        cues="closed hours open"),
    Slot("price",
        values=("cheap", "moderate", "expensive"),
        noun="price",
        user_request=("How expensive is it?", "What's the price?", "What does it cost?"),
        user_yn=("Is it {v}?", "Is the price {v}?"),
        sys_inform=("The price is {v}.", "It is {v}."),
        request_patterns=(r"\bprice\b", r"\bexpensive\b", r"\bcost", r"\bcheap\b"),
        cues="cheap cost expensive price"),
    Slot("parking",
        values=("street parking", "valet parking", "no parking"),
        noun="parking",
        user_request=("What about parking?", "Can I park there?",
                      "What kind of parking does it have?"),
        user_yn=("Does it have {v}?", "Is there {v}?"),
        sys_inform=("It has {v}.", "There is {v}."),
        request_patterns=(r"\bpark",),
        cues="park parking"),
)

DOMAIN = Domain(
    "restaurant", USER_SLOTS, SYSTEM_SLOTS, db_size=100,
    corpus_seed=11,
    greetings=("Welcome to the restaurant recommendation system. How can I help you?",
               "Welcome to the restaurant finder. What are you looking for?"),
    needs=("I need a restaurant.", "I'm looking for a place to eat."),
)
