"""User populations: the kind of user a dialogue policy meets, as a few parameters.

A population sets the knobs of the simulated user (:class:`mdlib.data.complexity.Complexity`)
that matter to a dialogue manager: how well speech is recognised (ASR accuracy and its
spread), how many turns the user is willing to spend, and how often the user asks yes/no
questions, corrects themself or does not care about a slot. Meta-RL (notebook 06) trains
across several populations and adapts to an unseen one.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from mdlib.data.complexity import PRESETS, Complexity
from mdlib.data.domains import Database, Domain
from mdlib.data.simulator import AsrChannel, UserSimulator
from mdlib.errors import MdlibError, lookup


@dataclass(frozen=True)
class UserPopulation:
    """Parameters of a simulated user population.

    Attributes:
        name: label.
        asr_acc: mean per-turn recognition confidence (1.0: perfect recognition).
        asr_std: its standard deviation between turns.
        patience: user turns before the user gives up (the dialogue then fails).
        yn_question: probability of a yes/no question instead of a plain request.
        self_correct: probability that an inform first names a wrong value, then corrects it.
        dont_care: probability that a goal leaves a user slot unconstrained.
    """

    name: str
    asr_acc: float = 1.0
    asr_std: float = 0.0
    patience: int = 20
    yn_question: float = 0.0
    self_correct: float = 0.0
    dont_care: float = 0.0

    def __post_init__(self):
        for f in ("asr_acc", "yn_question", "self_correct", "dont_care"):
            v = getattr(self, f)
            if not 0.0 <= v <= 1.0:
                raise MdlibError(f"population {self.name!r}: {f} must be in [0, 1], got {v}")
        if self.asr_std < 0:
            raise MdlibError(f"population {self.name!r}: asr_std must be >= 0, got {self.asr_std}")
        if self.patience < 1:
            raise MdlibError(f"population {self.name!r}: patience must be >= 1 turn, got {self.patience}")

    def complexity(self) -> Complexity:
        """The simulator's :class:`Complexity` for this population.

        The other knobs come from the corpus's ``mix`` preset (reject style, several slots
        per inform) except that a dialogue has one goal; surface-only knobs (hesitation,
        self-restart) do not matter at the act level and are off. A population with perfect
        recognition and no behaviour knobs uses the ``clean`` preset.
        """
        noisy = self.asr_acc < 1.0 or self.yn_question or self.self_correct or self.dont_care
        base = PRESETS["mix"] if noisy else PRESETS["clean"]
        return base.replace(asr_acc=self.asr_acc, asr_std=self.asr_std, patience=self.patience,
                            yn_question=self.yn_question, self_correct=self.self_correct,
                            dont_care=self.dont_care, multi_goal=((1, 1.0),), hesitation=0.0,
                            self_restart=0.0, max_turns=max(2 * self.patience + 2, 4),
                            name=f"users:{self.name}")

    def channel(self, complexity: Complexity, domain: Domain) -> AsrChannel:
        """The recognition channel these users are heard through (``complexity`` from :meth:`complexity`)."""
        return AsrChannel(complexity, domain)

    def user(self, domain: Domain, db: Database, complexity: Complexity, rng: random.Random) -> UserSimulator:
        """A simulated user of this population for one dialogue (drawing from ``rng``)."""
        return UserSimulator(domain, db, complexity, rng)

    def to_dict(self) -> dict:
        return asdict(self)


_MIX = PRESETS["mix"]

#: Named populations. ``clean``, ``mix`` (the corpus preset's noise) and ``noisy`` (poor
#: recognition, impatient) are the reference ones; ``impatient`` and ``mumbling`` vary one
#: axis each so that meta-training sees both difficulties separately.
POPULATIONS: dict[str, UserPopulation] = {
    "clean": UserPopulation("clean", asr_acc=1.0, asr_std=0.0, patience=20),
    "mix": UserPopulation("mix", asr_acc=_MIX.asr_acc, asr_std=_MIX.asr_std, patience=_MIX.patience,
                          yn_question=_MIX.yn_question, self_correct=_MIX.self_correct,
                          dont_care=_MIX.dont_care),
    "impatient": UserPopulation("impatient", asr_acc=0.9, asr_std=0.05, patience=6, yn_question=0.2,
                                self_correct=0.1, dont_care=0.1),
    "mumbling": UserPopulation("mumbling", asr_acc=0.55, asr_std=0.2, patience=20, yn_question=0.2,
                               self_correct=0.2, dont_care=0.1),
    "noisy": UserPopulation("noisy", asr_acc=0.5, asr_std=0.2, patience=8, yn_question=0.4,
                            self_correct=0.3, dont_care=0.1),
}

#: Populations meta-training sees; ``noisy`` (poor recognition AND impatience) stays unseen.
SOURCE_POPULATIONS: tuple[str, ...] = ("clean", "mix", "impatient", "mumbling")


def get_population(name: str | UserPopulation) -> UserPopulation:
    """The population called ``name`` (a :class:`UserPopulation` is returned unchanged).

    Raises:
        MdlibError: for an unknown name, listing the known ones.
    """
    return lookup(POPULATIONS, name, "user population", UserPopulation)
