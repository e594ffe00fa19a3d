"""The fair comparison of meta-learners, on either protocol (docs/comparison.md).

Does a meta-learned start adapt to a new task, from k of its dialogues and a few gradient
steps, better than the same model trained as long on the same data without an inner loop?
One run answers it for one seed (:func:`run_comparison`):

1. **Pretrain** one generator on the meta-training tasks (:func:`mdlib.evaluation.pretrain`).
2. **Meta-train** copies of that same start for the same outer steps on the same episodes
   (one :class:`~mdlib.data.splits.EpisodeSampler` draw, collated once and shared) with the
   same outer optimiser (:func:`mdlib.meta.metatrain.meta_train_loop`):

   * ``multitask``: the compute-matched control, MAML with 0 inner steps (no inner loop);
   * ``multitask_matched``: the same control given as many gradient evaluations as a
     meta-learner with ``inner_steps`` inner steps: ``(1 + inner_steps)`` times the outer
     steps, the first ``meta_steps`` on the shared episodes, then further draws of the
     same sampler;
   * any meta-learner of the registry (``fomaml``, ``reptile``, ``maml``, ``metasgd``,
     ``anil``) with ``inner_steps`` SGD steps of ``inner_lr`` on the episode's support.

   ``pretrain_ft`` is the pretrained model itself (fine-tuned only at test). With
   ``valid_every > 0`` every meta-trained method records its validation curve (the query
   loss of validation tasks after the method's own inner loop) and keeps the parameters
   of its best validation point (early stopping).
3. **Choose step sizes on validation tasks only**: per method, k and number of
   adaptation steps, the SGD step size of one grid with the best mean of the family's
   selection metric on validation tasks (ties: lower perplexity); a step size that
   diverges is out. Meta-SGD's grid value multiplies its learned step sizes; ANIL adapts
   its head only.
4. **Test**: on every test task, adapt on ``k`` support dialogues (nested over k) for
   each number of steps and score the family's metrics on the task's test dialogues.
5. **Ceiling** (persona family): the oracle accuracy of the same support sets.

A *family* (:class:`PersonaFamily`, :class:`DomainFamily`, or :func:`family` by name)
says where each of these reads its data and how a task is scored, so the steps above are
written once for both protocols. :func:`summarise`, :func:`paired_rows`,
:func:`best_meta_learner` and :func:`validation_table` turn the runs of several seeds into
tables and paired differences.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections import defaultdict
from typing import Mapping, Sequence

import torch
from tqdm.auto import tqdm

from mdlib.data import personas as persona_family
from mdlib.data.domains import SOURCES, TARGETS
from mdlib.data.personas import (PersonaSplits, make_persona, oracle_accuracy, persona_kshot,
                                 persona_pairs, persona_profile, persona_seed, phrasing_prior, score_outputs)
from mdlib.data.splits import Episode, EpisodeSampler
from mdlib.data.text import detokenise
from mdlib.errors import MdlibError
from mdlib.evaluation import (adapt, collate_kw, evaluate, generate, pairs_of, pretrain, sample_kshot,
                              split_of)
from mdlib.meta.base import LEARNERS
from mdlib.meta.learners import MetaLearner, TaskBatches, make_learner
from mdlib.meta.metatrain import meta_train_loop
from mdlib.metrics import corpus_bleu, perplexity
from mdlib.models.batching import collate
from mdlib.profiles import Profile, get_profile
from mdlib.stats import BOUNDS, interval, paired_difference
from mdlib.training import corpus_nll

__all__ = ["COMPARISON_METHODS", "CONTROLS", "PersonaFamily", "DomainFamily", "family", "method_learner",
           "adapt_curve", "run_comparison", "summarise", "validation_table", "best_meta_learner", "paired_rows"]

#: Every method a comparison can run, in table order.
COMPARISON_METHODS = ("pretrain_ft", "multitask", "multitask_matched", "fomaml", "reptile", "maml",
                      "metasgd", "anil")
#: The baselines: never "the best meta-learner".
CONTROLS = ("pretrain_ft", "multitask", "multitask_matched")
#: Smallest and largest first-order gradient evaluations per task and outer step of a
#: learner with ``n`` inner steps (support gradients, then one query gradient; Reptile
#: takes ``n`` steps on support and query, i.e. ``2 n`` batches).
_GRAD_EVALS = {"multitask": lambda n: 1, "multitask_matched": lambda n: 1, "reptile": lambda n: 2 * n}


def grad_evals_per_task(method: str, inner_steps: int) -> int:
    """First-order gradient evaluations per task and outer step (second-order MAML's
    Hessian-vector products not counted)."""
    return _GRAD_EVALS.get(method, lambda n: n + 1)(inner_steps)


# --------------------------------------------------------------------------- the families
class PersonaFamily:
    """The persona task family (docs/personas.md): many tasks told apart only by their
    dialogues. Input: acts with values (style is the task). Metrics: persona accuracy,
    slot error rate, BLEU, perplexity; step sizes chosen by persona accuracy.

    Args:
        splits: meta-training, validation and test personas.
        n_valid, n_test: use only the first that many of the splits' validation and test
            personas (a CPU budget that leaves the data, hence the cached pretrained start,
            those of ``splits``); ``None``: all of them.
    """

    name = "personas"
    metrics = ("persona_acc", "ser", "bleu", "ppl")
    select = "persona_acc"
    #: Slot error rate has no bound: it counts values said that are not in the acts too.
    bounds = {"persona_acc": BOUNDS["persona_accuracy"], "bleu": BOUNDS["bleu"], "ser": None, "ppl": None}
    #: A small generator and a CPU budget; ``ft_batch`` large so that a support set is one batch.
    profile_changes = {"emb": 32, "hidden": 64, "epochs": 3, "patience": 1, "ft_batch": 256, "max_len": 30}

    def __init__(self, splits: PersonaSplits | None = None, n_valid: int | None = None, n_test: int | None = None):
        self.splits = splits if splits is not None else PersonaSplits(n_train=64, n_valid=8, n_test=8)
        self.limit = {"valid": n_valid, "test": n_test}
        for role, n in self.limit.items():
            have = getattr(self.splits, f"n_{role}")
            if n is not None and not (isinstance(n, int) and 1 <= n <= have):
                raise MdlibError(f"persona family: n_{role} must be a whole number in 1..{have} "
                                 f"(the splits' {role} personas), got {n!r}")

    def describe(self) -> dict:
        s = self.splits
        return {"family": self.name, "splits": {f: getattr(s, f) for f in (
            "n_train", "n_valid", "n_test", "pool", "valid_dialogues", "test_dialogues", "spec")},
            "used": {role: len(self.names(role)) for role in ("valid", "test")},
            "frame_noise": persona_family.FRAME_NOISE}  # read now: a study may override it

    def profile(self, profile: Profile | str, **changes) -> Profile:
        """``profile`` with the family's input, :attr:`profile_changes`, pretraining on each
        meta-training persona's whole pool and ``changes``."""
        fields = dict(self.profile_changes, n_train=self.splits.pool, n_valid=self.splits.valid_dialogues)
        fields.update(changes)
        return persona_profile(profile).replace(**fields)

    def max_k(self) -> int:
        return self.splits.pool

    def names(self, role: str) -> list[str]:
        return self.splits.names(role)[:self.limit.get(role)]

    def pretrain_data(self) -> dict:
        return {"sources": self.splits.names("train"), "data": self.splits.data()}

    def train_tasks(self, profile: Profile) -> dict[str, list[dict]]:
        return self.splits.tasks("train")

    def pairs(self, dialogues: Sequence[dict], profile: Profile):
        return persona_pairs(dialogues)

    def support(self, name: str, k: int, seed: int, role: str) -> list[dict]:
        return persona_kshot(name, k, seed, self.splits, roles=(role,))

    def evaluation(self, name: str, role: str, n: int | None, seed: int) -> list[dict]:
        return self.splits.dialogues(name, "test")[:n]

    def score(self, model, params, dialogues, vocab, profile: Profile, device=None) -> dict:
        """Persona accuracy, slot error rate, BLEU and perplexity of greedy outputs."""
        pairs = persona_pairs(dialogues)
        if not pairs:
            raise MdlibError("persona family: the dialogues have no system turns")
        hyps = generate(model, params, pairs, vocab, profile, device=device)
        nll, n_tok = corpus_nll(model, pairs, vocab, params=params, device=device, **collate_kw(profile))
        scored = score_outputs(hyps, pairs)
        return {"persona_acc": scored["persona_acc"], "ser": scored["ser"], "n_acts": scored["n_acts"],
                "bleu": corpus_bleu([detokenise(h) for h in hyps], [detokenise(p.response) for p in pairs]),
                "ppl": perplexity(nll, n_tok)}

    def ceiling(self, name: str, k: int, seed: int) -> dict:
        """The oracle accuracy of the support set (guess = prior, guess = factors)."""
        prior = phrasing_prior(self.splits.names("train"))
        persona, support = make_persona(persona_seed(name)), self.support(name, k, seed, "test")
        test = self.splits.dialogues(name, "test")
        return {g: oracle_accuracy(persona, support, test, prior, g) for g in ("prior", "factors")}


