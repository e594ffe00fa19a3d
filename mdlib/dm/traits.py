"""Simulated users with hidden traits: tasks that only experience with a user tells apart.

The named populations of :mod:`mdlib.dm.population` differ in what the policy *sees*: a
noisy population reports low recognition confidences, so the state features already say
which task the policy is in, and meta-learning has nothing left to adapt. Here every user
reports the same confidences, and five traits drawn per user (:func:`sample_traits`)
change what the user does without changing how a dialogue looks to the system:

- ``noise``: the share of misheard values. The reported confidence ``c`` is drawn from one
  distribution for everyone (``N(0.7, 0.2)`` clipped to [0.05, 1]); a value is misheard
  with probability ``min(0.9, noise * (1 - c) / 0.3)`` (0.3 is the mean of ``1 - c``), so
  a low confidence still means "more likely wrong", but how much more depends on the speaker;
- ``patience``: system turns before the user gives up;
- ``confirm_cost``: extra patience each confirmation (explicit or implicit) uses up: how
  much the user is annoyed by being asked to confirm;
- ``answers_yes_no``: the probability of answering an explicit confirmation ("Did you say
  Boston?") at all; a user who does not, talks past the question and goes on with their agenda;
- ``notices_implicit``: the probability of objecting when the system says a wrong value
  back in passing ("Okay, Boston. What time?"); a user who does not notice lets it stand.

Two behaviours are shared by every trait user, because without them mishearing would
cost nothing but turns: told that nothing matches (``no_result``; every goal exists in
the database, so the system misheard), the user believes it and leaves; and a wrong value
that stands leads to a wrong answer (the dialogue fails).

So the best confirmation strategy differs per user: a clear, impatient or annoyed speaker
is served best by never confirming; a noisy one by confirming, implicitly if they notice
wrong values said in passing, explicitly if they answer yes/no questions but do not notice.
:func:`policy_gap` measures it with the rule policy at several thresholds
(:data:`RULES`); ``docs/users.md`` shows the table.

Users are identified by a seed; the seeds of the meta-train, validation and test splits
(:data:`SPLITS`) are disjoint. :func:`user_env` and :func:`user_tasks` build the
environment and the :class:`mdlib.dm.rl.DialogueTask` list that the training code takes.
Notebook 06 (section 8) teaches them: meta-RL against pretraining and its compute-matched control.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Sequence

from mdlib.data.acts import Act
from mdlib.data.complexity import Complexity
from mdlib.data.domains import Database, Domain
from mdlib.data.simulator import AsrChannel, ThresholdPolicy, UserSimulator
from mdlib.dm.env import DialogueEnv
from mdlib.dm.population import UserPopulation
from mdlib.errors import MdlibError, lookup
from mdlib.stats import mean_ci

#: The reported confidence, ``N(mean, std)`` clipped to [0.05, 1], is the same for every user.
REPORTED_CONFIDENCE = (0.7, 0.2)
#: The mean of ``1 - c`` under that distribution (rounded), so that ``noise`` is about the mean error rate.
_MEAN_DOUBT = 0.3

#: ``trait: (lowest, highest)``; ``patience`` and ``confirm_cost`` are whole numbers.
TRAIT_RANGES: dict[str, tuple[float, float]] = {
    "noise": (0.0, 0.5), "patience": (4, 20), "confirm_cost": (0, 3), "answers_yes_no": (0.0, 1.0),
    "notices_implicit": (0.0, 1.0),
}
#: User seeds of each split (disjoint ranges: no user is in two splits).
SPLITS: dict[str, range] = {
    "train": range(0, 64), "validation": range(10_000, 10_016), "test": range(20_000, 20_032),
}
#: The domain of the users' tasks unless told otherwise (three user slots: many confirmations to decide).
DOMAIN = "bus"


@dataclass(frozen=True)
class UserTraits(UserPopulation):
    """One simulated user: a population of one whose traits the policy does not observe.

    The inherited recognition knobs are fixed (:data:`REPORTED_CONFIDENCE`, no yes/no
    questions, self-corrections or "don't care"), so that only the traits below differ.

    Attributes:
        noise: mean share of misheard values, in [0, 0.5].
        patience: system turns before the user gives up, in [4, 20].
        confirm_cost: extra patience used up by each confirmation, in [0, 3].
        answers_yes_no: probability of answering an explicit confirmation, in [0, 1].
        notices_implicit: probability of objecting to a wrong value confirmed implicitly, in [0, 1].
    """

    asr_acc: float = REPORTED_CONFIDENCE[0]
    asr_std: float = REPORTED_CONFIDENCE[1]
    patience: int = 10
    noise: float = 0.0
    confirm_cost: int = 0
    answers_yes_no: float = 1.0
    notices_implicit: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        for trait, (lo, hi) in TRAIT_RANGES.items():
            v = getattr(self, trait)
            whole = trait in ("patience", "confirm_cost")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (
                    whole and v != int(v)):
                raise MdlibError(f"user {self.name!r}: trait {trait} must be a {'whole ' if whole else ''}"
                                 f"number in [{lo}, {hi}], got {v!r}")
        if (self.asr_acc, self.asr_std, self.yn_question, self.self_correct, self.dont_care) != (
                *REPORTED_CONFIDENCE, 0.0, 0.0, 0.0):
            # a per-user confidence distribution would show the user's noise in the features
            raise MdlibError(f"user {self.name!r}: asr_acc, asr_std, yn_question, self_correct and dont_care "
                             f"are shared by every user ({REPORTED_CONFIDENCE[0]}, {REPORTED_CONFIDENCE[1]}, 0, 0, 0)")

    def __str__(self) -> str:  # task names read "bus/user20003"
        return self.name

    def traits(self) -> dict:
        """``{trait: value}`` of the hidden traits."""
        return {k: v for k, v in asdict(self).items() if k in TRAIT_RANGES}

    def channel(self, complexity: Complexity, domain: Domain) -> AsrChannel:
        return TraitChannel(complexity, domain, self.noise)

    def user(self, domain: Domain, db: Database, complexity: Complexity, rng: random.Random) -> UserSimulator:
        return TraitUser(domain, db, complexity, rng, self)


class TraitChannel(AsrChannel):
    """Recognition whose reported confidence does not depend on the speaker, but whose errors do.

    A value is misheard with probability ``min(0.9, noise * (1 - c) / 0.3)`` for the turn's
    reported confidence ``c``; a yes / no is flipped with half that probability.
    """

    def __init__(self, complexity: Complexity, domain: Domain, noise: float):
        super().__init__(complexity, domain)
        self.noise = noise

    def __call__(self, acts: list[Act], rng: random.Random) -> tuple[list[Act], float]:
        conf = self.confidence(rng)
        error = min(0.9, self.noise * (1.0 - conf) / _MEAN_DOUBT)
        return self.corrupt(acts, error, error / 2, rng), conf


class TraitUser(UserSimulator):
    """The agenda-based user with the confirmation traits of :class:`UserTraits` (see the module docstring)."""

    def __init__(self, domain: Domain, db: Database, complexity: Complexity, rng: random.Random,
                 traits: UserTraits):
        super().__init__(domain, db, complexity, rng)
        self.traits = traits

    def step(self, system_acts: list[Act]) -> list[Act]:
        if self.done or not self.goals:
            return super().step(system_acts)
        cons = self.goals[self.goal_idx]["constraints"]
        heard = []
        for a in system_acts:
            if a.act in ("explicit_confirm", "implicit_confirm") and a.slot in cons:
                self.turns += self.traits.confirm_cost  # an annoyed user's patience runs out faster
                if a.act == "explicit_confirm" and self.rng.random() >= self.traits.answers_yes_no:
                    continue  # talks past the question
                if (a.act == "implicit_confirm" and a.value != cons[a.slot]
                        and self.rng.random() >= self.traits.notices_implicit):
                    continue  # lets the wrong value stand
            heard.append(a)
        wrong = any(a.act in ("explicit_confirm", "implicit_confirm") and a.slot in cons and a.value != cons[a.slot]
                    for a in heard)
        if wrong or not any(a.act == "no_result" for a in heard):
            return super().step(heard)
        # told there is nothing to find, the user believes it and leaves (its goal exists: the system misheard)
        self.turns += 1
        self._finish(gave_up=True)
        return [Act("goodbye")]


# --------------------------------------------------------------------------- users and splits


def sample_traits(seed: int) -> UserTraits:
    """The user with seed ``seed`` (a pure function of the seed).

    Noise and patience are spread evenly; a third of the users are *hurried* (annoyed by
    confirmations, often talking past yes/no questions), a third *inattentive* (rarely
    noticing a wrong value said back in passing), a third neither.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MdlibError(f"user seed: expected a whole number, got {seed!r}")
    rng = random.Random(f"mdlib/traits/{seed}")
    noise, patience = round(rng.uniform(0.0, 0.5), 2), rng.randint(6, 16)
    attitude = rng.choice(("neutral", "hurried", "inattentive"))
    if attitude == "hurried":  # annoyed by confirmations, often talks past yes/no questions
        return UserTraits(f"user{seed}", patience=patience, noise=noise, confirm_cost=rng.randint(2, 3),
                          answers_yes_no=round(rng.uniform(0.0, 0.5), 2))
    if attitude == "inattentive":  # answers questions, but rarely notices a wrong value said in passing
        return UserTraits(f"user{seed}", patience=patience, noise=noise,
                          notices_implicit=round(rng.uniform(0.0, 0.2), 2))
    return UserTraits(f"user{seed}", patience=patience, noise=noise)


