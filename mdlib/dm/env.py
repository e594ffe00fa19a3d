"""The simulated user as a reinforcement-learning environment (meta-objective 3).

An episode is one dialogue between a system policy and the data layer's agenda-based
user (:class:`mdlib.data.simulator.UserSimulator`), heard through its noisy recognition
channel (:class:`~mdlib.data.simulator.AsrChannel`) and tracked by its belief tracker
(:class:`~mdlib.dm.belief.BeliefTracker`), exactly as in the corpus generator. The
user population makes the user and the channel (:meth:`UserPopulation.user` and
:meth:`~UserPopulation.channel`), so a population of users with hidden traits
(:mod:`mdlib.dm.traits`) plugs in unchanged. The environment only adds the RL interface:

- ``reset(seed)`` samples the user's goal and returns the first observation; every
  random draw of the episode comes from ``random.Random(seed)``, so an episode is a pure
  function of the seed and the system's actions;
- ``step(action)`` takes a system action at the level of dialogue acts: an index into
  :attr:`DialogueEnv.actions` (what the policy network outputs), one :class:`Act`, or a
  list of acts (what :class:`~mdlib.dm.threshold.ThresholdPolicy` produces). An act the
  domain cannot express raises :class:`MdlibError`;
- reward: ``-turn_cost`` per system turn, plus ``success_reward`` when the user leaves
  satisfied with every goal met by correct information.

The action space is *act x slot*: two global actions (``inform``: query the database
with the believed constraints and tell the user what they asked for; ``request_more``:
"anything else?") and, per user slot, ``request``, ``explicit_confirm`` and
``implicit_confirm`` (the confirmed value is the belief's; an implicit confirmation also
requests the next unknown slot, as the threshold policy does). Notebook 06 introduces it.

The system's side of the dialogue (belief, pending requests, counters, and the mapping of
an action to system acts) is :class:`SystemState`; :class:`DialogueEnv` extends it with
the simulated user, and :class:`mdlib.dm.learned.LearnedPolicy` uses it on its own to
act inside the end-to-end system (:mod:`mdlib.system.pipeline`), so both read the same
features and say the same acts for an action.

Self-correction ("Boston, oh sorry, I mean Austin") is a text-level knob of the corpus;
at the act level the environment says it as two informs, first a wrong value then the
right one, both through the recognition channel (so a dropped correction leaves the
wrong value in the belief).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mdlib.data.acts import SYSTEM_ACTS, Act
from mdlib.data.domains import Database, Domain, get_domain
from mdlib.dm.belief import BeliefTracker
from mdlib.dm.threshold import track_requests
from mdlib.dm.population import UserPopulation, get_population
from mdlib.errors import MdlibError

#: Global actions of the policy (not tied to a slot). ``goodbye`` is a valid system act
#: (``step(Act("goodbye"))`` ends the dialogue) but not a policy action: the user leaves by
#: itself when satisfied or out of patience, and a learner that may hang up early finds the
#: local optimum "hang up at once" (minimal turn cost) long before it finds success.
GLOBAL_ACTS: tuple[str, ...] = ("inform", "request_more")
#: Actions the policy can take on each user slot.
SLOT_ACTS: tuple[str, ...] = ("request", "explicit_confirm", "implicit_confirm")


@dataclass
class Turn:
    """One exchange: the system's acts, the user's true reply, what was recognised."""

    system: list[Act]
    user: list[Act]
    observed: list[Act]
    confidence: float
    reward: float


@dataclass
class StepResult:
    """What :meth:`DialogueEnv.step` returns."""

    reward: float
    done: bool
    info: dict = field(default_factory=dict)


class SystemState:
    """The system's side of a dialogue: what the policy's features read, and what an action says.

    Shared by :class:`DialogueEnv` (which adds the user) and
    :class:`mdlib.dm.learned.LearnedPolicy` (the learned policy inside
    :class:`mdlib.system.pipeline.DialogueSystem`), so that an action maps to the same
    system acts in training and in the end-to-end system.

    Args:
        domain: a domain name or :class:`Domain`.
        db: the database the ``inform`` action queries.

    Attributes:
        actions: the action space, ``[Act(g) for g in GLOBAL_ACTS] + [Act(a, s) for s in usr slots for a in SLOT_ACTS]``.
        belief: the :class:`BeliefTracker` (updated with the recognised user acts by the owner).
        user_acts: the recognised user acts of the latest user turn.
        confidence: the recognition confidence of that turn.
        pending: system slots the user asked about and has not been told.
        asked: per user slot, how many system turns used a slot act on it.
        turn: system turns so far (the greeting not counted).
        last_system: the acts of the latest system turn.
        last_query: ``{"constraints", "count"}`` of the latest database query, or ``None``.
    """

    def __init__(self, domain: str | Domain, db: Database):
        self.domain = get_domain(domain)
        self.db = db
        self.belief = BeliefTracker(self.domain)
        self.slots = self.domain.usr_slot_names
        self.actions: list[Act] = [Act(g) for g in GLOBAL_ACTS] + [
            Act(a, s) for s in self.slots for a in SLOT_ACTS]
        self.start()

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    def start(self) -> list[Act]:
        """A new dialogue on the system side (the belief is its owner's to reset); returns the greeting."""
        self.pending: list[str] = []
        self.turn = 0
        self.last_query: dict | None = None
        self.asked = {s: 0 for s in self.slots}
        self.last_system: list[Act] = [Act("greet")]
        self.user_acts: list[Act] = []
        self.confidence = 1.0
        return list(self.last_system)

    def observe(self, observed: list[Act], confidence: float, track: bool = True) -> None:
        """Take in a recognised user turn: its acts and confidence (features), and its requests (``pending``).

        ``track=False`` keeps ``pending`` as it is (the environment's final turn).
        """
        if track:
            self.pending = track_requests(self.pending, observed, self.domain.sys_slot_names)
        self.user_acts, self.confidence = observed, confidence

    def said(self, system: list[Act]) -> None:
        """Count a system turn: ``turn``, the ``asked`` counters and ``last_system``."""
        self.turn += 1
        for a in system:
            if a.act in SLOT_ACTS and a.slot in self.asked:
                self.asked[a.slot] += 1
        self.last_system = system

    # ------------------------------------------------------------------ actions
    def action_index(self, act: Act) -> int:
        """Index in :attr:`actions` of a policy action ``Act(name, slot)`` (the value is ignored)."""
        key = Act(act.act, act.slot)
        if key.act == "query":
            key = Act("inform")
        try:
            return self.actions.index(key)
        except ValueError:
            raise MdlibError(self._invalid(act)) from None

    def system_acts(self, action: int | Act | list[Act]) -> list[Act]:
        """The system acts an action stands for (validated against the domain)."""
        if isinstance(action, list):
            if not action:
                raise MdlibError("system action: an empty list of acts")
            for a in action:
                self._validate(a)
            return list(action)
        if isinstance(action, Act):
            if action.act in ("inform", "query") and action.slot is None:
                return self._answer()
            if action.act in SLOT_ACTS and action.value is None and action.act != "request":
                self._validate(Act(action.act, action.slot))
                acts = [Act(action.act, action.slot, self.belief.slots[action.slot]["value"])]
                if action.act == "implicit_confirm":  # "Okay, Boston. What food?" as the threshold policy says it
                    unknown = [s for s in self.slots if s != action.slot and self.belief.slots[s]["conf"] == 0.0]
                    acts += [Act("request", unknown[0])] if unknown else []
                return acts
            self._validate(action)
            return [action]
        if isinstance(action, bool) or not hasattr(action, "__index__"):
            raise MdlibError(f"system action: expected an action index, an Act or a list of Acts, got {action!r}")
        i = int(action)
        if not 0 <= i < len(self.actions):
            raise MdlibError(f"system action {i} out of range: domain {self.domain.name!r} has "
                             f"{len(self.actions)} actions (0..{len(self.actions) - 1})")
        return self.system_acts(self.actions[i])

    def _invalid(self, a: Act) -> str:
        return (f"system action {a} is not valid in domain {self.domain.name!r}: system acts are "
                f"{', '.join(SYSTEM_ACTS)}; user slots {', '.join(self.slots)}; "
                f"system slots {', '.join(self.domain.sys_slot_names)}")

    def _validate(self, a: Act) -> None:
        if not isinstance(a, Act) or a.act not in SYSTEM_ACTS:
            raise MdlibError(self._invalid(a) if isinstance(a, Act) else f"system action: expected an Act, got {a!r}")
        if a.act in SLOT_ACTS and a.slot not in self.slots:
            raise MdlibError(self._invalid(a))
        if a.act == "inform" and a.slot is not None and a.slot not in self.domain.sys_slot_names:
            raise MdlibError(self._invalid(a))
        if a.act in ("greet", "query", "no_result", "request_more", "goodbye") and a.slot is not None:
            raise MdlibError(self._invalid(a))

    def _answer(self) -> list[Act]:
        """Query the database with the believed constraints; inform what the user asked for."""
        constraints = self.belief.constraints()
        results = self.db.query(constraints)
        self.last_query = {"constraints": constraints, "count": len(results)}
        if not results:
            return [Act("query"), Act("no_result")]
        row = results[0]
        acts = [Act("query")] + [Act("inform", s, row[s]) for s in self.pending]
        self.pending = []
        return acts if len(acts) > 1 else acts + [Act("request_more")]


class DialogueEnv(SystemState):
    """One domain, one user population; a dialogue per episode (a :class:`SystemState` with a user).

    Args:
        domain: a domain name or :class:`Domain` (see :data:`mdlib.data.domains.DOMAINS`).
        users: a population name or :class:`UserPopulation` (see :data:`mdlib.dm.population.POPULATIONS`).
        success_reward: bonus for a successful dialogue.
        turn_cost: cost of every system turn.
        db_seed: the database seed (0, as in the corpora).

    Attributes:
        actions, belief, user_acts, confidence, pending, asked, turn, last_system, last_query:
            the system side (see :class:`SystemState`); the environment updates the belief.
        done, success: the episode's state.
        history: the :class:`Turn` records of the episode (turn 0: greeting and opening).
    """

    def __init__(self, domain: str | Domain, users: str | UserPopulation = "clean", success_reward: float = 1.0,
                 turn_cost: float = 0.05, db_seed: int = 0):
        domain = get_domain(domain)
        self.population = get_population(users)
        super().__init__(domain, Database(domain, seed=db_seed))
        self.complexity = self.population.complexity()
        self.asr = self.population.channel(self.complexity, self.domain)
        self.success_reward = float(success_reward)
        self.turn_cost = float(turn_cost)
        self.max_turns = max(1, self.complexity.max_turns // 2)
        self._rng: random.Random | None = None
        self.user = None  # the population's UserSimulator, made by reset()
        self.done = True
        self.success = False

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int) -> "DialogueEnv":
        """Start a dialogue: the system greets, the user opens. Returns ``self`` (the observation)."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise MdlibError(f"seed: expected a whole number, got {seed!r}")
        self._rng = random.Random(f"dm/{self.domain.name}/{self.population.name}/{seed}")
        self.user = self.population.user(self.domain, self.db, self.complexity, self._rng)
        self.belief.reset()
        self.start()
        self.done = False
        self.success = False
        opening = self.user.reset()
        observed, conf = self._hear(opening)
        self.belief.update(observed, conf, self.last_system)
        self.observe(observed, conf)
        self.history = [Turn(self.last_system, opening, observed, conf, 0.0)]
        return self

    def step(self, action: int | Act | list[Act]) -> StepResult:
        """Play one system turn and the user's reply.

        Args:
            action: an index into :attr:`actions`, an :class:`Act` (a slot act without a
                value confirms the belief's value; ``Act("inform")`` or ``Act("query")`` is
                the query-and-answer action), or a list of acts used as they are.

        Returns:
            ``StepResult(reward, done, info)`` with ``info`` = ``{"system", "user", "observed",
            "confidence", "success", "turns"}``.

        Raises:
            MdlibError: the episode is over or not started, or the action is not valid here.
        """
        if self.user is None:
            raise MdlibError("step() called before reset(seed)")
        if self.done:
            raise MdlibError("step() called after the dialogue ended; call reset(seed)")
        system = self.system_acts(action)
        true = self.user.step(system)
        self.said(system)
        # the user leaves (satisfied, giving up, or after the system's goodbye) or the turn cap ends it
        done = self.user.done or self.turn >= self.max_turns
        observed, conf = self._hear(true) if true else ([], self.confidence)
        if not done:
            self.belief.update(observed, conf, system)
        self.observe(observed, conf, track=not done)
        self.done = done
        self.success = bool(done and self.user.success)
        reward = -self.turn_cost + (self.success_reward if self.success else 0.0)
        self.history.append(Turn(system, true, observed, conf, reward))
        return StepResult(reward, done, {"system": system, "user": true, "observed": observed,
                                         "confidence": conf, "success": self.success, "turns": self.turn})

    # ------------------------------------------------------------------ user side
    def _hear(self, acts: list[Act]) -> tuple[list[Act], float]:
        """What the system recognises of the user's acts (self-corrections said as two informs)."""
        said: list[Act] = []
        sc = self.population.self_correct
        for a in acts:
            if sc and a.act == "inform" and a.value is not None and self._rng.random() < sc:
                wrong = [v for v in self.domain.slot(a.slot).values if v != a.value]
                said.append(Act("inform", a.slot, self._rng.choice(wrong)))
            said.append(a)
        return self.asr(said, self._rng)

    # ------------------------------------------------------------------ display
    def transcript(self, text: bool = False, seed: int = 0) -> list[str]:
        """The episode so far, one line per turn, at the act level (or as text via the templates).

        Args:
            text: realise the acts with :func:`mdlib.data.templates.realise` (user turns show
                the true acts' words; the recognised acts follow in brackets).
            seed: seed of the phrasing choices.
        """
        rng = random.Random(seed)
        lines = []
        for t in self.history:
            if text:
                from mdlib.data.templates import realise

                lines.append(f"SYS:  {realise(self.domain, 'system', t.system, rng)}")
                if t.user:
                    lines.append(f"USR:  {realise(self.domain, 'user', t.user, rng)}   "
                                 f"[heard {' '.join(map(str, t.observed)) or '-'} @ {t.confidence:.2f}]")
            else:
                lines.append(f"SYS:  {' '.join(map(str, t.system))}")
                if t.user:
                    lines.append(f"USR:  {' '.join(map(str, t.user))}   "
                                 f"[heard {' '.join(map(str, t.observed)) or '-'} @ {t.confidence:.2f}]")
        return lines