#: The sources' validation dialogues a domain comparison adapts on (pretraining's early
#: stopping reads at most the first 60 of the 100: the paper profile's ``n_valid``) ...
VALID_SUPPORT = slice(60, 80)
#: ... and those it scores on when choosing step sizes (disjoint from the support).
VALID_EVAL = slice(80, 100)


class DomainFamily:
    """The three-domain DAML protocol (docs/protocol.md): meta-training tasks are the
    source domains, test tasks the held-out targets.

    The protocol has no held-out validation domain, so step sizes are chosen on the
    sources' ``valid`` dialogues that pretraining's early stopping does not read: support
    ``k`` of :data:`VALID_SUPPORT` (drawn per seed), scored on the last ``n_select`` of the
    split (:data:`VALID_EVAL`). A step size that suits the sources may not suit a new
    domain: this is the protocol's limit, the same for every method.

    Args:
        targets: the target domains tested.
        input: ``"context"`` (DAML's input: context, belief and database result with
            system-slot values delexicalised; the default) or ``"acts"`` (act-to-text).
        n_test: test dialogues per target (``None``: the profile's ``n_test``).
    """

    name = "domains"
    metrics = ("bleu", "entity_f1_uncopyable", "success_f1", "ppl")
    select = "bleu"
    bounds = {"bleu": BOUNDS["bleu"], "entity_f1_uncopyable": (0.0, 1.0), "success_f1": (0.0, 1.0), "ppl": None}
    profile_changes = {"ft_batch": 256}

    def __init__(self, targets: Sequence[str] = TARGETS, input: str = "context", n_test: int | None = None):
        unknown = [t for t in targets if t not in TARGETS]
        if unknown:
            raise MdlibError(f"domain family: unknown target(s) {unknown}; expected some of {', '.join(TARGETS)}")
        self.targets, self.input, self.n_test = tuple(targets), input, n_test

    def describe(self) -> dict:
        return {"family": self.name, "sources": list(SOURCES), "targets": list(self.targets),
                "input": self.input, "n_test": self.n_test}

    def profile(self, profile: Profile | str, **changes) -> Profile:
        fields = dict(self.profile_changes, input=self.input)
        fields.update(changes)
        return get_profile(profile).replace(**fields)

    def max_k(self) -> int:
        return VALID_SUPPORT.stop - VALID_SUPPORT.start

    def names(self, role: str) -> list[str]:
        return list(self.targets) if role == "test" else list(SOURCES)

    def pretrain_data(self) -> dict:
        return {"sources": list(SOURCES), "data": None}

    def train_tasks(self, profile: Profile) -> dict[str, list[dict]]:
        return {s: split_of(None, s, "train")[:profile.n_train] for s in SOURCES}

    def pairs(self, dialogues: Sequence[dict], profile: Profile):
        return pairs_of(dialogues, profile)

    def support(self, name: str, k: int, seed: int, role: str) -> list[dict]:
        if role == "test":
            return sample_kshot(None, name, k, seed)
        pool = split_of(None, name, "valid")[VALID_SUPPORT]
        if k > len(pool):
            raise MdlibError(f"domain family: k={k} exceeds the {len(pool)} validation support dialogues of {name}")
        order = list(range(len(pool)))
        random.Random(f"valid-kshot/{name}/{seed}").shuffle(order)  # nested over k, like sample_kshot
        return [pool[i] for i in order[:k]]

    def evaluation(self, name: str, role: str, n: int | None, seed: int) -> list[dict]:
        if role == "test":
            return split_of(None, name, "test")[:n if n is not None else self.n_test]
        pool = split_of(None, name, "valid")[VALID_EVAL]
        return pool[len(pool) - min(n or len(pool), len(pool)):]

    def score(self, model, params, dialogues, vocab, profile: Profile, device=None) -> dict:
        r = evaluate(model, params, dialogues, vocab, profile, device=device)
        return {m: r[m] for m in self.metrics}

    def ceiling(self, name: str, k: int, seed: int) -> None:
        return None


