"""A simulated user who listens: it reads the system's *text*, not its acts.

The act-level :class:`~mdlib.data.simulator.UserSimulator` reacts to the system's acts,
so a dialogue's success cannot depend on how the generator says them. A
:class:`ListeningUser` puts an understanding of system text in front of that same
agenda-based user (docs/simulation.md)::

    system text --understand--> acts as the user understood them --UserSimulator.step--> user acts

:func:`understand` reads one system turn sentence by sentence with the user's own
lexicon, not the templates: the domain's known values (a value found in the text is
the value the user heard), cue words of every slot ("decade" and "period" name the
movie's ``years``; "degrees" a temperature), wh-words ("where" asks for a place, "when"
for a time), yes/no-question and don't-care cues, and a few words of the fixed acts
("bye", "nothing ... matches", "anything else"). So it also reads phrasings it has
never seen, as long as they use the domain's words.

What it does with what it heard, as a person would:

* a confirmation of a value it did not say (a wrong value) is rejected (the agenda
  user disconfirms);
* a yes/no question whose value it cannot make out is answered "no" (a guess, which
  may be wrong);
* when nothing it understood asks it anything (every sentence with content was
  gibberish to it), it asks the system to repeat (:data:`REPEAT`: "Sorry, could you
  say that again?", which the system's parsers read as nothing, so the policy asks
  again); the turn counts against its patience.

The act-level user stays: reinforcement learning (notebook 06) needs its speed.
:func:`mdlib.system.pipeline.simulate` runs either (``user="listener"`` or ``"acts"``);
``python -m mdlib simulate`` uses the listener. ``docs/simulation.md`` describes both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from mdlib.data.acts import Act
from mdlib.data.domains import DOMAINS, Domain
from mdlib.data.simulator import UserSimulator
from mdlib.data.text import tokenise
from mdlib.system.parser.rules import Mention, find_mentions

#: The user's request to say the last turn again (realised by ``templates.realise``; not
#: one of the parser's acts, so a correct parse of it is "nothing").
REPEAT = Act("repeat")

#: Words that name a slot, per slot: the listener's own lexicon (not the templates'). Each
#: domain's record holds its slots' cue words (``Slot.cues``, :mod:`mdlib.data.domains`);
#: this is a read-only view over the registered domains, slot by name.
SLOT_CUES: dict[str, frozenset[str]] = {}
#: Which slots a wh-word can ask about ("where" a place, "when" a time; ``Slot.wh``).
WH_SLOTS: dict[str, frozenset[str]] = {}
for _d in DOMAINS.values():
    for _s in _d.usr_slots + _d.sys_slots:
        SLOT_CUES.setdefault(_s.name, frozenset(_s.cues.split()))
        if _s.wh:
            WH_SLOTS[_s.wh] = WH_SLOTS.get(_s.wh, frozenset()) | {_s.name}
del _d, _s
WH_WORDS = frozenset({"which", "what", "where", "when", "how", "who", "tell"})
#: First words of a yes/no question (one that does not end with "?" in the text).
YES_NO_START = frozenset({"do", "did", "is", "are", "was", "will", "does", "am", "can"})
DONT_CARE = re.compile(r"\b(not care|don't care|doesn't matter|does not matter|not matter|any|no preference)\b")
FIXED_CUES: dict[str, re.Pattern] = {
    "goodbye": re.compile(r"\b(bye|goodbye|see you|nice day|enjoy|appetit)\b"),
    "no_result": re.compile(r"\b(nothing|none|no match\w*|no results?)\b"),
    "request_more": re.compile(r"\b(else|more)\b"),
    "query": re.compile(r"\b(look|looking|search\w*|moment|check|second|dig)\b"),
    "greet": re.compile(r"\b(welcome|hello|hi|hey|help|expert|bot|know)\b"),
}
#: Acts the user reacts to (``query`` and ``greet`` it merely hears).
ACTIONABLE = frozenset({"request", "explicit_confirm", "implicit_confirm", "inform", "no_result",
                        "request_more", "goodbye"})
_SENTENCE_END = frozenset({".", "?", "!"})


@dataclass
class Understanding:
    """What the user made of one system turn.

    Attributes:
        acts: the system acts it understood, in order.
        unclear: how many sentences with content it could not read.
        sentences: how many sentences the turn had.
    """

    acts: list[Act] = field(default_factory=list)
    unclear: int = 0
    sentences: int = 0

    @property
    def actionable(self) -> bool:
        """Whether anything understood asks the user something or tells it something."""
        return any(a.act in ACTIONABLE for a in self.acts)


def _sentences(tokens: Sequence[str]) -> list[list[str]]:
    out, cur = [], []
    for t in tokens:
        cur.append(t)
        if t in _SENTENCE_END:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return [s for s in out if any(t not in _SENTENCE_END and t != "," for t in s)]


def _cues(words: set[str], domain: Domain) -> dict[str, int]:
    """Per slot of ``domain``, how many of its cue words the sentence has."""
    return {s.name: len(words & set(s.cues.split())) for s in domain.usr_slots + domain.sys_slots}


def _is_question(sent: Sequence[str]) -> bool:
    return "?" in sent or (bool(sent) and sent[0] in YES_NO_START)


def _plausible(m: Mention, sent: Sequence[str], cues: dict[str, int]) -> bool:
    """A one-letter value ("A" of movie's director) only with a cue word and at a sentence end:
    "directed by A." is a director, "it has a rating" is an article."""
    if len(m.value) > 1 or m.value.isdigit():
        return True
    nxt = sent[m.end] if m.end < len(sent) else "."
    return cues.get(m.slot, 0) > 0 and nxt in _SENTENCE_END | {","}


def _pick_slot(options: list[Mention], cues: dict[str, int], usr: set[str],
               said: Sequence[tuple[str, str | None]]) -> Mention:
    """The slot meant by a value several slots share: the most cue words, then a user slot
    (the system confirms the user's slots and informs its own), then the slot for which
    the user itself just said this value, then the slot it spoke about first."""
    best = max(cues.get(o.slot, 0) for o in options)
    top = [o for o in options if cues.get(o.slot, 0) == best]
    if len(top) > 1 and best == 0:
        top = [o for o in top if o.slot in usr] or top
    if len(top) > 1:
        ranked = ([o for o in top if (o.slot, o.value) in said]
                  + [o for s, _ in said for o in top if o.slot == s])
        top = ranked[:1] or top[:1]
    return top[0]


def understand(text: str, domain: Domain, said: Sequence[tuple[str, str | None]] = ()) -> Understanding:
    """Read one system turn.

    Args:
        text: what the system said.
        domain: the domain (its values and slots).
        said: ``(slot, value)`` pairs the user has in mind, most salient first (what it
            said in its last turn, then its goal): when a value fits several slots, a
            person reads "Do you mean Downtown?" as being about what they said or want.

    Returns:
        The understood acts (``request``, ``explicit_confirm``/``implicit_confirm``
        with value or ``None`` for don't care, ``inform`` of system slots, and the
        fixed acts) and how many sentences were unclear.
    """
    usr = set(domain.usr_slot_names)
    out = Understanding()
    for sent in _sentences(tokenise(text)):
        out.sentences += 1
        words = {t[:-2] if t.endswith("'s") else t for t in sent}
        joined = " ".join(sent)
        cues = _cues(words, domain)
        question = _is_question(sent)
        wh = bool(words & WH_WORDS)
        acts: list[Act] = []
        by_span: dict[tuple[int, int], list[Mention]] = {}
        for m in find_mentions(sent, domain):
            if _plausible(m, sent, cues):
                by_span.setdefault((m.start, m.end), []).append(m)
        valued = set()
        for options in by_span.values():
            m = _pick_slot(options, cues, usr, said)
            if m.slot in valued:
                continue
            valued.add(m.slot)
            if m.slot in usr:
                acts.append(Act("explicit_confirm" if question and not wh else "implicit_confirm", m.slot, m.value))
            else:
                acts.append(Act("inform", m.slot, m.value))
        named = [s for s in domain.usr_slot_names if s not in valued]
        if (wh and question) or "tell" in words:
            asked = sorted(words & WH_SLOTS.keys())
            pool = [s for s in named if not asked or domain.slot(s).wh in asked]
            scored = {s: cues[s] + (1 if asked else 0) for s in pool if cues[s] or (asked and len(pool) == 1)}
            if scored:
                top = max(scored.values())
                winners = [s for s in scored if scored[s] == top]
                if len(winners) == 1:
                    acts.append(Act("request", winners[0]))
        elif DONT_CARE.search(joined) and not acts:
            scored = {s: cues[s] for s in named if cues[s]}
            if scored:
                s = max(scored, key=scored.get)
                acts.append(Act("explicit_confirm" if question else "implicit_confirm", s, None))
        for name, pattern in FIXED_CUES.items():
            if pattern.search(joined) and not (name in ("request_more", "greet") and acts):
                acts.append(Act(name))
        if not acts and sent[0] in YES_NO_START and not wh:
            # a yes/no question it cannot make out: it guesses "no" (a wrong value would get that too)
            about = [s for s, _ in said if s in usr] or list(domain.usr_slot_names)
            acts.append(Act("explicit_confirm", about[0], "?"))
        if acts:
            out.acts.extend(a for a in acts if a not in out.acts)
        else:
            out.unclear += 1
    return out


class ListeningUser:
    """The agenda-based user behind an understanding of system text.

    Args:
        user: the act-level user (its goals, agenda, patience and success).

    Attributes:
        heard: the :class:`Understanding` of every system turn so far.
        repeats: how many times it asked the system to repeat.
    """

    def __init__(self, user: UserSimulator):
        self.user = user
        self.heard: list[Understanding] = []
        self.repeats = 0
        self._last: list[Act] = []

    @property
    def done(self) -> bool:
        return self.user.done

    @property
    def success(self) -> bool:
        return self.user.success

    def reset(self) -> list[Act]:
        """The opening acts (as the act-level user's)."""
        self.heard, self.repeats = [], 0
        self._last = self.user.reset()
        return self._last

    def _said(self) -> list[tuple[str, str | None]]:
        """What it just said, then what it wants: the light in which a person hears an
        ambiguous "Okay, CMU." (its destination, not its departure)."""
        goal = self.user.goals[self.user.goal_idx]["constraints"] if self.user.goals else {}
        return [(a.slot, a.value) for a in self._last if a.slot is not None] + list(goal.items())

    def step(self, system_text: str) -> list[Act]:
        """The user's acts in reply to what the system said (``[REPEAT]`` when it understood
        nothing it could act on; ``[]`` once done)."""
        if self.user.done:
            return []
        heard = understand(system_text, self.user.domain, self._said())
        self.heard.append(heard)
        if not heard.actionable and heard.unclear:
            self._last = self.user.not_understood() or [REPEAT]
            self.repeats += self._last == [REPEAT]
            return self._last
        acts = self.user.step(heard.acts)
        if acts:
            self._last = acts
        return acts
