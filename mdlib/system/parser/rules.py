"""The keyword parser: the domain's value lists and words (mdlib.data.domains) and hand-written rules (the baseline).

Also what every parser shares: :class:`Parse` (the reading of one user turn) and
:func:`find_mentions` (the slot values found in a token list, which the learned parser
copies and classifies). Notebook 07 uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from mdlib.data.acts import Act
from mdlib.data.domains import Domain, get_domain
from mdlib.data.text import tokenise


@dataclass
class Parse:
    """The parser's reading of one user turn.

    Attributes:
        acts: the dialogue acts (an ``inform`` with ``value=None`` is "don't care").
        confidence: in [0, 1]; the belief tracker weighs the acts with it.
    """

    acts: list[Act]
    confidence: float

    def __str__(self) -> str:
        return f"{', '.join(map(str, self.acts)) or '(nothing understood)'} [conf {self.confidence:.2f}]"


# --------------------------------------------------------------------------- value mentions


@dataclass(frozen=True)
class Mention:
    """A slot value found in the tokens: ``tokens[start:end]`` is ``value`` of ``slot``."""

    start: int
    end: int
    slot: str
    value: str


def _value_index(domain: Domain) -> list[tuple[list[str], str, str]]:
    """``(value tokens, slot, value)`` for every slot value, longest first."""
    out = []
    for s in domain.usr_slots + domain.sys_slots:
        for v in s.values:
            vt = tokenise(v)
            if vt:
                out.append((vt, s.name, v))
    out.sort(key=lambda c: -len(c[0]))
    return out


def find_mentions(tokens: Sequence[str], domain: Domain) -> list[Mention]:
    """Every slot value in ``tokens`` (longest match; one mention per slot that has the value).

    A value shared by several slots (bus ``from_loc`` / ``to_loc``, numbers) gives one
    mention per slot at the same span; deciding between them is the parser's job.
    """
    index = _value_index(domain)
    out: list[Mention] = []
    i = 0
    while i < len(tokens):
        hit = None
        for vt, slot, value in index:
            if hit is not None and len(vt) < hit:
                break
            if tokens[i:i + len(vt)] == vt:
                hit = len(vt)
                out.append(Mention(i, i + len(vt), slot, value))
        i += hit or 1
    return out


# --------------------------------------------------------------------------- lexicon baseline

_DONT_CARE = r"(don't care|do not care|doesn't matter|does not matter|\bany\b|anything is fine|no preference)"
_YN_START = r"^(is|does|will|did|was|are|do|has|can)\b"
_PLAIN_RULES: dict[str, str] = {
    "greet": r"\b(hi|hello|hey)\b",
    "goodbye": r"\b(bye|goodbye|see you)\b",
    "satisfy": r"\b(thanks|thank you|that's all|that's what i needed)\b",
    "more_request": r"\b(one more|another question)\b",
    "new_search": r"\b(new search|something else)\b",
    "confirm": r"^(yes|yeah|yep|correct|right|sure)\b|\bthat's right\b",
    "disconfirm": r"^(no|nope|wrong)\b|\b(that's wrong|not right|that's not)\b",
}
_FROM_CUES = {"from", "leaving", "departing", "at"}
_TO_CUES = {"to", "going", "destination"}


class LexiconParser:
    """Keyword rules and value lists: the baseline parser.

    Args:
        domain: the domain (its value lists are the lexicon).
    """

    kind = "lexicon"

    def __init__(self, domain: Domain | str):
        self.domain = get_domain(domain)

    def _slot_for(self, m: Mention, tokens: Sequence[str], last: Sequence[Act], options: list[Mention]) -> bool:
        """Whether mention ``m`` (one of ``options`` at the same span) is the slot meant."""
        if len(options) == 1:
            return True
        asked = {a.slot for a in last if a.act in ("request", "explicit_confirm", "implicit_confirm")}
        left = set(tokens[max(0, m.start - 3):m.start])
        if m.slot in ("from_loc", "to_loc"):
            if left & _TO_CUES and not left & _FROM_CUES:
                return m.slot == "to_loc"
            if left & _FROM_CUES:
                return m.slot == "from_loc"
            if asked & {"from_loc", "to_loc"}:
                return m.slot in asked
            return m.slot == "from_loc"
        if m.slot == "datetime":
            return "at" in left or "datetime" in asked or not any(o.slot in self.domain.usr_slot_names
                                                                   for o in options if o is not m)
        # otherwise prefer a user slot; among system slots the keyword rules decide
        return m.slot in self.domain.usr_slot_names

    def parse(self, text: str, last_system_acts: Sequence[Act] = ()) -> Parse:
        """Read ``text``; ``last_system_acts`` (the turn being answered) resolves bare answers."""
        tokens = tokenise(text)
        norm = " ".join(tokens)
        if not tokens:
            return Parse([], 0.0)
        acts: list[Act] = []
        ambiguous = False
        for name, pattern in _PLAIN_RULES.items():
            if re.search(pattern, norm):
                acts.append(Act(name))
        question = norm.endswith("?") or bool(re.match(_YN_START, norm))
        mentions = find_mentions(tokens, self.domain)
        usr = set(self.domain.usr_slot_names)
        sys_slots = set(self.domain.sys_slot_names)
        # keyword rules name the system slot of a question
        asked_sys = None
        if question:
            for slot in self.domain.sys_slots:  # the domain's words (mdlib.data.domains)
                if any(re.search(p, norm) for p in slot.request_patterns):
                    asked_sys = slot.name
                    break
        # self-correction: keep only what follows "sorry, I mean"
        cut = -1
        for j in range(len(tokens) - 1):
            if tokens[j] == "mean" and j > 0 and tokens[j - 1] == "i":
                cut = j
        if cut >= 0:
            mentions = [m for m in mentions if m.start > cut or not any(
                o.slot == m.slot and o.start > cut for o in mentions)]
        informs: dict[str, str] = {}
        yn: Act | None = None
        by_span: dict[tuple[int, int], list[Mention]] = {}
        for m in mentions:
            by_span.setdefault((m.start, m.end), []).append(m)
        for span, options in by_span.items():
            if len(options) > 1:
                ambiguous = True
            for m in options:
                if m.slot in usr and not question:
                    if len(m.value) == 1 and not m.value.isdigit():
                        continue
                    if self._slot_for(m, tokens, last_system_acts, options):
                        if m.slot in informs and m.slot in ("from_loc", "to_loc"):
                            continue
                        informs[m.slot] = m.value
                        break
                elif m.slot in sys_slots and question and yn is None:
                    if asked_sys is not None and m.slot != asked_sys:
                        continue
                    if asked_sys is None and (len(m.value) <= 2):
                        continue  # a bare letter or number needs a keyword ("directed by A")
                    yn = Act("yn_question", m.slot, m.value)
        # bus: the same place twice can only be from ... to ...
        acts += [Act("inform", s, v) for s, v in informs.items()]
        if yn is not None:
            acts.append(yn)
        elif asked_sys is not None:
            acts.append(Act("request", asked_sys))
        if re.search(_DONT_CARE, norm):
            for slot in self.domain.usr_slots:
                if slot.name not in informs and any(re.search(rf"\b{w}\b", norm) for w in slot.name_words):
                    acts.append(Act("inform", slot.name, None))
                    break
            else:
                asked = [a.slot for a in last_system_acts if a.act == "request" and a.slot in usr]
                if asked:
                    acts.append(Act("inform", asked[0], None))
        if not acts:
            return Parse([], 0.2)
        return Parse(_dedupe(acts), 0.6 if ambiguous else 0.9)


def _dedupe(acts: Iterable[Act]) -> list[Act]:
    return list(dict.fromkeys(acts))

