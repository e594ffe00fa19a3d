"""Meta-learners: MAML, first-order MAML, Reptile, Meta-SGD, ANIL.

Each learner is a small class around the one :func:`mdlib.meta.inner.inner_loop`; they
differ only in *how the inner loop is called* and *which outer objective is
differentiated* (notebook 03 puts each next to its equation):

* MAML (Finn et al., 2017):  ``min_theta sum_tau L_query(U_support(theta))``,
  differentiated through ``U`` (``create_graph=True``, second order).
* FOMAML: the same objective, the inner gradients treated as constants, so
  ``grad = d L_query / d theta'`` evaluated at the adapted ``theta'``.
* Reptile (Nichol et al., 2018): adapt on the task's data, then move the
  initialisation toward the adapted weights; the "gradient" is ``theta - theta'``.
* Meta-SGD (Li et al., 2017): MAML with a learned step size per parameter entry
  ``alpha`` (meta-trained with ``theta``); ``alpha`` is kept in ``[lr_min, lr_max]`` by
  projection after every outer step (:meth:`MetaSGD.post_step` says how many it clipped).
* LSLR/MSL (MAML++, Antoniou et al., 2019) live in :mod:`mdlib.meta.schedules`: a
  learner for them overrides :meth:`MetaLearner.step_sizes` (the schedule, a callable
  ``lr(step, name)``), :meth:`MetaLearner.meta_parameters` and
  :meth:`MetaLearner.task_objective` (weighted query losses gathered with ``on_step``).
* ANIL (Raghu et al., 2020): MAML that adapts only the named head parameters.

A meta-batch is a list of :class:`TaskBatches`; :func:`meta_gradient` loops over the tasks
one at a time and averages (``engine="loop"``, the reference), or runs them together
through ``torch.func.vmap`` (``engine="batched"``, :mod:`mdlib.meta.batched`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch

from mdlib.errors import MdlibError
from mdlib.meta.inner import LR, LossFn, Params, check_finite, inner_loop, second_order_guard

__all__ = ["TaskBatches", "MetaLearner", "MAML", "FOMAML", "Reptile", "MetaSGD", "ANIL",
           "METHODS", "ENGINES", "make_learner", "meta_gradient", "mean_loss"]


@dataclass
class TaskBatches:
    """One task of a meta-batch, already collated.

    Attributes:
        task: the task's name (a domain), used in error messages.
        support: batches the inner loop adapts on (used cyclically).
        query: batches of *other* dialogues of the same task that score the adaptation.
    """

    task: str
    support: list[Any]
    query: list[Any]


def mean_loss(loss_fn: LossFn, params: Mapping[str, torch.Tensor], batches: Sequence[Any]) -> torch.Tensor:
    """Mean of ``loss_fn(params, b)`` over ``batches`` (a scalar tensor)."""
    if not batches:
        raise MdlibError("mean_loss: no batches to score")
    return torch.stack([loss_fn(params, b) for b in batches]).mean()


def _project(tensors: Iterable[torch.Tensor], lo: float, hi: float, who: str) -> int:
    """Clip learned step sizes into ``[lo, hi]`` in place; return how many entries moved."""
    clipped = 0
    with torch.no_grad():
        for t in tensors:
            if not bool(torch.isfinite(t).all()):
                raise MdlibError(f"{who}: a learned step size became NaN/inf; lower the outer lr")
            clipped += int(((t < lo) | (t > hi)).sum())
            t.clamp_(lo, hi)
    return clipped


class MetaLearner:
    """MAML (second order by default): the base class of every learner.

    Args:
        inner_steps: inner gradient steps per task during meta-training (>= 0).
        inner_lr: the inner step size (the initial value for learned step sizes).
        first_order: drop the second-order terms (FOMAML).
        trainable: names that adapt in the inner loop (``None``: all; ANIL: the head).

    Subclasses override :meth:`step_sizes`, :meth:`meta_parameters`,
    :meth:`task_objective` or :meth:`task_gradient`; nothing else.
    """

    name = "maml"

    def __init__(self, inner_steps: int = 1, inner_lr: float = 0.01, *, first_order: bool = False,
                 trainable: Iterable[str] | None = None) -> None:
        if isinstance(inner_steps, bool) or not isinstance(inner_steps, int) or inner_steps < 0:
            raise MdlibError(f"{self.name}: inner_steps must be a whole number >= 0, got {inner_steps!r}")
        if not math.isfinite(float(inner_lr)):
            raise MdlibError(f"{self.name}: inner_lr must be finite, got {inner_lr!r}")
        self.inner_steps = inner_steps
        self.inner_lr = float(inner_lr)
        self.first_order = first_order
        self.trainable = None if trainable is None else list(trainable)

    # -- what the inner loop gets -------------------------------------------------------
    def step_sizes(self) -> LR:
        """The ``lr`` argument of :func:`inner_loop` (a float for MAML)."""
        return self.inner_lr

    def meta_parameters(self) -> dict[str, torch.Tensor]:
        """Meta-learned tensors besides the initialisation (Meta-SGD's step sizes); ``{}``."""
        return {}

    def adapt(self, loss_fn: LossFn, params: Mapping[str, torch.Tensor], batches, steps: int | None = None,
              *, create_graph: bool = False, on_step=None) -> tuple[Params, list[float]]:
        """Adapt ``params`` to one task with this learner's step sizes (meta-test time too).

        Args:
            steps: inner steps (default: ``inner_steps``, the number meta-trained for).
        """
        steps = self.inner_steps if steps is None else steps
        return inner_loop(loss_fn, params, batches, steps, self.step_sizes(),
                          create_graph=create_graph, trainable=self.trainable, on_step=on_step)

    # -- the outer objective ------------------------------------------------------------
    def task_objective(self, loss_fn: LossFn, params: Mapping[str, torch.Tensor],
                       task: TaskBatches) -> tuple[torch.Tensor, dict]:
        """The differentiable outer loss of one task: ``L_query(U_support(theta))``."""
        create_graph = not self.first_order
        adapted, losses = self.adapt(loss_fn, params, task.support, create_graph=create_graph)
        with second_order_guard(create_graph, params):
            query = mean_loss(loss_fn, adapted, task.query)
        return query, {"support_loss": losses[0] if losses else math.nan,
                       "query_loss": float(query.detach())}

    def task_gradient(self, loss_fn: LossFn, params: Mapping[str, torch.Tensor],
                      task: TaskBatches) -> tuple[dict[str, torch.Tensor], dict]:
        """Gradient of the task's outer loss w.r.t. ``params`` and :meth:`meta_parameters`.

        Returns:
            ``(grads, stats)``: ``grads`` maps every name of ``params`` and of
            ``meta_parameters()`` to a detached tensor (zeros where unused).
        """
        objective, stats = self.task_objective(loss_fn, params, task)
        targets = {**params, **self.meta_parameters()}
        grads = torch.autograd.grad(objective, list(targets.values()), allow_unused=True)
        return ({n: (torch.zeros_like(t) if g is None else g.detach())
                 for (n, t), g in zip(targets.items(), grads)}, stats)

    def post_step(self) -> dict:
        """Called after each outer optimiser step (projections); returns stats to log."""
        return {}

    def state_dict(self) -> dict:
        """What a checkpoint needs to adapt the way this learner was meta-trained."""
        return {"method": self.name, "inner_steps": self.inner_steps, "inner_lr": self.inner_lr,
                "first_order": self.first_order, "trainable": self.trainable,
                "meta_parameters": {n: t.detach().cpu() for n, t in self.meta_parameters().items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore learned tensors saved by :meth:`state_dict` (shapes must match)."""
        mine = self.meta_parameters()
        for n, t in state.get("meta_parameters", {}).items():
            if n not in mine or mine[n].shape != t.shape:
                raise MdlibError(f"{self.name}: checkpoint step size {n!r} does not match the model")
            with torch.no_grad():
                mine[n].copy_(t.to(mine[n]))


class MAML(MetaLearner):
    """Second-order MAML (differentiates through the inner loop)."""

    name = "maml"


class FOMAML(MetaLearner):
    """First-order MAML: the query gradient at the adapted parameters."""

    name = "fomaml"

    def __init__(self, inner_steps: int = 1, inner_lr: float = 0.01, **kw) -> None:
        kw.setdefault("first_order", True)
        super().__init__(inner_steps, inner_lr, **kw)


class Reptile(MetaLearner):
    """Reptile: adapt on all of the task's batches (support, then query), return ``theta - theta'``.

    With an outer SGD step of size ``eps`` this is Reptile's ``theta += eps (theta' - theta)``;
    mdlib's outer loop uses Adam on this direction. With one inner step it is
    ``inner_lr`` times the gradient of joint training on the first batch.
    """

    name = "reptile"

    def __init__(self, inner_steps: int = 1, inner_lr: float = 0.01, **kw) -> None:
        kw.setdefault("first_order", True)
        super().__init__(inner_steps, inner_lr, **kw)

    def task_gradient(self, loss_fn, params, task):
        adapted, losses = self.adapt(loss_fn, params, list(task.support) + list(task.query))
        with torch.no_grad():
            query = float(mean_loss(loss_fn, adapted, task.query))
        grads = {n: (params[n] - adapted[n]).detach() for n in params}
        return grads, {"support_loss": losses[0] if losses else math.nan, "query_loss": query}


class MetaSGD(MetaLearner):
    """Meta-SGD: a learned step size for every parameter entry, meta-trained with the init.

    Args:
        params: the model's parameters (shapes of the step sizes).
        lr_min, lr_max: after every outer step the step sizes are clipped into this
            range (a negative or huge step size would turn descent into ascent or
            diverge); :meth:`post_step` reports how many entries it clipped.
    """

    name = "metasgd"

    def __init__(self, params: Mapping[str, torch.Tensor], inner_steps: int = 1, inner_lr: float = 0.01,
                 *, lr_min: float = 0.0, lr_max: float = 1.0, **kw) -> None:
        super().__init__(inner_steps, inner_lr, **kw)
        if not 0.0 <= lr_min < lr_max:
            raise MdlibError(f"metasgd: need 0 <= lr_min < lr_max, got {lr_min}, {lr_max}")
        self.lr_min, self.lr_max = lr_min, lr_max
        names = self.trainable if self.trainable is not None else list(params)
        self.lrs = {n: torch.full_like(params[n].detach(), self.inner_lr).requires_grad_(True) for n in names}

    def step_sizes(self) -> LR:
        return self.lrs

    def meta_parameters(self) -> dict[str, torch.Tensor]:
        return {f"lr.{n}": t for n, t in self.lrs.items()}

    def post_step(self) -> dict:
        return {"lr_clipped": _project(self.lrs.values(), self.lr_min, self.lr_max, self.name)}


class ANIL(MetaLearner):
    """ANIL: MAML that adapts only ``head`` parameters (e.g. the decoder's output layer)."""

    name = "anil"

    def __init__(self, head: Iterable[str], inner_steps: int = 1, inner_lr: float = 0.01, **kw) -> None:
        head = list(head)
        if not head:
            raise MdlibError("anil: name at least one head parameter to adapt")
        super().__init__(inner_steps, inner_lr, trainable=head, **kw)


METHODS = ("maml", "fomaml", "reptile", "metasgd", "anil", "lslr")


def make_learner(method: str, params: Mapping[str, torch.Tensor], inner_steps: int, inner_lr: float,
                 *, head: Iterable[str] | None = None, **kw) -> MetaLearner:
    """Build the learner named ``method`` (one of :data:`METHODS`)."""
    if method == "maml":
        return MAML(inner_steps, inner_lr, **kw)
    if method == "fomaml":
        return FOMAML(inner_steps, inner_lr, **kw)
    if method == "reptile":
        return Reptile(inner_steps, inner_lr, **kw)
    if method == "metasgd":
        return MetaSGD(params, inner_steps, inner_lr, **kw)
    if method == "anil":
        if head is None:
            head = [n for n in params if n.startswith(("out", "decoder.out", "output"))]
        return ANIL(head, inner_steps, inner_lr, **kw)
    if method == "lslr":  # MAML++ learned schedule (issue 5), defined in mdlib.meta.schedules
        from mdlib.meta.schedules import LSLR

        return LSLR(params, inner_steps, inner_lr, **kw)
    raise MdlibError(f"unknown meta-learning method {method!r}; expected one of {', '.join(METHODS)}")


ENGINES = ("loop", "batched")


def meta_gradient(learner: MetaLearner, loss_fn: LossFn, params: Mapping[str, torch.Tensor],
                  tasks: Sequence[TaskBatches], engine: str = "loop") -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Average of the tasks' meta-gradients.

    Args:
        engine: ``"loop"`` (one task at a time: the reference, least memory) or
            ``"batched"`` (all tasks in one ``torch.func.vmap``, :mod:`mdlib.meta.batched`;
            a learner it cannot vmap, e.g. LSLR, runs the loop with a warning saying why).

    Returns:
        ``(grads, stats)``: ``grads`` over ``params`` and ``learner.meta_parameters()``;
        one stats dict per task (``task``, ``support_loss``, ``query_loss``).

    Raises:
        MdlibError: an unknown engine, an empty meta-batch, or a NaN/inf meta-gradient
            (naming the task).
    """
    if engine not in ENGINES:
        raise MdlibError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if not tasks:
        raise MdlibError("meta_gradient: the meta-batch has no tasks")
    if engine == "batched":
        from mdlib.meta.batched import batched_meta_gradient, unsupported

        reason = unsupported(learner)
        if reason is None:
            return batched_meta_gradient(learner, loss_fn, dict(params), tasks)
        warnings.warn(f"engine='batched': {reason}; using the per-task loop", stacklevel=2)
    total: dict[str, torch.Tensor] | None = None
    stats = []
    for task in tasks:
        grads, st = learner.task_gradient(loss_fn, params, task)
        for n, g in grads.items():
            check_finite(g, f"the meta-gradient of {n!r} on task {task.task!r}")
        total = grads if total is None else {n: total[n] + g for n, g in grads.items()}
        stats.append({"task": task.task, **st})
    return {n: g / len(tasks) for n, g in total.items()}, stats
