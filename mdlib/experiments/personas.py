"""The persona probe: does a meta-learned start adapt to a new persona better than
multi-task training + fine-tuning at equal compute? (docs/personas.md, docs/persona_probe.md)

One run, one seed (:func:`run_persona_probe`):

1. **Pretrain** one generator on the meta-training personas' pools
   (:func:`mdlib.evaluation.pretrain` on :meth:`PersonaSplits.data`; acts with values in,
   the persona never an input).
2. **Meta-train** copies of that same start for the same number of outer steps on the
   same episodes (one :class:`~mdlib.data.splits.EpisodeSampler` draw, collated once and
   shared), with the same outer optimiser (:func:`mdlib.meta.metatrain.meta_train_loop`):

   * ``multitask``: the compute-matched control, the registry's ``multitask`` learner (no
     inner loop: the plain gradient of the episode's query loss, i.e. MAML with 0 inner steps);
   * ``fomaml``, ``reptile``, ``maml`` (second order): :func:`mdlib.meta.learners.make_learner`
     with ``inner_steps`` SGD steps of ``inner_lr`` on the episode's support.

   ``pretrain_ft`` is the pretrained model itself (fine-tuned only at test).
3. **Choose step sizes on validation personas only**: for every method, k and number of
   adaptation steps, the SGD step size of ``adapt_lr_grid`` with the best mean persona
   accuracy on the validation personas' evaluation dialogues (ties: lower perplexity);
   a step size that diverges is out.
4. **Test**: on every test persona, adapt on ``k`` support dialogues
   (:func:`~mdlib.data.personas.persona_kshot`, nested over k) for each number of steps
   and score persona accuracy, slot error rate, BLEU and perplexity on the persona's test
   dialogues (greedy decoding).
5. **Ceiling**: the oracle accuracy (:func:`~mdlib.data.personas.oracle_accuracy`) of the
   same support sets.

:func:`summarise`, :func:`best_meta_learner` and :func:`paired_rows` turn the runs of
several seeds into the table and the paired differences that ``scripts/persona_probe.py``
prints.
"""

from __future__ import annotations

import copy
import math
import time
from collections import defaultdict
from typing import Mapping, Sequence

import torch
from tqdm.auto import tqdm

from mdlib.data import personas as persona_family
from mdlib.data.personas import (PersonaSplits, make_persona, oracle_accuracy, persona_kshot,
                                 persona_pairs, persona_profile, persona_seed, phrasing_prior, score_outputs)
from mdlib.data.splits import EpisodeSampler
from mdlib.data.text import detokenise
from mdlib.errors import MdlibError
from mdlib.evaluation import adapt, collate_kw, generate, pretrain
from mdlib.meta.learners import MetaLearner, TaskBatches, make_learner
from mdlib.meta.metatrain import meta_train_loop
from mdlib.metrics import corpus_bleu, perplexity
from mdlib.models.batching import collate
from mdlib.profiles import Profile
from mdlib.stats import BOUNDS, interval, paired_difference
from mdlib.training import corpus_nll

__all__ = ["PROBE_METHODS", "META_METHODS", "PROBE_PROFILE", "PROBE_SPLITS", "probe_learner",
           "probe_profile", "adapt_curve", "score_persona", "run_persona_probe", "summarise",
           "validation_table", "best_meta_learner", "paired_rows", "METRIC_BOUNDS"]

PROBE_METHODS = ("pretrain_ft", "multitask", "fomaml", "reptile", "maml")
#: The methods that are meta-trained (``pretrain_ft`` is not).
META_METHODS = ("multitask", "fomaml", "reptile", "maml")
#: Changes to the named profile: a small generator and a CPU budget. ``ft_batch`` is
#: large so that a support set of k <= 3 dialogues is one batch (:func:`adapt_curve`).
PROBE_PROFILE = {"emb": 32, "hidden": 64, "epochs": 3, "patience": 1, "ft_batch": 256, "max_len": 30}
#: 64 meta-training personas (the default), 8 validation and 8 test personas (the family
#: has 16 test personas; 8 keep a seed within minutes on one CPU thread).
PROBE_SPLITS = PersonaSplits(n_train=64, n_valid=8, n_test=8)
#: Bounds of each reported metric for :func:`mdlib.stats.interval`. Slot error rate has
#: none: it counts values said that are not in the acts too, so it can exceed 1.
METRIC_BOUNDS = {"persona_acc": BOUNDS["persona_accuracy"], "bleu": BOUNDS["bleu"], "ser": None, "ppl": None}


