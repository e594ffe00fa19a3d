"""Meta-RL: learn a policy initialisation that adapts to a new task in a few episodes.

A *task* is anything with three methods (the dialogue tasks of :mod:`mdlib.dm.env` are
(domain, user population) pairs; :class:`mdlib.dm.rl.BanditTask` is the toy one):

- ``collect(params, n, gen) -> batch``: run ``n`` episodes with the policy ``params``;
- ``loss(params, batch) -> Tensor ()``: the REINFORCE surrogate on those episodes;
- ``evaluate(params, n, gen) -> dict``: success rate (and more) of the policy.

Every adaptation here is :func:`mdlib.meta.inner.inner_loop` with that surrogate as its
``loss_fn``: one policy-gradient step per freshly collected batch of episodes (the
batch must come from the current policy, so the loop alternates collecting and stepping).

Methods (notebook 06):

- :func:`adapt`: policy-gradient fine-tuning from any initialisation (from scratch when
  the initialisation is random);
- :func:`pretrain`: multi-task policy gradient on the source tasks (Adam);
- :func:`reptile`: Reptile over policy-gradient inner loops (Nichol et al., 2018);
- :func:`maml`: MAML over one policy-gradient inner step (Finn et al., 2017); the query
  surrogate is differentiated through the inner step (second order unless
  ``first_order``); like the original MAML-RL it ignores how the support episodes'
  sampling distribution depends on the initialisation.

These three are the generator's learners (``multitask``, ``reptile``, ``maml`` /
``fomaml`` of :mod:`mdlib.meta.learners`) run by the one outer loop
(:func:`mdlib.meta.metatrain.meta_train_loop`) through :func:`meta_rl`: a task's
support and query are :class:`Episodes` (on-policy: played by the parameters that learn
from them) and the ``loss_fn`` is the REINFORCE surrogate (:func:`surrogate`).

:func:`matched_training` runs MAML, Reptile and two compute-matched controls (the
``multitask`` learner with MAML's outer steps, and with MAML's gradient evaluations) on one
shared dialogue budget; :class:`Counted` counts the dialogues and gradients a run spends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch

from mdlib.data.domains import SOURCES, get_domain
from mdlib.dm.policy import SlotActPolicy
from mdlib.dm.population import SOURCE_POPULATIONS, get_population
from mdlib.dm.rl import DialogueTask, make_policy
from mdlib.errors import MdlibError, lookup
from mdlib.meta.base import OnPolicy, TaskBatches
from mdlib.meta.inner import inner_loop
from mdlib.meta.learners import MetaLearner, make_learner
from mdlib.meta.metatrain import MetaHistory, meta_train_loop

Params = dict[str, torch.Tensor]


class RLTask(Protocol):
    """What meta-RL needs from a task."""

    name: str

    def collect(self, params: Params, n: int, gen: torch.Generator) -> Any: ...

    def loss(self, params: Params, batch: Any) -> torch.Tensor: ...

    def evaluate(self, params: Params, n: int, gen: torch.Generator) -> dict: ...


def _detached(params: Params) -> Params:
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise MdlibError(f"{name}: expected a number >= 1, got {value}")


def adapt(task: RLTask, params: Params, episodes: int, batch: int, lr: float, gen: torch.Generator,
          steps_per_batch: int = 1, create_graph: bool = False,
          callback: Callable[[int, Params], None] | None = None) -> Params:
    """Policy-gradient adaptation: collect ``batch`` episodes, take an inner-loop step, repeat.

    Args:
        task: the task to adapt to.
        params: the initialisation (not modified).
        episodes: total number of adaptation episodes (0 returns ``params`` unchanged).
        batch: episodes per policy-gradient step (the last batch may be smaller).
        lr: the inner-loop step size (plain gradient descent on the surrogate).
        gen: random stream for the episodes.
        steps_per_batch: gradient steps on each collected batch.
        create_graph: keep the graph of the steps (for second-order meta-gradients).
        callback: ``callback(episodes_used, params)`` after every step.

    Returns:
        The adapted parameters.
    """
    if episodes < 0:
        raise MdlibError(f"episodes: expected a number >= 0, got {episodes}")
    _check_positive(batch=batch, steps_per_batch=steps_per_batch)
    current = params if create_graph else _detached(params)
    used = 0
    while used < episodes:
        n = min(batch, episodes - used)
        data = task.collect(current, n, gen)
        current, _ = inner_loop(task.loss, current, [data], steps_per_batch, lr, create_graph=create_graph)
        if not create_graph:
            current = _detached(current)
        used += n
        if callback is not None:
            callback(used, current)
    return current


def adaptation_curve(task: RLTask, params: Params, budgets: Sequence[int], batch: int, lr: float,
                     eval_episodes: int, gen: torch.Generator, final: dict | None = None) -> list[dict]:
    """Evaluate after each number of adaptation episodes in ``budgets`` (one continuing run).

    ``final``, when given, receives ``final["params"]``: the policy after the largest budget.

    Returns:
        One dict per budget: ``{"episodes": k, **task.evaluate(...)}``.
    """
    budgets = sorted(set(int(b) for b in budgets))
    if not budgets or budgets[0] < 0:
        raise MdlibError(f"budgets: expected numbers of episodes >= 0, got {list(budgets)}")
    _check_positive(eval_episodes=eval_episodes)
    current = _detached(params)
    done = 0
    out = []
    for k in budgets:
        current = adapt(task, current, k - done, batch, lr, gen)
        done = k
        out.append({"episodes": k, **task.evaluate(current, eval_episodes, gen)})
    if final is not None:
        final["params"] = current
    return out


class Episodes(OnPolicy):
    """Fresh episodes of one task, played by the parameters that will learn from them.

    The on-policy data of a meta-RL :class:`~mdlib.meta.base.TaskBatches`: the learners
    call ``collect(theta_t, t)`` before inner step ``t`` and ``collect(adapted, 0)`` for
    the query (:class:`~mdlib.meta.base.OnPolicy`).

    Args:
        task: the RL task.
        sizes: episodes per collection; step ``t`` plays ``sizes[min(t, len(sizes) - 1)]``.
        gen: the random stream of episode seeds and action sampling.
    """

    def __init__(self, task: RLTask, sizes: Sequence[int], gen: torch.Generator):
        self.task, self.sizes, self.gen = task, list(sizes), gen

    def collect(self, params, step: int) -> "Played":
        n = self.sizes[min(step, len(self.sizes) - 1)]
        return Played(self.task, self.task.collect(params, n, self.gen))


@dataclass
class Played:
    """A batch of episodes and the task whose surrogate scores it."""

    task: RLTask
    batch: Any


def surrogate(params: Params, played: Played) -> torch.Tensor:
    """The learners' ``loss_fn`` for meta-RL: the REINFORCE surrogate of the task that played the batch."""
    return played.task.loss(params, played.batch)


