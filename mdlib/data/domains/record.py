"""What a domain is: its slots with their values and words, and its deterministic database.

A :class:`Domain` record holds everything the code knows about one domain, so that adding a
domain is writing one module under ``mdlib/data/domains/`` (docs/data.md, "Adding a
domain"): the slots and values (the database draws from them), the phrasings the corpus
generator says them with (:mod:`mdlib.data.templates`), the words the keyword parser
(:mod:`mdlib.system.parser.rules`) and the listening user (:mod:`mdlib.system.listener`)
recognise them by, and the seed of its protocol corpus (:mod:`mdlib.data.splits`).
:data:`DOMAINS` is the registry; :func:`register` adds a record to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

from mdlib.errors import MdlibError, lookup


def _words() -> tuple[str, ...]:
    # words are not part of what a slot or domain *is*: left out of equality and repr
    return field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Slot:
    """A slot, its possible values and the words that go with it.

    Every value is a real value: none means "don't care". Only ``name`` and ``values`` take
    part in equality; the rest is how the slot is said and recognised.

    Attributes:
        name: the slot's name (``loc``, ``price``, ...).
        values: its possible values.
        noun: what the system calls it ("location"; used in confirmations of don't-care).
        user_inform: a user slot's phrasings of an inform (``{v}`` = the value).
        sys_request: a user slot's phrasings of the system's request for it.
        user_request: a system slot's phrasings of the user's request for it.
        user_yn: a system slot's phrasings of the user's yes/no question (``{v}``).
        sys_inform: a system slot's phrasings of the system's inform (``{v}``).
        request_patterns: a system slot's regular expressions by which the keyword parser
            recognises a question about it (on lower-cased text; the domain's first
            matching slot wins).
        name_words: a user slot's words by which the keyword parser recognises a
            don't-care about it ("any *cuisine*").
        cues: the listening user's words that name the slot (space-separated).
        wh: the wh-word that can ask for it ("where", "when") or ``None``.
        digits: how a value made of digits is said ("at {v}": bus hours), or ``None``.
    """

    name: str
    values: tuple[str, ...]
    noun: str = field(default="", compare=False, repr=False)
    user_inform: tuple[str, ...] = _words()
    sys_request: tuple[str, ...] = _words()
    user_request: tuple[str, ...] = _words()
    user_yn: tuple[str, ...] = _words()
    sys_inform: tuple[str, ...] = _words()
    request_patterns: tuple[str, ...] = _words()
    name_words: tuple[str, ...] = _words()
    cues: str = field(default="", compare=False, repr=False)
    wh: str | None = field(default=None, compare=False, repr=False)
    digits: str | None = field(default=None, compare=False, repr=False)

    def say(self, value: str) -> str:
        """The value as a sentence says it ("at 5" for a bus hour)."""
        return self.digits.format(v=value) if self.digits and value.isdigit() else value


@dataclass(frozen=True)
class Domain:
    """A slot-filling domain.

    Attributes:
        name: the domain (task) name.
        usr_slots: slots the user constrains (the database is searched on them).
        sys_slots: slots the system informs from the database row it found.
        db_size: number of database rows.
        style: name of the system template set ("default" or "style").
        world: name whose database this domain shares (``restaurant_style`` uses the
            restaurant database: same task, new phrasing); ``None`` = its own.
        corpus_seed: the seed of its protocol corpus (``data/<name>.jsonl``,
            :mod:`mdlib.data.splits`); ``None`` = not a protocol domain.
        greetings: the system's greetings.
        needs: what the user may add to a greeting ("I need a bus.").
        phrasing: the system phrasings that replace the default ones (``restaurant_style``):
            ``{"request": {slot: [...]}, "inform": {slot: [...]}, "explicit", "implicit",
            "explicit_dc", "implicit_dc", "query", "no_result", "request_more", "goodbye"}``;
            ``None`` = the defaults of :mod:`mdlib.data.templates`.
    """

    name: str
    usr_slots: tuple[Slot, ...]
    sys_slots: tuple[Slot, ...]
    db_size: int
    style: str = "default"
    world: str | None = None
    corpus_seed: int | None = field(default=None, compare=False, repr=False)
    greetings: tuple[str, ...] = _words()
    needs: tuple[str, ...] = _words()
    phrasing: Mapping | None = field(default=None, compare=False, repr=False)

    def slot(self, name: str) -> Slot:
        """The slot called ``name`` (user or system)."""
        for s in self.usr_slots + self.sys_slots:
            if s.name == name:
                return s
        raise MdlibError(f"domain {self.name!r} has no slot {name!r}; "
                         f"known: {', '.join(self.slot_names)}")

    @cached_property
    def usr_slot_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.usr_slots)

    @cached_property
    def sys_slot_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sys_slots)

    @cached_property
    def slot_names(self) -> tuple[str, ...]:
        return self.usr_slot_names + self.sys_slot_names

    def values(self) -> dict[str, tuple[str, ...]]:
        """``{slot name: values}`` for every slot (handy for delexicalisation)."""
        return {s.name: s.values for s in self.usr_slots + self.sys_slots}


#: The registry of domains, in registration order (filled by :mod:`mdlib.data.domains`).
DOMAINS: dict[str, Domain] = {}


#: What every slot must have, by side (the generator says, the parser and the listener read).
_NEEDS = {"user": ("values", "noun", "user_inform", "sys_request", "name_words", "cues"),
          "system": ("values", "noun", "user_request", "user_yn", "sys_inform", "request_patterns", "cues")}


def _check(domain: Domain) -> None:
    where = f"domain {domain.name!r}"
    if not domain.usr_slots or not domain.sys_slots:
        raise MdlibError(f"{where}: needs at least one user slot and one system slot")
    for field_name in ("greetings", "needs"):
        if not getattr(domain, field_name):
            raise MdlibError(f"{where}: {field_name} is empty")
    for side, slots in (("user", domain.usr_slots), ("system", domain.sys_slots)):
        for slot in slots:
            for field_name in _NEEDS[side]:
                if not getattr(slot, field_name):
                    raise MdlibError(f"{where}: {side} slot {slot.name!r} has no {field_name}")
    if domain.db_size < 1:
        raise MdlibError(f"{where}: db_size must be >= 1, got {domain.db_size}")


def register(domain: Domain) -> Domain:
    """Add ``domain`` to :data:`DOMAINS` (every lookup by name finds it from then on).

    Raises:
        MdlibError: a different domain of that name is registered already, or the record
            lacks what the generator, the parser or the listener needs (names the field).
    """
    old = DOMAINS.get(domain.name)
    if old is not None and old is not domain:
        raise MdlibError(f"domain {domain.name!r} is registered already")
    _check(domain)
    DOMAINS[domain.name] = domain
    return domain


def get_domain(name: str | Domain) -> Domain:
    """The domain called ``name`` (a :class:`Domain` is returned unchanged).

    Raises:
        MdlibError: for an unknown name, listing the known domains.
    """
    return lookup(DOMAINS, name, "domain", Domain)


class Database:
    """The domain's database: ``db_size`` rows, deterministic per ``(domain, seed)``.

    Every row has a value for every user and system slot. Unlike SimDial's database,
    :meth:`query` returns the rows that *match* the constraints.

    Args:
        domain: the domain (or its name).
        seed: the database seed (the protocol corpora all use 0).
    """

    def __init__(self, domain: Domain | str, seed: int = 0):
        self.domain = get_domain(domain)
        self.seed = seed
        rng = random.Random(f"db/{self.domain.world or self.domain.name}/{seed}")
        slots = self.domain.usr_slots + self.domain.sys_slots
        self.rows: list[dict[str, str]] = [
            {s.name: rng.choice(s.values) for s in slots} for _ in range(self.domain.db_size)
        ]
        self._cache: dict[tuple, list[dict]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def query(self, constraints: dict[str, str | None]) -> list[dict]:
        """The rows whose value equals the constraint for every constrained slot.

        Args:
            constraints: ``{slot: value}``; ``None`` means don't care.

        Returns:
            Matching rows in database order (copies; every one satisfies the constraints).

        Raises:
            MdlibError: for a slot the domain does not have.
        """
        key = tuple(sorted((k, v) for k, v in constraints.items() if v is not None))
        hit = self._cache.get(key)
        if hit is None:
            known = set(self.domain.slot_names)
            for slot, _ in key:
                if slot not in known:
                    raise MdlibError(f"query: domain {self.domain.name!r} has no slot {slot!r}")
            hit = [r for r in self.rows if all(r[s] == v for s, v in key)]
            self._cache[key] = hit
        return [dict(r) for r in hit]
