"""All three parts meta-adapted: which part's meta-learning matters end to end?

On a target domain (``movie``) each learned part of the dialogue system
(:class:`~mdlib.system.pipeline.DialogueSystem`: parser, manager, generator) is obtained
in three ways, every one starting from training on the source domains (bus, restaurant,
weather) and seeing the same ``k`` target dialogues (:func:`mdlib.data.splits.kshot`,
train pool only):

* **parser** (:class:`~mdlib.system.parser.LearnedParser`): ``zero_shot`` Adam on the
  sources' user turns (``train_parser``); ``fine_tuned`` that, then SGD on the k
  dialogues' user turns (``adapt_parser``); ``meta`` first-order MAML over the sources
  (``meta_train_parser``), then the same SGD;
* **manager** (:class:`~mdlib.dm.learned.TrainedPolicy`): ``zero_shot`` multi-task policy
  gradient on the (source domain, source users) tasks (``metarl.initialisation("pretrain")``);
  ``fine_tuned`` that, then k adaptation dialogues (``metarl.adapt``); ``meta`` meta-RL
  (``metarl.initialisation("maml")``, first-order), then the same adaptation;
* **generator** (:class:`~mdlib.system.pipeline.NeuralGenerator`): ``zero_shot``
  multi-domain pretraining (``evaluation.pretrain``); ``fine_tuned`` that, then
  ``evaluation.adapt`` on the k dialogues; ``meta`` the pretrained model meta-trained
  (``meta_train``, first-order MAML), then the same ``adapt``.

The parser and the generator are built as in notebook 07, the manager as in notebook 06.
The manager has no "fine-tuning on k corpus dialogues": a policy learns from dialogues
it plays, not from transcripts of someone else's. Its closest fair analogue is ``k``
adaptation dialogues played against the target's simulated users (the act-level user of
:class:`~mdlib.dm.rl.DialogueTask` on the target domain with population
``config.users``), one policy-gradient step per ``policy.adapt_batch`` dialogues: the same
number of target dialogues as the other parts see; both initialisations adapt from the
same random stream, so their first batch meets the same users (with the default k = 9 and
batch 10: all of them). The parser and generator adapt on corpus dialogues instead.

Each part also keeps ``meta_zero_shot``, the meta-learned start before the k dialogues
(no system uses it; notebook 07 scores the parser's before and after adaptation on the
same test set).

Compute is not matched: every ``meta`` part had its meta-training on top of (generator)
or instead of (parser, manager) the pretraining; the compute-matched control
(the ``multitask`` learner) is left out of this table.

Systems (:data:`SYSTEMS`): ``zero_shot`` (no adaptation, a reference),
``all_fine_tuned`` (the baseline), ``all_meta``, and ``meta_parser`` / ``meta_manager`` /
``meta_generator``: the all-fine-tuned system with that one part swapped for its
meta-learned version. Systems that share a part share its object (the swap changes
nothing else). To show which part limits the learned systems, each part also has a
``reference`` variant, the hand-made one (keyword parser, threshold policy, template
realiser): the ``reference`` system and the reference with one fine-tuned part
(``ft_parser_in_reference``, ...).

Every system of a seed talks with the same listening users
(:class:`~mdlib.system.listener.ListeningUser`, who reads the system's words, so the
generator changes the outcome): :func:`~mdlib.system.simulation.run_dialogues` with seed
``1000 + seed`` gives each the same goals. Per system and seed: success, user turns,
return, BLEU and slot error of the system's turns (and the parser's F1 on those
dialogues). Over seeds: :func:`mdlib.stats.interval` and
:func:`mdlib.stats.paired_difference` against ``all_fine_tuned`` (a t-interval, clipped to the bounds of the
metrics in :data:`mdlib.stats.BOUNDS`). ``scripts/end_to_end_table.py``
runs it and prints the table; notebook 07 builds on it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from mdlib.data.domains import SOURCES, get_domain
from mdlib.dm.metarl import PolicyConfig
from mdlib.errors import MdlibError, lookup
from mdlib.profiles import Profile, get_profile

PARTS = ("parser", "manager", "generator")
#: ``meta_zero_shot`` is the meta-learned start before the k dialogues: no system uses it;
#: it shows what adaptation adds to the meta-learned part (notebook 07 scores the parser's).
VARIANTS = ("reference", "zero_shot", "fine_tuned", "meta", "meta_zero_shot")
#: Each system: the variant of (parser, manager, generator).
SYSTEMS: dict[str, tuple[str, str, str]] = {
    "zero_shot": ("zero_shot", "zero_shot", "zero_shot"),
    "all_fine_tuned": ("fine_tuned", "fine_tuned", "fine_tuned"),
    "all_meta": ("meta", "meta", "meta"),
    "meta_parser": ("meta", "fine_tuned", "fine_tuned"),
    "meta_manager": ("fine_tuned", "meta", "fine_tuned"),
    "meta_generator": ("fine_tuned", "fine_tuned", "meta"),
    # where the limit is: the hand-made system, and one fine-tuned part in it
    "reference": ("reference", "reference", "reference"),
    "ft_parser_in_reference": ("fine_tuned", "reference", "reference"),
    "ft_manager_in_reference": ("reference", "fine_tuned", "reference"),
    "ft_generator_in_reference": ("reference", "reference", "fine_tuned"),
}
BASELINE = "all_fine_tuned"
#: The metrics of the table (all from :func:`mdlib.system.simulation.scores`).
METRICS = ("success", "turns", "return", "bleu", "slot_error")
#: Also kept per run (not in the printed table).
EXTRA_METRICS = ("repeats", "entity_f1", "parser_act_f1", "parser_slot_f1")


@dataclass(frozen=True)
class EndToEndConfig:
    """Every knob of the experiment.

    Attributes:
        target: the target domain.
        k_shot: target dialogues each part adapts on (the manager: adaptation dialogues
            with the target's simulated users).
        complexity: the listening user's behaviour (a :mod:`mdlib.data.complexity` preset).
        users: the user population of the manager's adaptation dialogues (``mix`` matches
            the ``mix`` preset of the evaluation).
        n_dialogues: evaluation dialogues per system and seed.
        parser_dialogues: training dialogues per source domain for the parser.
        parser_steps: parser pretraining steps (Adam).
        parser_meta_steps, parser_inner_steps: parser meta-training (first-order MAML).
        parser_adapt_steps, parser_adapt_lr: parser adaptation on the k dialogues (SGD).
        profile: the generator's sizes, (meta-)training and fine-tuning settings.
        generator_method: the generator's meta-learner (``mdlib.meta.learners``).
        policy: the manager's sizes, (meta-)training and adaptation settings.
        manager_method: the manager's meta-RL method (``maml`` or ``reptile``).
    """

    target: str = "movie"
    k_shot: int = 9
    complexity: str = "mix"
    users: str = "mix"
    n_dialogues: int = 40
    parser_dialogues: int = 150
    parser_steps: int = 300
    parser_meta_steps: int = 60
    parser_inner_steps: int = 5
    parser_adapt_steps: int = 20
    parser_adapt_lr: float = 0.1
    # input "acts" named, not inherited: the generator says the manager's acts, whatever
    # the profile's default input is
    profile: Profile = field(default_factory=lambda: get_profile("quick").replace(
        input="acts", n_train=40, n_valid=10, epochs=2, meta_steps=20, meta_eval_every=20))
    generator_method: str = "fomaml"
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    manager_method: str = "maml"

    def __post_init__(self):
        get_domain(self.target)
        if self.target in SOURCES:
            raise MdlibError(f"target {self.target!r} is a source domain ({', '.join(SOURCES)}); pick another")
        for name in ("k_shot", "n_dialogues", "parser_dialogues", "parser_steps", "parser_meta_steps"):
            if getattr(self, name) < 1:
                raise MdlibError(f"end-to-end config: {name} must be >= 1, got {getattr(self, name)}")
        if not self.profile.use_acts:
            raise MdlibError(f"end-to-end config: the generator's profile has input {self.profile.input!r}; "
                             "the end-to-end generator says the manager's acts, so it needs input 'acts'")
        if self.manager_method not in ("maml", "reptile"):
            raise MdlibError(f"manager_method: expected maml or reptile, got {self.manager_method!r}")

    def replace(self, **changes) -> "EndToEndConfig":
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["profile"] = self.profile.to_dict()
        return json.loads(json.dumps(out, default=list))


def _sized(name: str, **kw) -> EndToEndConfig:
    profile = get_profile(kw.pop("profile_base", "quick")).replace(name=f"end_to_end_{name}", input="acts",
                                                                  **kw.pop("profile"))
    return EndToEndConfig(profile=profile, policy=PolicyConfig(**kw.pop("policy")), **kw)


#: Named sizes. ``small`` (the defaults of :class:`EndToEndConfig`): notebook 07's parser
#: and generator budgets (its pretrained generators are cached under ``runs/cache``) and
#: notebook 06's policy defaults, 40 dialogues per system and seed: about 70 s of one CPU
#: thread per seed when notebook 07's pretrained generators are cached (a first run also
#: pretrains them) (``scripts/end_to_end_table.py``); ``tiny``: seconds, meaningless
#: numbers (the test).
SIZES: dict[str, EndToEndConfig] = {
    "small": EndToEndConfig(),
    "tiny": _sized(
        "tiny", n_dialogues=2, k_shot=2, parser_dialogues=10, parser_steps=3, parser_meta_steps=2,
        parser_inner_steps=1, parser_adapt_steps=2, profile_base="smoke",
        profile=dict(meta_steps=2, meta_eval_every=2, ft_steps=1, max_len=8),
        policy=dict(hidden=8, iterations=1, tasks_per_iter=2, inner_episodes=2, query_episodes=2, adapt_batch=2,
                    eval_episodes=1)),
}


def get_config(size: str | EndToEndConfig = "small", **changes) -> EndToEndConfig:
    """The configuration of a named size (:data:`SIZES`), with ``changes``."""
    config = lookup(SIZES, size, "end-to-end size", EndToEndConfig)
    return config.replace(**changes) if changes else config


# --------------------------------------------------------------------------- the parts


def parser_variants(config: EndToEndConfig, seed: int, shots: Sequence[dict]) -> dict:
    """The parser's variants (:class:`~mdlib.system.parser.LearnedParser`), as in notebook 07."""
    from mdlib.data.splits import load_split
    from mdlib.meta.learners import make_learner
    from mdlib.system.parser import (LearnedParser, ParserNet, adapt_parser, meta_train_parser, train_parser,
                                     user_turn_examples)

    c = config
    tasks = {d: user_turn_examples(load_split(d, "train")[:c.parser_dialogues]) for d in SOURCES}
    shot_examples = user_turn_examples(shots)
    net, pre = train_parser([e for ex in tasks.values() for e in ex], steps=c.parser_steps, seed=seed)
    torch.manual_seed(seed)
    meta_net = ParserNet()
    learner = make_learner("fomaml", dict(meta_net.named_parameters()), c.parser_inner_steps, c.parser_adapt_lr)
    meta_net, meta = meta_train_parser(tasks, learner, iterations=c.parser_meta_steps, seed=seed, model=meta_net)

    def adapted(model, params):
        return adapt_parser(model, params, shot_examples, steps=c.parser_adapt_steps, lr=c.parser_adapt_lr, seed=seed)

    return {"zero_shot": LearnedParser(net, pre, c.target),
            "fine_tuned": LearnedParser(net, adapted(net, pre), c.target),
            "meta": LearnedParser(meta_net, adapted(meta_net, meta), c.target),
            "meta_zero_shot": LearnedParser(meta_net, meta, c.target)}


