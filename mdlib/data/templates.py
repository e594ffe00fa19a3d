"""Surface realisation: dialogue acts to text, with several phrasings per (slot, act).

``restaurant_style`` uses its own system phrasings and greeting (adaptation to a new
style); ``rest_pitt`` differs only in its slot values. User turns get the disfluencies of
the complexity spec: hesitation ("hmm", "uhm"), self-restart ("I want - I want ...") and
self-correction ("..., oh sorry, I mean ..."). Introduced in notebook 01.
"""

from __future__ import annotations

import random

from mdlib.data.acts import Act
from mdlib.data.complexity import Complexity
from mdlib.data.domains import Domain, get_domain
from mdlib.data.text import tokenise

# ------------------------------------------------------------------ user side
# Per slot name (domain-specific keys "domain:slot" take precedence).
USER_INFORM: dict[str, list[str]] = {
    "loc": ["I am in {v}.", "{v}.", "Somewhere in {v}.", "I'm looking around {v}.", "In {v} please."],
    "rest_pitt:loc": ["I am near {v}.", "{v}.", "Somewhere around {v}.", "Close to {v} please."],
    "weather:loc": ["In {v}.", "{v}.", "The weather in {v}.", "I'm asking about {v}."],
    "food_pref": ["I like {v} food.", "{v} food.", "I'd like a {v} restaurant.", "{v}, please."],
    "rest_pitt:food_pref": ["I like {v} dishes.", "Something {v}.", "{v} food.", "{v}, please."],
    "from_loc": ["I'm leaving from {v}.", "From {v}.", "I am at {v} now.", "Departing from {v}."],
    "to_loc": ["I'm going to {v}.", "To {v}.", "I need to get to {v}.", "My destination is {v}."],
    "datetime": ["{v}.", "I'm leaving {v}.", "I need the bus {v}.", "Departure {v}."],
    "weather:datetime": ["{v}.", "For {v}.", "The forecast for {v}.", "I'm asking about {v}."],
    "genre": ["I like {v} movies.", "{v}.", "Something in {v}.", "A {v} movie."],
    "years": ["From the {v}.", "{v}.", "A movie from the {v}.", "Made in the {v}."],
    "country": ["From {v}.", "{v}.", "A movie made in {v}.", "I want a film from {v}."],
}
USER_DONT_CARE = ["I don't care about the {n}.", "Any {n} is fine.", "The {n} doesn't matter.",
                  "Anything is fine for the {n}."]
USER_REQUEST: dict[str, list[str]] = {
    "open": ["Is it open now?", "What are the hours?", "Tell me if it is open."],
    "price": ["How expensive is it?", "What's the price?", "What does it cost?"],
    "parking": ["What about parking?", "Can I park there?", "What kind of parking does it have?"],
    "arrive_in": ["When will the bus arrive?", "How long do I have to wait?", "When is the next bus?"],
    "duration": ["How long is the ride?", "How long will it take?", "How long is the trip?"],
    "temperature": ["What's the temperature?", "How warm will it be?", "What temperature will it be?"],
    "weather_type": ["What will the weather be like?", "What's the weather?", "Will it rain or shine?"],
    "rating": ["What's the rating?", "How do people rate it?", "Is it rated well?"],
    "company": ["Which company made it?", "Who produced it?", "Which studio is it from?"],
    "director": ["Who directed it?", "Who is the director?", "Who made it?"],
}
USER_YN: dict[str, list[str]] = {
    "open": ["Is it {v}?", "Is the place {v} now?"],
    "price": ["Is it {v}?", "Is the price {v}?"],
    "parking": ["Does it have {v}?", "Is there {v}?"],
    "arrive_in": ["Will the bus come in {v} minutes?", "Is the bus here in {v} minutes?"],
    "duration": ["Does the ride take {v} minutes?", "Is it a {v} minute trip?"],
    "temperature": ["Will it be {v} degrees?", "Is it going to be {v} degrees?"],
    "weather_type": ["Is it going to be {v}?", "Will it be {v}?"],
    "rating": ["Is it rated {v}?", "Does it have a rating of {v}?"],
    "company": ["Is it from {v}?", "Did {v} make it?"],
    "director": ["Is it directed by {v}?", "Was the director {v}?"],
}
USER_FIXED: dict[str, list[str]] = {
    "greet": ["Hi.", "Hello.", "Hi there.", "Hey."],
    "confirm": ["Yes.", "Yes, that's right.", "Correct.", "Yeah."],
    "disconfirm": ["No.", "No, that's wrong.", "That's not right.", "Nope."],
    "new_search": ["I have a new search.", "Now I want something else.", "Let's look for something else."],
    "satisfy": ["Thanks, that's all.", "Thank you.", "Great, thanks.", "That's what I needed."],
    "more_request": ["One more thing.", "I have another question.", "Also, one more question."],
    "goodbye": ["Bye.", "Goodbye.", "See you."],
    "kb_return": [""],
    # the listening user's request to say it again (mdlib.system.listener.REPEAT; no parser act)
    "repeat": ["Sorry, could you say that again?", "Sorry, I didn't get that.", "Pardon?",
               "Could you repeat that, please?"],
}
GREET_NEED: dict[str, list[str]] = {
    "restaurant": ["I need a restaurant.", "I'm looking for a place to eat."],
    "rest_pitt": ["I need a restaurant.", "I'm looking for a place to eat."],
    "bus": ["I need a bus.", "I'm looking for bus information."],
    "weather": ["I want the weather.", "What's the weather going to be?"],
    "movie": ["Recommend me a movie.", "I want to watch a movie."],
}

