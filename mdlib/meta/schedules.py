"""Learned inner-loop schedules (MAML++, Antoniou et al., ICLR 2019): meta-objective 2.

Two things MAML fixes by hand and MAML++ learns:

* **LSLR** (learned per-layer, per-step step sizes): one step size ``alpha[g, t]`` for
  every parameter group ``g`` (by default every parameter tensor, e.g.
  ``decoder.out.weight``) and every inner step ``t``. :class:`LearnedSchedule` is the
  ``lr`` callable that :func:`mdlib.meta.inner.inner_loop` accepts
  (``lr(step, name) -> Tensor ()``), so the schedule adapts through THE inner loop and
  receives its meta-gradient from the query loss like any other meta-parameter.
* **Multi-step loss** (MSL): the meta-objective is a weighted sum of the query losses
  after *every* inner step, ``sum_t w_t L_query(theta_t)``, instead of only the last
  one. MAML++ anneals ``w`` by hand towards the last step. Here ``w = softmax(logits)``
  is learned; minimising the weighted loss itself with respect to ``w`` would simply put
  all weight on the smallest loss, so :meth:`LearnedSchedule.step_weight_grad` learns
  ``w`` by the one-step look-ahead of :mod:`mdlib.meta.reweight`: a step's weight grows
  when the gradient of its query loss points the same way as the gradient of the
  final-step loss on held-out query data (notebook 05).

How fast the schedule can move. The outer optimiser is Adam, and Adam moves every
number it updates by about its step size (``outer_lr``, 1e-3 by default) per outer step,
whatever the size of the gradient. A step size stored as itself could therefore move by
at most ``meta_steps * outer_lr`` (0.005 in 5 outer steps): a schedule that cannot move
and a test that cannot fail. The schedule therefore stores ``u = log(alpha) / rate``
(and the step-loss logits divided by ``rate``): one Adam step changes ``log alpha`` by
up to ``rate * outer_lr``, so with the default ``rate = 30`` and ``outer_lr = 1e-3`` a
step size can grow or shrink by about 3 % per outer step (a factor of e in about 33
steps), and it stays positive by construction.

Invalid step sizes (the policy, fixed): after each meta-update call
:meth:`LearnedSchedule.project_`. A step size below ``min_lr`` (default 0: never, since
``alpha = exp(rate * u) > 0``) is **clamped** to it; one that became **NaN or inf
stops** training with :class:`MdlibError` naming the group and step, because no clamp
can recover a meaningful value.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Iterable, Mapping, Sequence

import torch

from mdlib.errors import MdlibError
from mdlib.meta.base import MetaLearner, TaskBatches, mean_loss, register

__all__ = ["LearnedSchedule", "LSLR", "per_tensor", "per_layer", "multi_step_query_loss"]


def per_tensor(name: str) -> str:
    """Group function: every parameter tensor its own group (MAML++'s choice)."""
    return name


def per_layer(name: str) -> str:
    """Group function: the module that holds the parameter (``decoder.out.weight`` ->
    ``decoder.out``), so a layer's weight and bias share one step size."""
    return name.rsplit(".", 1)[0] if "." in name else name


def _key(group: str) -> str:
    # ParameterDict keys may not contain "."; keep them readable and unique.
    return re.sub(r"[^0-9A-Za-z_]", "__", group)


class LearnedSchedule(torch.nn.Module):
    """Learned step sizes per parameter group and inner step, plus step-loss weights.

    Use it as the ``lr`` of :func:`mdlib.meta.inner.inner_loop`::

        sched = LearnedSchedule(params, steps=3, init_lr=0.1)
        adapted, _ = inner_loop(loss_fn, params, support, 3, sched, create_graph=False)
        meta_opt = torch.optim.Adam([*params.values(), *sched.parameters()], lr=1e-3)
        ...; meta_opt.step(); sched.project_()

    Args:
        names: the parameter names (``dict(model.named_parameters())`` or its keys).
        steps: number of inner steps the schedule covers (``>= 1``).
        init_lr: the initial step size of every group and step (``> 0``).
        group: maps a parameter name to its group name (:func:`per_tensor` or
            :func:`per_layer`, or your own).
        min_lr: the floor that :meth:`project_` clamps step sizes to (``>= 0``).
        learn_step_weights: whether the multi-step-loss weights are learned (they start
            uniform either way).
        rate: how fast the outer optimiser can move the schedule (module doc):
            ``alpha = exp(rate * u)``, step-loss weights ``softmax(rate * v)``.

    Attributes:
        log_alphas: ``ParameterDict`` group key -> Tensor (steps,), the stored
            ``u = log(alpha) / rate`` (:meth:`alpha` and :meth:`table` give the step sizes).
        step_logits: Parameter (steps,), the stored ``v``; ``softmax(rate * v)`` gives the
            step-loss weights.
    """

    def __init__(
        self,
        names: Iterable[str] | Mapping[str, torch.Tensor],
        steps: int,
        init_lr: float,
        *,
        group: Callable[[str], str] = per_tensor,
        min_lr: float = 0.0,
        learn_step_weights: bool = True,
        rate: float = 30.0,
    ) -> None:
        super().__init__()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise MdlibError(f"LearnedSchedule: steps must be a whole number >= 1, got {steps!r}")
        init_lr = float(init_lr)
        if not (init_lr > 0 and torch.isfinite(torch.tensor(init_lr))):
            raise MdlibError(f"LearnedSchedule: init_lr must be a finite number > 0, got {init_lr}")
        if min_lr < 0:
            raise MdlibError(f"LearnedSchedule: min_lr must be >= 0, got {min_lr}")
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise MdlibError(f"LearnedSchedule: rate must be a finite number > 0, got {rate!r}")
        self.rate = float(rate)
        self.steps = steps
        self.min_lr = float(min_lr)
        self.group_of: dict[str, str] = {n: group(n) for n in names}
        if not self.group_of:
            raise MdlibError("LearnedSchedule: no parameter names given")
        self.groups: list[str] = list(dict.fromkeys(self.group_of.values()))
        self._keys = {g: _key(g) for g in self.groups}
        if len(set(self._keys.values())) != len(self._keys):
            raise MdlibError("LearnedSchedule: two parameter groups map to the same key")
        u0 = math.log(init_lr) / self.rate
        self.log_alphas = torch.nn.ParameterDict(
            {self._keys[g]: torch.nn.Parameter(torch.full((steps,), u0)) for g in self.groups}
        )
        self.step_logits = torch.nn.Parameter(torch.zeros(steps), requires_grad=learn_step_weights)

    # -- the lr callable --------------------------------------------------------------
    def forward(self, step: int, name: str) -> torch.Tensor:
        """The step size of parameter ``name`` at inner step ``step``: Tensor ().

        Raises:
            MdlibError: ``step`` beyond the schedule (a schedule shorter than the inner
                loop), an unknown parameter name, or a non-finite step size.
        """
        if step >= self.steps:
            raise MdlibError(
                f"LearnedSchedule covers {self.steps} inner step(s) but inner step {step + 1} was "
                f"requested; build the schedule with steps >= the inner loop's steps"
            )
        if name not in self.group_of:
            raise MdlibError(f"LearnedSchedule has no step size for parameter {name!r}")
        return self.alpha(self.group_of[name])[step]

    def alpha(self, group: str) -> torch.Tensor:
        """The step sizes of parameter group ``group``: Tensor (steps,), ``exp(rate * u)``
        (differentiable), floored at ``min_lr``."""
        a = torch.exp(self.rate * self.log_alphas[self._keys[group]])
        return a.clamp(min=self.min_lr) if self.min_lr > 0 else a

    def check_steps(self, steps: int) -> None:
        """Raise :class:`MdlibError` unless the schedule covers ``steps`` inner steps."""
        if steps > self.steps:
            raise MdlibError(
                f"LearnedSchedule covers {self.steps} inner step(s) but the inner loop runs {steps}; "
                f"build the schedule with steps >= {steps}"
            )

    # -- step-loss weights ------------------------------------------------------------
    def step_weights(self) -> torch.Tensor:
        """The multi-step-loss weights ``softmax(rate * step_logits)``: Tensor (steps,), sum 1."""
        return torch.softmax(self.rate * self.step_logits, dim=0)

    def step_weight_grad(
        self,
        step_losses: torch.Tensor,
        val_loss: torch.Tensor,
        meta_params: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """Learn the step-loss weights by the one-step look-ahead of :mod:`mdlib.meta.reweight`.

        Adds to ``step_logits.grad`` the gradient, through the softmax, of
        ``d L_val / d w_t = -<grad L_t, grad L_val>`` (a step of the meta-parameters on
        step ``t``'s query loss lowers ``L_val`` when the two gradients align).

        Args:
            step_losses: Tensor (T,), the query loss after each inner step (graph kept).
            val_loss: Tensor (), the final-step loss on held-out query data (graph kept).
            meta_params: the meta-parameter tensors (the initialisation).

        Returns:
            Tensor (T,) detached: ``d L_val / d w``.
        """
        from mdlib.meta.reweight import alignment_grads

        if step_losses.numel() != self.steps:
            raise MdlibError(f"step_weight_grad: {step_losses.numel()} step losses for a {self.steps}-step schedule")
        g = alignment_grads(step_losses, val_loss, meta_params)
        if self.step_logits.requires_grad:
            torch.autograd.backward(self.step_weights(), g.to(self.step_logits.dtype))
        return g

    # -- keeping the schedule valid ---------------------------------------------------
    @torch.no_grad()
    def project_(self) -> None:
        """Clamp step sizes below ``min_lr`` to it; stop on NaN/inf (see the module doc).

        Call after every meta-optimiser step.

        Raises:
            MdlibError: a step size or step-loss logit is NaN or inf.
        """
        for g in self.groups:
            u = self.log_alphas[self._keys[g]]
            a = torch.exp(self.rate * u)
            if not bool(torch.isfinite(a).all()):
                t = int((~torch.isfinite(a)).nonzero()[0])
                raise MdlibError(
                    f"learned step size of {g!r} at inner step {t + 1} became {float(a[t])}; "
                    f"lower the meta learning rate, the schedule's rate or the initial step size"
                )
            if self.min_lr > 0:
                u.clamp_(min=math.log(self.min_lr) / self.rate)
        if not bool(torch.isfinite(self.step_logits).all()):
            raise MdlibError("learned step-loss weights became non-finite; lower the meta learning rate")

    # -- reading the schedule ---------------------------------------------------------
    def table(self) -> dict[str, list[float]]:
        """``group -> [alpha at step 1, ..., alpha at step T]`` as floats (for figures)."""
        return {g: [float(v) for v in self.alpha(g).detach()] for g in self.groups}


def multi_step_query_loss(
    loss_fn: Callable[[Mapping[str, torch.Tensor], object], torch.Tensor],
    trajectory: Sequence[Mapping[str, torch.Tensor]],
    query: object,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MAML++'s multi-step loss: ``sum_t w_t * loss_fn(theta_t, query)``.

    Args:
        loss_fn: ``loss_fn(params, batch) -> Tensor ()``.
        trajectory: ``[theta_1, ..., theta_T]``, the parameters after each inner step
            (collect them with ``inner_loop(..., on_step=...)``).
        query: the query batch.
        weights: Tensor (T,) of step weights; ``None`` uses only the last step (MAML).

    Returns:
        ``(weighted_loss: Tensor (), per_step_losses: Tensor (T,))``.
    """
    if not trajectory:
        raise MdlibError("multi_step_query_loss: the trajectory is empty (0 inner steps)")
    losses = torch.stack([loss_fn(p, query) for p in trajectory])
    if weights is None:
        return losses[-1], losses
    if weights.shape != losses.shape:
        raise MdlibError(
            f"multi_step_query_loss: {weights.numel()} step weights for {losses.numel()} inner steps"
        )
    return (weights * losses).sum(), losses


@register("lslr")
class LSLR(MetaLearner):
    """MAML++'s learned per-layer per-step step sizes (+ learned multi-step loss weights).

    The schedule (:class:`LearnedSchedule`) is the ``lr`` of THE inner loop and is
    meta-trained with the initialisation by :func:`mdlib.meta.metatrain.meta_train_loop`
    (Adam on both). With ``msl=True`` the task objective is
    ``sum_t w_t L_query(theta_t)`` and ``w = softmax(step_logits)`` is learned by the
    look-ahead of :meth:`LearnedSchedule.step_weight_grad` (validation loss: the
    final-step query loss). Step sizes are stored in log space, so they stay positive;
    a NaN/inf one stops meta-training with :class:`MdlibError` (:meth:`post_step`).

    Args:
        params: the model's parameters (names of the step sizes).
        inner_steps: the inner steps the schedule covers (adapting with more is refused).
        inner_lr: the initial step size of every group and step.
        msl: use (and learn) the multi-step loss weights.
        group: parameter name -> group (:func:`per_tensor` default, or :func:`per_layer`).
        first_order: drop second-order terms (default True: cheaper; the step sizes
            still receive their first-order gradient).
        trainable: names that adapt (``None``: all; combine with ANIL's head).
        min_lr: the floor of every step size.
        rate: how fast the outer optimiser moves the schedule (:class:`LearnedSchedule`;
            saved with the learner).
    """

    def __init__(self, params: Mapping[str, torch.Tensor], inner_steps: int = 1, inner_lr: float = 0.01, *,
                 msl: bool = True, group: Callable[[str], str] = per_tensor, first_order: bool = True,
                 trainable: Iterable[str] | None = None, min_lr: float = 0.0, rate: float = 30.0) -> None:
        super().__init__(inner_steps, inner_lr, first_order=first_order, trainable=trainable)
        if inner_steps < 1:
            raise MdlibError("lslr: a learned schedule needs inner_steps >= 1")
        names = self.trainable if self.trainable is not None else list(params)
        self.msl = msl
        self.schedule = LearnedSchedule(names, inner_steps, inner_lr, group=group, min_lr=min_lr,
                                        learn_step_weights=msl, rate=rate)
        ref = next(iter(params.values()))
        self.schedule.to(device=ref.device, dtype=ref.dtype)

    @classmethod
    def build(cls, params, inner_steps, inner_lr, *, head=None, **kw):
        return cls(params, inner_steps, inner_lr, **kw)

    def step_sizes(self):
        return self.schedule

    def meta_parameters(self) -> dict[str, torch.Tensor]:
        out = {f"lslr.{k}": v for k, v in self.schedule.log_alphas.items()}
        if self.msl:
            out["lslr.step_logits"] = self.schedule.step_logits
        return out

    def adapt(self, loss_fn, params, batches, steps=None, *, create_graph=False, on_step=None):
        self.schedule.check_steps(self.inner_steps if steps is None else steps)
        return super().adapt(loss_fn, params, batches, steps, create_graph=create_graph, on_step=on_step)

    def task_gradient(self, loss_fn, params, task: TaskBatches):
        traj: list = []
        adapted, losses = self.adapt(loss_fn, params, task.support, create_graph=not self.first_order,
                                     on_step=lambda t, p: traj.append(p))
        if task.on_policy:
            raise MdlibError("lslr: the multi-step loss scores every inner step on one query set; "
                             "on-policy (RL) tasks have none")
        per_step = torch.stack([mean_loss(loss_fn, p, task.query) for p in traj])
        w = self.schedule.step_weights().detach()
        objective = (w * per_step).sum() if self.msl else per_step[-1]
        extra = {n: t for n, t in self.meta_parameters().items() if n != "lslr.step_logits"}
        targets = {**params, **extra}
        grads = torch.autograd.grad(objective, list(targets.values()), retain_graph=self.msl, allow_unused=True)
        out = {n: (torch.zeros_like(t) if g is None else g.detach()) for (n, t), g in zip(targets.items(), grads)}
        if self.msl:
            from mdlib.meta.reweight import alignment_grads

            g_w = alignment_grads(per_step, per_step[-1], list(params.values())).to(w.dtype)
            # through softmax(rate * v): d w / d v = rate * (diag(w) - w w^T)
            out["lslr.step_logits"] = self.schedule.rate * w * (g_w - (w * g_w).sum())
        return out, {"support_loss": losses[0] if losses else float("nan"),
                     "query_loss": float(per_step[-1].detach())}

    def state_dict(self) -> dict:
        # the stored numbers are log(alpha) / rate: a checkpoint needs the rate to read them
        return {**super().state_dict(), "rate": self.schedule.rate}

    def load_state_dict(self, state: Mapping) -> None:
        self.schedule.rate = float(state.get("rate", self.schedule.rate))
        super().load_state_dict(state)

    def post_step(self) -> dict:
        floor = self.schedule.min_lr
        before = sum(int((self.schedule.alpha(g).detach() <= floor).sum()) for g in self.schedule.groups) if floor > 0 else 0
        self.schedule.project_()
        return {"lr_clamped": before}