def manager_variants(config: EndToEndConfig, seed: int) -> dict:
    """The manager's variants (:class:`~mdlib.dm.learned.TrainedPolicy`).

    ``zero_shot`` is the multi-task pretrained policy; ``fine_tuned`` and ``meta`` adapt
    the pretrained and the meta-learned initialisation with ``config.k_shot`` dialogues
    against the target's users (:func:`mdlib.dm.metarl.adapt`), both from the same
    random stream, so the first batch of adaptation users is the same for both.
    """
    from mdlib.dm.learned import TrainedPolicy
    from mdlib.dm.metarl import adapt, initialisation
    from mdlib.dm.rl import DialogueTask, make_policy

    c, p = config, config.policy
    model = make_policy(p.hidden, seed)
    task = DialogueTask(model, c.target, c.users, entropy_coef=p.entropy_coef)
    saved = {"hidden": p.hidden, "domain": c.target, "users": c.users, "seed": seed, "episodes": c.k_shot}
    out = {}
    pre = initialisation("pretrain", model, p, seed)
    meta = initialisation(c.manager_method, model, p, seed)
    out["zero_shot"] = TrainedPolicy(model, pre, dict(saved, method="pretrain", episodes=0))
    out["meta_zero_shot"] = TrainedPolicy(model, meta, dict(saved, method=c.manager_method, episodes=0))
    for variant, init, method in (("fine_tuned", pre, "pretrain"), ("meta", meta, c.manager_method)):
        # the seed of run_method's adaptation stream: the same users for both initialisations
        gen = torch.Generator().manual_seed(seed + 1)
        params = adapt(task, init, c.k_shot, p.adapt_batch, p.inner_lr, gen)
        out[variant] = TrainedPolicy(model, {k: v.detach() for k, v in params.items()}, dict(saved, method=method))
    return out