def probe_learner(method: str, params: Mapping[str, torch.Tensor], inner_steps: int, inner_lr: float) -> MetaLearner:
    """The learner of a meta-trained method (:data:`META_METHODS`)."""
    if method not in META_METHODS:
        raise MdlibError(f"persona probe: unknown method {method!r}; expected one of {', '.join(PROBE_METHODS)}")
    return make_learner(method, params, inner_steps, inner_lr)


def probe_profile(profile: Profile | str, splits: PersonaSplits, **changes) -> Profile:
    """``profile`` with the family's input (:func:`persona_profile`), :data:`PROBE_PROFILE`,
    pretraining on each meta-training persona's whole pool (``n_train = splits.pool``,
    early stopping on its ``valid_dialogues``) and ``changes``."""
    fields = dict(PROBE_PROFILE, n_train=splits.pool, n_valid=splits.valid_dialogues)
    fields.update(changes)
    return persona_profile(profile).replace(**fields)


def adapt_curve(model, params: Mapping[str, torch.Tensor], support: Sequence[dict], profile: Profile, seed: int,
                vocab, lr: float, steps: Sequence[int], device=None) -> dict[int, dict[str, torch.Tensor]]:
    """Parameters after each number of SGD steps in ``steps``, from one continued run.

    Each call of :func:`mdlib.evaluation.adapt` continues from the previous one's result;
    that equals one run of ``max(steps)`` steps because the support is one batch (the
    inner loop uses the same batch at every step).

    Raises:
        MdlibError: the support has more pairs than ``profile.ft_batch`` (more than one batch).
    """
    n_pairs = len(persona_pairs(support))
    if n_pairs > profile.ft_batch:
        raise MdlibError(f"adapt_curve: {n_pairs} support pairs do not fit one batch (ft_batch "
                         f"{profile.ft_batch}); raise ft_batch")
    out, current, done = {}, params, 0
    for s in sorted(set(steps)):
        current = adapt(model, current, support, profile, seed, vocab=vocab, lr=lr, steps=s - done, device=device)
        out[s], done = current, s
    return out


def score_persona(model, params, dialogues: Sequence[dict], vocab, profile: Profile, device=None) -> dict:
    """Persona accuracy, slot error rate, BLEU and perplexity of greedy outputs on one
    persona's dialogues: ``{"persona_acc", "ser", "bleu", "ppl", "n_acts"}``."""
    pairs = persona_pairs(dialogues)
    if not pairs:
        raise MdlibError("score_persona: the dialogues have no system turns")
    hyps = generate(model, params, pairs, vocab, profile, device=device)
    nll, n_tok = corpus_nll(model, pairs, vocab, params=params, device=device, **collate_kw(profile))
    scored = score_outputs(hyps, pairs)
    return {"persona_acc": scored["persona_acc"], "ser": scored["ser"], "n_acts": scored["n_acts"],
            "bleu": corpus_bleu([detokenise(h) for h in hyps], [detokenise(p.response) for p in pairs]),
            "ppl": perplexity(nll, n_tok)}


def _episode(episode, vocab, profile: Profile, device) -> TaskBatches:
    kw = collate_kw(profile)
    return TaskBatches(episode.task, [collate(persona_pairs(episode.support), vocab, device=device, **kw)],
                       [collate(persona_pairs(episode.query), vocab, device=device, **kw)])


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else math.nan