def family(name: str, **kw):
    """The family called ``name`` (``"personas"`` or ``"domains"``) with its keyword arguments."""
    known = {"personas": PersonaFamily, "domains": DomainFamily}
    if name not in known:
        raise MdlibError(f"unknown task family {name!r}; expected one of {', '.join(known)}")
    return known[name](**kw)


# --------------------------------------------------------------------------- one seed
def method_learner(method: str, params: Mapping[str, torch.Tensor], inner_steps: int, inner_lr: float,
                   head: Sequence[str] | None = None) -> MetaLearner:
    """The learner of a meta-trained method (``multitask_matched`` is ``multitask``).

    Args:
        head: the generator's output head (``model.head_names()``): what ANIL adapts.
    """
    name = "multitask" if method == "multitask_matched" else method
    if name not in LEARNERS or method == "pretrain_ft":
        raise MdlibError(f"comparison: unknown method {method!r}; expected one of {', '.join(COMPARISON_METHODS)}")
    return make_learner(name, params, inner_steps, inner_lr, head=head)


def adapt_curve(model, params: Mapping[str, torch.Tensor], support: Sequence[dict], profile: Profile, seed: int,
                vocab, lr, steps: Sequence[int], device=None, trainable=None) -> dict[int, dict[str, torch.Tensor]]:
    """Parameters after each number of SGD steps in ``steps``, from one continued run.

    Each call of :func:`mdlib.evaluation.adapt` continues from the previous one's result;
    that equals one run of ``max(steps)`` steps because the support is one batch (the
    inner loop uses the same batch at every step).

    Args:
        lr: a step size, or a per-parameter dict of them (Meta-SGD).
        trainable: the parameter names that adapt (``None``: all; ANIL: its head).

    Raises:
        MdlibError: the support has more pairs than ``profile.ft_batch`` (more than one batch).
    """
    n_pairs = len(pairs_of(support, profile))
    if n_pairs > profile.ft_batch:
        raise MdlibError(f"adapt_curve: {n_pairs} support pairs do not fit one batch (ft_batch "
                         f"{profile.ft_batch}); raise ft_batch")
    out, current, done = {}, params, 0
    for s in sorted(set(steps)):
        current = adapt(model, current, support, profile, seed, vocab=vocab, lr=lr, steps=s - done,
                        device=device, trainable=trainable)
        out[s], done = current, s
    return out


