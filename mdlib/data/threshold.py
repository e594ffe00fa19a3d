"""The reference dialogue policy of SimDial (the threshold policy) and the pending-request tracker.

:class:`ThresholdPolicy` reads a :class:`~mdlib.data.belief.BeliefTracker` and queries
the database; the corpus generator (:mod:`mdlib.data.generator`) speaks with it,
notebook 06 compares learned policies with it, and it is the end-to-end system's
default manager. Introduced in notebook 01.
"""

from __future__ import annotations

from mdlib.data.acts import Act
from mdlib.data.domains import Database, Domain
from mdlib.data.belief import BeliefTracker

#: Rows kept in a turn's ``kb["results"]`` (``kb["count"]`` has the full number).
KB_MAX_ROWS = 5


def track_requests(pending: list[str], user_acts: list[Act], sys_slots) -> list[str]:
    """The system slots the user asked about and has not been told, after a user turn.

    A ``new_search`` starts a new list; every ``request`` / ``yn_question`` of a system slot
    not yet pending is appended (in place otherwise). Shared by :class:`ThresholdPolicy`
    and the RL environment's system side (:class:`mdlib.dm.env.SystemState`).
    """
    if any(a.act == "new_search" for a in user_acts):
        pending = []
    for a in user_acts:
        if a.act in ("request", "yn_question") and a.slot in sys_slots and a.slot not in pending:
            pending.append(a.slot)
    return pending


class ThresholdPolicy:
    """The reference system policy of SimDial.

    For the first user slot that is not grounded: confidence < 0.2 -> request it;
    < 0.6 -> explicit confirmation; < 0.95 -> implicit confirmation (and a request of the
    next slot if that one is unknown). When every slot is grounded and the user has asked
    for something: query the database with the believed constraints and inform the
    requested slots from the first matching row (``no_result`` if none), then ask whether
    there is anything else.

    Attributes:
        last_query: ``{"constraints", "results", "count"}`` of the latest query of the
            latest turn, or ``None`` when that turn made no query.
        pending: the system slots the user asked about and has not been told yet.
    """

    REQUEST, EXPLICIT, IMPLICIT = 0.2, 0.6, 0.95

    def __init__(self, domain: Domain, db: Database):
        self.domain = domain
        self.db = db
        self.reset()

    def reset(self) -> list[Act]:
        """Start a dialogue; return the greeting."""
        self.pending: list[str] = []
        self.last_query: dict | None = None
        return [Act("greet")]

    def act(self, belief: BeliefTracker, user_acts: list[Act], confidence: float | None = None) -> list[Act]:
        """The system's acts given the belief and the observed user acts.

        ``confidence`` (the turn's recognition confidence, a feature of learned policies
        such as :class:`mdlib.dm.learned.LearnedPolicy`) is accepted and ignored: the
        belief already holds it.
        """
        self.last_query = None
        names = {a.act for a in user_acts}
        if "goodbye" in names:
            return [Act("goodbye")]
        self.pending = track_requests(self.pending, user_acts, self.domain.sys_slot_names)
        out: list[Act] = []
        for s in self.domain.usr_slot_names:
            st = belief.slots[s]
            conf = st["conf"]
            if conf >= self.IMPLICIT:
                continue
            if out:  # an implicit confirmation is already planned
                if conf < self.REQUEST:
                    out.append(Act("request", s))
                return out
            if conf < self.REQUEST:
                return [Act("request", s)]
            if conf < self.EXPLICIT:
                return [Act("explicit_confirm", s, st["value"])]
            out.append(Act("implicit_confirm", s, st["value"]))
        if not self.pending:
            return out + [Act("request_more")]
        constraints = belief.constraints()
        results = self.db.query(constraints)
        self.last_query = {"constraints": constraints, "results": results[:KB_MAX_ROWS],
                           "count": len(results)}
        if not results:
            return out + [Act("query"), Act("no_result")]
        row = results[0]
        out += [Act("query")] + [Act("inform", s, row[s]) for s in self.pending]
        self.pending = []
        return out + [Act("request_more")]