def meta_rl(learner: MetaLearner, tasks: Sequence[RLTask], params: Params, iterations: int, tasks_per_iter: int,
            gen: torch.Generator, support: Sequence[int], query: Sequence[int], outer_lr: float, *,
            outer_optimizer: str = "adam", outer_lr_decay: bool = False,
            progress: bool = False) -> tuple[Params, MetaHistory]:
    """Meta-train a policy initialisation with any learner through the one outer loop.

    Each iteration draws ``tasks_per_iter`` source tasks (:func:`_sample_tasks`) and gives
    each learner task on-policy support (``support`` episodes per inner step) and query
    (``query`` episodes, played by the adapted policy) sources; the task objective is the
    REINFORCE surrogate (:func:`surrogate`). Like the original MAML-RL, the dependence of
    the support episodes' sampling distribution on the initialisation is ignored.

    Returns:
        ``(params, history)``: the meta-learned initialisation and
        :func:`~mdlib.meta.metatrain.meta_train_loop`'s history.
    """
    _check_tasks(tasks)
    theta = _detached(params)

    def sample(step: int) -> list[TaskBatches]:
        return [TaskBatches(t.name, Episodes(t, support, gen), Episodes(t, query, gen))
                for t in _sample_tasks(tasks, tasks_per_iter, gen)]

    hist = meta_train_loop(learner, surrogate, theta, sample, meta_steps=iterations, outer_lr=outer_lr, clip=None,
                           outer_optimizer=outer_optimizer, outer_lr_decay=outer_lr_decay, progress=progress)
    return _detached(theta), hist


