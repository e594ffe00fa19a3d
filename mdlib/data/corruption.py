"""Corrupt a fraction of training responses (label noise), for notebook 05.

Learning to reweight examples (:mod:`mdlib.meta.reweight`) is tested on source data in
which a known fraction of the system responses is wrong, in the two ways a real corpus
goes wrong:

* ``"values"``: the right kind of response with **wrong slot values** (every known
  value in the response is swapped for another value of the same slot, e.g. "cheap"
  -> "expensive");
* ``"domain"``: **another domain's response** (e.g. a weather answer in a bus dialogue);
* ``"mix"`` (default): wrong values where the response holds a value, otherwise another
  domain's response.

Exactly ``round(rate * n)`` of the eligible examples are corrupted, chosen with a
seeded ``random.Random``; the caller gets a flag per example, so notebooks can compare
the weights learned for clean and corrupted examples. Contexts and acts are left alone:
only the response (the training target) is wrong.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Mapping, Sequence

from mdlib.errors import MdlibError

__all__ = ["MODES", "check_rate", "corrupt_responses", "corrupt_pairs", "domain_values"]

MODES = ("values", "domain", "mix")


def check_rate(rate: float) -> float:
    """Return ``rate`` as a float; :class:`MdlibError` unless ``0 <= rate < 1``."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise MdlibError(f"corruption rate must be a number in [0, 1), got {rate!r}") from None
    if not (0.0 <= r < 1.0):
        raise MdlibError(f"corruption rate must be in [0, 1) (a fraction of the responses), got {r}")
    return r


def _find_values(tokens: Sequence[str], values: Mapping[str, Sequence[Sequence[str]]]) -> list[tuple[int, int, str]]:
    """Non-overlapping spans ``(start, end, slot)`` of known values, longest match first."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    cands = sorted(((tuple(v), s) for s, vs in values.items() for v in vs), key=lambda x: -len(x[0]))
    while i < len(tokens):
        for v, slot in cands:
            if v and tuple(tokens[i:i + len(v)]) == v:
                spans.append((i, i + len(v), slot))
                i += len(v)
                break
        else:
            i += 1
    return spans


def _swap_values(tokens: list[str], spans, values, rng: random.Random) -> list[str]:
    out: list[str] = []
    last = 0
    for start, end, slot in spans:
        out.extend(tokens[last:start])
        current = tuple(tokens[start:end])
        others = [v for v in values[slot] if tuple(v) != current]
        out.extend(rng.choice(others) if others else current)
        last = end
    out.extend(tokens[last:])
    return out


def corrupt_responses(
    responses: Sequence[Sequence[str]],
    rate: float,
    seed: int,
    *,
    values: Mapping[str, Sequence[str]] | None = None,
    foreign: Sequence[Sequence[str]] | None = None,
    mode: str = "mix",
) -> tuple[list[list[str]], list[bool]]:
    """Corrupt ``round(rate * n_eligible)`` tokenised responses.

    Args:
        responses: n token lists (the training targets).
        rate: fraction to corrupt, ``0 <= rate < 1``.
        seed: seed of the ``random.Random`` that picks examples and replacements.
        values: ``slot -> [value, ...]`` (values as strings, tokenised on spaces),
            needed by ``"values"`` and ``"mix"``.
        foreign: token lists of other domains' responses, needed by ``"domain"`` (and
            by ``"mix"`` for responses without a value).
        mode: ``"values"``, ``"domain"`` or ``"mix"``.

    Returns:
        ``(new_responses, corrupted)``: n token lists (copies) and n booleans.

    Raises:
        MdlibError: a rate outside [0, 1), an unknown mode, or a mode without the
            ``values`` / ``foreign`` it needs.
    """
    r = check_rate(rate)
    if mode not in MODES:
        raise MdlibError(f"corruption mode must be one of {MODES}, got {mode!r}")
    vals = {s: [str(v).split() for v in vs if str(v).split()] for s, vs in (values or {}).items()}
    vals = {s: vs for s, vs in vals.items() if len(vs) >= 2}
    foreign = [list(f) for f in (foreign or []) if len(f)]
    if mode in ("values", "mix") and not vals and not (mode == "mix" and foreign):
        raise MdlibError(f"corruption mode {mode!r} needs slot values (values=...) with >= 2 values per slot")
    if mode == "domain" and not foreign:
        raise MdlibError("corruption mode 'domain' needs other domains' responses (foreign=...)")
    rng = random.Random(seed)
    out = [list(t) for t in responses]
    spans = [_find_values(t, vals) if vals and mode != "domain" else [] for t in out]
    if mode == "values":
        eligible = [i for i, s in enumerate(spans) if s]
    elif mode == "mix" and not foreign:
        eligible = [i for i, s in enumerate(spans) if s]
    else:
        eligible = list(range(len(out)))
    n_bad = int(round(r * len(eligible)))
    chosen = set(rng.sample(eligible, n_bad)) if n_bad else set()
    flags = [False] * len(out)
    for i in sorted(chosen):
        if mode != "domain" and spans[i]:
            new = _swap_values(out[i], spans[i], vals, rng)
        else:
            new = list(rng.choice(foreign))
        if new == out[i]:  # e.g. a foreign response identical to this one: try another
            alt = [f for f in foreign if f != out[i]]
            if not alt:
                continue
            new = list(rng.choice(alt))
        out[i] = new
        flags[i] = True
    return out, flags


def domain_values(domain: str) -> dict[str, list[str]]:
    """``slot -> values`` of a domain's user and system slots (from :mod:`mdlib.data.domains`)."""
    from mdlib.data.domains import get_domain

    d = get_domain(domain)
    return {s.name: list(s.values) for s in (*d.usr_slots, *d.sys_slots)}


def corrupt_pairs(
    pairs: Sequence[Any],
    rate: float,
    seed: int,
    *,
    foreign_pairs: Sequence[Any] | None = None,
    mode: str = "mix",
) -> tuple[list[Any], list[bool]]:
    """Corrupt the responses of :class:`mdlib.data.pairs.Pair` objects, per domain.

    Wrong values come from each pair's own domain (:func:`domain_values`); "another
    domain's response" is drawn from ``foreign_pairs`` (default: ``pairs`` itself) of a
    *different* domain. The contexts, acts and ids are unchanged.

    Args:
        pairs: objects with ``response: list[str]`` and ``domain: str`` (dataclasses).
        rate: fraction to corrupt within each domain, ``0 <= rate < 1``.
        seed: seed.
        foreign_pairs: where other-domain responses come from.
        mode: ``"values"``, ``"domain"`` or ``"mix"``.

    Returns:
        ``(new_pairs, corrupted)`` in the order of ``pairs``.
    """
    check_rate(rate)
    pool = list(foreign_pairs) if foreign_pairs is not None else list(pairs)
    by_domain: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_domain.setdefault(p.domain, []).append(i)
    new_pairs = list(pairs)
    flags = [False] * len(pairs)
    for j, (dom, idx) in enumerate(sorted(by_domain.items())):
        foreign = [q.response for q in pool if q.domain != dom]
        responses, f = corrupt_responses(
            [pairs[i].response for i in idx], rate, seed * 1009 + j,
            values=domain_values(dom) if mode != "domain" else None,
            foreign=foreign if mode != "values" else None, mode=mode,
        )
        for i, resp, bad in zip(idx, responses, f):
            if bad:
                new_pairs[i] = dataclasses.replace(pairs[i], response=type(pairs[i].response)(resp))
                flags[i] = True
    return new_pairs, flags
