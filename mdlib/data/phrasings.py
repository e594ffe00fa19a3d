"""Phrasing pools of the persona task family, and the recogniser that reads them back.

For every system (act, slot) of the source domains (bus, restaurant, weather) a pool of six
sentence *frames* is written here. Every pool has the same layout, so a frame index means
the same style in every pool::

    index       0          1        2           3          4        5
    verbosity   short      short    short       long       long     long
    word order  fronted    plain    embedded    fronted    plain    embedded

*fronted* puts the content (the value, the slot, the topic) first ("Cheap, ..." /
"Price-wise, ..."), *plain* is the canonical order ("It is cheap."), *embedded* wraps it in
a clause of the speaker ("I would call it cheap."). A persona's two factors verbosity and
word order therefore pick the same index in every pool (:mod:`mdlib.data.personas`).

Placeholders: ``{v}`` the value as said (``{V}`` capitalised), ``{n}`` the slot's noun
(``{N}`` capitalised), ``{thing}`` the domain's thing word (``{Thing}``). Nouns and thing
words come in three lexical registers (casual, neutral, formal).

:func:`recognise` maps a turn's text to the frame index of each of its acts: it replaces
the act's value, the slot's nouns and every thing word by placeholders, then looks for each
frame of the act's pool as a contiguous token sequence. No frame of a pool is contained in
another of the same pool (tested), so a reference turn is recognised exactly.
docs/personas.md explains the family.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from mdlib.data.acts import Act
from mdlib.data.text import tokenise
from mdlib.errors import MdlibError

#: Frames per pool; frame ``i`` has verbosity ``i // N_ORDERS`` and word order ``i % N_ORDERS``.
POOL_SIZE = 6
VERBOSITY = ("short", "long")
WORD_ORDERS = ("fronted", "plain", "embedded")
N_ORDERS = len(WORD_ORDERS)
REGISTERS = ("casual", "neutral", "formal")

#: The pools, keyed by :func:`act_key` ("act" or "act:slot").
POOLS: dict[str, tuple[str, ...]] = {
    "greet": (
        "{Thing} questions? Ask away.",
        "Hello, how can I help?",
        "I can help with any {thing}.",
        "{Thing} information is what I do best, so what do you need?",
        "Welcome, I am here to help you with the {thing} you need.",
        "I would be glad to help you find the right {thing}, just ask.",
    ),
    "request": (
        "{N}, please?",
        "Which {n}?",
        "Tell me the {n}.",
        "The {n} - what would that be?",
        "Which {n} are you looking for?",
        "Could you tell me which {n} you have in mind?",
    ),
    "explicit_confirm": (
        "{V}, right?",
        "Did you say {v}?",
        "I heard {v}, is that correct?",
        "{V} for the {n}, did I get that right?",
        "Do you want {v} as the {n}?",
        "Just so I am sure, you said the {n} is {v}?",
    ),
    "implicit_confirm": (
        "{V}, got it.",
        "Noted: {v}.",
        "I have {v}.",
        "{V} for the {n}, I have noted that.",
        "So the {n} is {v}.",
        "I will search with {v} as the {n}.",
    ),
    "query": (
        "Searching now.",
        "Let me check.",
        "I will search.",
        "One moment while I look through the listings.",
        "Let me run a search in the database for you.",
        "I am going to look that up for you right away.",
    ),
    "no_result": (
        "No match, sorry.",
        "Nothing matches.",
        "I found nothing.",
        "No {thing} fits all of that, I am sorry.",
        "Nothing in the database matches what you asked for.",
        "I could not find a single {thing} that fits.",
    ),
    "request_more": (
        "Anything else?",
        "What else?",
        "Tell me if you need more.",
        "Anything else I can do for you?",
        "What else can I help you with?",
        "Let me know if there is anything more you need.",
    ),
    "goodbye": (
        "Bye now.",
        "Goodbye.",
        "I wish you a good day.",
        "Bye, and thanks for asking.",
        "Goodbye, and have a nice day.",
        "I hope I was of help, take care.",
    ),
    "inform:open": (
        "Hours-wise, {v}.",
        "The {thing} is {v}.",
        "I see it is {v}.",
        "As for the hours, the {thing} is {v} at the moment.",
        "This {thing} is {v} right now.",
        "I can tell you that this {thing} is currently {v}.",
    ),
    "inform:price": (
        "Price-wise, {v}.",
        "It is {v}.",
        "I would call it {v}.",
        "In terms of price, this {thing} is {v}.",
        "The prices at this {thing} are {v}.",
        "I can tell you that the prices here are {v}.",
    ),
    "inform:parking": (
        "Parking: {v}.",
        "There is {v}.",
        "I believe it has {v}.",
        "For parking, the {thing} offers {v}.",
        "Guests will find {v} there.",
        "I can tell you that you will find {v} at this {thing}.",
    ),
    "inform:arrive_in": (
        "Arrival: {v} minutes.",
        "The {thing} comes in {v} minutes.",
        "I expect it in {v} minutes.",
        "In {v} minutes, the next {thing} will be there.",
        "The next {thing} is due to arrive in {v} minutes.",
        "I can tell you that the {thing} should get there in {v} minutes.",
    ),
    "inform:duration": (
        "Travel time: {v} minutes.",
        "The trip takes {v} minutes.",
        "I estimate {v} minutes.",
        "{V} minutes, that is how long the trip lasts.",
        "The whole trip takes about {v} minutes.",
        "I can tell you that the journey lasts {v} minutes.",
    ),
    "inform:temperature": (
        "Temperature: {v} degrees.",
        "It will be {v} degrees.",
        "I expect {v} degrees.",
        "{V} degrees, that is what to expect.",
        "The {thing} says it will reach {v} degrees.",
        "I can tell you that the temperature will be around {v} degrees.",
    ),
    "inform:weather_type": (
        "Conditions: {v}.",
        "It will be {v}.",
        "I expect it to be {v}.",
        "{V}, that is what the {thing} predicts.",
        "The {thing} expects {v} conditions.",
        "I can tell you that the day will be {v}.",
    ),
}

#: Acts without a slot: one pool each.
FIXED_ACTS = ("greet", "query", "no_result", "request_more", "goodbye")
#: Acts whose pool is shared by every slot (the frame name the slot through ``{n}``); the
#: persona still chooses a frame per (act, slot).
SLOT_GENERIC = ("request", "explicit_confirm", "implicit_confirm")
#: The user slots of the source domains (the slots of request and confirmation acts).
USER_SLOTS = ("loc", "food_pref", "from_loc", "to_loc", "datetime")

#: The slot's noun in each register (casual, neutral, formal).
NOUNS: dict[str, tuple[str, str, str]] = {
    "loc": ("area", "city", "location"),
    "food_pref": ("food", "cuisine", "type of cuisine"),
    "from_loc": ("pickup point", "starting point", "point of departure"),
    "to_loc": ("drop-off point", "destination", "final destination"),
    "datetime": ("time", "day and time", "date and time"),
}
#: The domain's thing word in each register (casual, neutral, formal).
THINGS: dict[str, tuple[str, str, str]] = {
    "restaurant": ("spot", "place", "restaurant"),
    "bus": ("ride", "bus", "connection"),
    "weather": ("sky", "forecast", "outlook"),
}

#: Every (act, slot) key a persona phrases: the fixed acts, the slot-generic acts for every
#: user slot and the informs of the system slots.
KEYS: tuple[str, ...] = tuple(
    list(FIXED_ACTS)
    + [f"{a}:{s}" for a in SLOT_GENERIC for s in USER_SLOTS]
    + [k for k in POOLS if k.startswith("inform:")])


def act_key(act: Act) -> str:
    """The pool key of an act: ``"query"``, ``"request:loc"``, ``"inform:price"``.

    Raises:
        MdlibError: for an act the persona family has no pool for (an act or slot of a
            domain outside bus, restaurant and weather).
    """
    key = act.act if act.act in FIXED_ACTS else f"{act.act}:{act.slot}"
    if key not in KEYS:
        raise MdlibError(f"persona phrasings: no pool for act {act} (key {key!r}); the persona "
                         f"family covers the source domains bus, restaurant and weather")
    return key


def pool_name(key: str) -> str:
    """The :data:`POOLS` entry of ``key`` (slot-generic acts share one pool)."""
    act = key.split(":")[0]
    return act if act in SLOT_GENERIC else key


def pool_of(key: str) -> tuple[str, ...]:
    """The frames of ``key``."""
    return POOLS[pool_name(key)]


def say_value(act: Act, noun: str) -> str:
    """The value as a system turn says it.

    A don't-care confirmation (``value=None``) says "any <noun>"; an hour of the bus
    domain's ``datetime`` says "at 5" (the rule of :mod:`mdlib.data.templates`; only bus
    has numeric times).
    """
    if act.value is None:
        return f"any {noun}"
    if act.slot == "datetime" and act.value.isdigit():
        return f"at {act.value}"
    return act.value


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(key: str, index: int, act: Act, register: int, domain: str) -> str:
    """Frame ``index`` of ``key``'s pool said for ``act`` in ``register`` (0-2) in ``domain``."""
    noun = NOUNS[act.slot][register] if act.slot in NOUNS else ""
    thing = THINGS[domain][register]
    value = say_value(act, noun) if act.slot in NOUNS or act.value is not None else ""
    text = pool_of(key)[index].format(v=value, V=_cap(value), n=noun, N=_cap(noun),
                                      thing=thing, Thing=_cap(thing))
    return _cap(text)


