"""Exercises on policy-gradient meta-RL: references and checks (notebook 06).

The references are the library's: :func:`mdlib.dm.rl.reinforce_surrogate` and the
``maml`` learner run on on-policy :class:`mdlib.dm.metarl.Episodes`, as
:func:`mdlib.dm.metarl.maml` runs it. The problems are Bernoulli bandits
(:class:`mdlib.dm.rl.BanditTask`: a softmax policy over ``params = {"logits": (n_arms,)}``)
whose episodes are *replayed*: each task draws its pulls from its own fixed random stream,
so the student's function and the reference see the same episodes whatever order they
collect the tasks in (a task's first ``collect`` gives the support episodes, its second
the query episodes), and their advantages are the rewards minus a fixed baseline.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from mdlib.dm.rl import BanditTask, reinforce_surrogate
from mdlib.exercises.checking import Mistake, as_dict, as_tensor, gradients, run_check
from mdlib.meta.inner import inner_loop

Params = dict[str, torch.Tensor]

__all__ = ["reinforce_loss", "check_reinforce_surrogate", "ReplayBandit", "metarl_meta_gradient",
           "check_metarl_step"]


# --------------------------------------------------------------------------- 6.1 REINFORCE surrogate

def reinforce_loss(logp: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """The REINFORCE surrogate (exercise 6.1's reference): ``-(logp * advantages.detach()).mean()``.

    Its gradient is minus the policy gradient, so minimising it climbs the expected return:
    :func:`mdlib.dm.rl.reinforce_surrogate` without the entropy bonus.

    Args:
        logp: Tensor (N,), ``log pi(a_n | s_n)`` of the actions taken.
        advantages: Tensor (N,), the advantages (constants for the gradient).
    """
    return reinforce_surrogate(logp, advantages)


def _surrogate_problem(case: dict):
    """Logits of N decisions over A actions, the actions taken, and advantages ``G - b`` with a learned baseline b."""
    gen = torch.Generator().manual_seed(5000 + case["seed"])
    n, a = case["n"], case["actions"]
    logits = torch.randn(n, a, generator=gen, dtype=torch.float64).requires_grad_(True)
    actions = torch.randint(0, a, (n,), generator=gen)
    returns = torch.randn(n, generator=gen, dtype=torch.float64)
    baseline = torch.randn((), generator=gen, dtype=torch.float64).requires_grad_(True)
    logp = torch.log_softmax(logits, dim=-1)[torch.arange(n), actions]
    return logp, returns - baseline, {"logits": logits, "baseline": baseline}


def check_reinforce_surrogate(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 6.1 (notebook 06): check ``fn(logp, advantages) -> Tensor ()``.

    ``fn`` must return the REINFORCE surrogate of :func:`reinforce_loss`. The check calls it
    with ``logp``: Tensor (N,) the log-probabilities of the taken actions under a softmax
    policy (differentiable with respect to its logits) and ``advantages``: Tensor (N,)
    returns minus a *learned* baseline (so they carry a gradient that must not reach the
    policy loss), float64, on three random problems; it compares the value and the
    gradients with respect to the logits and the baseline.

    Raises:
        AssertionError: one sentence saying what is wrong.
    """
    def outputs(surrogate, case):
        logp, adv, leaves = _surrogate_problem(case)
        value = as_tensor(surrogate(logp, adv), "the surrogate", "6.1", ())
        return {"the surrogate's value": value, **gradients(value, leaves, "its gradient for the ")}

    mistakes = [
        Mistake("the sign is flipped: minimising this would lower the expected return; the surrogate is "
                "-(logp * advantages).mean().", lambda c: outputs(lambda lp, a: (lp * a.detach()).mean(), c)),
        Mistake("the advantages are not detached, so the gradient also flows into the baseline; treat them as "
                "constants (advantages.detach()).", lambda c: outputs(lambda lp, a: -(lp * a).mean(), c)),
        Mistake("the stop-gradient is in the wrong place: detach the advantages, not the log-probabilities, or "
                "the policy gets no gradient.", lambda c: outputs(lambda lp, a: -(lp.detach() * a).mean(), c)),
        Mistake("the surrogate carries no gradient for the policy; keep log pi(a|s) in the graph and detach only "
                "the advantages.", lambda c: outputs(lambda lp, a: -(lp.detach() * a.detach()).mean(), c)),
        Mistake("you summed over the decisions; average them (.mean()), so the step size does not grow with the "
                "batch.", lambda c: outputs(lambda lp, a: -(lp * a.detach()).sum(), c)),
        Mistake("you weighted the probabilities, not the log-probabilities; the policy-gradient theorem needs "
                "log pi(a|s).", lambda c: outputs(lambda lp, a: -(lp.exp() * a.detach()).mean(), c)),
    ]
    cases = [dict(seed=0, n=7, actions=3), dict(seed=1, n=12, actions=4), dict(seed=2, n=5, actions=2)]
    run_check("6.1", "the surrogate or its gradient", cases, lambda c: outputs(fn, c),
              lambda c: outputs(reinforce_loss, c), mistakes)


# --------------------------------------------------------------------------- 6.2 meta-RL step

class ReplayBandit(BanditTask):
    """A :class:`~mdlib.dm.rl.BanditTask` whose pulls come from its own random stream.

    ``collect(params, n, gen)`` ignores ``gen``: the ``c``-th call of this task draws from
    a stream seeded by ``(seed, c)``, so any order of collecting over tasks replays the
    same episodes (the actions still follow the ``params`` they are played with). The
    advantages are the rewards minus a fixed baseline, :attr:`BASELINE`.
    """

    BASELINE = 0.5

    def __init__(self, probs: Sequence[float], seed: int, name: str = "bandit"):
        super().__init__(probs, name)
        self.seed, self.calls = seed, 0

    def collect(self, params, n, gen=None):
        own = torch.Generator().manual_seed(self.seed * 100 + self.calls)
        self.calls += 1
        batch = super().collect(params, n, own)
        # A fixed baseline instead of the leave-one-out one: with a state-free softmax policy,
        # advantages that sum to zero make the surrogate's Hessian vanish, and with it the
        # second-order term of MAML that the check must be able to see.
        batch.advantages = batch.rewards - self.BASELINE
        return batch


def _bandit_problem(case: dict) -> tuple[list[ReplayBandit], Params]:
    gen = torch.Generator().manual_seed(6000 + case["seed"])
    arms = case["arms"]
    tasks = [ReplayBandit((0.15 + 0.7 * torch.rand(arms, generator=gen, dtype=torch.float64)).tolist(),
                          seed=10 * case["seed"] + i, name=f"bandit{i}") for i in range(case["n_tasks"])]
    params = {"logits": (0.5 * torch.randn(arms, generator=gen, dtype=torch.float64)).requires_grad_(True)}
    return tasks, params


def metarl_meta_gradient(tasks: Sequence, params: Mapping[str, torch.Tensor], inner_lr: float,
                         support_episodes: int, query_episodes: int, gen: torch.Generator) -> Params:
    """One MAML meta-RL step's meta-gradient (exercise 6.2's reference; notebook 06).

    For every task: play ``support_episodes`` with ``theta = params``
    (``task.collect(params, n, gen)``), take one policy-gradient step
    ``theta' = theta - inner_lr * grad task.loss(theta, support)`` keeping the graph,
    play ``query_episodes`` with ``theta'`` and score them with ``task.loss(theta', query)``;
    return the gradient with respect to ``params`` of the mean over tasks. This is the
    ``maml`` learner on :class:`mdlib.dm.metarl.Episodes`, as :func:`mdlib.dm.metarl.maml` runs it.
    """
    from mdlib.dm.metarl import Episodes, surrogate
    from mdlib.meta.learners import TaskBatches, make_learner, meta_gradient

    batches = [TaskBatches(t.name, Episodes(t, [support_episodes], gen), Episodes(t, [query_episodes], gen))
               for t in tasks]
    grads, _ = meta_gradient(make_learner("maml", params, 1, inner_lr), surrogate, params, batches)
    return grads


def _metarl_wrong(tasks, params, inner_lr, n_support, n_query, *, first_order=False, query_from_theta=False,
                  reuse_support=False, total=False, sign=1.0) -> Params:
    """The meta-gradient with one of the mistakes the check recognises (the same order of collecting)."""
    losses = []
    for task in tasks:
        support = task.collect(params, n_support, None)
        adapted, _ = inner_loop(task.loss, params, [support], 1, sign * inner_lr, create_graph=not first_order)
        if reuse_support:
            query = support
        else:
            query = task.collect({n: t.detach() for n, t in (params if query_from_theta else adapted).items()},
                                 n_query, None)
        losses.append(task.loss(adapted, query))
    objective = torch.stack(losses).sum() if total else torch.stack(losses).mean()
    grads = torch.autograd.grad(objective, list(params.values()))
    return dict(zip(params, grads))


def check_metarl_step(fn: Callable[..., Mapping[str, torch.Tensor]]) -> None:
    """Exercise 6.2 (notebook 06): check ``fn(tasks, params, inner_lr, support_episodes, query_episodes, gen) -> dict``.

    ``fn`` must return the meta-gradient of one MAML meta-RL step
    (:func:`metarl_meta_gradient`). The check calls it with ``tasks``: Bernoulli bandits
    (:class:`ReplayBandit`: ``task.collect(params, n, gen) -> batch`` plays ``n`` pulls,
    ``task.loss(params, batch) -> Tensor ()`` is their REINFORCE surrogate), ``params =
    {"logits": Tensor (n_arms,)}`` (float64, requires grad) and a generator, on three
    random problems. Collect each task's support episodes before its query episodes.

    Raises:
        AssertionError: one sentence saying what is wrong.
    """
    def student(case):
        tasks, params = _bandit_problem(case)
        got = fn(tasks, params, case["lr"], case["support"], case["query"], torch.Generator().manual_seed(0))
        return as_dict(got, params, "the meta-gradient", "6.2")

    def reference(case):
        tasks, params = _bandit_problem(case)
        return metarl_meta_gradient(tasks, params, case["lr"], case["support"], case["query"],
                                    torch.Generator().manual_seed(0))

    def variant(**mistake):
        return lambda case: _metarl_wrong(*_bandit_problem(case), case["lr"], case["support"],
                                          case["query"], **mistake)

    mistakes = [
        Mistake("this is the first-order gradient: it misses the second-order term, so keep the inner step in "
                "the graph (create_graph=True).", variant(first_order=True)),
        Mistake("the query episodes were played by the initial policy; play them with the adapted parameters "
                "theta', which the query loss scores.", variant(query_from_theta=True)),
        Mistake("the query loss reuses the support episodes; play fresh query episodes with the adapted policy.",
                variant(reuse_support=True)),
        Mistake("you summed the tasks' query losses; average them over the tasks.", variant(total=True)),
        Mistake("the inner step goes uphill on the surrogate; it is theta' = theta - inner_lr * grad (the "
                "surrogate is a loss).", variant(sign=-1.0)),
    ]
    cases = [dict(seed=0, n_tasks=3, arms=3, lr=0.5, support=8, query=8),
             dict(seed=1, n_tasks=2, arms=4, lr=1.0, support=10, query=6),
             dict(seed=2, n_tasks=4, arms=2, lr=0.3, support=6, query=12)]
    run_check("6.2", "the meta-gradient", cases, student, reference, mistakes)
