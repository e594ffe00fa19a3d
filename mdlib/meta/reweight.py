"""Learning to reweight examples and source tasks (Ren et al., ICML 2018): meta-objective 2.

Which training examples (or which source tasks) should a model trust? Ren et al. answer
with a one-step look-ahead. Give every loss term ``l_i`` (one training example, or one
source task's batch) a weight ``eps_i``, take one SGD step on the weighted loss and
measure the loss on a small *clean* meta-validation set::

    theta'(eps) = theta - lr * grad_theta sum_i eps_i l_i(theta)
    g_i = d L_val(theta'(eps)) / d eps_i   at eps = 0
        = -lr * grad L_val(theta) . grad l_i(theta)

A term whose gradient points the same way as the clean validation gradient gets
``g_i < 0``: taking a step on it would lower the validation loss. The weights are
``w_i = max(-g_i, 0) / sum_j max(-g_j, 0)``; examples that would *raise* the clean
loss (e.g. corrupted responses) get weight 0. The training step then uses
``sum_i w_i l_i`` with any optimiser.

:func:`lookahead_grads` computes ``g`` exactly by differentiating through the one step
(the step is taken by :func:`mdlib.meta.inner.inner_loop` with ``create_graph=True``,
so no second inner loop exists); :func:`alignment_grads` computes the same quantity
from explicit gradient dot products (``n + 1`` backward passes instead of two), which
also serves MAML++'s step-loss weights in :mod:`mdlib.meta.schedules`.
Notebook 05 uses both with corrupted source responses and with source-domain weights.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from mdlib.errors import MdlibError
from mdlib.meta.inner import check_finite, inner_loop

__all__ = ["lookahead_grads", "alignment_grads", "weights_from_grads", "reweight_step", "WeightTracker"]

TermsFn = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]
ValFn = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


def lookahead_grads(
    terms_fn: TermsFn,
    params: Mapping[str, torch.Tensor],
    val_loss_fn: ValFn,
    lr: float,
    *,
    trainable: Iterable[str] | None = None,
) -> torch.Tensor:
    """The reweighting gradient ``d L_val(theta'(eps)) / d eps`` at ``eps = 0``.

    Args:
        terms_fn: ``terms_fn(params) -> Tensor (n,)``, the ``n`` loss terms (per-example
            losses of a batch, or one loss per source task).
        params: ``name -> Tensor`` (the current model parameters).
        val_loss_fn: ``val_loss_fn(params) -> Tensor ()``, the clean meta-validation loss.
        lr: the step size of the look-ahead SGD step (``> 0``).
        trainable: the names the look-ahead step moves (``None``: all).

    Returns:
        Tensor (n,) detached: ``g_i``; negative means "a step on term i helps".

    Raises:
        MdlibError: ``lr <= 0``, ``terms_fn`` not returning a 1-D tensor, or a
            non-finite loss or gradient.
    """
    if not lr > 0:
        raise MdlibError(f"lookahead_grads: lr must be > 0, got {lr}")
    probe = {n: p.detach().requires_grad_(p.is_floating_point()) for n, p in params.items()}
    with torch.no_grad():
        n_terms = _check_terms(terms_fn(probe))
    dtype = next(iter(probe.values())).dtype
    eps = torch.zeros(n_terms, dtype=dtype, requires_grad=True)

    def weighted(p: Mapping[str, torch.Tensor], _batch: Any) -> torch.Tensor:
        terms = terms_fn(p)
        _check_terms(terms, n_terms)
        return (eps * terms).sum()

    stepped, _ = inner_loop(weighted, probe, [None], 1, lr, create_graph=True, trainable=trainable)
    val = val_loss_fn(stepped)
    check_finite(val, "the meta-validation loss")
    (g,) = torch.autograd.grad(val, eps)
    return g.detach()


def alignment_grads(
    terms: torch.Tensor,
    val_loss: torch.Tensor,
    params: Sequence[torch.Tensor],
    lr: float = 1.0,
) -> torch.Tensor:
    """The same look-ahead gradient from gradient dot products: ``-lr * <grad l_i, grad L_val>``.

    Args:
        terms: Tensor (n,), loss terms built from ``params`` (graph kept).
        val_loss: Tensor (), the meta-validation loss built from ``params``.
        params: the tensors to differentiate with respect to.
        lr: the look-ahead step size (a positive scale only).

    Returns:
        Tensor (n,) detached.
    """
    n = _check_terms(terms)
    params = list(params)
    gv = torch.autograd.grad(val_loss, params, retain_graph=True, allow_unused=True)
    out = torch.zeros(n, dtype=terms.dtype)
    for i in range(n):
        gi = torch.autograd.grad(terms[i], params, retain_graph=True, allow_unused=True)
        dot = sum((a * b).sum() for a, b in zip(gi, gv) if a is not None and b is not None)
        out[i] = -lr * float(dot) if not isinstance(dot, int) else 0.0
    return out


def weights_from_grads(g: torch.Tensor) -> torch.Tensor:
    """Ren et al.'s weights: ``w = max(-g, 0) / sum max(-g, 0)``.

    Args:
        g: Tensor (n,) from :func:`lookahead_grads` or :func:`alignment_grads`.

    Returns:
        Tensor (n,), non-negative, summing to 1; all zeros when no term helps (Ren et
        al. then skip the update: multiplying by zero weights does exactly that).
    """
    check_finite(g, "the reweighting gradient")
    w = torch.clamp(-g, min=0.0)
    total = w.sum()
    return w / total if float(total) > 0 else torch.zeros_like(w)


def reweight_step(
    terms_fn: TermsFn,
    params: Mapping[str, torch.Tensor],
    val_loss_fn: ValFn,
    optimizer: torch.optim.Optimizer,
    *,
    lookahead_lr: float,
    uniform: bool = False,
    trainable: Iterable[str] | None = None,
) -> tuple[torch.Tensor, float]:
    """One training step on ``sum_i w_i l_i`` with learned (or uniform) weights.

    Args:
        terms_fn: ``terms_fn(params) -> Tensor (n,)`` loss terms of this batch.
        params: ``name -> Parameter``: the leaves that ``optimizer`` updates.
        val_loss_fn: the clean meta-validation loss (ignored when ``uniform``).
        optimizer: a torch optimiser over ``params`` (e.g. Adam).
        lookahead_lr: step size of the look-ahead SGD step.
        uniform: the baseline: ``w_i = 1/n``.
        trainable: names the look-ahead moves (``None``: all).

    Returns:
        ``(weights: Tensor (n,), weighted training loss: float)``.
    """
    if uniform:
        with torch.no_grad():
            n = _check_terms(terms_fn(params))
        w = torch.full((n,), 1.0 / n)
    else:
        w = weights_from_grads(lookahead_grads(terms_fn, params, val_loss_fn, lookahead_lr, trainable=trainable))
    optimizer.zero_grad()
    terms = terms_fn(params)
    loss = (w.to(terms.dtype) * terms).sum()
    check_finite(loss, "the weighted training loss")
    if loss.requires_grad:
        loss.backward()
        optimizer.step()
    return w, float(loss.detach())


class WeightTracker:
    """Running sums of learned weights per label (clean / corrupted, or per source task).

    ``add(weights, labels)`` with ``weights`` Tensor (n,) and ``labels`` a sequence of n
    hashables; ``mean()`` is the average weight per label, ``share()`` the fraction of
    the total weight per label. Weights are rescaled by ``n`` so that uniform weights
    average 1.0 whatever the batch size.
    """

    def __init__(self) -> None:
        self.sum: dict[Any, float] = {}
        self.count: dict[Any, int] = {}

    def add(self, weights: torch.Tensor, labels: Sequence[Any]) -> None:
        if len(labels) != weights.numel():
            raise MdlibError(f"WeightTracker: {weights.numel()} weights for {len(labels)} labels")
        n = weights.numel()
        for w, lab in zip(weights.tolist(), labels):
            self.sum[lab] = self.sum.get(lab, 0.0) + w * n
            self.count[lab] = self.count.get(lab, 0) + 1

    def mean(self) -> dict[Any, float]:
        return {k: self.sum[k] / self.count[k] for k in self.sum}

    def share(self) -> dict[Any, float]:
        total = sum(self.sum.values())
        return {k: (v / total if total > 0 else 0.0) for k, v in self.sum.items()}


def _check_terms(terms: Any, n: int | None = None) -> int:
    if not isinstance(terms, torch.Tensor) or terms.dim() != 1 or terms.numel() == 0:
        raise MdlibError("reweighting: the loss-terms function must return a non-empty 1-D tensor (n,)")
    if n is not None and terms.numel() != n:
        raise MdlibError(f"reweighting: expected {n} loss terms, got {terms.numel()}")
    return terms.numel()
