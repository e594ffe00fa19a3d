"""End to end on a held-out persona: does meta-learning the generator matter to a listening user?

A persona (docs/personas.md) changes only how the *system* talks; its dialogues are in
the source domains (bus, restaurant, weather). So on a persona target the parser and the
manager are the source-domain ones, trained once per seed on the sources and shared by
every system: a learned parser (:func:`~mdlib.system.parser.train_parser` on the sources'
user turns) and the multi-task pretrained policy (``metarl.initialisation("pretrain")``).
Their fine-tuned or meta-learned variants are not meaningful here: the users, their words
and the domains are the sources' own, and the persona's k dialogues teach nothing about
them that the sources did not.

The generator is what changes (all from one :func:`~mdlib.experiments.comparison.run_comparison`
of the persona family, ``test=False``: pretraining on the meta-training personas' pools,
meta-training, step sizes chosen on the validation personas only):

* ``zero_shot``: pretrained on the meta-training personas' pools (acts input), not adapted;
* ``fine_tuned``: that, then SGD on ``k`` dialogues of the held-out persona
  (:func:`~mdlib.data.personas.persona_kshot`, its pool, never its test dialogues);
* ``meta``: the pretrained start meta-trained (``method``, first-order MAML by default)
  over the meta-training personas, then the same fine-tuning;
* ``multitask``: the compute-matched control (the same meta-training with no inner loop),
  then the same fine-tuning.

Each adapted generator uses its method's step size chosen at (k, ``adapt_steps``) on the
validation personas. Two references frame them: ``persona`` speaks the held-out persona's
own words (:meth:`~mdlib.data.personas.Persona.realise`: the best any generator can do,
and a direct test of whether the listening user reads the persona's phrasings), and
``template`` the templates the listener was built beside.

Every system of a seed talks with the same listening users
(:class:`~mdlib.system.listener.ListeningUser`, ``run_dialogues(..., user="listener")``,
seed ``1000 + seed``) in each source domain. Per system and seed: success, user turns,
return, requests to repeat, BLEU of the system's turns against the persona's own words
for the same acts, slot error rate and persona accuracy of the system's turns
(:func:`~mdlib.data.personas.score_outputs`). Over seeds: intervals and paired
differences against ``fine_tuned`` and against ``multitask``
(:func:`mdlib.experiments.end_to_end.summarise`, bounded where bounded).
``scripts/end_to_end_table.py --target persona-N`` runs it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from mdlib.data.domains import SOURCES
from mdlib.data.personas import PersonaSplits, get_held_out, make_persona, persona_seed
from mdlib.dm.metarl import PolicyConfig
from mdlib.errors import MdlibError, lookup

#: The generators (one system each; parser and manager shared), in table order.
LEARNED = ("zero_shot", "fine_tuned", "meta", "multitask")
REFERENCES = ("persona", "template")
SYSTEMS = LEARNED + REFERENCES
BASELINES = ("fine_tuned", "multitask")
METRICS = ("success", "turns", "bleu", "slot_error", "persona_accuracy")
EXTRA_METRICS = ("return", "repeats")


@dataclass(frozen=True)
class PersonaEndToEndConfig:
    """Every knob of the experiment.

    Attributes:
        target: the held-out persona (a test persona of ``splits``).
        k_shot: its pool dialogues the generators adapt on.
        adapt_steps: SGD steps of that adaptation (step size chosen on validation personas
            from ``adapt_lr_grid``).
        n_dialogues: listening-user dialogues per source domain, system and seed.
        complexity: the listening user's behaviour.
        splits: the persona splits (meta-training, validation, test personas).
        profile: the generator's profile (the persona family's changes are applied).
        method: the meta-learner of the ``meta`` generator.
        meta_steps, meta_batch, k_support, k_query, inner_steps, inner_lr, outer_lr,
            adapt_lr_grid, n_select: :func:`~mdlib.experiments.comparison.run_comparison`'s.
        parser_dialogues, parser_steps: the source parser's training.
        policy: the source manager's pretraining.
        cache: reuse a cached pretrained generator (``runs/cache``).
    """

    target: str = "persona-2000"
    k_shot: int = 3
    adapt_steps: int = 10
    n_dialogues: int = 10
    complexity: str = "mix"
    splits: PersonaSplits = field(default_factory=lambda: PersonaSplits(n_train=32, n_valid=4, n_test=16))
    profile: str = "quick"
    method: str = "fomaml"
    meta_steps: int = 60
    meta_batch: int = 4
    k_support: int = 2
    k_query: int = 2
    inner_steps: int = 1
    inner_lr: float = 0.3
    outer_lr: float = 1e-3
    adapt_lr_grid: tuple[float, ...] = (0.1, 0.3, 1.0)
    n_select: int = 5
    parser_dialogues: int = 150
    parser_steps: int = 300
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    cache: bool = True

    def __post_init__(self):
        get_held_out(self.target, self.splits)  # a one-line MdlibError unless a test persona
        for name in ("k_shot", "adapt_steps", "n_dialogues", "meta_steps", "parser_dialogues", "parser_steps"):
            if getattr(self, name) < 1:
                raise MdlibError(f"persona end-to-end config: {name} must be >= 1, got {getattr(self, name)}")
        if self.k_shot > self.splits.pool:
            raise MdlibError(f"persona end-to-end config: k_shot {self.k_shot} exceeds the persona pool "
                             f"({self.splits.pool} dialogues)")

    def replace(self, **changes) -> "PersonaEndToEndConfig":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))


#: ``small``: the defaults (the quick generator profile, 32 meta-training personas, 60
#: outer steps, 10 listening users per source domain); ``tiny``: seconds, meaningless
#: numbers (the test).
SIZES: dict[str, PersonaEndToEndConfig] = {
    "small": PersonaEndToEndConfig(),
    "tiny": PersonaEndToEndConfig(
        k_shot=2, adapt_steps=1, n_dialogues=1, profile="smoke", meta_steps=2, meta_batch=2, adapt_lr_grid=(0.1,),
        n_select=1, parser_dialogues=10, parser_steps=3,
        splits=PersonaSplits(n_train=4, n_valid=1, n_test=2, pool=4, valid_dialogues=1, test_dialogues=2),
        policy=PolicyConfig(hidden=8, iterations=1, tasks_per_iter=2, inner_episodes=2, query_episodes=2,
                            adapt_batch=2, eval_episodes=1)),
}


def get_config(size: str = "small", **changes) -> PersonaEndToEndConfig:
    """The configuration of a named size (:data:`SIZES`), with ``changes``."""
    config = lookup(SIZES, size, "persona end-to-end size", PersonaEndToEndConfig)
    return config.replace(**changes) if changes else config


def is_persona(name: str) -> bool:
    """Whether a ``--target`` names a persona (``persona-N``) rather than a domain."""
    return str(name).startswith("persona-")


# --------------------------------------------------------------------------- the parts
class PersonaSpeaker:
    """The ``persona`` reference generator: the held-out persona's own words for the acts."""

    kind = "persona"

    def __init__(self, persona_name: str, domain: str):
        self.persona, self.domain = make_persona(persona_seed(persona_name)), domain

    def __call__(self, context, acts) -> str:
        return self.persona.realise(self.domain, list(acts))[0]