def generator_variants(config: EndToEndConfig, seed: int, shots: Sequence[dict]) -> dict:
    """The generator's variants (:class:`~mdlib.system.pipeline.NeuralGenerator`), as in notebook 07."""
    from mdlib.data.splits import load_split
    from mdlib.evaluation import adapt, pretrain
    from mdlib.meta.metatrain import meta_train
    from mdlib.system.pipeline import NeuralGenerator

    c, prof = config, config.profile
    gen, vocab, _ = pretrain(prof, seed)
    base = {k: v.detach() for k, v in gen.named_parameters()}
    meta_gen = copy.deepcopy(gen)  # meta-training changes the model in place; the pretrained one stays
    meta_train(c.generator_method, meta_gen, {d: load_split(d, "train")[:prof.n_train] for d in SOURCES}, vocab,
               prof, seed, targets=(c.target,))
    meta_base = {k: v.detach() for k, v in meta_gen.named_parameters()}

    def speaker(model, params):
        return NeuralGenerator.from_profile(model, params, vocab, prof)

    return {"zero_shot": speaker(gen, base),
            "fine_tuned": speaker(gen, adapt(gen, base, shots, prof, seed, vocab=vocab)),
            "meta": speaker(meta_gen, adapt(meta_gen, meta_base, shots, prof, seed, vocab=vocab)),
            "meta_zero_shot": speaker(meta_gen, meta_base)}


