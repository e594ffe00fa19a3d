"""The SimDial-style domains, one module each, and their deterministic databases (docs/data.md).

Each domain has *user* (searchable) slots, the constraints a user gives, and *system*
(informable) slots, the facts the system reads from its database. ``restaurant_style``
is the restaurant task with other system phrasings, ``rest_pitt`` the restaurant task with
new slot values, ``movie`` a new domain. Introduced in notebook 01.

Every module of this package other than :mod:`~mdlib.data.domains.record` defines one
domain as ``DOMAIN`` (its slots, values, phrasings, parser and listener words, corpus seed;
:class:`~mdlib.data.domains.record.Domain`) and is registered here: the six of the paper
first, in this order, then any other module of the package by name. Adding a domain is
adding a module (docs/data.md, "Adding a domain").
"""

from __future__ import annotations

import importlib
import pkgutil

from mdlib.data.domains.record import DOMAINS, Database, Domain, Slot, get_domain, register

__all__ = ["DOMAINS", "Database", "Domain", "SOURCES", "Slot", "TARGETS", "get_domain", "register"]

#: The paper's domains in their order (the order of the protocol corpora and their manifest).
_PAPER = ("restaurant", "restaurant_style", "rest_pitt", "bus", "weather", "movie")

#: Meta-training (source) tasks of the DAML protocol.
SOURCES: tuple[str, ...] = ("bus", "restaurant", "weather")
#: Held-out target tasks: new domain, new phrasing, new slot values.
TARGETS: tuple[str, ...] = ("movie", "restaurant_style", "rest_pitt")


def _discover() -> None:
    others = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _PAPER + ("record",))
    for name in _PAPER + tuple(others):
        register(importlib.import_module(f"{__name__}.{name}").DOMAIN)


_discover()