def _episode(fam, episode, vocab, profile: Profile, device) -> TaskBatches:
    kw = collate_kw(profile)
    return TaskBatches(episode.task, [collate(fam.pairs(episode.support, profile), vocab, device=device, **kw)],
                       [collate(fam.pairs(episode.query, profile), vocab, device=device, **kw)])


def _mean(values) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else math.nan


class _Adapter:
    """How a method adapts at test time: its step size (a grid value, or the grid value
    times Meta-SGD's learned step sizes) and the parameters that move (ANIL: the head)."""

    def __init__(self, learner: MetaLearner | None):
        self.learned = None
        self.trainable = None
        if learner is not None and learner.trainable is not None:
            self.trainable = sorted(learner.trainable)
        if learner is not None and type(learner).__name__ == "MetaSGD":
            self.learned = {n: t.detach().clamp_min(0.0) for n, t in learner.step_sizes().items()}

    def lr(self, value: float):
        if self.learned is None:
            return value
        return {n: value * t for n, t in self.learned.items()}


def run_comparison(fam, seed: int, *, profile: Profile | str = "quick", profile_changes: Mapping | None = None,
                   methods: Sequence[str] = ("pretrain_ft", "multitask", "fomaml", "reptile", "maml"),
                   k_values: Sequence[int] = (1, 3), adapt_steps: Sequence[int] = (0, 1, 3, 10),
                   meta_steps: int = 150, meta_batch: int = 4, k_support: int = 2, k_query: int = 2,
                   inner_steps: int = 1, inner_lr: float = 0.3, outer_lr: float = 1e-3,
                   adapt_lr_grid: Sequence[float] = (0.03, 0.1, 0.3, 1.0), n_select: int | None = 5,
                   valid_every: int = 0, test: bool = True, cache: bool = True, progress: bool = False,
                   device=None, keep_model: bool = False) -> dict:
    """One seed of the comparison (see the module docstring for the steps).

    Args:
        fam: the task family (:func:`family`).
        seed: pretraining initialisation, the episode sampler and the k-shot draws.
        profile, profile_changes: the generator and pretraining settings (``fam.profile``).
        methods: of :data:`COMPARISON_METHODS`.
        k_values: support dialogues at test (and in step-size selection).
        adapt_steps: SGD steps of test-time adaptation (0 = no adaptation).
        meta_steps, meta_batch: outer steps and tasks per meta-batch, the same for every
            meta-trained method (``multitask_matched``: ``(1 + inner_steps) * meta_steps``);
            k_support, k_query: dialogues per episode.
        inner_steps, inner_lr: the inner loop of the meta-learners in meta-training.
        outer_lr: Adam's step size in meta-training (every method).
        adapt_lr_grid: the SGD step sizes each method chooses from on validation tasks
            (Meta-SGD: multipliers of its learned step sizes).
        n_select: evaluation dialogues per validation task used to choose step sizes
            (and for the validation curve).
        valid_every: > 0: validate every that many outer steps (and keep the best point).
        test: score the test tasks; ``False`` stops after the step-size choice, so a
            study of settings (:func:`validation_table`) never sees a test task.
        cache: reuse a cached pretrained model (``runs/cache``).
        keep_model: also return ``"model"``, ``"vocab"``, ``"profile"``, ``"starts"``
            (``{method: parameters before test-time adaptation}``) and ``"adapt"``
            (``{method: (step size of a grid value -> what adapt_curve takes, trainable
            names)}``), not JSON-able: for a caller that adapts the starts to tasks of
            its own (``mdlib.experiments.end_to_end_personas``).

    Returns:
        ``{"seed", "config", "rows", "oracle", "selection", "meta", "pretrain", "seconds"}``:
        ``rows`` one dict per (method, k, steps, test task) with ``task``, the family's
        metrics and the step size used; ``oracle`` one dict per (k, test task) with the
        ceilings (persona family; empty otherwise); ``selection[method][k][steps]`` the
        chosen step size and the validation score of every grid value (``valid``);
        ``meta[method]`` the meta-training query-loss curve, the validation curve, the
        kept step, gradient evaluations and seconds.
    """
    unknown = [m for m in methods if m not in COMPARISON_METHODS]
    if unknown:
        raise MdlibError(f"comparison: unknown method(s) {unknown}; expected some of {', '.join(COMPARISON_METHODS)}")
    if any(k < 1 or k > fam.max_k() for k in k_values):
        raise MdlibError(f"comparison: k_values {list(k_values)} must lie in 1..{fam.max_k()}")
    if any(s < 0 for s in adapt_steps) or not adapt_steps:
        raise MdlibError(f"comparison: adapt_steps {list(adapt_steps)} must be whole numbers >= 0")
    if meta_steps < 0 or meta_batch < 1:
        raise MdlibError(f"comparison: meta_steps must be >= 0 and meta_batch >= 1, got {meta_steps}, {meta_batch}")
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    prof = fam.profile(profile, **dict(profile_changes or {}))
    config = {"seed": seed, **fam.describe(), "profile": prof.to_dict(), "methods": list(methods),
              "k_values": list(k_values), "adapt_steps": list(adapt_steps), "meta_steps": meta_steps,
              "meta_batch": meta_batch, "k_support": k_support, "k_query": k_query, "inner_steps": inner_steps,
              "inner_lr": inner_lr, "outer_lr": outer_lr, "adapt_lr_grid": list(adapt_lr_grid),
              "n_select": n_select, "valid_every": valid_every}

    # 1. one pretrained start for every method
    t0 = time.perf_counter()
    model, vocab, info = pretrain(prof, seed, device=device, cache=cache, progress=progress, **fam.pretrain_data())
    model.eval()
    base = {n: t.detach() for n, t in model.named_parameters()}
    seconds["pretrain"] = time.perf_counter() - t0

    # 2. the same episodes, collated once, for every meta-trained method
    sampler = EpisodeSampler(fam.train_tasks(prof), k_support, k_query, seed)
    batches = [[_episode(fam, ep, vocab, prof, device) for ep in sampler.sample(meta_batch)]
               for _ in range(meta_steps)]
    if "multitask_matched" in methods:  # further draws of the same sampler for the matched control
        batches += [[_episode(fam, ep, vocab, prof, device) for ep in sampler.sample(meta_batch)]
                    for _ in range(inner_steps * meta_steps)]
    valid_names = fam.names("valid")
    valid_tasks = [_episode(fam, Episode(n, fam.support(n, k_support, seed, "valid"),
                                         fam.evaluation(n, "valid", n_select, seed)), vocab, prof, device)
                   for n in valid_names] if valid_every > 0 else []
    starts: dict[str, dict[str, torch.Tensor]] = {}
    adapters: dict[str, _Adapter] = {}
    meta: dict[str, dict] = {}
    for method in methods:
        if method == "pretrain_ft":
            starts[method], adapters[method] = base, _Adapter(None)
            continue
        t0 = time.perf_counter()
        learner_model = copy.deepcopy(model)
        params = dict(learner_model.named_parameters())
        learner = method_learner(method, params, inner_steps, inner_lr, head=learner_model.head_names())

        def loss_fn(p, batch, _m=learner_model):
            return torch.func.functional_call(_m, p, (batch,))

        def validate(p, _l=learner, _f=loss_fn):
            losses = []
            for task in valid_tasks:
                adapted, _ = _l.adapt(_f, p, list(task.support))
                with torch.no_grad():
                    losses.append(float(sum(_f(adapted, b) for b in task.query) / len(task.query)))
            return sum(losses) / len(losses)

        steps = meta_steps * (1 + inner_steps) if method == "multitask_matched" else meta_steps
        learner_model.train()
        hist = meta_train_loop(learner, loss_fn, params, lambda step: batches[step - 1], meta_steps=steps,
                               outer_lr=outer_lr, progress=progress,
                               validate=validate if valid_every > 0 else None,
                               eval_every=max(valid_every, 1) * (steps // meta_steps if meta_steps else 1))
        starts[method] = {n: t.detach() for n, t in params.items()}
        adapters[method] = _Adapter(learner)
        meta[method] = {"query_loss": [r["query_loss"] for r in hist.steps],
                        "valid_curve": [[r["step"], r["valid_loss"]] for r in hist.valid],
                        "best_step": hist.best_step if valid_every > 0 else steps, "outer_steps": steps,
                        "grad_evals": steps * meta_batch * grad_evals_per_task(method, inner_steps),
                        "seconds": time.perf_counter() - t0}
    seconds["meta_train"] = sum(m["seconds"] for m in meta.values())

    # 3. each method's step size per (k, steps), on validation tasks only
    t0 = time.perf_counter()
    moving = sorted(s for s in set(adapt_steps) if s > 0)
    selection: dict[str, dict] = {}
    bar = tqdm(total=len(methods) * len(k_values) * len(valid_names) * len(adapt_lr_grid), desc="step sizes",
               disable=not progress, leave=False)
    for method in methods:
        selection[method] = {}
        ad = adapters[method]
        for k in k_values:
            score = {lr: {s: [] for s in moving} for lr in adapt_lr_grid}
            ppl = {lr: {s: [] for s in moving} for lr in adapt_lr_grid}
            diverged: set[float] = set()
            for name in valid_names:
                support = fam.support(name, k, seed, "valid")
                evals = fam.evaluation(name, "valid", n_select, seed)
                for lr in adapt_lr_grid:
                    bar.update(1)
                    if lr in diverged or not moving:
                        continue
                    try:
                        curve = adapt_curve(model, starts[method], support, prof, seed, vocab, ad.lr(lr), moving,
                                            device, ad.trainable)
                    except MdlibError:  # a NaN/inf loss: this step size is out for the method
                        diverged.add(lr)
                        continue
                    for s, p in curve.items():
                        r = fam.score(model, p, evals, vocab, prof, device)
                        score[lr][s].append(r[fam.select])
                        ppl[lr][s].append(r["ppl"])
            ok = [lr for lr in adapt_lr_grid if lr not in diverged]
            if moving and not ok:
                raise MdlibError(f"comparison: every adaptation step size diverged for {method} at k={k}")
            selection[method][k] = {
                s: {"lr": max(ok, key=lambda lr: (_mean(score[lr][s]), -_mean(ppl[lr][s]), -lr)),
                    "valid": {str(lr): (None if lr in diverged else _mean(score[lr][s])) for lr in adapt_lr_grid}}
                for s in moving}
    bar.close()
    seconds["select"] = time.perf_counter() - t0
    result = {"seed": seed, "family": fam.name, "metrics": list(fam.metrics), "select": fam.select,
              "config": config, "rows": [], "oracle": [], "selection": selection, "meta": meta,
              "pretrain": {"curve": info["curve"], "cache_hit": info["cache_hit"]}, "seconds": seconds}
    if keep_model:
        result.update(model=model, vocab=vocab, profile=prof, starts=starts,
                      adapt={m: (a.lr, a.trainable) for m, a in adapters.items()})
    if not test:
        seconds["total"] = time.perf_counter() - t_start
        return result

    # 4. test tasks: adapt with the chosen step sizes, score on their test dialogues
    t0 = time.perf_counter()
    rows: list[dict] = []
    test_names = fam.names("test")
    bar = tqdm(total=len(methods) * len(test_names), desc="test", disable=not progress, leave=False)
    for method in methods:
        ad = adapters[method]
        for name in test_names:
            evals = fam.evaluation(name, "test", None, seed)
            unadapted = fam.score(model, starts[method], evals, vocab, prof, device) if 0 in adapt_steps else None
            for k in k_values:
                support = fam.support(name, k, seed, "test")
                chosen = selection[method][k]
                by_lr: dict[float, list[int]] = defaultdict(list)
                for s in moving:
                    by_lr[chosen[s]["lr"]].append(s)
                adapted = {}
                for lr, steps in by_lr.items():
                    adapted.update(adapt_curve(model, starts[method], support, prof, seed, vocab, ad.lr(lr), steps,
                                               device, ad.trainable))
                for s in sorted(set(adapt_steps)):
                    r = unadapted if s == 0 else fam.score(model, adapted[s], evals, vocab, prof, device)
                    rows.append({"method": method, "k": k, "steps": s, "task": name, "seed": seed,
                                 "lr": None if s == 0 else chosen[s]["lr"], **r})
            bar.update(1)
    bar.close()
    seconds["test"] = time.perf_counter() - t0

    # 5. the ceiling of the same support sets (where the family has one)
    oracle = []
    for k in k_values:
        for name in test_names:
            c = fam.ceiling(name, k, seed)
            if c is not None:
                oracle.append({"k": k, "task": name, "seed": seed, **c})
    seconds["total"] = time.perf_counter() - t_start
    return dict(result, rows=rows, oracle=oracle)


# ------------------------------------------------------------------------- summaries
def _bounds(runs: Sequence[Mapping], metric: str):
    fam = family(runs[0].get("family", "personas")) if runs else None
    return fam.bounds.get(metric) if fam is not None else None


def _per_seed(runs: Sequence[Mapping], metric: str, per_task: bool = False) -> dict[tuple, dict[int, float]]:
    """``{(method, k, steps[, task]): {seed: mean of metric over the seed's test tasks}}``."""
    cells: dict[tuple, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        for r in run["rows"]:
            key = (r["method"], r["k"], r["steps"]) + ((r["task"],) if per_task else ())
            cells[key][r["seed"]].append(r[metric])
    return {c: {s: _mean(v) for s, v in by_seed.items()} for c, by_seed in cells.items()}


def _order(method: str) -> int:
    return COMPARISON_METHODS.index(method) if method in COMPARISON_METHODS else len(COMPARISON_METHODS)


def summarise(runs: Sequence[Mapping], metrics: Sequence[str] | None = None, per_task: bool = False) -> dict:
    """Means over seeds of the per-seed means over test tasks (``per_task``: one cell per
    test task, for reporting per target).

    Returns:
        ``{"cells": [{"method", "k", "steps"[, "task"], metric: {"mean", "low", "high", ...}}],
        "oracle": {k: {"prior", "factors"}}}`` (intervals over seeds, :func:`mdlib.stats.interval`).
    """
    if not runs:
        raise MdlibError("summarise: no runs")
    metrics = list(metrics or runs[0].get("metrics") or family(runs[0]["family"]).metrics)
    per = {m: _per_seed(runs, m, per_task) for m in metrics}
    cells = []
    for key in sorted(per[metrics[0]], key=lambda c: (_order(c[0]),) + c[1:]):
        row = {"method": key[0], "k": key[1], "steps": key[2], **({"task": key[3]} if per_task else {})}
        for m in metrics:
            values = [v for v in per[m][key].values() if not math.isnan(v)]
            row[m] = interval(values, _bounds(runs, m)) if values else None
        cells.append(row)
    oracle: dict[int, dict] = {}
    for g in ("prior", "factors"):
        seeds: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
        for run in runs:
            for r in run.get("oracle", []):
                seeds[r["k"]][r["seed"]].append(r[g])
        for k, by_seed in seeds.items():
            oracle.setdefault(k, {})[g] = _mean([_mean(v) for v in by_seed.values()])
    return {"cells": cells, "oracle": oracle}


def validation_table(runs: Sequence[Mapping]) -> dict[tuple, float]:
    """``{(method, k, steps): validation score at the chosen step size}``, the mean over
    seeds: what a study of settings may look at (no test task involved)."""
    cells = defaultdict(list)
    for run in runs:
        for method, by_k in run["selection"].items():
            for k, by_steps in by_k.items():
                for steps, cell in by_steps.items():
                    cells[(method, int(k), int(steps))].append(cell["valid"][str(cell["lr"])])
    return {c: _mean(v) for c, v in cells.items()}


def best_meta_learner(runs: Sequence[Mapping]) -> str:
    """The meta-learner (not a control) with the best *validation* score at its chosen step
    sizes, averaged over seeds, k and steps: chosen without the test tasks."""
    scores = defaultdict(list)
    for run in runs:
        for method, by_k in run["selection"].items():
            if method in CONTROLS:
                continue
            for by_steps in by_k.values():
                for cell in by_steps.values():
                    scores[method].append(cell["valid"][str(cell["lr"])])
    if not scores:
        raise MdlibError("best_meta_learner: the runs have no meta-learner besides the controls")
    return max(scores, key=lambda m: _mean(scores[m]))


def paired_rows(runs: Sequence[Mapping], method: str, baselines: Sequence[str] = ("multitask", "pretrain_ft"),
                metrics: Sequence[str] | None = None, per_task: bool = False) -> list[dict]:
    """Paired per-seed differences ``method - baseline`` (seeds paired after averaging over
    test tasks within a seed; ``per_task``: one row per test task), for every (k, steps)
    and metric.

    Returns:
        One dict per (baseline, metric, k, steps[, task]): ``{"method", "baseline", "metric",
        "k", "steps"[, "task"]}`` plus :func:`mdlib.stats.paired_difference`'s fields (its
        interval method under ``"interval"``).
    """
    if not runs:
        raise MdlibError("paired_rows: no runs")
    metrics = list(metrics or runs[0].get("metrics") or family(runs[0]["family"]).metrics)
    out = []
    for metric in metrics:
        per = _per_seed(runs, metric, per_task)
        for baseline in baselines:
            for key, values in sorted(per.items(), key=lambda kv: kv[0][1:]):
                m, rest = key[0], key[1:]
                if m != method or (baseline,) + rest not in per:
                    continue
                a, b = values, per[(baseline,) + rest]
                if any(math.isnan(v) for v in list(a.values()) + list(b.values())):
                    continue  # a metric the input makes undefined (entity F1 of copyable values)
                diff = paired_difference(a, b, _bounds(runs, metric))
                # the interval's own "method" (clipped t or t) must not hide the compared method
                diff["interval"] = diff.pop("method")
                row = {"method": method, "baseline": baseline, "metric": metric, "k": rest[0], "steps": rest[1]}
                if per_task:
                    row["task"] = rest[2]
                out.append({**row, **diff})
    return out
