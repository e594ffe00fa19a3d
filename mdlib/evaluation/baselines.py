"""The baselines of notebook 02, on every target, k and seed:

* ``scratch``: a fresh random model trained on the k target dialogues only
  (``scratch_steps`` SGD steps at ``scratch_lr``);
* ``zero_shot``: pretrained on the source domains, not adapted (k = 0);
* ``pretrain_ft``: pretrained, then fine-tuned on the k target dialogues
  (``ft_steps`` SGD steps at ``ft_lr``).
"""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from mdlib.data.domains import SOURCES
from mdlib.evaluation.adaptation import adapt
from mdlib.evaluation.data import Data, sample_kshot, split_of
from mdlib.evaluation.pretraining import new_model, pretrain
from mdlib.evaluation.scoring import ActRecogniser, evaluate, lexicon_for
from mdlib.profiles import Profile, get_profile


def run_baselines(profile: Profile | str = "quick", *, seeds: Sequence[int] | None = None,
                  k_list: Sequence[int] | None = None, targets: Sequence[str] | None = None,
                  sources: Sequence[str] = SOURCES, data: Data | None = None, progress: bool = False,
                  device=None) -> list[dict]:
    """Scratch, zero-shot and pretrain+fine-tune on every target, k and seed.

    One pretrained model per seed; the k-shot samples are nested over k for a seed
    (:func:`mdlib.data.splits.kshot`). ``zero_shot`` does not use target data: it is
    evaluated once per (target, seed) and repeated at every k so it plots as a line.

    Returns:
        One row per (method, target, k, seed) with the metrics of :func:`evaluate`.
    """
    profile = get_profile(profile)
    seeds = list(profile.seeds if seeds is None else seeds)
    k_list = list(profile.k_list if k_list is None else k_list)
    targets = list(profile.targets if targets is None else targets)
    rows: list[dict] = []
    total = len(seeds) * len(targets) * (1 + 2 * sum(1 for k in k_list if k > 0))
    bar = tqdm(total=total, desc="baselines", disable=not progress)
    for seed in seeds:
        model, vocab, _ = pretrain(profile, seed, sources=sources, data=data, device=device)
        base = {k: v.detach() for k, v in model.named_parameters()}
        for target in targets:
            test = split_of(data, target, "test")[: profile.n_test]
            ref = ActRecogniser(split_of(data, target, "train")[:200], lexicon_for(test))
            zero = evaluate(model, base, test, vocab, profile, act_reference=ref, device=device)
            bar.update(1)
            for k in k_list:
                rows.append(dict(zero, method="zero_shot", target=target, k=k, seed=seed))
                if k == 0:
                    continue
                shots = sample_kshot(data, target, k, seed)
                ft = adapt(model, base, shots, profile, seed, vocab=vocab, device=device)
                rows.append(dict(evaluate(model, ft, test, vocab, profile, act_reference=ref, device=device),
                                 method="pretrain_ft", target=target, k=k, seed=seed))
                bar.update(1)
                fresh = new_model(vocab, profile, seed, device)
                sc = adapt(fresh, None, shots, profile, seed, vocab=vocab, lr=profile.scratch_lr,
                           steps=profile.scratch_steps, device=device)
                rows.append(dict(evaluate(fresh, sc, test, vocab, profile, act_reference=ref, device=device),
                                 method="scratch", target=target, k=k, seed=seed))
                bar.update(1)
    bar.close()
    return rows
