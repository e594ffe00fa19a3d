"""What every meta-learner is made of: the task data, the base learner and the registry.

Both :mod:`mdlib.meta.learners` (MAML, Reptile, ...) and :mod:`mdlib.meta.schedules`
(LSLR) import this module and nothing of each other, so there is no import circle.

* :class:`TaskBatches` is one task of a meta-batch: *support* data the inner loop adapts
  on and *query* data that scores the adaptation. For supervised tasks (dialogue
  generation, sine waves) both are lists of ready batches. For reinforcement learning
  (:mod:`mdlib.dm.metarl`) they are :class:`OnPolicy` sources: the episodes must be
  played by the very parameters that learn from them, so the inner loop's step ``t``
  plays fresh episodes with ``theta_t`` and the query is played by the adapted policy.
* :class:`MetaLearner` is MAML; every other method overrides a few of its methods.
* The registry maps a method name to its class. Adding a learner is one class and one
  decorator (``docs/architecture.md``, "Adding a meta-learner")::

      @register("mymethod")
      class MyMethod(MetaLearner):
          def task_gradient(self, loss_fn, params, task): ...

  after which ``make_learner("mymethod", ...)`` and ``train --method mymethod`` know it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from mdlib.errors import MdlibError, lookup
from mdlib.meta.inner import LR, LossFn, Params, inner_loop, second_order_guard

__all__ = ["TaskBatches", "OnPolicy", "MetaLearner", "LEARNERS", "register", "learner_class",
           "mean_loss", "query_batches"]


class OnPolicy:
    """Data that must be collected with the parameters that learn from it (RL episodes).

    Subclasses implement :meth:`collect`. A learner adapting on an ``OnPolicy`` source
    calls ``collect(theta_t, t)`` before inner step ``t`` (fresh episodes with the current
    parameters); the query of an ``OnPolicy`` task is ``[collect(adapted, 0)]``.
    """

    def collect(self, params: Mapping[str, torch.Tensor], step: int) -> Any:
        """One batch played with ``params`` for inner step ``step`` (0-based)."""
        raise NotImplementedError

    def stream(self, params: Mapping[str, torch.Tensor], on_step: Callable[[int, Params], None] | None = None):
        """``(batch_at, on_step)`` for :func:`~mdlib.meta.inner.inner_loop`.

        ``batch_at(t)`` collects with the parameters after ``t`` steps: the inner loop
        reports each new ``theta_t`` through ``on_step``, which is chained to the caller's.
        """
        current = [params]

        def batch_at(t: int) -> Any:
            return self.collect(current[0], t)

        def track(t: int, p: Params) -> None:
            current[0] = p
            if on_step is not None:
                on_step(t, p)

        return batch_at, track


@dataclass
class TaskBatches:
    """One task of a meta-batch.

    Attributes:
        task: the task's name (a domain), used in error messages.
        support: batches the inner loop adapts on (used cyclically), or an
            :class:`OnPolicy` source (fresh episodes every inner step).
        query: batches of *other* dialogues of the same task that score the adaptation,
            or an :class:`OnPolicy` source (episodes played by the adapted parameters).
    """

    task: str
    support: Sequence[Any] | OnPolicy
    query: Sequence[Any] | OnPolicy

    @property
    def on_policy(self) -> bool:
        return isinstance(self.support, OnPolicy)


def query_batches(data: Sequence[Any] | OnPolicy, params: Mapping[str, torch.Tensor]) -> Sequence[Any]:
    """The query batches that score ``params``: ``data`` itself, or one batch played with ``params``."""
    return [data.collect(params, 0)] if isinstance(data, OnPolicy) else data


def mean_loss(loss_fn: LossFn, params: Mapping[str, torch.Tensor], batches: Sequence[Any]) -> torch.Tensor:
    """Mean of ``loss_fn(params, b)`` over ``batches`` (a scalar tensor)."""
    if not batches:
        raise MdlibError("mean_loss: no batches to score")
    return torch.stack([loss_fn(params, b) for b in batches]).mean()


LEARNERS: dict[str, type["MetaLearner"]] = {}


def register(name: str):
    """Class decorator: make a learner available as ``name`` (``make_learner``, ``train --method``).

    Raises:
        ValueError: ``name`` already belongs to another class (a programming error).
    """

    def deco(cls: type["MetaLearner"]) -> type["MetaLearner"]:
        old = LEARNERS.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:  # re-imports may re-register
            raise ValueError(f"meta-learner name {name!r} is already registered by {old.__qualname__}")
        cls.name = name
        LEARNERS[name] = cls
        return cls

    return deco


def learner_class(method: str) -> type["MetaLearner"]:
    """The class registered as ``method``.

    Raises:
        MdlibError: an unknown name, listing the registered ones.
    """
    return lookup(LEARNERS, method, "meta-learning method")


class MetaLearner:
    """MAML (second order by default): the base class of every learner.

    Args:
        inner_steps: inner gradient steps per task during meta-training (>= 0).
        inner_lr: the inner step size (the initial value for learned step sizes).
        first_order: drop the second-order terms (FOMAML).
        trainable: names that adapt in the inner loop (``None``: all; ANIL: the head).

    Subclasses override :meth:`build`, :meth:`step_sizes`, :meth:`meta_parameters`,
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

    @classmethod
    def build(cls, params: Mapping[str, torch.Tensor], inner_steps: int, inner_lr: float, *,
              head: Iterable[str] | None = None, **kw) -> "MetaLearner":
        """Construct from the model's parameters (what :func:`make_learner` calls).

        Learners whose state depends on the parameters (Meta-SGD's step sizes, ANIL's
        head) override this; ``head`` is ANIL's and ignored elsewhere.
        """
        return cls(inner_steps, inner_lr, **kw)

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
            batches: a list of batches (used cyclically) or an :class:`OnPolicy` source.
            steps: inner steps (default: ``inner_steps``, the number meta-trained for).
        """
        steps = self.inner_steps if steps is None else steps
        if isinstance(batches, OnPolicy):
            batches, on_step = batches.stream(params, on_step)
        return inner_loop(loss_fn, params, batches, steps, self.step_sizes(),
                          create_graph=create_graph, trainable=self.trainable, on_step=on_step)

    # -- the outer objective ------------------------------------------------------------
    def task_objective(self, loss_fn: LossFn, params: Mapping[str, torch.Tensor],
                       task: TaskBatches) -> tuple[torch.Tensor, dict]:
        """The differentiable outer loss of one task: ``L_query(U_support(theta))``."""
        create_graph = not self.first_order
        adapted, losses = self.adapt(loss_fn, params, task.support, create_graph=create_graph)
        with second_order_guard(create_graph, params):
            query = mean_loss(loss_fn, adapted, query_batches(task.query, adapted))
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