def build_parts(config: EndToEndConfig, seed: int) -> dict[str, dict]:
    """``{part: {variant: object}}`` for one seed (every part sees ``kshot(target, k, seed)``).

    Returns:
        ``{"parser": {...}, "manager": {...}, "generator": {...}, "seconds": {part: s}}``,
        each part with the :data:`VARIANTS`.
    """
    from mdlib.data.splits import kshot
    from mdlib.seeding import seed_everything
    from mdlib.system.parser import LexiconParser
    from mdlib.system.pipeline import TemplateGenerator

    shots = kshot(config.target, config.k_shot, seed)
    builders = {"parser": lambda: parser_variants(config, seed, shots),
                "manager": lambda: manager_variants(config, seed),
                "generator": lambda: generator_variants(config, seed, shots)}
    parts: dict[str, dict] = {"seconds": {}}
    for part, build in builders.items():
        seed_everything(seed)  # each part's randomness independent of the others' consumption
        start = time.time()
        parts[part] = build()
        parts["seconds"][part] = round(time.time() - start, 1)
    # the hand-made parts (the manager's None is DialogueSystem's threshold policy); the
    # template realiser draws its phrasings from one stream, so they differ between systems
    parts["parser"]["reference"] = LexiconParser(config.target)
    parts["manager"]["reference"] = None
    parts["generator"]["reference"] = TemplateGenerator(config.target, seed=seed)
    return parts


def assemble(parts: Mapping[str, Mapping], target: str, systems: Sequence[str] = tuple(SYSTEMS)) -> dict:
    """``{system: DialogueSystem}``: each system of :data:`SYSTEMS` from the shared part objects."""
    from mdlib.system.pipeline import DialogueSystem

    out = {}
    for name in systems:
        p, m, g = lookup(SYSTEMS, name, "system")
        out[name] = DialogueSystem(target, parts["generator"][g], parser=parts["parser"][p],
                                   policy=parts["manager"][m])
    return out


def goals_digest(records) -> str:
    """A short hash of the users' goals in a set of dialogues (equal digests: the same users)."""
    return hashlib.sha256(json.dumps([r.goals for r in records], sort_keys=True).encode()).hexdigest()[:16]


def evaluate_systems(systems: Mapping, config: EndToEndConfig, seed: int) -> list[dict]:
    """One row per system: its scores against the listening users of ``seed`` (the same for every system)."""
    from mdlib.system.simulation import run_dialogues, scores

    rows = []
    for name, system in systems.items():
        start = time.time()
        records = run_dialogues(system, config.n_dialogues, 1000 + seed, config.complexity, user="listener")
        sc = scores(records, config.target)
        rows.append({"system": name, "seed": seed, **{m: sc[m] for m in METRICS + EXTRA_METRICS},
                     "goals": goals_digest(records), "successes": [r.success for r in records],
                     "seconds": round(time.time() - start, 1)})
    return rows


# --------------------------------------------------------------------------- over seeds


def _known(value) -> bool:
    return value is not None and value == value  # nan != nan


