"""THE inner loop: a few functional gradient steps on a task's support data.

Every adaptation in mdlib goes through :func:`inner_loop`: MAML, first-order MAML,
Reptile, Meta-SGD, per-layer per-step step sizes (LSLR), ANIL, and plain fine-tuning
of a pretrained model at evaluation time; the task-batched meta-step
(:mod:`mdlib.meta.batched`) runs it under ``torch.func.vmap`` with ``functional=True``. Parameters are a dict ``name -> Tensor``
(``dict(model.named_parameters())``); the loop never updates a tensor in place, it
builds a new dict per step::

    theta_{t+1}[n] = theta_t[n] - lr_t[n] * d loss(theta_t, batch_t) / d theta_t[n]

Two modes (notebook 03 shows both):

* ``create_graph=True`` (second order, MAML): the inner gradients stay in the autograd
  graph, so ``d query_loss(theta_T) / d theta_0`` contains the Hessian-vector terms.
* ``create_graph=False`` (first order): each inner gradient is *detached* (treated as
  a constant), so ``theta_T = theta_0 - sum_t lr_t * g_t`` with constant ``g_t``. The
  adapted parameters still require grad: differentiating the query loss with respect
  to ``theta_0`` then gives exactly ``d query_loss / d theta_T`` (the FOMAML gradient,
  identity Jacobian), and a learned step size ``lr`` (Meta-SGD, LSLR) still receives
  its first-order gradient ``-sum_t g_t * d query_loss / d theta_T``. Parameters that
  did not require grad become fresh leaves that do, so fine-tuning plain tensors works.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from mdlib.errors import MdlibError

Params = dict[str, torch.Tensor]
LossFn = Callable[[Mapping[str, torch.Tensor], Any], torch.Tensor]
LR = float | Mapping[str, Any] | Callable[[int, str], Any]

__all__ = ["inner_loop", "second_order_guard", "resolve_lr", "check_finite"]


def second_order_guard(create_graph: bool, params: Mapping[str, torch.Tensor] | None = None,
                       device: torch.device | str | None = None):
    """Context manager that disables cuDNN for second-order passes on a GPU.

    cuDNN's fused GRU/LSTM kernels have no double backward, so a MAML inner step with
    ``create_graph=True`` through ``nn.GRU`` fails on CUDA unless the forward uses the
    native kernels. On the CPU, or when ``create_graph`` is False, this is a no-op.

    Args:
        create_graph: whether the forward will be differentiated twice.
        params: the parameters (their device decides), or
        device: the device explicitly.
    """
    if device is None and params:
        device = next(iter(params.values())).device
    if create_graph and device is not None and torch.device(device).type == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def check_finite(value: torch.Tensor, what: str) -> None:
    """Raise :class:`MdlibError` naming ``what`` when ``value`` holds NaN or inf."""
    if not bool(torch.isfinite(value.detach()).all()):
        bad = "nan" if bool(torch.isnan(value.detach()).any()) else "inf"
        raise MdlibError(f"{what} is {bad}; lower the step size (lr) or check the data")


def resolve_lr(lr: LR, step: int, name: str) -> float | torch.Tensor:
    """The step size of parameter ``name`` at inner step ``step`` (0-based).

    Args:
        lr: a float (one step size), a dict ``name -> float | Tensor`` (Meta-SGD: a
            tensor shaped like the parameter, or a scalar), or a callable
            ``lr(step, name) -> float | Tensor`` (per-layer, per-step schedules, LSLR).
    """
    if callable(lr):
        value = lr(step, name)
    elif isinstance(lr, Mapping):
        if name not in lr:
            raise MdlibError(f"inner_loop: lr dict has no step size for parameter {name!r}")
        value = lr[name]
    else:
        value = lr
    if isinstance(value, torch.Tensor):
        return value
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MdlibError(f"inner_loop: lr for {name!r} at step {step} must be a number or "
                         f"a tensor, got {type(value).__name__}") from None
    if not math.isfinite(value):
        raise MdlibError(f"inner_loop: lr for {name!r} at step {step} is {value}; expected a finite number")
    return value


def _batch_at(batches: Sequence[Any] | Callable[[int], Any], step: int) -> Any:
    if callable(batches):
        return batches(step)
    return batches[step % len(batches)]


def _func_grads(loss_fn: LossFn, current: Params, names: list[str], batch: Any) -> tuple[list, torch.Tensor]:
    """``torch.func.grad`` of the support loss w.r.t. ``names``: (gradients in that order, the loss)."""
    def loss_of(sub: Params) -> tuple[torch.Tensor, torch.Tensor]:
        loss = loss_fn({**current, **sub}, batch)
        return loss, loss

    grads, loss = torch.func.grad(loss_of, has_aux=True)({n: current[n] for n in names})
    return [grads[n] for n in names], loss


def inner_loop(
    loss_fn: LossFn,
    params: Mapping[str, torch.Tensor],
    batches: Sequence[Any] | Callable[[int], Any],
    steps: int,
    lr: LR,
    *,
    create_graph: bool = False,
    trainable: Iterable[str] | None = None,
    on_step: Callable[[int, Params], None] | None = None,
    functional: bool = False,
) -> tuple[Params, list[float]]:
    """Adapt ``params`` with ``steps`` functional gradient-descent steps.

    Args:
        loss_fn: ``loss_fn(params, batch) -> Tensor ()``, e.g.
            ``lambda p, b: functional_call(model, p, (b,))``.
        params: ``name -> Tensor``; not modified. Usually the meta-parameters.
        batches: a non-empty list of support batches used cyclically (step ``t`` uses
            ``batches[t % len(batches)]``), or a callable ``step -> batch``.
        steps: number of inner steps, ``>= 0`` (0 returns the parameters unchanged).
        lr: a float, a dict ``name -> Tensor | float`` (Meta-SGD), or a callable
            ``lr(step, name) -> float | Tensor`` (per-layer per-step, LSLR).
        create_graph: keep the inner gradients in the graph (second-order MAML).
        trainable: the names that adapt (ANIL: only the output layer); the others
            pass through unchanged. ``None``: every parameter adapts.
        on_step: optional ``on_step(t, params_after_step_t)`` called after each step
            ``t = 1..steps`` (curves over inner steps in one pass; per-step losses of
            MAML++'s multi-step loss).
        functional: take the inner gradients with ``torch.func.grad`` instead of
            ``torch.autograd.grad``, so that the loop runs under ``torch.func.vmap`` (the
            task-batched meta-step, :mod:`mdlib.meta.batched`). The gradient is then
            always part of the outer graph (detached when ``create_graph`` is False, as
            above); the losses come back as detached Tensors () and the NaN checks are
            left to the caller (under vmap a value cannot steer Python control flow).

    Returns:
        ``(adapted_params, losses)``: a new dict with every name of ``params``, and the
        support loss (a float; a Tensor () when ``functional``) *before* each of the
        ``steps`` updates.

    Raises:
        MdlibError: ``steps < 0``, empty ``batches``, an unknown name in ``trainable``
            or a missing step size, or a NaN/inf loss or gradient (naming the step).
    """
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise MdlibError(f"inner_loop: steps must be a whole number >= 0, got {steps!r}")
    if steps < 0:
        raise MdlibError(f"inner_loop: steps must be >= 0, got {steps}")
    if not callable(batches) and steps > 0 and len(batches) == 0:
        raise MdlibError("inner_loop: no support batches to adapt on (batches is empty)")
    names = list(params)
    if trainable is None:
        train_names = names
    else:
        wanted = set(trainable)
        train_names = [n for n in names if n in wanted]
        unknown = sorted(wanted - set(names))
        if unknown:
            raise MdlibError(f"inner_loop: trainable names not among the parameters: {unknown[:5]}")
    current: Params = dict(params)
    if steps == 0:
        return current, []
    # Parameters that do not require grad (plain tensors, evaluation) become leaves that do.
    for n in train_names:
        if not (functional or current[n].requires_grad):
            current[n] = current[n].detach().requires_grad_(True)
    losses: list = []
    for t in range(steps):
        batch = _batch_at(batches, t)
        with second_order_guard(create_graph, current):
            if functional:
                # First order: the inner gradient is a constant, so compute it off the outer graph.
                point = current if create_graph else {n: v.detach() for n, v in current.items()}
                grads, loss = _func_grads(loss_fn, point, train_names, batch)
            else:
                loss = loss_fn(current, batch)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise MdlibError("inner_loop: loss_fn must return a scalar tensor")
        if functional:
            losses.append(loss.detach())
        else:
            check_finite(loss, f"inner loop step {t}: the support loss")
            losses.append(float(loss.detach()))
            grads = torch.autograd.grad(loss, [current[n] for n in train_names],
                                        create_graph=create_graph, allow_unused=True)
        new = dict(current)
        for n, g in zip(train_names, grads):
            if g is None:  # parameter not used by this batch: unchanged
                continue
            if not functional:
                check_finite(g, f"inner loop step {t}: the gradient of {n!r}")
            if not create_graph:
                g = g.detach()
            new[n] = current[n] - resolve_lr(lr, t, n) * g
        current = new
        if on_step is not None:
            on_step(t + 1, current)
    return current, losses