def source_parts(config: PersonaEndToEndConfig, seed: int) -> dict:
    """The shared parser and manager, trained on the source domains only.

    Returns:
        ``{"parser": {domain: LearnedParser}, "manager": TrainedPolicy}``.
    """
    from mdlib.data.splits import load_split
    from mdlib.dm.learned import TrainedPolicy
    from mdlib.dm.metarl import initialisation
    from mdlib.dm.rl import make_policy
    from mdlib.system.parser import LearnedParser, train_parser, user_turn_examples

    examples = [e for d in SOURCES for e in user_turn_examples(load_split(d, "train")[:config.parser_dialogues])]
    net, params = train_parser(examples, steps=config.parser_steps, seed=seed)
    p = config.policy
    model = make_policy(p.hidden, seed)
    pre = initialisation("pretrain", model, p, seed)
    manager = TrainedPolicy(model, pre, {"hidden": p.hidden, "method": "pretrain", "seed": seed, "episodes": 0})
    return {"parser": {d: LearnedParser(net, params, d) for d in SOURCES}, "manager": manager}


def generators(config: PersonaEndToEndConfig, seed: int) -> dict:
    """The learned generators' parameters (:data:`LEARNED`) and what decodes them.

    One :func:`~mdlib.experiments.comparison.run_comparison` (``test=False``) pretrains,
    meta-trains and chooses each method's step size on validation personas; each start is
    then adapted on ``k`` pool dialogues of the target with its chosen step size.

    Returns:
        ``{"model", "vocab", "profile", "params": {generator: parameters}, "lr": {generator: step size},
        "meta": run_comparison's meta-training record}``.
    """
    from mdlib.experiments.comparison import PersonaFamily, adapt_curve, run_comparison

    c = config
    fam = PersonaFamily(c.splits)
    methods = ("pretrain_ft", "multitask", c.method)
    res = run_comparison(fam, seed, profile=c.profile, methods=methods, k_values=(c.k_shot,),
                         adapt_steps=(c.adapt_steps,), meta_steps=c.meta_steps, meta_batch=c.meta_batch,
                         k_support=c.k_support, k_query=c.k_query, inner_steps=c.inner_steps, inner_lr=c.inner_lr,
                         outer_lr=c.outer_lr, adapt_lr_grid=c.adapt_lr_grid, n_select=c.n_select, test=False,
                         cache=c.cache, keep_model=True)
    support = fam.support(c.target, c.k_shot, seed, "test")
    model, vocab, prof = res["model"], res["vocab"], res["profile"]
    params = {"zero_shot": res["starts"]["pretrain_ft"]}
    lrs = {}
    for name, method in (("fine_tuned", "pretrain_ft"), ("meta", c.method), ("multitask", "multitask")):
        lr_of, trainable = res["adapt"][method]
        lrs[name] = res["selection"][method][c.k_shot][c.adapt_steps]["lr"]
        params[name] = adapt_curve(model, res["starts"][method], support, prof, seed, vocab, lr_of(lrs[name]),
                                   [c.adapt_steps], trainable=trainable)[c.adapt_steps]
    return {"model": model, "vocab": vocab, "profile": prof, "params": params, "lr": lrs, "meta": res["meta"]}


