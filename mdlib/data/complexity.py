"""Complexity knobs of the generator and the simulated user (docs/data.md).

``clean`` turns every knob off; ``mix`` is the setting DAML trained on (SimDial's
MixSpec). Distributions are tuples of ``(outcome, probability)`` pairs so that a
:class:`Complexity` stays hashable. Introduced in notebook 01.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from mdlib.errors import MdlibError


@dataclass(frozen=True)
class Complexity:
    """How hard the simulated conversations are.

    Attributes:
        asr_acc: mean of the per-turn recognition confidence.
        asr_std: its standard deviation (confidence ~ N(acc, std), clipped to [0.05, 1]);
            each user act is corrupted with probability 1 - confidence.
        yn_question: probability that the user asks a yes/no question ("is it cheap?")
            instead of a plain request.
        reject_style: ``(("reject", p), ("reject+inform", q))``: on a wrong confirmation the
            user says "no", or "no" plus the correct value.
        multi_slot: distribution of the number of slots the user informs per turn.
        dont_care: probability that a goal leaves a user slot unconstrained.
        multi_goal: distribution of the number of goals (searches) per dialogue.
        hesitation: probability that a user turn starts with "hmm" / "uhm".
        self_restart: probability that the user restarts the sentence ("I want - I want ...").
        self_correct: probability that an inform first names a wrong value ("..., oh sorry, ...").
        patience: user turns before the user gives up (goodbye, failure).
        max_turns: cap on the turns of a dialogue (both speakers); reported when hit.
    """

    asr_acc: float = 1.0
    asr_std: float = 0.0
    yn_question: float = 0.0
    reject_style: tuple[tuple[str, float], ...] = (("reject", 1.0),)
    multi_slot: tuple[tuple[int, float], ...] = ((1, 1.0),)
    dont_care: float = 0.0
    multi_goal: tuple[tuple[int, float], ...] = ((1, 1.0),)
    hesitation: float = 0.0
    self_restart: float = 0.0
    self_correct: float = 0.0
    patience: int = 20
    max_turns: int = 60
    name: str = "custom"

    def __post_init__(self):
        for f in ("asr_acc", "yn_question", "dont_care", "hesitation", "self_restart", "self_correct"):
            v = getattr(self, f)
            if not 0.0 <= v <= 1.0:
                raise MdlibError(f"complexity: {f} must be in [0, 1], got {v}")
        if self.asr_std < 0:
            raise MdlibError(f"complexity: asr_std must be >= 0, got {self.asr_std}")
        for f in ("reject_style", "multi_slot", "multi_goal"):
            dist = getattr(self, f)
            if not dist or abs(sum(p for _, p in dist) - 1.0) > 1e-6 or any(p < 0 for _, p in dist):
                raise MdlibError(f"complexity: {f} must be probabilities summing to 1, got {dist}")
        for k, _ in self.reject_style:
            if k not in ("reject", "reject+inform"):
                raise MdlibError(f"complexity: reject_style outcome must be 'reject' or 'reject+inform', got {k!r}")
        if self.patience < 1 or self.max_turns < 2:
            raise MdlibError("complexity: patience must be >= 1 and max_turns >= 2")

    def to_dict(self) -> dict:
        """JSON-friendly form (distributions as ``{outcome: p}``)."""
        d = dataclasses.asdict(self)
        for f in ("reject_style", "multi_slot", "multi_goal"):
            d[f] = {str(k): p for k, p in getattr(self, f)}
        return d

    def replace(self, **changes) -> "Complexity":
        """A copy with some knobs changed (``name`` becomes "custom" unless given)."""
        changes.setdefault("name", "custom")
        return dataclasses.replace(self, **changes)


def sample(dist: tuple[tuple, ...], rng: random.Random):
    """Draw an outcome from ``((outcome, p), ...)`` with ``rng``."""
    u = rng.random()
    acc = 0.0
    for outcome, p in dist:
        acc += p
        if u < acc:
            return outcome
    return dist[-1][0]


PRESETS: dict[str, Complexity] = {
    "clean": Complexity(name="clean"),
    "mix": Complexity(
        asr_acc=0.7, asr_std=0.15, yn_question=0.4,
        reject_style=(("reject", 0.5), ("reject+inform", 0.5)),
        multi_slot=((1, 0.7), (2, 0.3)), dont_care=0.1,
        multi_goal=((1, 0.6), (2, 0.4)), hesitation=0.4, self_restart=0.1,
        self_correct=0.2, name="mix"),
}


def get_complexity(name: str | Complexity) -> Complexity:
    """The preset called ``name`` (a :class:`Complexity` is returned unchanged).

    Raises:
        MdlibError: for an unknown preset name.
    """
    if isinstance(name, Complexity):
        return name
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise MdlibError(f"unknown complexity spec {name!r}; known: {', '.join(PRESETS)}") from None
