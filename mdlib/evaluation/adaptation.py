"""Adaptation: fine-tune a generator's parameters on k target dialogues.

Every adaptation goes through :func:`mdlib.meta.inner.inner_loop`, the same code that
serves the meta-learners, so methods differ only in where their parameters start (and,
for Meta-SGD, in their step sizes). The fine-tuning step size and step count are fixed a
priori in the profile (:mod:`mdlib.profiles`), never chosen on a target's test set.
"""

from __future__ import annotations

import random
from typing import Iterable, Mapping, Sequence

import torch

from mdlib.data.text import Vocab
from mdlib.evaluation.data import collate_kw, pairs_of
from mdlib.meta.inner import inner_loop
from mdlib.models.batching import collate
from mdlib.models.contract import Generator
from mdlib.profiles import Profile, get_profile


def adapt(model: Generator, params: Mapping[str, torch.Tensor] | None, k_dialogues: Sequence[dict],
          profile: Profile | str, seed: int, *, vocab: Vocab, lr=None, steps: int | None = None,
          trainable: Iterable[str] | None = None, device=None) -> dict[str, torch.Tensor]:
    """Fine-tune ``params`` on the k target dialogues through the shared inner loop.

    Args:
        model: the generator (its own weights are not changed).
        params: the starting parameters (``None``: the model's own).
        k_dialogues: the target dialogues to adapt on (may be empty: no adaptation).
        profile: gives ``ft_steps``, ``ft_lr``, ``ft_batch`` and the input settings.
        seed: shuffles the pairs into support batches.
        lr: SGD step size, a per-parameter dict (Meta-SGD) or a schedule callable
            (default ``profile.ft_lr``); steps: default ``profile.ft_steps``.
        trainable: names of the parameters that adapt (``None``: all).

    Returns:
        The adapted parameters, detached (a new dict).
    """
    profile = get_profile(profile)
    params = dict(model.named_parameters()) if params is None else dict(params)
    steps = profile.ft_steps if steps is None else steps
    lr = profile.ft_lr if lr is None else lr
    pairs = pairs_of(k_dialogues, profile)
    if not pairs or steps == 0:
        return {k: v.detach() for k, v in params.items()}
    rng = random.Random(f"adapt/{seed}")
    order = list(range(len(pairs)))
    rng.shuffle(order)
    size = profile.ft_batch
    batches = [collate([pairs[i] for i in order[j:j + size]], vocab, device=device, **collate_kw(profile))
               for j in range(0, len(order), size)]

    def loss_fn(p, batch):
        return torch.func.functional_call(model, p, (batch,))

    was = model.training
    model.train()
    try:
        adapted, _ = inner_loop(loss_fn, params, batches, steps, lr, trainable=trainable)
    finally:
        model.train(was)
    return {k: v.detach() for k, v in adapted.items()}