def speaker(name: str, gens: Mapping, target: str, domain: str):
    """The generator of system ``name`` for one source domain."""
    from mdlib.system.pipeline import NeuralGenerator, TemplateGenerator

    if name == "persona":
        return PersonaSpeaker(target, domain)
    if name == "template":
        return TemplateGenerator(domain, seed=0)
    return NeuralGenerator.from_profile(gens["model"], gens["params"][name], gens["vocab"], gens["profile"])


# --------------------------------------------------------------------------- evaluation
def score_records(records_by_domain: Mapping[str, Sequence], target: str) -> dict:
    """Success, turns, return, repeats, BLEU against the persona's own words, slot error
    and persona accuracy of one system's dialogues (every source domain together)."""
    from mdlib.data.pairs import Pair
    from mdlib.data.personas import score_outputs
    from mdlib.metrics import corpus_bleu

    persona = make_persona(persona_seed(target))
    records = [r for rs in records_by_domain.values() for r in rs]
    hyps, refs, pairs = [], [], []
    for domain, rs in records_by_domain.items():
        for r in rs:
            for response, acts in zip(r.responses, r.system_acts):
                hyps.append(response)
                refs.append(persona.realise(domain, list(acts))[0])
                pairs.append(Pair(context=(), response=(), acts=tuple(acts), domain=target))
    scored = score_outputs(hyps, pairs)
    n = len(records)
    return {"success": sum(r.success for r in records) / n, "turns": sum(r.turns for r in records) / n,
            "return": sum(r.ret for r in records) / n, "repeats": sum(r.repeats for r in records) / n,
            "bleu": corpus_bleu(hyps, refs), "slot_error": scored["ser"], "persona_accuracy": scored["persona_acc"]}


def evaluate_systems(config: PersonaEndToEndConfig, seed: int, parts: Mapping, gens: Mapping) -> list[dict]:
    """One row per system: its scores against the listening users of ``seed`` in every source domain."""
    from mdlib.experiments.end_to_end import goals_digest
    from mdlib.system.pipeline import DialogueSystem
    from mdlib.system.simulation import run_dialogues

    rows = []
    for name in SYSTEMS:
        start = time.time()
        by_domain = {d: run_dialogues(DialogueSystem(d, speaker(name, gens, config.target, d),
                                                     parser=parts["parser"][d], policy=parts["manager"]),
                                      config.n_dialogues, 1000 + seed, config.complexity, user="listener")
                     for d in SOURCES}
        records = [r for rs in by_domain.values() for r in rs]
        rows.append({"system": name, "seed": seed, **score_records(by_domain, config.target),
                     "goals": goals_digest(records), "successes": [r.success for r in records],
                     "seconds": round(time.time() - start, 1)})
    return rows


def run(config: PersonaEndToEndConfig, seeds: Sequence[int], progress: bool = False) -> dict:
    """Build and evaluate every system for every seed.

    Returns:
        ``{"config", "seeds", "rows", "lr", "summary": {baseline: summary}, "seconds"}``
        (:func:`mdlib.experiments.end_to_end.summarise` against each of :data:`BASELINES`).
    """
    from tqdm.auto import tqdm

    from mdlib.seeding import seed_everything

    if not seeds:
        raise MdlibError("seeds: expected at least one seed")
    start = time.time()
    rows, lrs, build = [], {}, {}
    for seed in tqdm(list(seeds), desc="persona end-to-end seeds", disable=not progress):
        t0 = time.time()
        seed_everything(seed)
        parts = source_parts(config, seed)
        seed_everything(seed)
        gens = generators(config, seed)
        build[str(seed)] = round(time.time() - t0, 1)
        lrs[str(seed)] = gens["lr"]
        rows += evaluate_systems(config, seed, parts, gens)
    return {"config": config.to_dict(), "seeds": list(seeds), "rows": rows, "lr": lrs, "build_seconds": build,
            "summary": summarise(rows), "seconds": round(time.time() - start, 1)}


def summarise(rows: Sequence[dict]) -> dict:
    """``{baseline: end_to_end.summarise(rows, ..., baseline)}`` for each of :data:`BASELINES`."""
    from mdlib.experiments import end_to_end

    return {b: end_to_end.summarise(rows, METRICS + EXTRA_METRICS, baseline=b) for b in BASELINES}


def format_table(result: Mapping) -> str:
    """Every system's intervals, then the paired differences against each baseline."""
    from mdlib.experiments.end_to_end import format_table as table

    return "\n".join(table({"summary": result["summary"][b]}, METRICS, baseline=b, systems=i == 0)
                     for i, b in enumerate(BASELINES))