def split_seeds(split: str) -> range:
    """The user seeds of ``split`` (one of :data:`SPLITS`)."""
    return lookup(SPLITS, split, "user split")


def get_user(split: str, index: int) -> UserTraits:
    """User ``index`` (0-based) of ``split``."""
    seeds = split_seeds(split)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(seeds):
        raise MdlibError(f"user index: split {split!r} has users 0..{len(seeds) - 1}, got {index!r}")
    return sample_traits(seeds[index])


def split_users(split: str) -> list[UserTraits]:
    """Every user of ``split``, in order."""
    return [sample_traits(s) for s in split_seeds(split)]


def user_env(split: str, index: int, domain: str = DOMAIN, **env_kwargs) -> DialogueEnv:
    """The environment of one user (``env_kwargs``: ``success_reward``, ``turn_cost``)."""
    return DialogueEnv(domain, get_user(split, index), **env_kwargs)


def user_tasks(model, split: str, domain: str = DOMAIN, **task_kwargs) -> list:
    """One :class:`mdlib.dm.rl.DialogueTask` per user of ``split`` (the list meta-RL and pretraining take)."""
    from mdlib.dm.rl import DialogueTask

    return [DialogueTask(model, domain, u, **task_kwargs) for u in split_users(split)]


# --------------------------------------------------------------------------- the rule family

