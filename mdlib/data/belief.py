"""The belief tracker: per user slot, the believed value and a confidence (docs/architecture.md).

The dialogue manager's state, shared by the reference :class:`~mdlib.data.threshold.ThresholdPolicy`,
the RL environment's system side (:class:`mdlib.dm.env.SystemState`), the corpus
generator (:mod:`mdlib.data.generator`) and the end-to-end system. Introduced in notebook 01.
"""

from __future__ import annotations

from mdlib.data.acts import Act
from mdlib.data.domains import Domain


class BeliefTracker:
    """Per user slot: the believed value and a confidence in [0, 1].

    ``{"value": None, "conf": 0.0}`` is unknown; ``value=None`` with ``conf > 0`` is
    "don't care". An inform sets the value with the turn's confidence (or, repeating the
    same value, raises it: ``1 - (1 - old)(1 - c)``); a confirm of an explicit confirmation
    raises it likewise; a disconfirm clears the slot; an implicit confirmation that is not
    disconfirmed grounds the slot (confidence >= 0.95); ``new_search`` clears everything.
    """

    GROUNDED = 0.95

    def __init__(self, domain: Domain):
        self.domain = domain
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self.slots: dict[str, dict] = {s: {"value": None, "conf": 0.0} for s in self.domain.usr_slot_names}

    def update(self, observed: list[Act], confidence: float, last_system_acts: list[Act]) -> None:
        """Fold one observed user turn into the belief.

        Args:
            observed: the acts as recognised (after the ASR channel).
            confidence: the turn's recognition confidence.
            last_system_acts: the system turn being answered (to resolve yes / no).
        """
        if any(a.act == "new_search" for a in observed):
            self.reset()
        target, kind = None, None
        for a in last_system_acts:
            if a.act in ("explicit_confirm", "implicit_confirm") and a.slot in self.slots:
                target, kind = a.slot, a.act
                break
        disconfirmed = False
        informed = set()
        for a in observed:
            if a.act == "confirm" and target is not None:
                st = self.slots[target]
                st["conf"] = round(1.0 - (1.0 - st["conf"]) * (1.0 - confidence), 4)
            elif a.act == "disconfirm" and target is not None:
                self.slots[target] = {"value": None, "conf": 0.0}
                disconfirmed = True
        for a in observed:
            if a.act == "inform" and a.slot in self.slots:
                st = self.slots[a.slot]
                informed.add(a.slot)
                if st["conf"] > 0.0 and st["value"] == a.value:
                    st["conf"] = round(1.0 - (1.0 - st["conf"]) * (1.0 - confidence), 4)
                else:
                    self.slots[a.slot] = {"value": a.value, "conf": round(confidence, 4)}
        if kind == "implicit_confirm" and not disconfirmed and target not in informed:
            st = self.slots[target]
            st["conf"] = max(st["conf"], self.GROUNDED)

    def snapshot(self) -> dict[str, dict]:
        """A JSON-ready copy (confidences to two decimals)."""
        return {s: {"value": v["value"], "conf": round(v["conf"], 2)} for s, v in self.slots.items()}

    def constraints(self) -> dict[str, str | None]:
        """``{slot: believed value}`` (``None`` = don't care or unknown)."""
        return {s: v["value"] for s, v in self.slots.items()}


