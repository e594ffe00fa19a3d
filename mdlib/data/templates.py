"""Surface realisation: dialogue acts to text, with several phrasings per (slot, act).

The phrasings of a slot, a domain's greetings and ``restaurant_style``'s own system
phrasings (adaptation to a new style) live with the domain (:mod:`mdlib.data.domains`);
this module holds the phrasings every domain shares. User turns get the disfluencies of
the complexity spec: hesitation ("hmm", "uhm"), self-restart ("I want - I want ...") and
self-correction ("..., oh sorry, I mean ..."). Introduced in notebook 01.
"""

from __future__ import annotations

import random

from mdlib.data.acts import Act
from mdlib.data.complexity import Complexity
from mdlib.data.domains import DOMAINS, Domain, get_domain
from mdlib.data.text import tokenise

# ------------------------------------------------------------------ user side
USER_DONT_CARE = ["I don't care about the {n}.", "Any {n} is fine.", "The {n} doesn't matter.",
                  "Anything is fine for the {n}."]
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
# ------------------------------------------------------------------ system side
SYS_EXPLICIT = ["Do you mean {v}?", "Did you say {v}?", "Is it {v} for the {n}?", "You want {v}, right?"]
SYS_EXPLICIT_DC = ["Do you not care about the {n}?", "Is any {n} fine?"]
SYS_IMPLICIT = ["{v}.", "Okay, {v}.", "Got it, {v}.", "Alright, {v}."]
SYS_IMPLICIT_DC = ["Any {n}.", "Okay, any {n}.", "Got it, the {n} doesn't matter."]
SYS_FIXED: dict[str, list[str]] = {
    "query": ["Let me look that up.", "Searching.", "One moment."],
    "no_result": ["Sorry, I found nothing that matches.", "Nothing matches that, sorry."],
    "request_more": ["Anything else?", "What else can I do for you?", "Is there anything else?"],
    "goodbye": ["Goodbye.", "Bye, have a nice day.", "See you next time."],
}
HESITATIONS = ("hmm", "uhm")


def _views() -> dict[str, dict]:
    """The per-slot and per-domain phrasings of the registered domains as the tables this
    module had before they moved into the domain records (read-only views for old imports:
    ``USER_INFORM["weather:loc"]``, ``SYS_GREET["bus"]``, ...; a domain's slot under
    ``"domain:slot"``, the first domain's under the slot name)."""
    out: dict[str, dict] = {k: {} for k in ("USER_INFORM", "SYS_REQUEST", "USER_REQUEST", "USER_YN",
                                             "SYS_INFORM", "NOUNS", "SYS_GREET", "GREET_NEED")}
    for d in DOMAINS.values():
        out["SYS_GREET"][d.name] = list(d.greetings)
        out["GREET_NEED"][d.name] = list(d.needs)
        for s in d.usr_slots + d.sys_slots:
            out["NOUNS"].setdefault(s.name, s.noun)
            for key in ("USER_INFORM", "SYS_REQUEST", "USER_REQUEST", "USER_YN", "SYS_INFORM"):
                said = list(getattr(s, key.lower()))
                if said:
                    out[key].setdefault(s.name, said)
                    out[key][f"{d.name}:{s.name}"] = said
    return out


_VIEWS = _views()
USER_INFORM, SYS_REQUEST = _VIEWS["USER_INFORM"], _VIEWS["SYS_REQUEST"]
USER_REQUEST, USER_YN, SYS_INFORM = _VIEWS["USER_REQUEST"], _VIEWS["USER_YN"], _VIEWS["SYS_INFORM"]
NOUNS, SYS_GREET, GREET_NEED = _VIEWS["NOUNS"], _VIEWS["SYS_GREET"], _VIEWS["GREET_NEED"]
#: restaurant_style's system phrasings (:data:`mdlib.data.domains.restaurant_style.PHRASING`).
STYLE: dict[str, dict] = DOMAINS["restaurant_style"].phrasing