def _pattern(frame: str) -> str:
    toks = tokenise(frame.format(v="<v>", V="<v>", n="<n>", N="<n>", thing="<thing>", Thing="<thing>"))
    return " " + " ".join(toks) + " "


#: ``pool key -> [frame as a space-padded token string with <v>, <n>, <thing>]``.
PATTERNS: dict[str, list[str]] = {k: [_pattern(f) for f in frames] for k, frames in POOLS.items()}

_THING_TOKENS = sorted({tuple(tokenise(w)) for words in THINGS.values() for w in words}, key=len, reverse=True)


def _replace(tokens: list[str], table: Sequence[tuple[tuple[str, ...], str]]) -> list[str]:
    """Replace token sequences (``table`` sorted longest first), left to right."""
    out, i = [], 0
    while i < len(tokens):
        for seq, ph in table:
            if tuple(tokens[i:i + len(seq)]) == seq:
                out.append(ph)
                i += len(seq)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def delexicalise_for(tokens: Sequence[str], act: Act) -> str:
    """The turn's tokens with ``act``'s value as ``<v>``, the slot's nouns as ``<n>`` and the
    thing words of every domain as ``<thing>`` (space-padded string, for :func:`recognise`)."""
    table: list[tuple[tuple[str, ...], str]] = []
    nouns = NOUNS.get(act.slot or "", ())
    if act.value is not None:
        table.append((tuple(tokenise(say_value(act, ""))), "<v>"))
    elif nouns:
        table += [(tuple(tokenise(f"any {n}")), "<v>") for n in nouns]
    table += [(tuple(tokenise(n)), "<n>") for n in nouns]
    table += [(t, "<thing>") for t in _THING_TOKENS]
    table.sort(key=lambda e: -len(e[0]))
    return " " + " ".join(_replace(list(tokens), table)) + " "


def recognise(text: str | Sequence[str], acts: Iterable[Act | Mapping]) -> dict[str, frozenset[int]]:
    """The frames a turn uses: ``{act key: indices of the key's frames found in the text}``.

    Args:
        text: the turn (a string or a token list, e.g. a generated response).
        acts: the turn's acts (the input the generator was given).

    Returns:
        One entry per act; a set with exactly one index when the turn says the act in one
        frame of its pool, empty when it uses none (or drops the act).
    """
    tokens = tokenise(text) if isinstance(text, str) else list(text)
    out: dict[str, frozenset[int]] = {}
    for a in acts:
        a = a if isinstance(a, Act) else Act.from_dict(a)
        key = act_key(a)
        delex = delexicalise_for(tokens, a)
        pats = PATTERNS[pool_name(key)]
        out[key] = frozenset(i for i, p in enumerate(pats) if p in delex)
    return out