# ------------------------------------------------------------------ system side
NOUNS: dict[str, str] = {
    "loc": "location", "food_pref": "food", "from_loc": "departure place", "to_loc": "destination",
    "datetime": "time", "genre": "genre", "years": "period", "country": "country",
    "open": "opening status", "price": "price", "parking": "parking", "arrive_in": "arrival time",
    "duration": "duration", "temperature": "temperature", "weather_type": "weather",
    "rating": "rating", "company": "company", "director": "director",
}
SYS_GREET: dict[str, list[str]] = {
    "restaurant": ["Welcome to the restaurant recommendation system. How can I help you?",
                   "Welcome to the restaurant finder. What are you looking for?"],
    "restaurant_style": ["Hello there. I know a lot about places to eat. What do you fancy?",
                         "Hey! Hungry? Tell me what you are after."],
    "rest_pitt": ["I am an expert on Pittsburgh restaurants. How can I help you?",
                  "Welcome to the Pittsburgh restaurant guide. What are you looking for?"],
    "bus": ["Ask me about bus information. How can I help?", "Welcome to the bus information system."],
    "weather": ["Weather bot is here. What would you like to know?", "Welcome to the weather service."],
    "movie": ["Want to know about movies? How can I help?", "Welcome to the movie recommender."],
}
SYS_REQUEST: dict[str, list[str]] = {
    "loc": ["Which city are you interested in?", "Where are you?", "Which location?"],
    "rest_pitt:loc": ["Which part of town are you in?", "Where are you?", "Which neighbourhood?"],
    "food_pref": ["What kind of food do you like?", "What type of restaurant?", "Which cuisine?"],
    "rest_pitt:food_pref": ["How should the food be cooked?", "What kind of dishes?", "Which cooking style?"],
    "from_loc": ["Where are you leaving from?", "What's the departure place?", "Where do you start?"],
    "to_loc": ["Where are you going?", "What's your destination?", "Where do you want to go?"],
    "datetime": ["When are you leaving?", "What time do you need the bus?", "When do you travel?"],
    "weather:datetime": ["For which time?", "Which day are you interested in?", "When?"],
    "weather:loc": ["Which city?", "Where do you want the weather for?", "Which place?"],
    "genre": ["What genre do you like?", "Which type of movie?", "What kind of movie?"],
    "years": ["From which period?", "Movies from what years?", "Which decade?"],
    "country": ["From which country?", "Movie from what country?", "Which country's movies?"],
}
SYS_EXPLICIT = ["Do you mean {v}?", "Did you say {v}?", "Is it {v} for the {n}?", "You want {v}, right?"]
SYS_EXPLICIT_DC = ["Do you not care about the {n}?", "Is any {n} fine?"]
SYS_IMPLICIT = ["{v}.", "Okay, {v}.", "Got it, {v}.", "Alright, {v}."]
SYS_IMPLICIT_DC = ["Any {n}.", "Okay, any {n}.", "Got it, the {n} doesn't matter."]
SYS_INFORM: dict[str, list[str]] = {
    "open": ["The restaurant is {v}.", "It is {v} right now."],
    "price": ["The price is {v}.", "It is {v}."],
    "parking": ["It has {v}.", "There is {v}."],
    "arrive_in": ["The bus will arrive in {v} minutes.", "It will be there in {v} minutes."],
    "duration": ["The ride takes {v} minutes.", "It will take {v} minutes."],
    "temperature": ["It will be {v} degrees.", "The temperature will be {v}."],
    "weather_type": ["It will be {v}.", "The forecast says {v}."],
    "rating": ["It has a rating of {v}.", "The rating is {v}."],
    "company": ["It was made by {v}.", "The movie is from {v}."],
    "director": ["It is directed by {v}.", "The director is {v}."],
}
SYS_FIXED: dict[str, list[str]] = {
    "query": ["Let me look that up.", "Searching.", "One moment."],
    "no_result": ["Sorry, I found nothing that matches.", "Nothing matches that, sorry."],
    "request_more": ["Anything else?", "What else can I do for you?", "Is there anything else?"],
    "goodbye": ["Goodbye.", "Bye, have a nice day.", "See you next time."],
}
# restaurant_style: the same acts, said differently
STYLE: dict[str, dict] = {
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

HESITATIONS = ("hmm", "uhm")


def _pick(options: list[str], rng: random.Random) -> str:
    return options[int(rng.random() * len(options))]


def _lookup(table: dict[str, list[str]], domain: Domain, slot: str) -> list[str]:
    base = "restaurant" if domain.name == "restaurant_style" else domain.name
    return table.get(f"{base}:{slot}") or table[slot]


def _fmt(domain: Domain, slot: str, value: str) -> str:
    if slot == "datetime" and domain.name == "bus" and value.isdigit():
        return f"at {value}"
    return value


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _user_sentence(domain: Domain, a: Act, rng: random.Random) -> str:
    if a.act == "inform" and a.slot is not None:
        if a.value is None:
            return _pick(USER_DONT_CARE, rng).format(n=NOUNS[a.slot])
        return _cap(_pick(_lookup(USER_INFORM, domain, a.slot), rng).format(v=_fmt(domain, a.slot, a.value)))
    if a.act == "request" and a.slot is not None:
        return _pick(USER_REQUEST[a.slot], rng)
    if a.act == "yn_question" and a.slot is not None:
        return _pick(USER_YN[a.slot], rng).format(v=a.value)
    if a.act == "greet":
        return _pick(USER_FIXED["greet"], rng)
    return _pick(USER_FIXED.get(a.act, [""]), rng)


def _system_sentence(domain: Domain, a: Act, rng: random.Random) -> str:
    style = domain.style == "style"
    n = NOUNS.get(a.slot or "", "")
    if a.act == "greet":
        return _pick(SYS_GREET[domain.name], rng)
    if a.act == "request" and a.slot is not None:
        if style and a.slot in STYLE["request"]:
            return _pick(STYLE["request"][a.slot], rng)
        return _pick(_lookup(SYS_REQUEST, domain, a.slot), rng)
    if a.act in ("explicit_confirm", "implicit_confirm") and a.slot is not None:
        kind = "explicit" if a.act == "explicit_confirm" else "implicit"
        if a.value is None:
            opts = STYLE[f"{kind}_dc"] if style else (SYS_EXPLICIT_DC if kind == "explicit" else SYS_IMPLICIT_DC)
            return _cap(_pick(opts, rng).format(n=n))
        opts = STYLE[kind] if style else (SYS_EXPLICIT if kind == "explicit" else SYS_IMPLICIT)
        return _cap(_pick(opts, rng).format(v=_fmt(domain, a.slot, a.value), n=n))
    if a.act == "inform" and a.slot is not None:
        table = STYLE["inform"] if style and a.slot in STYLE["inform"] else SYS_INFORM
        return _pick(table[a.slot], rng).format(v=a.value)
    if style and a.act in STYLE:
        return _pick(STYLE[a.act], rng)
    return _pick(SYS_FIXED.get(a.act, [""]), rng)


def _disfluent(domain: Domain, acts: list[Act], parts: list[str], rng: random.Random,
               c: Complexity) -> list[str]:
    """Apply self-correction, self-restart and hesitation to the user's sentences."""
    if c.self_correct > 0:
        for i, a in enumerate(acts):
            if a.act == "inform" and a.value is not None and rng.random() < c.self_correct:
                wrong = [v for v in domain.slot(a.slot).values if v != a.value]
                said = _pick(_lookup(USER_INFORM, domain, a.slot), rng).format(v=_fmt(domain, a.slot, rng.choice(wrong)))
                parts[i] = f"{_cap(said.rstrip('.'))}, oh sorry, I mean {_fmt(domain, a.slot, a.value)}."
                break
    if c.self_restart > 0 and rng.random() < c.self_restart:
        words = parts[-1].split()
        if len(words) > 2:
            k = 1 + rng.randrange(min(2, len(words) - 1))
            parts[-1] = " ".join(words[:k]) + " - " + parts[-1]
    if c.hesitation > 0 and rng.random() < c.hesitation:
        parts[0] = f"{_pick(list(HESITATIONS), rng)}, {parts[0][:1].lower()}{parts[0][1:]}"
    return parts


def system_vocabulary(domain: Domain | str) -> list[str]:
    """The words the system side of ``domain`` speaks: its phrasings' words and every value
    (sorted; ``python -m mdlib simulate --garble`` draws replacement words from it)."""
    domain = get_domain(domain)
    texts = list(SYS_GREET[domain.name]) + SYS_EXPLICIT + SYS_EXPLICIT_DC + SYS_IMPLICIT + SYS_IMPLICIT_DC
    texts += [p for s in domain.usr_slot_names for p in _lookup(SYS_REQUEST, domain, s)]
    texts += [p for k, v in SYS_INFORM.items() if k in domain.slot_names for p in v]
    texts += [p for v in SYS_FIXED.values() for p in v] + [NOUNS[s] for s in domain.slot_names]
    if domain.style == "style":
        texts += [p for v in STYLE.values() for p in (v if isinstance(v, list) else [q for x in v.values() for q in x])]
    texts += [v for vals in domain.values().values() for v in vals]
    words = {t for text in texts for t in tokenise(text.replace("{v}", " ").replace("{n}", " "))}
    return sorted(w for w in words if w[0].isalnum())


def realise(domain: Domain | str, speaker: str, acts: list[Act], rng: random.Random,
            complexity: Complexity | None = None) -> str:
    """Say ``acts`` in words.

    Args:
        domain: the domain (its name picks greetings and system style).
        speaker: "user" or "system".
        acts: the acts of one turn, in order.
        rng: the random stream that picks the phrasings.
        complexity: for user turns, the disfluency knobs (hesitation, self-restart,
            self-correction); ``None`` = none.

    Returns:
        The turn's text (sentences joined by spaces).
    """
    domain = get_domain(domain)
    if speaker == "user":
        parts = [_user_sentence(domain, a, rng) for a in acts]
        if acts and acts[0].act == "greet" and len(acts) == 1 and rng.random() < 0.5:
            parts.append(_pick(GREET_NEED["restaurant" if domain.name == "restaurant_style" else domain.name], rng))
        if parts and complexity is not None:
            parts = _disfluent(domain, acts, parts, rng, complexity)
    else:
        parts = [p for p in (_system_sentence(domain, a, rng) for a in acts) if p]
    return " ".join(p for p in parts if p)