def _pick(options: list[str], rng: random.Random) -> str:
    return options[int(rng.random() * len(options))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _user_sentence(domain: Domain, a: Act, rng: random.Random) -> str:
    if a.act == "inform" and a.slot is not None:
        slot = domain.slot(a.slot)
        if a.value is None:
            return _pick(USER_DONT_CARE, rng).format(n=slot.noun)
        return _cap(_pick(slot.user_inform, rng).format(v=slot.say(a.value)))
    if a.act == "request" and a.slot is not None:
        return _pick(domain.slot(a.slot).user_request, rng)
    if a.act == "yn_question" and a.slot is not None:
        return _pick(domain.slot(a.slot).user_yn, rng).format(v=a.value)
    if a.act == "greet":
        return _pick(USER_FIXED["greet"], rng)
    return _pick(USER_FIXED.get(a.act, [""]), rng)


def _system_sentence(domain: Domain, a: Act, rng: random.Random) -> str:
    style = domain.phrasing or {}
    slot = domain.slot(a.slot) if a.slot else None
    n = slot.noun if slot else ""
    if a.act == "greet":
        return _pick(domain.greetings, rng)
    if a.act == "request" and slot is not None:
        return _pick(style.get("request", {}).get(a.slot) or slot.sys_request, rng)
    if a.act in ("explicit_confirm", "implicit_confirm") and slot is not None:
        kind = "explicit" if a.act == "explicit_confirm" else "implicit"
        if a.value is None:
            opts = style.get(f"{kind}_dc") or (SYS_EXPLICIT_DC if kind == "explicit" else SYS_IMPLICIT_DC)
            return _cap(_pick(opts, rng).format(n=n))
        opts = style.get(kind) or (SYS_EXPLICIT if kind == "explicit" else SYS_IMPLICIT)
        return _cap(_pick(opts, rng).format(v=slot.say(a.value), n=n))
    if a.act == "inform" and slot is not None:
        return _pick(style.get("inform", {}).get(a.slot) or slot.sys_inform, rng).format(v=a.value)
    if a.act in style:
        return _pick(style[a.act], rng)
    return _pick(SYS_FIXED.get(a.act, [""]), rng)


def _disfluent(domain: Domain, acts: list[Act], parts: list[str], rng: random.Random,
               c: Complexity) -> list[str]:
    """Apply self-correction, self-restart and hesitation to the user's sentences."""
    if c.self_correct > 0:
        for i, a in enumerate(acts):
            if a.act == "inform" and a.value is not None and rng.random() < c.self_correct:
                slot = domain.slot(a.slot)
                wrong = [v for v in slot.values if v != a.value]
                said = _pick(slot.user_inform, rng).format(v=slot.say(rng.choice(wrong)))
                parts[i] = f"{_cap(said.rstrip('.'))}, oh sorry, I mean {slot.say(a.value)}."
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
    texts = list(domain.greetings) + SYS_EXPLICIT + SYS_EXPLICIT_DC + SYS_IMPLICIT + SYS_IMPLICIT_DC
    texts += [p for s in domain.usr_slots for p in s.sys_request]
    texts += [p for s in domain.sys_slots for p in s.sys_inform]
    texts += [p for v in SYS_FIXED.values() for p in v] + [s.noun for s in domain.usr_slots + domain.sys_slots]
    if domain.phrasing:
        texts += [p for v in domain.phrasing.values()
                  for p in (v if isinstance(v, list) else [q for x in v.values() for q in x])]
    texts += [v for vals in domain.values().values() for v in vals]
    words = {t for text in texts for t in tokenise(text.replace("{v}", " ").replace("{n}", " "))}
    return sorted(w for w in words if w[0].isalnum())


def realise(domain: Domain | str, speaker: str, acts: list[Act], rng: random.Random,
            complexity: Complexity | None = None) -> str:
    """Say ``acts`` in words.

    Args:
        domain: the domain (its record holds the greetings and the slots' phrasings).
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
            parts.append(_pick(domain.needs, rng))
        if parts and complexity is not None:
            parts = _disfluent(domain, acts, parts, rng, complexity)
    else:
        parts = [p for p in (_system_sentence(domain, a, rng) for a in acts) if p]
    return " ".join(p for p in parts if p)