#: Confidence levels of the rule family.
CONFIRM_LEVELS: tuple[float, ...] = (0.2, 0.5, 0.8, 0.95)
#: The rule policies ``(explicit, implicit)``: a value heard with confidence below
#: ``explicit`` is confirmed explicitly, below ``implicit`` implicitly, otherwise accepted
#: (below 0.2 it is asked for again). ``(0.2, 0.2)`` never confirms; ``(0.6, 0.95)`` is
#: :class:`ThresholdPolicy`'s default.
RULES: tuple[tuple[float, float], ...] = tuple((e, i) for e in CONFIRM_LEVELS for i in CONFIRM_LEVELS if e <= i)


def rule_name(rule: tuple[float, float]) -> str:
    """``"never"``, ``"implicit<0.8"``, ``"explicit<0.5,implicit<0.8"``, ``"explicit<0.95"``."""
    e, i = rule
    if i <= ThresholdPolicy.REQUEST:
        return "never"
    if e <= ThresholdPolicy.REQUEST:
        return f"implicit<{i:g}"
    return f"explicit<{e:g}" if e == i else f"explicit<{e:g},implicit<{i:g}"


def rule_policy(env: DialogueEnv, rule: tuple[float, float]) -> ThresholdPolicy:
    """:class:`ThresholdPolicy` with the thresholds of ``rule`` (for ``env``'s domain)."""
    policy = ThresholdPolicy(env.domain, env.db)
    policy.EXPLICIT, policy.IMPLICIT = rule  # instance attributes shadow the class defaults
    return policy


def rule_returns(user: UserTraits, rule: tuple[float, float], seeds: Sequence[int], domain: str = DOMAIN,
                 **env_kwargs) -> tuple[list[bool], list[float]]:
    """Success and return of each dialogue (one per seed) of ``user`` with the rule policy ``rule``."""
    from mdlib.dm.rl import play_rule

    env = DialogueEnv(domain, user, **env_kwargs)
    success, _, returns, _ = play_rule(env, rule_policy(env, rule), seeds)
    return success, returns