def summarise(rows: Sequence[dict], metrics: Sequence[str] = METRICS + EXTRA_METRICS,
              baseline: str = BASELINE) -> dict:
    """Intervals over seeds per system and paired differences against ``baseline``.

    Returns:
        ``{"systems": {system: {metric: interval}}, "vs_baseline": {system: {metric:
        paired_difference}}, "discordant": {system: {"only_system", "only_baseline"}}}``
        (differences are ``system - baseline``, paired by seed; ``discordant`` counts the
        dialogues, over all seeds, that only one of the two completed: the same users, so
        a sharper view of success than the per-seed rates;
        a metric that is ``nan`` or ``None`` for some seed, e.g. slot error without
        values to say, is paired over the seeds where both have it).
    """
    from mdlib.stats import BOUNDS, interval, paired_difference

    by = {}
    for r in rows:
        by.setdefault(r["system"], {})[r["seed"]] = r
    if baseline not in by:
        raise MdlibError(f"summarise: no runs of the baseline system {baseline!r}")
    out: dict = {"systems": {}, "vs_baseline": {}, "discordant": {}}
    for name, seeds in by.items():
        out["systems"][name] = {m: interval([seeds[s][m] for s in sorted(seeds) if _known(seeds[s][m])],
                                            BOUNDS.get(m)) for m in metrics}
        if name == baseline:
            continue
        diffs = {}
        for m in metrics:
            keys = [s for s in seeds if _known(seeds[s][m]) and _known(by[baseline][s][m])]
            diffs[m] = paired_difference({s: seeds[s][m] for s in keys}, {s: by[baseline][s][m] for s in keys},
                                         BOUNDS.get(m))
        out["vs_baseline"][name] = diffs
        pairs = [(a, b) for s in seeds for a, b in zip(seeds[s]["successes"], by[baseline][s]["successes"])]
        out["discordant"][name] = {"only_system": sum(a and not b for a, b in pairs),
                                   "only_baseline": sum(b and not a for a, b in pairs), "dialogues": len(pairs)}
    return out


def run(config: EndToEndConfig, seeds: Sequence[int], progress: bool = False) -> dict:
    """Build and evaluate every system for every seed.

    Returns:
        ``{"config", "seeds", "rows", "build_seconds", "summary", "seconds"}``: ``rows`` one
        per (system, seed) (:func:`evaluate_systems`), ``summary`` of :func:`summarise`.
    """
    from tqdm.auto import tqdm

    if not seeds:
        raise MdlibError("seeds: expected at least one seed")
    start = time.time()
    rows, build = [], {}
    for seed in tqdm(list(seeds), desc="end-to-end seeds", disable=not progress):
        parts = build_parts(config, seed)
        build[str(seed)] = parts["seconds"]
        rows += evaluate_systems(assemble(parts, config.target), config, seed)
    return {"config": config.to_dict(), "seeds": list(seeds), "rows": rows, "build_seconds": build,
            "summary": summarise(rows), "seconds": round(time.time() - start, 1)}


def format_table(result: Mapping, metrics: Sequence[str] = METRICS, baseline: str = BASELINE,
                 systems: bool = True) -> str:
    """The table: one line per system, ``mean [low, high]`` per metric, then the paired
    differences against the baseline (``+d [low, high] w/n``: ``w`` of ``n`` seeds above).

    Args:
        baseline: the system ``result["summary"]`` was summarised against (only named).
        systems: print the per-system block (``False``: only the differences, for a
            second baseline).
    """

    def cell(st: Mapping, sign: bool = False) -> str:
        fmt = "{:+.3f}" if sign else "{:.3f}"
        lo = "nan" if st["low"] != st["low"] else fmt.format(st["low"])
        hi = "nan" if st["high"] != st["high"] else fmt.format(st["high"])
        return f"{fmt.format(st['mean'])} [{lo}, {hi}]"

    summary = result["summary"]
    width = max(len(s) for s in summary["systems"]) + 2
    head = "".join(f"{m:>32}" for m in metrics)
    lines = [f"{'system':<{width}}{head}"] if systems else []
    for name, st in summary["systems"].items() if systems else ():
        lines.append(f"{name:<{width}}" + "".join(f"{cell(st[m]):>32}" for m in metrics))
    lines += ["", f"paired difference vs {baseline} (per seed; w/n = seeds where the system is higher)",
              f"{'system':<{width}}{head}"]
    for name, diffs in summary["vs_baseline"].items():
        lines.append(f"{name:<{width}}" + "".join(
            f"{cell(diffs[m], sign=True) + ' ' + str(diffs[m]['wins']) + '/' + str(diffs[m]['n']):>32}"
            for m in metrics))
    lines += ["", f"dialogues (same users) completed only by the system / only by {baseline}"]
    for name, d in summary.get("discordant", {}).items():
        lines.append(f"{name:<{width}}{d['only_system']:>5} / {d['only_baseline']:<5} of {d['dialogues']}")
    return "\n".join(lines)
