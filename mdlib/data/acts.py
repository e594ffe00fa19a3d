"""Dialogue acts: the act-level language the simulated user and system speak.

A turn is a list of :class:`Act`. The inventory follows SimDial (Zhao & Eskenazi, 2018);
see docs/data.md and notebook 01.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdlib.errors import MdlibError

#: Acts the system may produce. ``request_more`` ("anything else?") and ``no_result``
#: ("nothing matches") are additions to SimDial's list that make the policy explicit.
SYSTEM_ACTS: tuple[str, ...] = (
    "greet", "request", "explicit_confirm", "implicit_confirm", "query", "inform",
    "no_result", "request_more", "goodbye",
)
#: Acts the simulated user may produce.
USER_ACTS: tuple[str, ...] = (
    "greet", "inform", "request", "yn_question", "confirm", "disconfirm", "new_search",
    "satisfy", "more_request", "goodbye", "kb_return",
)
#: Every act name (system and user).
ALL_ACTS: tuple[str, ...] = tuple(dict.fromkeys(SYSTEM_ACTS + USER_ACTS))


@dataclass(frozen=True)
class Act:
    """One dialogue act, e.g. ``Act("inform", "loc", "Boston")``.

    Attributes:
        act: the act name (one of :data:`SYSTEM_ACTS` or :data:`USER_ACTS`).
        slot: the slot it is about, or ``None``.
        value: the slot value, or ``None``. An ``inform`` with a slot and ``value=None``
            means "don't care" (no constraint on that slot).
    """

    act: str
    slot: str | None = None
    value: str | None = None

    def to_dict(self) -> dict:
        """``{"act": .., "slot": .., "value": ..}`` without the keys that are ``None``."""
        d = {"act": self.act}
        if self.slot is not None:
            d["slot"] = self.slot
        if self.value is not None:
            d["value"] = self.value
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Act":
        """Inverse of :meth:`to_dict`.

        Raises:
            MdlibError: when ``d`` is not a mapping with a string ``"act"``.
        """
        if not isinstance(d, dict) or not isinstance(d.get("act"), str):
            raise MdlibError(f"an act must be a mapping with a string 'act', got {d!r}")
        return cls(d["act"], d.get("slot"), d.get("value"))

    @property
    def dont_care(self) -> bool:
        """True for an ``inform`` that says the user does not care about ``slot``."""
        return self.act == "inform" and self.slot is not None and self.value is None

    def __str__(self) -> str:
        if self.slot is None:
            return self.act
        value = "dont_care" if self.value is None and self.act == "inform" else self.value
        return f"{self.act}({self.slot}={value})" if value is not None else f"{self.act}({self.slot})"


def acts_to_dicts(acts: list[Act]) -> list[dict]:
    """``[a.to_dict() for a in acts]``."""
    return [a.to_dict() for a in acts]


def acts_from_dicts(items: list[dict]) -> list[Act]:
    """``[Act.from_dict(d) for d in items]``."""
    return [Act.from_dict(d) for d in items]