def policy_gap(split: str = "test", dialogues: int = 200, domain: str = DOMAIN, seed: int = 0,
               rules: Sequence[tuple[float, float]] = RULES, **env_kwargs) -> dict:
    """Does the best rule differ per user, and what does one rule for everyone lose?

    Each rule plays ``dialogues`` *selection* dialogues and ``dialogues`` fresh *evaluation*
    dialogues with every user of ``split``. The per-user best rule (the "oracle per user",
    which knows the user) and the best single rule for the whole split (a policy that
    ignores traits) are both chosen on the selection dialogues and scored on the
    evaluation ones, so neither profits from picking the luckiest estimate.

    Returns:
        ``{"rules", "users": [{"name", "traits", "return": {rule: mean}, "success": {rule: mean},
        "best"}], "single", "oracle_return", "single_return", "gap": [mean, low, high],
        "users_preferring": {rule: count}}``; the gap is the per-user difference of
        evaluation returns (oracle - single rule) with a 95% t-interval over users.
    """
    if dialogues < 1:
        raise MdlibError(f"dialogues: expected at least 1 per user and rule, got {dialogues}")
    names = [rule_name(r) for r in rules]
    select = range(seed, seed + dialogues)
    fresh = range(seed + dialogues, seed + 2 * dialogues)
    users = []
    for user in split_users(split):
        row = {"name": user.name, "traits": user.traits(), "select": {}, "return": {}, "success": {}}
        for name, rule in zip(names, rules):
            row["select"][name] = sum(rule_returns(user, rule, select, domain, **env_kwargs)[1]) / dialogues
            success, returns = rule_returns(user, rule, fresh, domain, **env_kwargs)
            row["return"][name] = sum(returns) / dialogues
            row["success"][name] = sum(success) / dialogues
        row["best"] = max(names, key=row["select"].get)
        users.append(row)
    single = max(names, key=lambda n: sum(u["select"][n] for u in users))
    diffs = [u["return"][u["best"]] - u["return"][single] for u in users]
    gap = mean_ci(diffs)
    return {
        "split": split, "domain": domain, "dialogues": dialogues, "seed": seed, "rules": names, "users": users,
        "single": single,
        "oracle_return": sum(u["return"][u["best"]] for u in users) / len(users),
        "single_return": sum(u["return"][single] for u in users) / len(users),
        "oracle_success": sum(u["success"][u["best"]] for u in users) / len(users),
        "single_success": sum(u["success"][single] for u in users) / len(users),
        "gap": [gap[0], gap[1], gap[2]],
        "users_preferring": {n: sum(u["best"] == n for u in users) for n in names},
    }


def policy_gap_table(split: str = "test", dialogues: int = 200, domain: str = DOMAIN, seed: int = 0) -> str:
    """:func:`policy_gap` as a Markdown table (one row per user) and a summary line.

    ``python -c "from mdlib.dm.traits import policy_gap_table; print(policy_gap_table())"``
    prints the table of ``docs/users.md``.
    """
    r = policy_gap(split, dialogues, domain, seed)
    traits = list(TRAIT_RANGES)
    head = ["user", *traits, "best rule", "its return", f"return of {r['single']}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for u in r["users"]:
        lines.append("| " + " | ".join([u["name"], *(f"{u['traits'][t]:g}" for t in traits), u["best"],
                                         f"{u['return'][u['best']]:.2f}", f"{u['return'][r['single']]:.2f}"]) + " |")
    m, lo, hi = r["gap"]
    prefer = ", ".join(f"{n} {c}" for n, c in sorted(r["users_preferring"].items(), key=lambda kv: -kv[1]) if c)
    lines += ["", f"{r['split']} users ({len(r['users'])}), {r['domain']}, {r['dialogues']} selection + "
              f"{r['dialogues']} evaluation dialogues per user and rule, seed {r['seed']}.",
              f"Best rule per user (oracle): return {r['oracle_return']:.3f}, success {r['oracle_success']:.3f}; "
              f"best single rule ({r['single']}): return {r['single_return']:.3f}, "
              f"success {r['single_success']:.3f}.",
              f"Oracle gap (per-user return difference, 95% t-interval over users): {m:.3f} "
              f"[{lo:.3f}, {hi:.3f}]" + ("" if math.isfinite(lo) else " (one user: no interval)") + ".",
              f"Users preferring each rule: {prefer}."]
    return "\n".join(lines)
