"""Meta-learners: MAML, first-order MAML, Reptile, Meta-SGD, ANIL and the multi-task control.

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
* LSLR/MSL (MAML++, Antoniou et al., 2019) live in :mod:`mdlib.meta.schedules`.
* ANIL (Raghu et al., 2020): MAML that adapts only the named head parameters.
* Multitask: the compute-matched control (no inner loop: MAML with 0 inner steps).

The base class, :class:`~mdlib.meta.base.TaskBatches` and the registry are in
:mod:`mdlib.meta.base`; every learner here registers itself with ``@register(name)`` and
:func:`make_learner` looks the name up. The same classes meta-train dialogue
generators (supervised batches) and dialogue policies (:mod:`mdlib.dm.metarl`, on-policy
episodes and the REINFORCE surrogate as ``loss_fn``).

A meta-batch is a list of :class:`TaskBatches`; :func:`meta_gradient` loops over the tasks
one at a time and averages (``engine="loop"``, the reference), or runs them together
through ``torch.func.vmap`` (``engine="batched"``, :mod:`mdlib.meta.batched`).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping, Sequence

import torch

from mdlib.errors import MdlibError
from mdlib.meta.base import LEARNERS, MetaLearner, OnPolicy, TaskBatches, learner_class, mean_loss, register
from mdlib.meta.inner import LR, LossFn, check_finite

__all__ = ["TaskBatches", "OnPolicy", "MetaLearner", "MAML", "FOMAML", "Reptile", "MetaSGD", "ANIL",
           "Multitask", "LSLR", "LEARNERS", "METHODS", "register", "ENGINES", "make_learner", "meta_gradient", "mean_loss"]


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


@register("maml")
class MAML(MetaLearner):
    """Second-order MAML (differentiates through the inner loop)."""


@register("fomaml")
class FOMAML(MetaLearner):
    """First-order MAML: the query gradient at the adapted parameters."""

    def __init__(self, inner_steps: int = 1, inner_lr: float = 0.01, **kw) -> None:
        kw.setdefault("first_order", True)
        super().__init__(inner_steps, inner_lr, **kw)


@register("reptile")
class Reptile(MetaLearner):
    """Reptile: adapt on all of the task's batches (support, then query), return ``theta - theta'``.

    With an outer SGD step of size ``eps`` this is Reptile's ``theta += eps (theta' - theta)``
    (meta-RL uses that, ``outer_optimizer="sgd"``); the generator's outer loop uses Adam
    on this direction. With one inner step it is ``inner_lr`` times the gradient of joint
    training on the first batch. On an on-policy task every inner step plays fresh
    episodes with the current policy, and ``query_loss`` is the surrogate of the last
    inner batch (scoring the adapted policy would cost episodes the update does not use).
    """

    def __init__(self, inner_steps: int = 1, inner_lr: float = 0.01, **kw) -> None:
        kw.setdefault("first_order", True)
        super().__init__(inner_steps, inner_lr, **kw)

    def task_gradient(self, loss_fn, params, task):
        if task.on_policy:
            adapted, losses = self.adapt(loss_fn, params, task.support)
            query = losses[-1] if losses else math.nan
        else:
            adapted, losses = self.adapt(loss_fn, params, list(task.support) + list(task.query))
            with torch.no_grad():
                query = float(mean_loss(loss_fn, adapted, task.query))
        grads = {n: (params[n] - adapted[n]).detach() for n in params}
        return grads, {"support_loss": losses[0] if losses else math.nan, "query_loss": query}


@register("metasgd")
class MetaSGD(MetaLearner):
    """Meta-SGD: a learned step size for every parameter entry, meta-trained with the init.

    Args:
        params: the model's parameters (shapes of the step sizes).
        lr_min, lr_max: after every outer step the step sizes are clipped into this
            range (a negative or huge step size would turn descent into ascent or
            diverge); :meth:`post_step` reports how many entries it clipped.
    """

    def __init__(self, params: Mapping[str, torch.Tensor], inner_steps: int = 1, inner_lr: float = 0.01,
                 *, lr_min: float = 0.0, lr_max: float = 1.0, **kw) -> None:
        super().__init__(inner_steps, inner_lr, **kw)
        if not 0.0 <= lr_min < lr_max:
            raise MdlibError(f"metasgd: need 0 <= lr_min < lr_max, got {lr_min}, {lr_max}")
        self.lr_min, self.lr_max = lr_min, lr_max
        names = self.trainable if self.trainable is not None else list(params)
        self.lrs = {n: torch.full_like(params[n].detach(), self.inner_lr).requires_grad_(True) for n in names}

    @classmethod
    def build(cls, params, inner_steps, inner_lr, *, head=None, **kw):
        return cls(params, inner_steps, inner_lr, **kw)

    def step_sizes(self) -> LR:
        return self.lrs

    def meta_parameters(self) -> dict[str, torch.Tensor]:
        return {f"lr.{n}": t for n, t in self.lrs.items()}

    def post_step(self) -> dict:
        return {"lr_clipped": _project(self.lrs.values(), self.lr_min, self.lr_max, self.name)}


@register("anil")
class ANIL(MetaLearner):
    """ANIL: MAML that adapts only ``head`` parameters (a generator's output layer:
    :meth:`~mdlib.models.contract.Generator.head_names`)."""

    def __init__(self, head: Iterable[str], inner_steps: int = 1, inner_lr: float = 0.01, **kw) -> None:
        head = list(head)
        if not head:
            raise MdlibError("anil: name at least one head parameter to adapt")
        super().__init__(inner_steps, inner_lr, trainable=head, **kw)

    @classmethod
    def build(cls, params, inner_steps, inner_lr, *, head=None, **kw):
        if head is None:  # the model knows its head (the generator contract), the parameter names do not
            raise MdlibError("anil: name the head parameters to adapt (head=...; a generator's are "
                             "model.head_names())")
        unknown = sorted(set(head) - set(params))
        if unknown:
            raise MdlibError(f"anil: head parameters {unknown[:3]} are not among the model's parameters")
        return cls(head, inner_steps, inner_lr, **kw)


@register("multitask")
class Multitask(MetaLearner):
    """The compute-matched control (docs/evaluation.md): MAML with 0 inner steps on the same episodes.

    Its outer gradient is ``d L_query(theta) / d theta``: multi-task training on the
    query sets of the same meta-batches, for the same outer steps, from the same start.
    Without it a meta-learner's gain could be nothing but extra training. ``inner_lr``
    is kept for adaptation at meta-test time (the same settings as MAML's).
    """

    def __init__(self, inner_steps: int = 0, inner_lr: float = 0.01, **kw) -> None:
        if inner_steps != 0:
            raise MdlibError(f"multitask: the control has no inner loop; inner_steps must be 0, got {inner_steps!r}")
        kw.setdefault("first_order", True)  # nothing to differentiate through
        super().__init__(0, inner_lr, **kw)

    @classmethod
    def build(cls, params, inner_steps, inner_lr, *, head=None, **kw):
        # the profile's inner_steps is the meta-learners'; the control ignores it by design
        return cls(0, inner_lr, **kw)


# LSLR lives with its schedule; importing the module registers it (after the classes above).
from mdlib.meta.schedules import LSLR  # noqa: E402

#: The registered method names (a live view of the registry: learners registered later appear).
METHODS = LEARNERS.keys()


def make_learner(method: str, params: Mapping[str, torch.Tensor], inner_steps: int, inner_lr: float,
                 *, head: Iterable[str] | None = None, **kw) -> MetaLearner:
    """Build the learner registered as ``method`` (one of :data:`METHODS`).

    Raises:
        MdlibError: an unknown method (listing the registered ones) or bad settings.
    """
    return learner_class(method).build(params, inner_steps, inner_lr, head=head, **kw)


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
