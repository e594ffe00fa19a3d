"""Context-only input, the generator's input as DAML's model read it (docs/protocol.md).

With ``input="context"`` a pair's source holds no system act: the last turns with every
*system*-slot value delexicalised, the belief and the database result (one line of
tokens, split here)::

    <sys> the rating is <slot_rating> . <usr> is it from <slot_company> ?      (context)
    <sep> genre music years 90s country germany requested <slot_company>     (belief)
    <sep> <db_many>                                                          (database result)

and its target is the response with the system-slot values it informs delexicalised
("the movie is from <slot_company> ."). The values come back at evaluation time from the
first database row, as Sequicity and DAML's pipeline put them back
(:meth:`mdlib.data.pairs.Pair.lexicalise`).

* The *belief* is the turn's ``state`` (the system's belief tracker, fed with what it
  heard, never the user's goal): ``slot value`` for every user slot with a value,
  ``slot dontcare`` for a don't-care, then ``requested`` and the placeholders of the
  system slots the user asked about and has not been told (Sequicity's belief span:
  constraints, then requests).
* The *database result* is the number of rows that match the belief, bucketed as
  Sequicity's degree vector (:data:`DB_TOKENS`): it tells the generator whether it can
  answer, not what the answer is.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

from mdlib.data.acts import Act
from mdlib.data.text import placeholder, tokenise
from mdlib.data.threshold import track_requests

#: The database-result tokens: no match, one match, several (Sequicity's degree buckets).
DB_TOKENS: tuple[str, ...] = ("<db_0>", "<db_1>", "<db_many>")
#: The word that separates the belief's constraints from its pending requests.
REQUESTED = "requested"
#: How a don't-care belief is written.
DONT_CARE = "dontcare"


def delexicalise_acts(tokens: Sequence[str], acts: Sequence[Act],
                      slots) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Replace the values of ``acts`` on ``slots`` by placeholders, in act order.

    Unlike :func:`mdlib.data.text.delexicalise`, which matches a domain's whole value
    lists, this uses the turn's own acts: a value is replaced only where the turn says
    it, and two slots that share a value (bus: ``arrive_in`` 5 and ``duration`` 5) each
    get their own placeholder, because templates realise acts in order.

    Args:
        tokens: the turn's tokens.
        acts: the turn's acts; those with a slot in ``slots`` and a value are replaced.
        slots: the slot names to delexicalise (the system slots).

    Returns:
        ``(tokens, mapping)`` as :func:`mdlib.data.text.delexicalise` returns them, so
        :func:`mdlib.data.text.relexicalise` restores the original tokens.
    """
    out = list(tokens)
    done: list[tuple[int, str, list[str]]] = []
    cursor = 0
    for a in acts:
        if a.slot not in slots or a.value is None:
            continue
        vt = tokenise(str(a.value))
        if not vt:
            continue
        # first occurrence at or after the previous replacement, else anywhere
        starts = [i for i in range(len(out) - len(vt) + 1) if out[i:i + len(vt)] == vt]
        if not starts:
            continue
        i = next((s for s in starts if s >= cursor), starts[0])
        ph = placeholder(a.slot)
        out[i:i + len(vt)] = [ph]
        done = [(j - len(vt) + 1 if j > i else j, p, v) for j, p, v in done] + [(i, ph, vt)]
        cursor = i + 1
    return out, [(p, v) for _, p, v in sorted(done)]


def belief_tokens(state: Mapping | None, usr_slots: Sequence[str], pending: Sequence[str]) -> list[str]:
    """The belief as tokens: ``slot value`` per believed user slot, then the pending requests.

    Args:
        state: the turn's ``state``: ``{slot: {"value", "conf"}}`` (or ``{slot: value}``).
        usr_slots: the user slots, in the order to write them.
        pending: system slots asked about and not yet told (written as placeholders).
    """
    out: list[str] = []
    for slot in usr_slots:
        entry = (state or {}).get(slot)
        value, conf = (entry.get("value"), entry.get("conf", 1.0)) if isinstance(entry, Mapping) else (entry, 1.0)
        if value is not None:
            out += [slot] + tokenise(str(value))
        elif entry is not None and conf:  # a value of None held with confidence: don't care
            out += [slot, DONT_CARE]
    if pending:  # as placeholders: a slot name can also be a value (restaurant: open is open)
        out += [REQUESTED] + [placeholder(s) for s in pending]
    return out


def db_token(count: int) -> str:
    """The database-result token of ``count`` matching rows."""
    return DB_TOKENS[min(count, len(DB_TOKENS) - 1)]


@lru_cache(maxsize=None)
def _database(domain: str):
    from mdlib.data.domains import Database
    from mdlib.data.generator import DB_SEED

    return Database(domain, DB_SEED)


def match_count(domain: str | None, state: Mapping | None, kb: Mapping | None) -> int | None:
    """Rows that match the belief: the turn's ``kb`` count when it queried, else a query of
    the domain's database (a known domain), else ``None`` (no database to ask)."""
    if kb is not None and "count" in kb:
        return int(kb["count"])
    from mdlib.data.domains import DOMAINS

    if domain not in DOMAINS or state is None:
        return None
    constraints = {s: (v.get("value") if isinstance(v, Mapping) else v) for s, v in state.items()}
    return len(_database(domain).query(constraints))


def fill_of(kb: Mapping | None, sys_slots: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(placeholder, value tokens)`` of the first row of a query result (empty without one)."""
    rows = (kb or {}).get("results") or []
    if not rows:
        return ()
    return tuple((placeholder(s), tuple(tokenise(str(rows[0][s])))) for s in sys_slots if s in rows[0])


def requests_after(pending: list[str], user_acts: Sequence[Act], sys_slots) -> list[str]:
    """Pending requests after a user turn (the system's request tracker)."""
    return track_requests(list(pending), list(user_acts), sys_slots)


def informed(pending: list[str], system_acts: Sequence[Act]) -> list[str]:
    """Pending requests after a system turn: the slots it informed are answered."""
    told = {a.slot for a in system_acts if a.act == "inform"}
    return [s for s in pending if s not in told]
