"""The six SimDial-style domains and their deterministic databases (docs/data.md).

Each domain has *user* (searchable) slots, the constraints a user gives, and *system*
(informable) slots, the facts the system reads from its database. ``restaurant_style``
is the restaurant task with other system phrasings, ``rest_pitt`` the restaurant task with
new slot values, ``movie`` a new domain. Introduced in notebook 01.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import cached_property

from mdlib.errors import MdlibError, lookup


@dataclass(frozen=True)
class Slot:
    """A slot and its possible values (every value is a real value: none means "don't care")."""

    name: str
    values: tuple[str, ...]


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
    """

    name: str
    usr_slots: tuple[Slot, ...]
    sys_slots: tuple[Slot, ...]
    db_size: int
    style: str = "default"
    world: str | None = None

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


_CITIES = ("Pittsburgh", "New York", "Boston", "Seattle", "Los Angeles", "San Francisco",
           "San Jose", "Philadelphia", "Washington DC", "Austin")
_CUISINES = ("Thai", "Chinese", "Korean", "Japanese", "American", "Italian", "Indian",
             "French", "Greek", "Mexican", "Russian", "Hawaiian")
_PITT_PLACES = ("Downtown", "CMU", "Forbes and Murray", "Craig", "Waterfront", "Airport",
                "U Pitt", "Mellon Park", "Lawrence", "Monroeville", "Shadyside", "Squirrel Hill")
_PITT_STYLES = ("healthy", "fried", "pan-fried", "steamed", "hot pot", "grilled", "salad",
                "boiled", "raw", "stewed")
_REST_SYS = (
    Slot("open", ("open", "closed")),
    Slot("price", ("cheap", "moderate", "expensive")),
    Slot("parking", ("street parking", "valet parking", "no parking")),
)


def _restaurant(name: str, style: str) -> Domain:
    world = "restaurant" if name != "restaurant" else None
    return Domain(name, (Slot("loc", _CITIES), Slot("food_pref", _CUISINES)), _REST_SYS, 100, style, world)


DOMAINS: dict[str, Domain] = {
    "restaurant": _restaurant("restaurant", "default"),
    "restaurant_style": _restaurant("restaurant_style", "style"),
    "rest_pitt": Domain(
        "rest_pitt",
        (Slot("loc", _PITT_PLACES), Slot("food_pref", _PITT_STYLES)),
        (Slot("open", ("open", "going to start", "going to close", "closed")),
         Slot("price", ("cheap", "average", "fancy")),
         Slot("parking", ("garage parking", "street parking", "no parking"))),
        150),
    "bus": Domain(
        "bus",
        (Slot("from_loc", _PITT_PLACES), Slot("to_loc", _PITT_PLACES),
         Slot("datetime", ("today", "tomorrow", "tonight", "this morning", "this afternoon")
              + tuple(str(t) for t in range(1, 25)))),
        (Slot("arrive_in", tuple(str(t) for t in range(0, 30, 5))),
         Slot("duration", tuple(str(t) for t in range(0, 60, 5)))),
        150),
    "weather": Domain(
        "weather",
        (Slot("loc", _CITIES),
         Slot("datetime", ("today", "tomorrow", "tonight", "this morning",
                           "the day after tomorrow", "this weekend"))),
        (Slot("temperature", tuple(str(t) for t in range(20, 40, 2))),
         Slot("weather_type", ("raining", "snowing", "windy", "sunny", "foggy", "cloudy"))),
        40),
    "movie": Domain(
        "movie",
        (Slot("genre", ("Action", "Sci-Fi", "Comedy", "Crime", "Sport", "Documentary", "Drama",
                        "Family", "Horror", "War", "Music", "Fantasy", "Romance", "Western")),
         Slot("years", ("60s", "70s", "80s", "90s", "2000-2010", "2010-present")),
         Slot("country", ("USA", "France", "China", "Korea", "Japan", "Germany", "Mexico",
                          "Russia", "Thailand"))),
        (Slot("rating", tuple(str(t) for t in range(5))),
         Slot("company", ("20th Century Fox", "Sony", "MGM", "Walt Disney", "Universal")),
         Slot("director", tuple(string.ascii_uppercase))),
        200),
}

#: Meta-training (source) tasks of the DAML protocol.
SOURCES: tuple[str, ...] = ("bus", "restaurant", "weather")
#: Held-out target tasks: new domain, new phrasing, new slot values.
TARGETS: tuple[str, ...] = ("movie", "restaurant_style", "rest_pitt")


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
