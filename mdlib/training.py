"""Supervised training of a generator: mini-batches, Adam, clipping, early stopping.

Used for multi-domain pretraining on the source domains (notebook 02). Adaptation to a
target never uses this loop: it goes through :func:`mdlib.meta.inner.inner_loop`
(:mod:`mdlib.evaluation`), like every meta-learner.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from mdlib.data.pairs import Pair
from mdlib.data.text import Vocab
from mdlib.errors import MdlibError
from mdlib.models.batching import iterate_batches


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        curve: one dict per epoch: ``epoch, step, train_loss, valid_loss`` (mean token NLL).
        best_epoch: the epoch whose weights the model holds at the end (by validation loss).
        best_valid: its validation loss (``nan`` without validation pairs).
        steps: optimiser steps taken.
        step_losses: the training loss of every step.
    """

    curve: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: float = math.nan
    steps: int = 0
    step_losses: list[float] = field(default_factory=list)


@torch.no_grad()
def corpus_nll(model, pairs: Sequence[Pair], vocab: Vocab, *, params=None, batch_size: int = 64,
               device=None, **collate_kw) -> tuple[float, int]:
    """Summed token NLL and number of target tokens of ``pairs`` (for perplexity).

    Args:
        params: optional parameter dict (evaluated with ``torch.func.functional_call``).
    """
    was = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in iterate_batches(pairs, vocab, batch_size, device=device, **collate_kw):
            if params is None:
                s = model(batch, reduction="sum")
            else:
                s = torch.func.functional_call(model, params, (batch,), {"reduction": "sum"})
            total += float(s)
            count += int(batch.tgt_mask.sum())
    finally:
        model.train(was)
    return total, count


def train(model, train_pairs: Sequence[Pair], vocab: Vocab, *, valid_pairs: Sequence[Pair] | None = None,
          epochs: int = 10, batch_size: int = 32, lr: float = 2e-3, clip: float = 5.0,
          patience: int = 2, max_steps: int | None = None, seed: int = 0, progress: bool = False,
          device=None, **collate_kw) -> TrainResult:
    """Train ``model`` in place with Adam; keep the weights of the best validation epoch.

    Args:
        model: a generator (:class:`~mdlib.models.contract.Generator`; its parameters are updated
            by the optimiser).
        train_pairs, valid_pairs: training and early-stopping pairs.
        epochs: passes over ``train_pairs``; patience: epochs without validation
            improvement before stopping; max_steps: optional cap on optimiser steps.
        clip: gradient-norm clipping threshold.
        seed: seeds the shuffling (``random.Random(seed)``).
        progress: show a tqdm bar.
        **collate_kw: ``use_acts``, ``max_src``, ``max_tgt`` for :func:`~mdlib.models.batching.collate`.

    Raises:
        MdlibError: when a loss or gradient becomes NaN/inf (naming the step); the model
            is then left with its last finite weights and nothing is saved.
    """
    if not train_pairs:
        raise MdlibError("train: no training pairs")
    rng = random.Random(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    result = TrainResult()
    best_state = None
    bad_epochs = 0
    n_batches = math.ceil(len(train_pairs) / batch_size)
    total = epochs * n_batches if max_steps is None else min(max_steps, epochs * n_batches)
    bar = tqdm(total=total, desc="train", disable=not progress, leave=False)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            losses = []
            for batch in iterate_batches(train_pairs, vocab, batch_size, shuffle=True, rng=rng,
                                         device=device, **collate_kw):
                loss = model(batch)
                if not torch.isfinite(loss):
                    raise MdlibError(f"training step {result.steps + 1} (epoch {epoch}): loss is "
                                     f"{loss.item()}; lower the learning rate (lr={lr})")
                opt.zero_grad()
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                if not torch.isfinite(norm):
                    raise MdlibError(f"training step {result.steps + 1} (epoch {epoch}): gradient is "
                                     f"not finite; lower the learning rate (lr={lr})")
                opt.step()
                result.steps += 1
                value = loss.item()
                losses.append(value)
                result.step_losses.append(value)
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}")
                if max_steps is not None and result.steps >= max_steps:
                    break
            row = {"epoch": epoch, "step": result.steps, "train_loss": sum(losses) / len(losses)}
            if valid_pairs:
                s, n = corpus_nll(model, valid_pairs, vocab, device=device, **collate_kw)
                row["valid_loss"] = s / max(n, 1)
                if not (row["valid_loss"] >= result.best_valid):  # improvement (or first epoch)
                    result.best_valid, result.best_epoch = row["valid_loss"], epoch
                    best_state = copy.deepcopy(model.state_dict())
                    bad_epochs = 0
                else:
                    bad_epochs += 1
            else:
                result.best_epoch = epoch
            result.curve.append(row)
            if (max_steps is not None and result.steps >= max_steps) or bad_epochs >= patience:
                break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result
