"""The persona probe (the persona family of :mod:`mdlib.experiments.comparison`): does a meta-learned start adapt to a new persona better than
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

from typing import Mapping, Sequence

from mdlib.data.personas import PersonaSplits, persona_kshot  # noqa: F401  (tests patch it here)
from mdlib.errors import MdlibError
from mdlib.experiments import comparison
from mdlib.experiments.comparison import PersonaFamily, adapt_curve, method_learner, validation_table
from mdlib.meta.learners import MetaLearner
from mdlib.profiles import Profile

__all__ = ["PROBE_METHODS", "META_METHODS", "PROBE_PROFILE", "PROBE_SPLITS", "probe_learner",
           "probe_profile", "adapt_curve", "score_persona", "run_persona_probe", "summarise",
           "validation_table", "best_meta_learner", "paired_rows", "METRIC_BOUNDS"]

#: The methods the probe compares (``pretrain_ft`` is the pretrained start, fine-tuned at test).
PROBE_METHODS = ("pretrain_ft", "multitask", "fomaml", "reptile", "maml")
#: The methods that are meta-trained (``pretrain_ft`` is not).
META_METHODS = ("multitask", "fomaml", "reptile", "maml")
#: Changes to the named profile: a small generator and a CPU budget.
PROBE_PROFILE = PersonaFamily.profile_changes
#: 64 meta-training personas (the default), 8 validation and 8 test personas (the family
#: has 16 test personas; 8 keep a seed within minutes on one CPU thread).
PROBE_SPLITS = PersonaSplits(n_train=64, n_valid=8, n_test=8)
#: Bounds of each reported metric for :func:`mdlib.stats.interval`.
METRIC_BOUNDS = PersonaFamily.bounds


def probe_learner(method: str, params, inner_steps: int, inner_lr: float) -> MetaLearner:
    """The learner of a meta-trained method (:data:`META_METHODS`)."""
    if method not in META_METHODS:
        raise MdlibError(f"persona probe: unknown method {method!r}; expected one of {', '.join(PROBE_METHODS)}")
    return method_learner(method, params, inner_steps, inner_lr)


def probe_profile(profile: Profile | str, splits: PersonaSplits, **changes) -> Profile:
    """:meth:`PersonaFamily.profile` of ``splits``."""
    return PersonaFamily(splits).profile(profile, **changes)


def score_persona(model, params, dialogues: Sequence[dict], vocab, profile: Profile, device=None) -> dict:
    """Persona accuracy, slot error rate, BLEU and perplexity (:meth:`PersonaFamily.score`)."""
    return PersonaFamily.score(None, model, params, dialogues, vocab, profile, device)


def _with_persona(rows: list[dict]) -> list[dict]:
    return [dict(r, persona=r["task"]) for r in rows]


def run_persona_probe(seed: int, *, splits: PersonaSplits = PROBE_SPLITS, methods: Sequence[str] = PROBE_METHODS,
                      **kw) -> dict:
    """One seed of the probe: :func:`mdlib.experiments.comparison.run_comparison` on the
    persona family of ``splits`` (same keywords); rows and ceilings also carry ``persona``."""
    unknown = [m for m in methods if m not in PROBE_METHODS]
    if unknown:
        raise MdlibError(f"persona probe: unknown method(s) {unknown}; expected some of {', '.join(PROBE_METHODS)}")
    if any(k > splits.pool for k in kw.get("k_values", ())):
        raise MdlibError(f"persona probe: k_values {list(kw['k_values'])} must lie in 1..{splits.pool} (the pool)")
    k_support, k_query = kw.get("k_support", 2), kw.get("k_query", 2)
    if splits.pool < k_support + k_query:
        raise MdlibError(f"persona probe: k_support + k_query = {k_support + k_query} exceeds the pool ({splits.pool})")
    run = comparison.run_comparison(PersonaFamily(splits), seed, methods=methods, **kw)
    return dict(run, rows=_with_persona(run["rows"]), oracle=_with_persona(run["oracle"]))


def summarise(runs: Sequence[Mapping], metrics: Sequence[str] = ("persona_acc", "ser", "bleu", "ppl")) -> dict:
    """:func:`mdlib.experiments.comparison.summarise` with the probe's metrics."""
    return comparison.summarise(runs, metrics)


def best_meta_learner(runs: Sequence[Mapping]) -> str:
    """:func:`mdlib.experiments.comparison.best_meta_learner` (chosen on validation personas)."""
    return comparison.best_meta_learner(runs)


def paired_rows(runs: Sequence[Mapping], method: str, baselines: Sequence[str] = ("multitask", "pretrain_ft"),
                metrics: Sequence[str] = ("persona_acc", "ser")) -> list[dict]:
    """:func:`mdlib.experiments.comparison.paired_rows` with the probe's metrics."""
    return comparison.paired_rows(runs, method, baselines, metrics)