def run_persona_probe(seed: int, *, splits: PersonaSplits = PROBE_SPLITS, profile: Profile | str = "quick",
                      profile_changes: Mapping | None = None, methods: Sequence[str] = PROBE_METHODS,
                      k_values: Sequence[int] = (1, 3), adapt_steps: Sequence[int] = (0, 1, 3, 10),
                      meta_steps: int = 150, meta_batch: int = 4, k_support: int = 2, k_query: int = 2,
                      inner_steps: int = 1, inner_lr: float = 0.3, outer_lr: float = 1e-3,
                      adapt_lr_grid: Sequence[float] = (0.03, 0.1, 0.3, 1.0), n_select: int | None = 5,
                      test: bool = True, cache: bool = True, progress: bool = False, device=None) -> dict:
    """One seed of the probe (see the module docstring for the steps).

    Args:
        seed: pretraining initialisation, the episode sampler and the k-shot draws.
        splits: the persona splits (meta-training, validation, test personas).
        profile, profile_changes: the generator and pretraining settings
            (:func:`probe_profile`).
        methods: of :data:`PROBE_METHODS`.
        k_values: support dialogues at test (and in step-size selection).
        adapt_steps: SGD steps of test-time adaptation (0 = no adaptation).
        meta_steps, meta_batch: outer steps and personas per meta-batch, the same for
            every meta-trained method; k_support, k_query: dialogues per episode.
        inner_steps, inner_lr: the inner loop of fomaml, reptile and maml in meta-training.
        outer_lr: Adam's step size in meta-training (every method).
        adapt_lr_grid: the SGD step sizes each method chooses from on validation personas.
        n_select: evaluation dialogues per validation persona used to choose step sizes
            (``None``: all ``splits.test_dialogues``).
        test: score the test personas; ``False`` stops after the step-size choice, so a
            study of settings (:func:`validation_table`) never sees a test persona.
        cache: reuse a cached pretrained model (``runs/cache``).

    Returns:
        ``{"seed", "config", "rows", "oracle", "selection", "meta", "pretrain", "seconds"}``:
        ``rows`` one dict per (method, k, steps, test persona) with the metrics of
        :func:`score_persona` and the step size used; ``oracle`` one dict per (k, test
        persona) with the two ceilings; ``selection[method][k][steps]`` the chosen step size
        and the validation persona accuracy of every grid value; ``meta[method]`` the
        meta-training query-loss curve and seconds.
    """
    unknown = [m for m in methods if m not in PROBE_METHODS]
    if unknown:
        raise MdlibError(f"persona probe: unknown method(s) {unknown}; expected some of {', '.join(PROBE_METHODS)}")
    if any(k < 1 or k > splits.pool for k in k_values):
        raise MdlibError(f"persona probe: k_values {list(k_values)} must lie in 1..{splits.pool} (the pool)")
    if any(s < 0 for s in adapt_steps) or not adapt_steps:
        raise MdlibError(f"persona probe: adapt_steps {list(adapt_steps)} must be whole numbers >= 0")
    if splits.pool < k_support + k_query:
        raise MdlibError(f"persona probe: k_support + k_query = {k_support + k_query} exceeds the pool ({splits.pool})")
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    prof = probe_profile(profile, splits, **dict(profile_changes or {}))
    config = {"seed": seed, "splits": {f: getattr(splits, f) for f in ("n_train", "n_valid", "n_test", "pool",
                                                                     "valid_dialogues", "test_dialogues", "spec")},
              "profile": prof.to_dict(), "methods": list(methods), "k_values": list(k_values),
              "adapt_steps": list(adapt_steps), "meta_steps": meta_steps, "meta_batch": meta_batch,
              "k_support": k_support, "k_query": k_query, "inner_steps": inner_steps, "inner_lr": inner_lr,
              "outer_lr": outer_lr, "adapt_lr_grid": list(adapt_lr_grid), "n_select": n_select,
              "frame_noise": persona_family.FRAME_NOISE}  # read now: a study may override it
    train_names = splits.names("train")

    # 1. one pretrained start for every method
    t0 = time.perf_counter()
    model, vocab, info = pretrain(prof, seed, sources=train_names, data=splits.data(), device=device,
                                  cache=cache, progress=progress)
    model.eval()
    base = {n: t.detach() for n, t in model.named_parameters()}
    seconds["pretrain"] = time.perf_counter() - t0

    # 2. the same episodes, collated once, for every meta-trained method
    sampler = EpisodeSampler(splits.tasks("train"), k_support, k_query, seed)
    batches = [[_episode(ep, vocab, prof, device) for ep in sampler.sample(meta_batch)] for _ in range(meta_steps)]
    starts: dict[str, dict[str, torch.Tensor]] = {}
    meta: dict[str, dict] = {}
    for method in methods:
        if method == "pretrain_ft":
            starts[method] = base
            continue
        t0 = time.perf_counter()
        learner_model = copy.deepcopy(model)
        params = dict(learner_model.named_parameters())
        learner = probe_learner(method, params, inner_steps, inner_lr)

        def loss_fn(p, batch, _m=learner_model):
            return torch.func.functional_call(_m, p, (batch,))

        learner_model.train()
        hist = meta_train_loop(learner, loss_fn, params, lambda step: batches[step - 1], meta_steps=meta_steps,
                               outer_lr=outer_lr, progress=progress)
        starts[method] = {n: t.detach() for n, t in params.items()}
        meta[method] = {"query_loss": [r["query_loss"] for r in hist.steps],
                        "seconds": time.perf_counter() - t0}
    seconds["meta_train"] = sum(m["seconds"] for m in meta.values())

    # 3. each method's step size per (k, steps), on validation personas only
    t0 = time.perf_counter()
    moving = sorted(s for s in set(adapt_steps) if s > 0)
    valid_names = splits.names("valid")
    selection: dict[str, dict] = {}
    bar = tqdm(total=len(methods) * len(k_values) * len(valid_names) * len(adapt_lr_grid), desc="step sizes",
               disable=not progress, leave=False)
    for method in methods:
        selection[method] = {}
        for k in k_values:
            acc = {lr: {s: [] for s in moving} for lr in adapt_lr_grid}
            ppl = {lr: {s: [] for s in moving} for lr in adapt_lr_grid}
            diverged: set[float] = set()
            for name in valid_names:
                support = persona_kshot(name, k, seed, splits, roles=("valid",))
                evals = splits.dialogues(name, "test")[:n_select]
                for lr in adapt_lr_grid:
                    bar.update(1)
                    if lr in diverged or not moving:
                        continue
                    try:
                        curve = adapt_curve(model, starts[method], support, prof, seed, vocab, lr, moving, device)
                    except MdlibError:  # a NaN/inf loss: this step size is out for the method
                        diverged.add(lr)
                        continue
                    for s, p in curve.items():
                        r = score_persona(model, p, evals, vocab, prof, device)
                        acc[lr][s].append(r["persona_acc"])
                        ppl[lr][s].append(r["ppl"])
            ok = [lr for lr in adapt_lr_grid if lr not in diverged]
            if moving and not ok:
                raise MdlibError(f"persona probe: every adaptation step size diverged for {method} at k={k}")
            selection[method][k] = {
                s: {"lr": max(ok, key=lambda lr: (_mean(acc[lr][s]), -_mean(ppl[lr][s]), -lr)),
                    "valid_acc": {str(lr): (None if lr in diverged else _mean(acc[lr][s])) for lr in adapt_lr_grid}}
                for s in moving}
    bar.close()
    seconds["select"] = time.perf_counter() - t0
    result = {"seed": seed, "config": config, "rows": [], "oracle": [], "selection": selection,
              "meta": meta, "pretrain": {"curve": info["curve"], "cache_hit": info["cache_hit"]},
              "seconds": seconds}
    if not test:
        seconds["total"] = time.perf_counter() - t_start
        return result

    # 4. test personas: adapt with the chosen step sizes, score on their test dialogues
    t0 = time.perf_counter()
    rows: list[dict] = []
    test_names = splits.names("test")
    bar = tqdm(total=len(methods) * len(test_names), desc="test", disable=not progress, leave=False)
    for method in methods:
        for name in test_names:
            test = splits.dialogues(name, "test")
            unadapted = score_persona(model, starts[method], test, vocab, prof, device) if 0 in adapt_steps else None
            for k in k_values:
                support = persona_kshot(name, k, seed, splits, roles=("test",))
                chosen = selection[method][k]
                by_lr: dict[float, list[int]] = defaultdict(list)
                for s in moving:
                    by_lr[chosen[s]["lr"]].append(s)
                adapted = {}
                for lr, steps in by_lr.items():
                    adapted.update(adapt_curve(model, starts[method], support, prof, seed, vocab, lr, steps, device))
                for s in sorted(set(adapt_steps)):
                    r = unadapted if s == 0 else score_persona(model, adapted[s], test, vocab, prof, device)
                    rows.append({"method": method, "k": k, "steps": s, "persona": name, "seed": seed,
                                 "lr": None if s == 0 else chosen[s]["lr"], **r})
            bar.update(1)
    bar.close()
    seconds["test"] = time.perf_counter() - t0

    # 5. the ceiling of the same support sets
    prior = phrasing_prior(train_names)
    oracle = []
    for k in k_values:
        for name in test_names:
            persona, support = make_persona(persona_seed(name)), persona_kshot(name, k, seed, splits, roles=("test",))
            test = splits.dialogues(name, "test")
            oracle.append({"k": k, "persona": name, "seed": seed,
                           **{g: oracle_accuracy(persona, support, test, prior, g) for g in ("prior", "factors")}})
    seconds["total"] = time.perf_counter() - t_start
    return dict(result, rows=rows, oracle=oracle)


