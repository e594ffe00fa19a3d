"""Act-level simulation: an agenda-based user and a noisy recognition channel (docs/data.md).

The corpus generator (:mod:`mdlib.data.generator`) runs these two against the belief
tracker and the reference threshold policy (:mod:`mdlib.data.belief`,
:mod:`mdlib.data.threshold`, re-exported here for older imports) and realises the acts as
text; the dialogue-management notebooks use the same user as an RL environment.
Everything random draws from an explicit ``random.Random``.

One exchange::

    user acts --AsrChannel--> observed acts, confidence
              --BeliefTracker.update--> belief --ThresholdPolicy.act--> system acts
              --UserSimulator.step--> next user acts
"""

from __future__ import annotations

import random

from mdlib.data.acts import Act
from mdlib.data.belief import BeliefTracker  # noqa: F401  (re-exported: notebooks import it from here)
from mdlib.data.complexity import Complexity, sample
from mdlib.data.domains import Database, Domain
from mdlib.data.threshold import KB_MAX_ROWS, ThresholdPolicy, track_requests  # noqa: F401  (re-exported)
from mdlib.errors import MdlibError


def _goal_constraints(goal: dict) -> dict[str, str | None]:
    return goal["constraints"]


class UserSimulator:
    """An agenda-based simulated user with one or more goals.

    A goal is ``{"constraints": {usr_slot: value or None}, "requests": [sys_slot, ...]}``,
    built from a real database row, so that an answer always exists (``None`` = don't
    care). The user answers the system's requests and confirmations, otherwise pops its
    agenda: first the constraints not yet given (``multi_slot`` at a time), then its
    requests (as yes/no questions with probability ``yn_question``), then a new search
    (further goals), then thanks and goodbye. It gives up after ``patience`` turns.

    Args:
        domain: the domain.
        db: its database (goals are sampled from its rows; answers are checked on it).
        complexity: the knobs (``dont_care``, ``multi_goal``, ``multi_slot``,
            ``yn_question``, ``reject_style``, ``patience``).
        rng: the random stream (shared with the caller; no global state).

    Attributes:
        goals: the goals of the current dialogue.
        done: the user has left (goodbye).
        success: every goal met with correct information (valid once ``done``).
        turns: user turns so far.
    """

    def __init__(self, domain: Domain, db: Database, complexity: Complexity, rng: random.Random):
        self.domain = domain
        self.db = db
        self.complexity = complexity
        self.rng = rng
        self.goals: list[dict] = []
        self.done = False
        self.success = False
        self.gave_up = False
        self.turns = 0

    # ---------------------------------------------------------------- goals
    def _sample_goal(self) -> dict:
        rng, c = self.rng, self.complexity
        row = rng.choice(self.db.rows)
        constraints = {
            s: (None if rng.random() < c.dont_care else row[s]) for s in self.domain.usr_slot_names
        }
        n_req = 1 if rng.random() < 0.5 else 2
        requests = rng.sample(list(self.domain.sys_slot_names), min(n_req, len(self.domain.sys_slots)))
        return {"constraints": constraints, "requests": requests}

    def _start_goal(self, idx: int) -> None:
        self.goal_idx = idx
        goal = self.goals[idx]
        order = list(self.domain.usr_slot_names)
        self.rng.shuffle(order)
        self.to_inform = order
        self.to_request = list(goal["requests"])
        self._truth = None

    def _truthful_values(self, slot: str) -> set[str]:
        """Values of ``slot`` in the rows that match the current goal's constraints."""
        if self._truth is None:
            self._truth = self.db.query(_goal_constraints(self.goals[self.goal_idx]))
        return {r[slot] for r in self._truth}

    def _informs(self, n: int) -> list[Act]:
        cons = self.goals[self.goal_idx]["constraints"]
        out = []
        for _ in range(min(n, len(self.to_inform))):
            s = self.to_inform.pop(0)
            out.append(Act("inform", s, cons[s]))
        return out

    # ---------------------------------------------------------------- API
    def reset(self) -> list[Act]:
        """Sample the goal(s) and return the opening acts (a greeting, usually some constraints)."""
        n_goals = sample(self.complexity.multi_goal, self.rng)
        self.goals = [self._sample_goal() for _ in range(n_goals)]
        self.answers: list[dict[str, dict]] = [{} for _ in self.goals]
        self.done = self.success = self.gave_up = False
        self.turns = 1
        self._start_goal(0)
        acts = [Act("greet")]
        if self.rng.random() < 0.8:
            acts += self._informs(sample(self.complexity.multi_slot, self.rng))
        return acts

    @property
    def reward(self) -> float:
        """+1 for success, -1 otherwise (SimDial's reward)."""
        return 1.0 if self.success else -1.0

    def _finish(self, gave_up: bool = False) -> None:
        self.done = True
        self.gave_up = gave_up
        self.success = (not gave_up) and all(
            len(ans) == len(goal["requests"]) and all(a["correct"] for a in ans.values())
            for goal, ans in zip(self.goals, self.answers)
        )

    def not_understood(self) -> list[Act]:
        """A turn in which the user understood nothing it could act on (it asks the system to
        repeat, :class:`mdlib.system.listener.ListeningUser`): the turn counts against its
        patience; ``[Act("goodbye")]`` when that runs out, else ``[]``."""
        if self.done:
            return []
        self.turns += 1
        if self.turns > self.complexity.patience:
            self._finish(gave_up=True)
            return [Act("goodbye")]
        return []

    def step(self, system_acts: list[Act]) -> list[Act]:
        """The user's (true) acts in reply to ``system_acts``.

        Returns ``[]`` once the user is done.
        """
        if self.done:
            return []
        if not self.goals:
            raise MdlibError("UserSimulator.step called before reset()")
        rng, c = self.rng, self.complexity
        goal = self.goals[self.goal_idx]
        cons = goal["constraints"]
        out: list[Act] = []
        asked = False
        wrong_confirm = False
        names = {a.act for a in system_acts}
        if "goodbye" in names:
            self._finish(gave_up=bool(self.to_request) or self.goal_idx < len(self.goals) - 1)
            return []
        for a in system_acts:
            if a.act == "request" and a.slot in cons:
                out.append(Act("inform", a.slot, cons[a.slot]))
                if a.slot in self.to_inform:
                    self.to_inform.remove(a.slot)
                asked = True
            elif a.act in ("explicit_confirm", "implicit_confirm") and a.slot in cons:
                right = a.value == cons[a.slot]
                if a.act == "explicit_confirm":
                    asked = True
                    out.append(Act("confirm") if right else Act("disconfirm"))
                elif not right:
                    asked = True
                    out.append(Act("disconfirm"))
                if not right:
                    wrong_confirm = True
                    if a.slot in self.to_inform:
                        self.to_inform.remove(a.slot)
                    if sample(c.reject_style, rng) == "reject+inform":
                        out.append(Act("inform", a.slot, cons[a.slot]))
            elif a.act == "no_result":
                # nothing matched: the system misunderstood; restate every constraint
                out.extend(Act("inform", s, cons[s]) for s in self.domain.usr_slot_names)
                self.to_inform = []
                asked = True
        if not wrong_confirm:
            for a in system_acts:
                if a.act == "inform" and a.slot in self.to_request:
                    self.to_request.remove(a.slot)
                    self.answers[self.goal_idx][a.slot] = {
                        "value": a.value, "correct": a.value in self._truthful_values(a.slot)}
        self.turns += 1
        if self.turns > c.patience:
            self._finish(gave_up=True)
            return [Act("goodbye")]
        if asked:
            return out
        if self.to_inform:
            return self._informs(sample(c.multi_slot, rng))
        if self.to_request:
            s = self.to_request[0]
            if self.answers[self.goal_idx] and rng.random() < 0.5:
                out.append(Act("more_request"))
            if rng.random() < c.yn_question:
                out.append(Act("yn_question", s, rng.choice(self.domain.slot(s).values)))
            else:
                out.append(Act("request", s))
            return out
        if self.goal_idx + 1 < len(self.goals):
            self._start_goal(self.goal_idx + 1)
            return [Act("new_search")] + self._informs(sample(c.multi_slot, rng))
        self._finish()
        return [Act("satisfy"), Act("goodbye")]


