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

__all__ = ["lookahead_grads", "alignment_grads", "weights_from_grads", "reweight_step", "WeightTracker",
           "example_losses", "train_reweighted"]

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
    clip: float | None = None,
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
        clip: optional max gradient norm before the optimiser step.

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
        if clip:
            norm = torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.grad is not None], clip)
            check_finite(norm, "the gradient of the weighted training loss")
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


def example_losses(model: torch.nn.Module, params: Mapping[str, torch.Tensor], batch: Any) -> torch.Tensor:
    """Per-example mean token NLL of a generator: Tensor (B,) (the loss terms of a batch)."""
    nll = torch.func.functional_call(model, params, (batch,), {"reduction": "none"})  # (B, T)
    return nll.sum(1) / batch.tgt_mask.sum(1).clamp(min=1)


def train_reweighted(
    model: torch.nn.Module,
    train_pairs: Sequence[Any],
    val_pairs: Sequence[Any],
    vocab: Any,
    *,
    steps: int,
    batch_size: int = 32,
    val_batch_size: int = 32,
    lr: float = 2e-3,
    lookahead_lr: float = 0.1,
    uniform: bool = False,
    by_task: bool = False,
    labels: Sequence[Any] | None = None,
    clip: float | None = 5.0,
    seed: int = 0,
    progress: bool = False,
    device: Any = None,
    **collate_kw: Any,
) -> dict:
    """Train a generator in place (Adam) with learned example or source-task weights.

    Every step draws a training batch and a batch of the clean meta-validation pairs,
    computes the weights with :func:`lookahead_grads` (or uniform ones) and takes an
    Adam step on the weighted loss (:func:`reweight_step`).

    Args:
        model: a generator (:class:`~mdlib.models.contract.Generator`), updated in place.
        train_pairs: the (possibly corrupted) training pairs.
        val_pairs: the small clean meta-validation pairs.
        vocab: the vocabulary.
        steps: optimiser steps (``>= 1``).
        batch_size: training pairs per step (with ``by_task``: per task and step,
            ``max(1, batch_size // n_tasks)`` pairs of each task).
        lr: Adam's step size; lookahead_lr: the look-ahead SGD step size.
        uniform: the baseline (weights ``1/n``; no look-ahead).
        by_task: weight source *tasks* (``pair.domain``) instead of examples.
        labels: one label per training pair (e.g. ``"clean"``/``"corrupted"``) whose
            mean weights are tracked; ignored with ``by_task`` (labels are the domains).
        clip: gradient-norm clipping; seed: seeds the batch sampling.
        **collate_kw: ``use_acts``, ``max_src``, ``max_tgt``.

    Returns:
        ``{"mean_weight": label -> mean weight (uniform = 1), "weight_share": label ->
        share of all weight, "losses": [training loss per step], "history": [per-step
        weights per label (by_task only)]}``.
    """
    import random

    from mdlib.models.batching import collate

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise MdlibError(f"train_reweighted: steps must be a whole number >= 1, got {steps!r}")
    if not train_pairs or not val_pairs:
        raise MdlibError("train_reweighted: needs training pairs and clean meta-validation pairs")
    if labels is not None and len(labels) != len(train_pairs):
        raise MdlibError(f"train_reweighted: {len(labels)} labels for {len(train_pairs)} pairs")
    rng = random.Random(seed)
    params = dict(model.named_parameters())
    opt = torch.optim.Adam(params.values(), lr=lr)
    tracker = WeightTracker()
    tasks: dict[str, list[int]] = {}
    for i, p in enumerate(train_pairs):
        tasks.setdefault(p.domain, []).append(i)
    names = sorted(tasks)
    per_task = max(1, batch_size // max(1, len(names)))
    history: list[dict] = []
    losses: list[float] = []
    was = model.training
    model.train()
    from tqdm.auto import tqdm

    try:
        for _ in tqdm(range(steps), desc="reweight" if not uniform else "uniform", disable=not progress, leave=False):
            vb = collate(rng.sample(list(val_pairs), min(val_batch_size, len(val_pairs))), vocab,
                         device=device, **collate_kw)
            if by_task:
                batches = [collate([train_pairs[i] for i in rng.sample(tasks[t], min(per_task, len(tasks[t])))],
                                   vocab, device=device, **collate_kw) for t in names]

                def terms(p, batches=batches):
                    return torch.stack([torch.func.functional_call(model, p, (b,)) for b in batches])
                step_labels = names
            else:
                idx = rng.sample(range(len(train_pairs)), min(batch_size, len(train_pairs)))
                tb = collate([train_pairs[i] for i in idx], vocab, device=device, **collate_kw)

                def terms(p, tb=tb):
                    return example_losses(model, p, tb)
                step_labels = [labels[i] for i in idx] if labels is not None else ["all"] * len(idx)

            def val(p, vb=vb):
                return torch.func.functional_call(model, p, (vb,))

            w, loss = reweight_step(terms, params, val, opt, lookahead_lr=lookahead_lr, uniform=uniform, clip=clip)
            tracker.add(w, step_labels)
            losses.append(loss)
            if by_task:
                history.append(dict(zip(names, w.tolist())))
    finally:
        model.train(was)
    return {"mean_weight": tracker.mean(), "weight_share": tracker.share(), "losses": losses, "history": history}


def _check_terms(terms: Any, n: int | None = None) -> int:
    if not isinstance(terms, torch.Tensor) or terms.dim() != 1 or terms.numel() == 0:
        raise MdlibError("reweighting: the loss-terms function must return a non-empty 1-D tensor (n,)")
    if n is not None and terms.numel() != n:
        raise MdlibError(f"reweighting: expected {n} loss terms, got {terms.numel()}")
    return terms.numel()