# ------------------------------------------------------------------------- summaries
def _per_seed(runs: Sequence[Mapping], metric: str) -> dict[tuple, dict[int, float]]:
    """``{(method, k, steps): {seed: mean of metric over the seed's test personas}}``."""
    cells: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        for r in run["rows"]:
            cells[(r["method"], r["k"], r["steps"])][r["seed"]].append(r[metric])
    return {c: {s: _mean(v) for s, v in by_seed.items()} for c, by_seed in cells.items()}


def summarise(runs: Sequence[Mapping], metrics: Sequence[str] = ("persona_acc", "ser", "bleu", "ppl")) -> dict:
    """Means over seeds of the per-seed means over test personas.

    Returns:
        ``{"cells": [{"method", "k", "steps", metric: {"mean", "low", "high", ...}}],
        "oracle": {k: {"prior", "factors"}}}`` (intervals over seeds, :func:`mdlib.stats.interval`).
    """
    per = {m: _per_seed(runs, m) for m in metrics}
    cells = []
    for key in sorted(per[metrics[0]], key=lambda c: (PROBE_METHODS.index(c[0]), c[1], c[2])):
        row = {"method": key[0], "k": key[1], "steps": key[2]}
        for m in metrics:
            row[m] = interval(list(per[m][key].values()), METRIC_BOUNDS.get(m))
        cells.append(row)
    oracle: dict[int, dict] = {}
    for g in ("prior", "factors"):
        seeds: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
        for run in runs:
            for r in run["oracle"]:
                seeds[r["k"]][r["seed"]].append(r[g])
        for k, by_seed in seeds.items():
            oracle.setdefault(k, {})[g] = _mean([_mean(v) for v in by_seed.values()])
    return {"cells": cells, "oracle": oracle}