def pretrain(tasks: Sequence[RLTask], params: Params, iterations: int, tasks_per_iter: int, episodes: int,
             lr: float, gen: torch.Generator, progress: bool = False) -> tuple[Params, list[float]]:
    """Multi-task policy gradient (Adam) on the source tasks: the pretraining baseline.

    This is the ``multitask`` learner (MAML with 0 inner steps): each task's objective is
    the surrogate of ``episodes`` dialogues played by the current policy.

    Returns:
        ``(params, losses)``, one surrogate loss per iteration.
    """
    _check_positive(iterations=iterations, tasks_per_iter=tasks_per_iter, episodes=episodes)
    params, hist = meta_rl(make_learner("multitask", params, 0, 0.0), tasks, params, iterations, tasks_per_iter,
                           gen, [episodes], [episodes], lr, progress=progress)
    return params, [r["query_loss"] for r in hist.steps]


def reptile(tasks: Sequence[RLTask], params: Params, iterations: int, tasks_per_iter: int, inner_episodes: int,
            inner_batch: int, inner_lr: float, meta_lr: float, gen: torch.Generator,
            progress: bool = False) -> tuple[Params, list[float]]:
    """Reptile: move the initialisation towards the policies adapted on sampled tasks.

    ``theta <- theta + meta_lr * mean_tasks(adapt(task, theta) - theta)``, with
    ``meta_lr`` decaying linearly to 0 (as in the Reptile paper): the ``reptile``
    learner with ``ceil(inner_episodes / inner_batch)`` inner steps, each on fresh
    episodes, and the outer loop's SGD step.

    Returns:
        ``(params, step_norms)``: the meta-learned initialisation and the norm of each meta-step.
    """
    _check_positive(iterations=iterations, tasks_per_iter=tasks_per_iter, inner_episodes=inner_episodes,
                    inner_batch=inner_batch)
    sizes = [inner_batch] * (inner_episodes // inner_batch)
    if inner_episodes % inner_batch:
        sizes.append(inner_episodes % inner_batch)  # the last batch may be smaller, as in adapt()
    learner = make_learner("reptile", params, len(sizes), inner_lr)
    params, hist = meta_rl(learner, tasks, params, iterations, tasks_per_iter, gen, sizes, sizes, meta_lr,
                           outer_optimizer="sgd", outer_lr_decay=True, progress=progress)
    return params, [r["grad_norm"] for r in hist.steps]


def maml(tasks: Sequence[RLTask], params: Params, iterations: int, tasks_per_iter: int, support_episodes: int,
         query_episodes: int, inner_lr: float, meta_lr: float, gen: torch.Generator, inner_steps: int = 1,
         first_order: bool = False, progress: bool = False) -> tuple[Params, list[float]]:
    """MAML over policy-gradient inner steps (outer optimiser: Adam).

    For each sampled task: collect ``support_episodes`` with ``theta``, adapt with
    ``inner_steps`` steps of the REINFORCE surrogate (each on fresh episodes of the
    current policy; the graph kept unless ``first_order``), collect ``query_episodes``
    with the adapted policy and back-propagate the query surrogate to ``theta``: the
    ``maml`` (or ``fomaml``) learner.

    Returns:
        ``(params, query_losses)``.
    """
    _check_positive(iterations=iterations, tasks_per_iter=tasks_per_iter, support_episodes=support_episodes,
                    query_episodes=query_episodes, inner_steps=inner_steps)
    learner = make_learner("fomaml" if first_order else "maml", params, inner_steps, inner_lr)
    params, hist = meta_rl(learner, tasks, params, iterations, tasks_per_iter, gen, [support_episodes],
                           [query_episodes], meta_lr, progress=progress)
    return params, [r["query_loss"] for r in hist.steps]


class Counted:
    """An RL task that counts what training spends on it (the check that budgets match).

    Wraps any :class:`RLTask`; ``episodes`` counts the dialogues played through
    :meth:`collect` and ``gradients`` the surrogates built through :meth:`loss`. Every
    surrogate that meta-training builds is differentiated exactly once (an inner step, a
    query gradient or a pretraining step), so ``gradients`` is the number of
    policy-gradient evaluations.

    Args:
        task: the task to count.
    """

    def __init__(self, task: RLTask):
        self.task, self.name = task, task.name
        self.episodes = self.gradients = 0

    def collect(self, params: Params, n: int, gen: torch.Generator) -> Any:
        self.episodes += n
        return self.task.collect(params, n, gen)

    def loss(self, params: Params, batch: Any) -> torch.Tensor:
        self.gradients += 1
        return self.task.loss(params, batch)

    def evaluate(self, params: Params, n: int, gen: torch.Generator) -> dict:
        return self.task.evaluate(params, n, gen)


#: The methods of :func:`matched_training`: two controls and two meta-learners.
MATCHED_METHODS: tuple[str, ...] = ("pretrain", "multitask", "maml", "reptile")


def matched_training(method: str, tasks: Sequence[RLTask], params: Params, outer_steps: int, tasks_per_step: int,
                     episodes: int, inner_lr: float, outer_lr: float, reptile_lr: float, gen: torch.Generator,
                     inner_steps: int = 1, progress: bool = False) -> tuple[Params, list[float]]:
    """Train ``method`` with the dialogue budget that every method of the comparison shares.

    With ``T = outer_steps``, ``K = tasks_per_step``, ``E = episodes`` and ``n = inner_steps``
    (MAML's), every method plays ``T * K * (n + 1) * E`` dialogues; they differ in what
    they do with them:

    - ``maml`` (first order): ``n`` inner steps on ``E`` fresh dialogues each, then ``E``
      query dialogues played by the adapted policy; ``T`` outer (Adam) steps and
      ``n + 1`` policy gradients per task and step;
    - ``reptile``: ``n + 1`` inner steps on ``E`` fresh dialogues each; ``T`` outer steps,
      ``n + 1`` gradients per task and step;
    - ``multitask``: the control with MAML's outer steps and dialogues: ``(n + 1) * E``
      dialogues per task at ``theta``, one gradient, ``T`` Adam steps (so ``n + 1``
      times fewer gradient evaluations than MAML);
    - ``pretrain``: the control with MAML's gradient evaluations and dialogues: the same
      learner, ``E`` dialogues and one gradient per task and step, ``(n + 1) * T`` Adam
      steps.

    :class:`Counted` tasks report what was spent (``tests/test_rl.py`` checks these counts).

    Returns:
        ``(params, log)``: the trained initialisation and one entry per outer step.
    """
    lookup(dict.fromkeys(MATCHED_METHODS), method, "matched-training method")
    _check_positive(outer_steps=outer_steps, tasks_per_step=tasks_per_step, episodes=episodes,
                    inner_steps=inner_steps)
    T, K, E, rounds = outer_steps, tasks_per_step, episodes, inner_steps + 1
    if method == "pretrain":
        return pretrain(tasks, params, rounds * T, K, E, outer_lr, gen, progress=progress)
    if method == "multitask":
        return pretrain(tasks, params, T, K, rounds * E, outer_lr, gen, progress=progress)
    if method == "maml":
        return maml(tasks, params, T, K, E, E, inner_lr, outer_lr, gen, inner_steps=inner_steps, first_order=True,
                    progress=progress)
    return reptile(tasks, params, T, K, rounds * E, E, inner_lr, reptile_lr, gen, progress=progress)


def _check_tasks(tasks: Sequence[RLTask]) -> None:
    if not tasks:
        raise MdlibError("tasks: expected at least one source task")


def _sample_tasks(tasks: Sequence[RLTask], n: int, gen: torch.Generator) -> list[RLTask]:
    """``n`` tasks drawn uniformly (without replacement while possible)."""
    order = torch.randperm(len(tasks), generator=gen).tolist()
    while len(order) < n:
        order += torch.randperm(len(tasks), generator=gen).tolist()
    return [tasks[i] for i in order[:n]]


# --------------------------------------------------------------------------- experiments

METHODS: tuple[str, ...] = ("rule", "scratch", "pretrain", "maml", "reptile")


@dataclass(frozen=True)
class PolicyConfig:
    """Every knob of a dialogue-policy experiment (defaults: a couple of seconds per method).

    Attributes:
        hidden: hidden units of the policy network.
        sources: source domains of (meta-)training.
        populations: source user populations.
        iterations: meta-iterations (MAML, Reptile) and pretraining iterations.
        tasks_per_iter: tasks per meta-iteration.
        inner_episodes: support dialogues per task (MAML) / inner-loop dialogues (Reptile)
            / dialogues per task per pretraining step.
        query_episodes: query dialogues per task (MAML).
        inner_lr: inner-loop step size (normalised advantages), also used for adaptation.
        maml_lr: Adam step size of the MAML outer loop and of pretraining.
        reptile_lr: Reptile's interpolation step (decays linearly to 0).
        first_order: first-order MAML.
        adapt_batch: dialogues per policy-gradient step during adaptation.
        eval_episodes: evaluation dialogues per point of a curve.
        entropy_coef: entropy bonus of the surrogate.
    """

    hidden: int = 32
    sources: tuple[str, ...] = SOURCES
    populations: tuple[str, ...] = SOURCE_POPULATIONS
    iterations: int = 40
    tasks_per_iter: int = 4
    inner_episodes: int = 20
    query_episodes: int = 20
    inner_lr: float = 3.0
    maml_lr: float = 0.01
    reptile_lr: float = 1.0
    first_order: bool = True
    adapt_batch: int = 10
    eval_episodes: int = 100
    entropy_coef: float = 0.0

    def __post_init__(self):
        for f in ("hidden", "iterations", "tasks_per_iter", "inner_episodes", "query_episodes",
                  "adapt_batch", "eval_episodes"):
            if getattr(self, f) < 1:
                raise MdlibError(f"policy config: {f} must be >= 1, got {getattr(self, f)}")
        for d in self.sources:
            get_domain(d)
        for u in self.populations:
            get_population(u)


def source_tasks(model: SlotActPolicy, config: PolicyConfig) -> list[DialogueTask]:
    """One :class:`DialogueTask` per (source domain, source population)."""
    return [DialogueTask(model, d, u, entropy_coef=config.entropy_coef)
            for d in config.sources for u in config.populations]


def initialisation(method: str, model: SlotActPolicy, config: PolicyConfig, seed: int,
                   progress: bool = False) -> Params:
    """The starting policy of ``method``: random (scratch), pretrained, or meta-learned.

    The random initialisation is the same for every method of a seed (drawn from ``seed``).
    """
    if method not in METHODS or method == "rule":
        raise MdlibError(f"method: expected one of {', '.join(METHODS[1:])} for a learned policy, got {method!r}")
    init = make_policy(config.hidden, seed).init_params()
    if method == "scratch":
        return init
    gen = torch.Generator().manual_seed(seed)
    tasks = source_tasks(model, config)
    c = config
    if method == "pretrain":
        params, _ = pretrain(tasks, init, c.iterations, c.tasks_per_iter, c.inner_episodes, c.maml_lr, gen,
                             progress=progress)
    elif method == "maml":
        params, _ = maml(tasks, init, c.iterations, c.tasks_per_iter, c.inner_episodes, c.query_episodes,
                         c.inner_lr, c.maml_lr, gen, first_order=c.first_order, progress=progress)
    else:
        params, _ = reptile(tasks, init, c.iterations, c.tasks_per_iter, 2 * c.inner_episodes, c.inner_episodes,
                            c.inner_lr, c.reptile_lr, gen, progress=progress)
    return params


def run_method(method: str, target: str, users: str, budgets: Sequence[int], seed: int,
               config: PolicyConfig | None = None, progress: bool = False,
               params: Params | None = None, keep_params: bool = False) -> dict:
    """One method's curve on a target task: (meta-)train on the sources, adapt, evaluate.

    Args:
        method: one of :data:`METHODS`.
        target: target domain; users: target user population.
        budgets: numbers of adaptation dialogues at which to evaluate (e.g. 0, 10, 50, 200).
        seed: seed of the initialisation, (meta-)training, adaptation and action sampling.
        config: the experiment's knobs.
        params: a ready initialisation (skips (meta-)training; notebooks reuse one per seed).
        keep_params: also return the policy adapted with the largest budget (``"params"``).

    Returns:
        ``{"method", "target", "users", "seed", "curve": [{"episodes", "success", "success_ci",
        "turns", ..., "acts"}, ...]}``; intervals are over the evaluation dialogues.
        The rule-based policy does not learn: its curve repeats one evaluation.
    """
    config = config or PolicyConfig()
    get_domain(target)
    get_population(users)
    budgets = sorted(set(int(b) for b in budgets))
    if not budgets or budgets[0] < 0:
        raise MdlibError(f"episodes: expected numbers of adaptation dialogues >= 0, got {budgets}")
    model = make_policy(config.hidden, seed)
    task = DialogueTask(model, target, users, entropy_coef=config.entropy_coef)
    if method == "rule":
        point = task.evaluate_rule(config.eval_episodes)
        curve = [{"episodes": k, **point} for k in budgets]
    else:
        init = params if params is not None else initialisation(method, model, config, seed, progress)
        gen = torch.Generator().manual_seed(seed + 1)
        final: dict = {}
        curve = adaptation_curve(task, init, budgets, config.adapt_batch, config.inner_lr,
                                 config.eval_episodes, gen, final=final)
    out = {"method": method, "target": target, "users": users, "seed": seed, "curve": curve}
    if keep_params and method != "rule":
        out["params"] = final["params"]
    return out
