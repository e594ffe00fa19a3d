"""REINFORCE with a baseline: returns, advantages and the surrogate loss.

The policy-gradient theorem says that for a policy ``pi_theta`` and an episode return
``G``, ``grad E[G] = E[ sum_t grad log pi_theta(a_t | s_t) (G_t - b_t) ]`` for any
baseline ``b_t`` that does not depend on the action ``a_t``. The *surrogate*
``-(log pi(a_t|s_t) * A_t).mean()`` has exactly that gradient (the advantages ``A_t`` are
constants), so autograd and :func:`mdlib.meta.inner.inner_loop` can treat policy-gradient
learning like any other loss minimisation. Notebook 06 introduces it.

The baseline used here is the *leave-one-out* mean: for episode ``i`` at step ``t`` the
mean return-to-go of the *other* episodes of the batch at the same step. It does not
depend on episode ``i``'s own actions, so the estimator stays unbiased (a test checks it
against the exact gradient of a two-armed bandit), and it removes most of the variance
that a plain REINFORCE estimate has.

The module also runs a policy network against the simulated user in batches
(:func:`run_episodes`), wraps a (domain, user population) pair as a task for
:mod:`mdlib.dm.metarl` (:class:`DialogueTask`), and holds the toy problem of the tests: a
Bernoulli bandit family whose tasks share structure (:class:`BanditTask`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import torch

from mdlib.dm.threshold import ThresholdPolicy
from mdlib.dm.encoding import encode
from mdlib.dm.env import DialogueEnv
from mdlib.dm.policy import SlotActPolicy, choose, log_prob_entropy
from mdlib.errors import MdlibError
from mdlib.stats import mean_ci


def returns_to_go(rewards: Sequence[float], gamma: float = 1.0) -> list[float]:
    """Discounted return from every step: ``G_t = r_t + gamma * G_{t+1}``.

    Args:
        rewards: the rewards ``r_0 .. r_{T-1}`` of one episode.
        gamma: discount factor in ``(0, 1]``.

    Returns:
        ``[G_0, .., G_{T-1}]``.
    """
    if not 0.0 < gamma <= 1.0:
        raise MdlibError(f"gamma: expected a discount in (0, 1], got {gamma}")
    out = [0.0] * len(rewards)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


def leave_one_out_advantages(returns: Sequence[Sequence[float]], normalise: bool = False,
                             min_scale: float = 0.0) -> list[list[float]]:
    """Advantages ``G_{i,t} - b_{i,t}`` with the leave-one-out baseline.

    ``b_{i,t}`` is the mean return-to-go at step ``t`` of the other episodes of the batch
    that lasted at least ``t + 1`` steps (0 when there is none). It does not depend on
    episode ``i``, so the policy-gradient estimate stays unbiased.

    Args:
        returns: per episode, its returns-to-go (episodes may differ in length).
        normalise: divide by the standard deviation of all advantages (changes the step
            size only; convenient when reward scales differ between tasks).
        min_scale: divide by at least this much: when every episode of a batch fails alike,
            the advantages are tiny differences in turn costs that a plain normalisation
            would blow up into a full-size step.

    Returns:
        The advantages, same shape as ``returns``.
    """
    if len(returns) == 0:
        raise MdlibError("episodes: expected at least one episode to compute advantages")
    horizon = max((len(g) for g in returns), default=0)
    sums = [0.0] * horizon
    counts = [0] * horizon
    for g in returns:
        for t, v in enumerate(g):
            sums[t] += v
            counts[t] += 1
    adv: list[list[float]] = []
    for g in returns:
        row = []
        for t, v in enumerate(g):
            others = counts[t] - 1
            base = (sums[t] - v) / others if others > 0 else 0.0
            row.append(v - base)
        adv.append(row)
    if normalise:
        flat = [a for row in adv for a in row]
        if len(flat) > 1:
            mean = sum(flat) / len(flat)
            std = math.sqrt(sum((a - mean) ** 2 for a in flat) / (len(flat) - 1))
            scale = max(std, min_scale)
            if scale > 1e-8:
                adv = [[a / scale for a in row] for row in adv]
    return adv


def reinforce_surrogate(logp: torch.Tensor, advantages: torch.Tensor, entropy: torch.Tensor | None = None,
                        entropy_coef: float = 0.0) -> torch.Tensor:
    """The REINFORCE surrogate loss whose gradient is minus the policy gradient.

    Args:
        logp: Tensor (N,), ``log pi_theta(a_n | s_n)`` of the taken actions (differentiable).
        advantages: Tensor (N,), constants (detached) such as :func:`leave_one_out_advantages`.
        entropy: optional Tensor (N,), the policy entropy at each state.
        entropy_coef: weight of the entropy bonus (0 gives the plain estimator).

    Returns:
        Tensor (), ``-(logp * advantages).mean() - entropy_coef * entropy.mean()``.
    """
    if logp.shape != advantages.shape:
        raise MdlibError(f"advantages: expected shape {tuple(logp.shape)}, got {tuple(advantages.shape)}")
    loss = -(logp * advantages.detach()).mean()
    if entropy is not None and entropy_coef:
        loss = loss - entropy_coef * entropy.mean()
    return loss


# --------------------------------------------------------------------------- dialogues


@dataclass
class EpisodeBatch:
    """Decisions of a batch of dialogues of one domain, ready for the surrogate loss.

    Attributes:
        slot_feats: Tensor (N, S, Fs), one row per decision (N decisions in all).
        global_feats: Tensor (N, Fg).
        mask: BoolTensor (N, A).
        actions: LongTensor (N,).
        advantages: Tensor (N,), leave-one-out advantages of the returns-to-go.
        success, turns, returns: per dialogue.
        act_counts: how often each system act was used (over all dialogues).
    """

    slot_feats: torch.Tensor
    global_feats: torch.Tensor
    mask: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    success: list[bool] = field(default_factory=list)
    turns: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    act_counts: Counter = field(default_factory=Counter)


def run_episodes(model: SlotActPolicy, params: dict[str, torch.Tensor], envs: Sequence[DialogueEnv],
                 seeds: Sequence[int], gen: torch.Generator | None = None, greedy: bool = False,
                 gamma: float = 1.0, normalise: bool = False, min_scale: float = 0.0) -> EpisodeBatch:
    """Play one dialogue per environment (all of one domain), the policy deciding in batches.

    Args:
        model: the policy network (architecture; weights come from ``params``).
        params: the policy's parameters.
        envs: environments of one domain, one per dialogue (reset here with ``seeds``).
        seeds: one episode seed per environment.
        gen: random stream of the action sampling.
        greedy: take the most likely action instead of sampling.
        gamma: discount of the returns-to-go.
        normalise, min_scale: divide the advantages by their standard deviation, at least
            ``min_scale`` (see :func:`leave_one_out_advantages`).

    Returns:
        The :class:`EpisodeBatch` of every decision taken.
    """
    if len(envs) != len(seeds) or not envs:
        raise MdlibError(f"episodes: expected one seed per environment and at least one, "
                         f"got {len(envs)} environments and {len(seeds)} seeds")
    for env, seed in zip(envs, seeds):
        env.reset(int(seed))
    steps = [[] for _ in envs]   # per episode: (slot, glob, mask, action)
    rewards = [[] for _ in envs]
    counts: Counter = Counter()
    active = list(range(len(envs)))
    while active:
        feats = [encode(envs[i]) for i in active]
        sf = torch.stack([f[0] for f in feats])
        gf = torch.stack([f[1] for f in feats])
        mk = torch.stack([f[2] for f in feats])
        acts = choose(model, params, sf, gf, mk, gen=gen, greedy=greedy).tolist()
        still = []
        for j, i in enumerate(active):
            env = envs[i]
            result = env.step(acts[j])
            counts[env.actions[acts[j]].act] += 1
            steps[i].append((feats[j][0], feats[j][1], feats[j][2], acts[j]))
            rewards[i].append(result.reward)
            if not result.done:
                still.append(i)
        active = still
    rtg = [returns_to_go(r, gamma) for r in rewards]
    adv = leave_one_out_advantages(rtg, normalise=normalise, min_scale=min_scale)
    flat = [s for ep in steps for s in ep]
    return EpisodeBatch(
        slot_feats=torch.stack([s[0] for s in flat]), global_feats=torch.stack([s[1] for s in flat]),
        mask=torch.stack([s[2] for s in flat]), actions=torch.tensor([s[3] for s in flat]),
        advantages=torch.tensor([a for ep in adv for a in ep], dtype=torch.float32),
        success=[env.success for env in envs], turns=[env.turn for env in envs],
        returns=[sum(r) for r in rewards], act_counts=counts)


class DialogueTask:
    """A (domain, user population) pair as a reinforcement-learning task for :mod:`mdlib.dm.metarl`.

    Args:
        model: the policy network shared by every task.
        domain: domain name.
        users: user population name.
        entropy_coef: weight of an entropy bonus in the surrogate (0: plain REINFORCE).
        gamma: discount.
        normalise: scale each batch's advantages to unit standard deviation, so that one
            step size suits every task whatever its reward spread.
        min_scale: the smallest divisor of that scaling (half the success bonus by default),
            so that a batch of equal failures does not produce a large step.
        eval_seed: evaluation dialogues use seeds ``eval_seed, eval_seed + 1, ...`` (the
            same dialogues for every method); training dialogues draw their seeds from
            the generator, below ``eval_seed``.
        **env_kwargs: passed to :class:`DialogueEnv` (``success_reward``, ``turn_cost``).
    """

    def __init__(self, model: SlotActPolicy, domain: str, users: str, entropy_coef: float = 0.0,
                 gamma: float = 1.0, normalise: bool = True, min_scale: float = 0.5, eval_seed: int = 10**8,
                 **env_kwargs):
        self.model = model
        self.domain, self.users = domain, users
        self.name = f"{domain}/{users}"
        self.entropy_coef, self.gamma, self.eval_seed = entropy_coef, gamma, eval_seed
        self.normalise, self.min_scale = normalise, min_scale
        self.env_kwargs = env_kwargs
        self._envs = [DialogueEnv(domain, users, **env_kwargs)]

    def envs(self, n: int) -> list[DialogueEnv]:
        """``n`` environments of this task (created once, reused)."""
        while len(self._envs) < n:
            self._envs.append(DialogueEnv(self.domain, self.users, **self.env_kwargs))
        return self._envs[:n]

    def collect(self, params: dict[str, torch.Tensor], n: int, gen: torch.Generator) -> EpisodeBatch:
        """``n`` training dialogues with the sampling policy (seeds drawn from ``gen``)."""
        if n < 1:
            raise MdlibError(f"episodes: expected at least 1, got {n}")
        seeds = torch.randint(0, self.eval_seed, (n,), generator=gen).tolist()
        return run_episodes(self.model, params, self.envs(n), seeds, gen=gen, gamma=self.gamma,
                            normalise=self.normalise, min_scale=self.min_scale)

    def loss(self, params: dict[str, torch.Tensor], batch: EpisodeBatch) -> torch.Tensor:
        """REINFORCE surrogate of ``batch`` under ``params`` (the inner loop's ``loss_fn``)."""
        logp, ent = log_prob_entropy(self.model, params, batch.slot_feats, batch.global_feats, batch.mask,
                                     batch.actions)
        return reinforce_surrogate(logp, batch.advantages, ent, self.entropy_coef)

    def evaluate(self, params: dict[str, torch.Tensor], n: int, gen: torch.Generator,
                 greedy: bool = False) -> dict:
        """Success rate, turns and return over the ``n`` evaluation dialogues (see :func:`summarise`)."""
        if n < 1:
            raise MdlibError(f"episodes: expected at least 1 evaluation dialogue, got {n}")
        b = run_episodes(self.model, params, self.envs(n), [self.eval_seed + i for i in range(n)], gen=gen,
                         greedy=greedy, gamma=self.gamma)
        return summarise(b.success, b.turns, b.returns, b.act_counts)

    def evaluate_rule(self, n: int) -> dict:
        """The same evaluation dialogues played by the rule-based :class:`ThresholdPolicy`."""
        return evaluate_rule(self.domain, self.users, n, self.eval_seed, **self.env_kwargs)


def summarise(success: Sequence[bool], turns: Sequence[int], returns: Sequence[float],
              act_counts: Counter | None = None) -> dict:
    """Means and 95% t-intervals (over dialogues) of success, turns and return, plus acts per dialogue.

    Returns:
        ``{"success", "success_ci", "turns", "turns_ci", "return", "return_ci", "acts", "dialogues"}``
        with each ``*_ci`` a ``[low, high]`` pair.
    """
    n = len(success)
    out: dict = {"dialogues": n}
    for name, vals in (("success", [float(x) for x in success]), ("turns", [float(x) for x in turns]),
                       ("return", [float(x) for x in returns])):
        m, lo, hi = mean_ci(vals)
        out[name], out[f"{name}_ci"] = m, [lo, hi]
    out["acts"] = {k: v / n for k, v in sorted((act_counts or {}).items())}
    return out


def evaluate_rule(domain: str, users: str, n: int, eval_seed: int = 10**8, **env_kwargs) -> dict:
    """Play ``n`` dialogues (seeds ``eval_seed + i``) with the reference :class:`ThresholdPolicy`."""
    if n < 1:
        raise MdlibError(f"episodes: expected at least 1 evaluation dialogue, got {n}")
    env = DialogueEnv(domain, users, **env_kwargs)
    return summarise(*play_rule(env, ThresholdPolicy(env.domain, env.db), range(eval_seed, eval_seed + n)))


def play_rule(env: DialogueEnv, policy: ThresholdPolicy, seeds: Sequence[int]) -> tuple[list, list, list, Counter]:
    """One dialogue per seed between ``env`` and a rule policy (``reset()`` / ``act(belief, user_acts)``).

    Returns:
        ``(success, turns, returns, act_counts)``: per dialogue, and the system acts' counts.
    """
    success, turns, returns, counts = [], [], [], Counter()
    for seed in seeds:
        env.reset(int(seed))
        policy.reset()
        total = 0.0
        while not env.done:
            system = policy.act(env.belief, env.user_acts)
            for a in system:
                counts[a.act] += 1
            total += env.step(system).reward
        success.append(env.success)
        turns.append(env.turn)
        returns.append(total)
    return success, turns, returns, counts


def make_policy(hidden: int = 32, seed: int = 0) -> SlotActPolicy:
    """The policy network for :mod:`mdlib.dm.encoding`'s features, initialised from ``seed``."""
    from mdlib.dm.encoding import GLOBAL_DIM, N_GLOBAL_ACTS, N_SLOT_ACTS, SLOT_DIM

    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        return SlotActPolicy(SLOT_DIM, GLOBAL_DIM, N_SLOT_ACTS, N_GLOBAL_ACTS, hidden)


# --------------------------------------------------------------------------- toy bandits


@dataclass
class BanditBatch:
    """Pulls of one bandit: ``actions`` LongTensor (N,), ``rewards`` Tensor (N,), ``advantages`` Tensor (N,)."""

    actions: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor


class BanditTask:
    """A Bernoulli multi-armed bandit; an episode is one pull (the toy problem of the tests).

    The policy is a softmax over a parameter vector ``params["logits"]`` (Tensor (n_arms,)).

    Args:
        probs: success probability of each arm.
        name: a label for reports.
    """

    def __init__(self, probs: Sequence[float], name: str = "bandit"):
        if len(probs) < 2:
            raise MdlibError(f"probs: a bandit needs at least two arms, got {len(probs)}")
        self.probs = [float(p) for p in probs]
        self.name = name

    @staticmethod
    def init_params(n_arms: int) -> dict[str, torch.Tensor]:
        """The uniform policy: ``{"logits": zeros(n_arms)}``."""
        return {"logits": torch.zeros(n_arms)}

    def expected_return(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Exact ``E[r] = sum_a pi(a) p_a`` (differentiable), Tensor ()."""
        pi = torch.softmax(params["logits"], dim=-1)
        return (pi * torch.tensor(self.probs)).sum()

    def collect(self, params: dict[str, torch.Tensor], n: int, gen: torch.Generator) -> BanditBatch:
        """Pull ``n`` arms with the current policy (leave-one-out advantages)."""
        if n < 1:
            raise MdlibError(f"episodes: expected at least 1, got {n}")
        with torch.no_grad():
            pi = torch.softmax(params["logits"], dim=-1)
            actions = torch.multinomial(pi, n, replacement=True, generator=gen)
            u = torch.rand(n, generator=gen)
            rewards = (u < torch.tensor(self.probs)[actions]).float()
        adv = leave_one_out_advantages([[float(r)] for r in rewards])
        return BanditBatch(actions, rewards, torch.tensor([a[0] for a in adv]))

    def evaluate(self, params: dict[str, torch.Tensor], n: int = 0, gen: torch.Generator | None = None) -> dict:
        """Exact success rate of the policy (the bandit needs no sampling)."""
        return {"success": float(self.expected_return(params))}

    @staticmethod
    def loss(params: dict[str, torch.Tensor], batch: BanditBatch) -> torch.Tensor:
        """REINFORCE surrogate on a batch of pulls (the ``loss_fn(params, batch)`` of the inner loop)."""
        logp = torch.log_softmax(params["logits"], dim=-1)[batch.actions]
        return reinforce_surrogate(logp, batch.advantages)


def bandit_family(n_tasks: int, n_arms: int = 10, good_arms: Sequence[int] = (0, 1, 2), seed: int = 0,
                  p_good: float = 0.9, p_bad: float = 0.1) -> list[BanditTask]:
    """A family of bandits that share structure: the paying arm is always one of ``good_arms``.

    Each task pays ``p_good`` on one arm drawn from ``good_arms`` and ``p_bad`` elsewhere,
    so an initialisation that puts its mass on ``good_arms`` adapts faster than the
    uniform one: what meta-RL can learn and learning from scratch cannot know.
    """
    rng = random.Random(seed)
    tasks = []
    for i in range(n_tasks):
        best = rng.choice(list(good_arms))
        probs = [p_bad] * n_arms
        probs[best] = p_good
        tasks.append(BanditTask(probs, name=f"bandit{i}_arm{best}"))
    return tasks