def validation_table(runs: Sequence[Mapping]) -> dict[tuple, float]:
    """``{(method, k, steps): validation persona accuracy at the chosen step size}``, the mean
    over seeds: what a study of settings may look at (no test persona involved)."""
    cells = defaultdict(list)
    for run in runs:
        for method, by_k in run["selection"].items():
            for k, by_steps in by_k.items():
                for steps, cell in by_steps.items():
                    cells[(method, int(k), int(steps))].append(cell["valid_acc"][str(cell["lr"])])
    return {c: _mean(v) for c, v in cells.items()}


def best_meta_learner(runs: Sequence[Mapping]) -> str:
    """The meta-learner (not the control) with the best *validation* persona accuracy at its
    chosen step sizes, averaged over seeds, k and steps: chosen without the test personas."""
    scores = defaultdict(list)
    for run in runs:
        for method, by_k in run["selection"].items():
            if method in ("pretrain_ft", "multitask"):
                continue
            for by_steps in by_k.values():
                for cell in by_steps.values():
                    scores[method].append(cell["valid_acc"][str(cell["lr"])])
    if not scores:
        raise MdlibError("best_meta_learner: the runs have no meta-learner besides the controls")
    return max(scores, key=lambda m: _mean(scores[m]))


def paired_rows(runs: Sequence[Mapping], method: str, baselines: Sequence[str] = ("multitask", "pretrain_ft"),
                metrics: Sequence[str] = ("persona_acc", "ser")) -> list[dict]:
    """Paired per-seed differences ``method - baseline`` (seeds paired after averaging over
    test personas within a seed), for every (k, steps) and metric.

    Returns:
        One dict per (baseline, metric, k, steps): ``{"method", "baseline", "metric", "k",
        "steps"}`` plus :func:`mdlib.stats.paired_difference`'s fields (its interval method
        under ``"interval"``).
    """
    out = []
    for metric in metrics:
        per = _per_seed(runs, metric)
        for baseline in baselines:
            for (m, k, steps), values in sorted(per.items(), key=lambda kv: kv[0][1:]):
                if m != method or (baseline, k, steps) not in per:
                    continue
                diff = paired_difference(values, per[(baseline, k, steps)], METRIC_BOUNDS.get(metric))
                # the interval's own "method" (clipped t or t) must not hide the compared method
                diff["interval"] = diff.pop("method")
                out.append({"method": method, "baseline": baseline, "metric": metric, "k": k, "steps": steps, **diff})
    return out
