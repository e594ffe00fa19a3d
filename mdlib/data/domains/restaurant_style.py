"""The restaurant_style domain: the restaurant task with other system phrasings and greetings
(adaptation to a new style); same slots, values and database as :mod:`.restaurant`."""

from __future__ import annotations

from mdlib.data.domains import restaurant
from mdlib.data.domains.record import Domain

#: The system phrasings that replace the default ones of mdlib.data.templates.
PHRASING: dict = {
    "request": {
        "loc": ["Which area are you currently at?", "Well, what is the place?", "Tell me your area."],
        "food_pref": ["What cuisine are you interested in?", "What do you like to eat?",
                      "What are you in the mood for?"],
    },
    "explicit": ["Just to be sure: {v}?", "Let me double-check, {v}?", "Am I right that it's {v}?"],
    "explicit_dc": ["So the {n} really does not matter?"],
    "implicit": ["Great choice, {v}.", "Sure thing, {v}.", "{v}, lovely."],
    "implicit_dc": ["Sure thing, any {n}.", "No preference on the {n}, noted."],
    "inform": {
        "open": ["This wonderful place is {v}.", "Currently, this place is {v}."],
        "price": ["This eating place is {v}.", "Price-wise it's {v}."],
        "parking": ["For parking, it offers {v}.", "The parking status is {v}."],
    },
    "query": ["Let me check my little black book.", "Give me a second to dig into it."],
    "no_result": ["Hmm, none of my places fit that.", "I am afraid nothing fits."],
    "request_more": ["Can I help with something else?", "Anything more you'd like to know?"],
    "goodbye": ["Enjoy your meal!", "Bon appetit, bye!"],
}

DOMAIN = Domain(
    "restaurant_style", restaurant.USER_SLOTS, restaurant.SYSTEM_SLOTS, db_size=100,
    style="style", world="restaurant", corpus_seed=12,
    greetings=("Hello there. I know a lot about places to eat. What do you fancy?",
               "Hey! Hungry? Tell me what you are after."),
    needs=restaurant.DOMAIN.needs,
    phrasing=PHRASING,
)