class AsrChannel:
    """Noisy recognition of the user's acts.

    Each turn draws a confidence ``c ~ N(asr_acc, asr_std)`` clipped to [0.05, 1] (exactly
    1 for a noiseless spec). Each inform / yes-no question is corrupted with probability
    ``1 - c``: 30% of corruptions drop the act, the rest swap its value for another value
    of the slot; a confirm / disconfirm is flipped with probability ``1 - c``.
    """

    def __init__(self, complexity: Complexity, domain: Domain):
        self.complexity = complexity
        self.domain = domain
        self._values = domain.values()

    def confidence(self, rng: random.Random) -> float:
        """One turn's confidence (two decimals)."""
        c = self.complexity
        if c.asr_std == 0.0:
            return round(min(1.0, max(0.05, c.asr_acc)), 2)
        return round(min(1.0, max(0.05, rng.gauss(c.asr_acc, c.asr_std))), 2)

    def __call__(self, acts: list[Act], rng: random.Random) -> tuple[list[Act], float]:
        """Return ``(observed acts, confidence)``."""
        conf = self.confidence(rng)
        if conf >= 1.0:
            return list(acts), conf
        return self.corrupt(acts, 1.0 - conf, 1.0 - conf, rng), conf

    def corrupt(self, acts: list[Act], value_error: float, yes_no_error: float, rng: random.Random) -> list[Act]:
        """The acts as heard: each inform / yes-no question corrupted with probability
        ``value_error`` (30% of corruptions drop it, the rest swap its value), each confirm /
        disconfirm flipped with probability ``yes_no_error``."""
        out = []
        for a in acts:
            if a.act in ("inform", "yn_question") and a.slot in self._values:
                u = rng.random()
                if u < value_error:
                    if u < 0.3 * value_error:
                        continue  # dropped
                    others = [v for v in self._values[a.slot] if v != a.value]
                    a = Act(a.act, a.slot, rng.choice(others))
            elif a.act in ("confirm", "disconfirm"):
                if rng.random() < yes_no_error:
                    a = Act("disconfirm" if a.act == "confirm" else "confirm")
            out.append(a)
        return out
