"""``python -m mdlib train`` and ``python -m mdlib adapt``: train a generator, then adapt
it to a target domain with k dialogues and score it.

Examples::

    python -m mdlib train --method pretrain --profile quick --seed 0 --out runs/pre0
    python -m mdlib adapt --checkpoint runs/pre0 --target movie --k-shot 9 --seed 0 --out results/pre0_movie.json
    python -m mdlib train --method pretrain --corpus my.jsonl --sources a b c --target d --out runs/mine
    python -m mdlib adapt --checkpoint runs/mine --target d --k-shot 3 --out r.json
    python -m mdlib train --method pretrain --input acts --out runs/acts0   # acts with values in (docs/protocol.md)
    python -m mdlib train --protocol personas --method fomaml --out runs/fo_p0   # docs/personas.md
    python -m mdlib adapt --checkpoint runs/fo_p0 --target persona-2000 --k-shot 3 --out results/fo_p0.json

Methods: ``pretrain`` (multi-domain supervised training on the sources), ``scratch``
(a random initialisation; ``adapt`` then trains it on the k target dialogues only),
``reweight``, and every meta-learner of the registry (:mod:`mdlib.meta.base`: ``maml``,
``fomaml``, ``reptile``, ``metasgd``, ``anil``, ``lslr`` and the compute-matched control
``multitask``).

Meta-learning runs take ``--meta-batch``, ``--meta-steps``, ``--engine`` and
``--device``; they write ``RUN/progress.pt`` every ``--checkpoint-every`` meta-steps and
``train --resume RUN`` continues a killed run to the result of an uninterrupted one.
Under ``torchrun --standalone --nproc_per_node N -m mdlib train ...`` the meta-batch is
sharded over the N processes (:mod:`mdlib.meta.distributed`); only rank 0 writes.
With ``--corpus``, tasks come from each dialogue's ``"domain"`` field, split by
:func:`mdlib.data.splits.split_corpus` (seed 0, so ``train`` and ``adapt`` agree);
metrics that need annotations the corpus lacks are written as ``null``.

``train`` writes the run's manifest ``run.json`` last (:mod:`mdlib.runs`); ``adapt``
verifies the run against it and takes the protocol, the sources and the corpus from it
(``--sources`` and ``--corpus`` override them, with a warning; ``--protocol`` must match).

``--protocol personas`` (docs/personas.md, "Command line"): the tasks are system personas.
``train`` reads the meta-training personas of the profile's persona splits
(:func:`mdlib.data.personas.splits_for_profile`): their pools as the train split, their
validation dialogues as the valid split, with the family's input (acts with values, no
context); no test dialogue is generated. ``adapt --target persona-N`` adapts on
:func:`~mdlib.data.personas.persona_kshot` of a held-out persona and scores its test
dialogues (``--split validation``: a validation persona, for choosing step sizes), adding
persona accuracy, slot error rate and the oracle ceiling of the same support set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mdlib import runs
from mdlib.commands._common import check_protocol, check_task_names, nonnegative_int, output_file, number
from mdlib.errors import MdlibError

SPLIT_SEED = 0
#: adapt --split: the persona role it targets (mdlib.data.personas.SEED_BASES).
SPLITS = {"test": "test", "validation": "valid"}
CHECKPOINT_EVERY = 50  # meta-steps between two writes of RUN/progress.pt


def _meta_methods() -> tuple[str, ...]:
    from mdlib.meta.learners import METHODS  # the registry: every registered learner

    return tuple(METHODS)


def _methods() -> tuple[str, ...]:
    return ("pretrain", "scratch", "reweight") + _meta_methods()


def _add_data_args(p: argparse.ArgumentParser, target_required: bool) -> None:
    from mdlib.data.pairs import INPUTS
    from mdlib.profiles import PROFILES

    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="run size (default: quick for train, the checkpoint's for adapt)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--corpus", type=Path, default=None,
                   help="a JSONL corpus (format: docs/data.md); tasks from each dialogue's 'domain' "
                        "field (default: the protocol corpora; for adapt: the corpus the run was trained on)")
    p.add_argument("--sources", nargs="+", default=None, metavar="TASK",
                   help="source (training) tasks (default: bus restaurant weather; for adapt: the run's)")
    p.add_argument("--target", default=None, required=target_required, metavar="TASK",
                   help="the held-out target task" + ("" if target_required else " (needed with --corpus)"))
    p.add_argument("--input", choices=INPUTS, default=None,
                   help="the generator's input: the context, belief and database result as DAML read them, "
                        "or the turn's acts with their values (docs/protocol.md; default for train: context "
                        "with --protocol domains, acts with --protocol personas; for adapt: the checkpoint's)")
    p.add_argument("--protocol", default=None, metavar="PROTOCOL",
                   help="domains (three source domains, three targets) or personas (system personas, "
                        "docs/personas.md); default: domains for train, the run's for adapt")
    p.add_argument("--progress", action="store_true", help="show progress bars")


def register(subparsers) -> None:
    """Add ``train`` and ``adapt`` to the CLI."""
    p = subparsers.add_parser("train", help="train a response generator on the source domains",
                              description="Train a response generator (pretrain, scratch or a meta-learner) "
                                          "and write checkpoint.pt, config.json, curve.json, vocab.json to --out, "
                                          "then run.json, the manifest that adapt verifies (docs/runs.md).")
    p.add_argument("--method", default=None, metavar="METHOD",
                   help=f"training method: {', '.join(_methods())} (default pretrain)")
    p.add_argument("--out", type=Path, default=None, help="run folder to write (required unless --resume)")
    p.add_argument("--corrupt", type=float, default=0.0, metavar="RATE",
                   help="reweight: corrupt this fraction of the source responses, in [0, 1) (default 0)")
    p.add_argument("--meta-batch", default=None, metavar="N",
                   help="tasks per meta-step (default: the profile's); more than the source tasks draws "
                        "tasks with replacement, each with fresh episodes")
    p.add_argument("--meta-steps", default=None, metavar="N", help="outer steps (default: the profile's)")
    p.add_argument("--engine", default="loop", metavar="ENGINE",
                   help="how a meta-batch's gradient is computed: loop (one task at a time) or batched "
                        "(default loop)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (the GPU when present), cpu or cuda (default auto)")
    p.add_argument("--checkpoint-every", default=None, metavar="N",
                   help=f"write RUN/progress.pt every N meta-steps (0: only at the end; default {CHECKPOINT_EVERY})")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN",
                   help="continue the killed meta-learning run in folder RUN (its settings are reused)")
    _add_data_args(p, target_required=False)
    p.set_defaults(func=cmd_train)

    a = subparsers.add_parser("adapt", help="adapt a trained generator to a target with k dialogues and score it",
                              description="Fine-tune a checkpoint on k target dialogues (through the shared "
                                          "inner loop) and write its test metrics as JSON.")
    a.add_argument("--checkpoint", type=Path, required=True,
                   help="run folder (verified against its run.json) or checkpoint.pt")
    a.add_argument("--k-shot", type=nonnegative_int, required=True, help="number of target dialogues to adapt on")
    a.add_argument("--out", required=True, help="JSON file to write (not inside the run folder)")
    a.add_argument("--samples", type=nonnegative_int, default=0, help="include this many generated examples")
    a.add_argument("--split", default="test", metavar="SPLIT",
                   help="personas: test (a held-out test persona, the default) or validation (a "
                        "validation persona, to choose step sizes; never tune on test personas)")
    _add_data_args(a, target_required=True)
    a.set_defaults(func=cmd_adapt)


def _data(args, sources: list[str], targets: list[str], corpus: Path | None = None):
    """``None`` (protocol corpora) or the split user corpus (``corpus``, default ``--corpus``)."""
    corpus = corpus if corpus is not None else args.corpus
    if corpus is None:
        from mdlib.data.domains import get_domain

        for name in sources + targets:
            get_domain(name)
        return None
    from mdlib.data.corpus import load_corpus
    from mdlib.data.splits import split_corpus

    if not targets:
        raise MdlibError("--corpus needs --target (the task to hold out)")
    if not sources:
        raise MdlibError("--corpus needs --sources (the training tasks)")
    return split_corpus(load_corpus(corpus), sources, targets, SPLIT_SEED)


def _sources(args) -> list[str]:
    from mdlib.data.domains import SOURCES

    return list(args.sources) if args.sources else list(SOURCES)


def _check_persona_flags(args, command: str) -> None:
    """Refuse the flags that ``--protocol personas`` decides itself (one-line errors)."""
    if args.corpus is not None:
        raise MdlibError(f"--protocol personas takes no --corpus {args.corpus}: persona dialogues are generated "
                         "from persona seeds (docs/personas.md)")
    if args.sources:
        raise MdlibError("--protocol personas takes no --sources: the meta-training personas are those of the "
                         "profile's persona splits (docs/personas.md)")
    if command == "train" and args.target is not None:
        raise MdlibError(f"train --protocol personas takes no --target: give the held-out persona to adapt "
                         f"(`adapt --protocol personas --target {args.target}`)")
    if args.input not in (None, "acts"):
        raise MdlibError(f"--input {args.input}: the persona family's input is the turn's acts with values, "
                         "no context (docs/personas.md)")


def _persona_settings(profile_name: str) -> dict:
    """The tasks of a persona run: the meta-training personas as sources, the validation and
    test personas as its targets (the personas it may be adapted to, which meta-training
    refuses among its sources), and the splits that rebuild the data."""
    import dataclasses

    from mdlib.data.personas import splits_for_profile

    splits = splits_for_profile(profile_name)
    return {"sources": splits.names("train"), "targets": splits.names("valid") + splits.names("test"),
            "personas": dataclasses.asdict(splits)}


def _protocol_fields(run: dict) -> dict:
    """``{"protocol", "personas"}`` of a run's settings, for its config and manifest."""
    return {"protocol": run["protocol"], "personas": run.get("personas")}


def _settings(args) -> dict:
    """The run's settings from the command line, or from the run folder with ``--resume``.

    Raises:
        MdlibError: bad flags; ``--resume`` of a folder that is not a resumable run, or
            with a ``--method`` / ``--profile`` (model size) / ``--protocol`` other than the run's.
    """
    from mdlib.meta.metatrain import check_engine
    from mdlib.profiles import get_profile
    from mdlib.seeding import DEVICES

    check_engine(args.engine)
    if args.device not in DEVICES:
        raise MdlibError(f"--device: unknown device {args.device!r}; known devices: {', '.join(DEVICES)}")
    meta_batch = number("meta-batch", args.meta_batch, int, 1)
    meta_steps = number("meta-steps", args.meta_steps, int, 0)
    every = number("checkpoint-every", args.checkpoint_every, int, 0)
    every = CHECKPOINT_EVERY if every is None and args.resume is None else every
    if args.resume is None:
        if args.out is None:
            raise MdlibError("train: --out RUN is required (or --resume RUN)")
        method = args.method or "pretrain"
        if method not in _methods():
            raise MdlibError(f"--method: unknown method {method!r}; known methods: {', '.join(_methods())}")
        protocol = check_protocol(args.protocol or "domains")
        run = {"method": method, "profile_name": args.profile or "quick", "seed": args.seed,
               "sources": _sources(args), "targets": [args.target] if args.target else [],
               "corpus": str(args.corpus) if args.corpus else None, "meta_batch": meta_batch,
               "meta_steps": meta_steps, "checkpoint_every": every, "out": str(args.out), "resume": None,
               "input": getattr(args, "input", None), "protocol": protocol, "personas": None}
        if protocol == "personas":
            _check_persona_flags(args, "train")
            if method == "reweight":  # its corruption draws values and responses per domain
                raise MdlibError("--method reweight corrupts responses with values of their domain; it is for "
                                 "--protocol domains")
            run.update(_persona_settings(run["profile_name"]))
        return run
    from mdlib.meta.progress import load_progress

    blob = load_progress(args.resume)
    saved = dict(blob["settings"])
    saved.setdefault("protocol", "domains")  # progress written before protocols existed
    if args.protocol is not None:
        check_protocol(args.protocol)
    for flag, key in (("method", "method"), ("profile", "profile_name"), ("protocol", "protocol")):
        given = getattr(args, flag)
        if given is not None and given != saved[key]:
            raise MdlibError(f"--resume {args.resume}: the run was made with --{flag} {saved[key]}, not {given}")
    profile = get_profile(saved["profile_name"])
    if saved.get("input"):
        profile = profile.replace(input=saved["input"])
    if saved["protocol"] == "personas":  # the family's own input settings
        from mdlib.data.personas import persona_profile

        profile = persona_profile(profile)
    if profile.model_config() != saved["model_config"]:
        raise MdlibError(f"--resume {args.resume}: the run's model size {saved['model_config']} differs from "
                         f"profile {profile.name}'s {profile.model_config()}")
    if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        raise MdlibError(f"--resume {args.resume} continues that folder; leave out --out {args.out}")
    for flag, given in (("meta-steps", meta_steps), ("meta-batch", meta_batch)):
        key = flag.replace("-", "_")
        if given is not None and given != saved[key]:  # another value would be another run
            raise MdlibError(f"--resume {args.resume}: the run was made with --{flag} {saved[key]}, not {given}")
    return dict(saved, out=str(args.resume), resume=blob["state"],
                checkpoint_every=saved["checkpoint_every"] if every is None else every)


def cmd_train(args) -> int:
    from mdlib.meta import distributed
    from mdlib.profiles import get_profile
    from mdlib.seeding import resolve_device, seed_everything

    run = _settings(args)
    method, out = run["method"], Path(run["out"])
    profile = get_profile(run["profile_name"])
    profile = profile.replace(**{k: run[k] for k in ("meta_batch", "meta_steps") if run[k] is not None})
    if run.get("input"):
        profile = profile.replace(input=run["input"])
    sources, targets = run["sources"], run["targets"]
    if run["resume"] is None:  # outputs checked before any work (a resumed run continues its own folder)
        runs.check_out(out)
        check_task_names("--sources", args.sources)
        if args.corpus is not None and args.sources is None:
            raise MdlibError("--corpus needs --sources (the training tasks)")
    if targets and targets[0] in sources:
        raise MdlibError(f"--target {targets[0]} is also among --sources: that leaks the target into training")
    if method == "reweight":
        from mdlib.data.corruption import check_rate

        check_rate(args.corrupt)
    if run["protocol"] == "personas":
        from mdlib.data.personas import persona_profile, splits_from_dict, training_data

        profile = persona_profile(profile)
        args.corpus = None
        data = training_data(splits_from_dict(run["personas"]))  # no test dialogue of any persona
    else:
        args.corpus = Path(run["corpus"]) if run["corpus"] else None
        args.sources, args.target = sources, (targets[0] if targets else None)
        data = _data(args, sources, targets)
    corpus = runs.corpus_entry(args.corpus)  # hashed before training: what was loaded
    meta = method in _meta_methods()
    device = resolve_device(args.device)
    group = distributed.from_env(device) if meta else None
    if group is not None:
        device = distributed.local_device(device)
    try:
        if group is not None:
            group.check_tasks(profile.meta_batch)
        seed_everything(run["seed"])
        writes = group is None or group.writes
        if writes:  # an older run's manifest and learner go first, so a killed run never looks finished
            runs.begin(out)
        model, curve = _train(args, run, profile, sources, targets, data, device, group, writes)
    finally:
        if group is not None:
            group.close()
    if writes:
        from mdlib.models.contract import generator_config

        runs.finish(out, method=method, profile=profile.name, seed=run["seed"], sources=sources,
                    targets=targets, model=generator_config(model), corpus=corpus, **_protocol_fields(run))
        last = curve[-1] if curve else {}
        print(f"wrote {out} (method {method}, protocol {run['protocol']}, profile {profile.name}, seed {run['seed']}"
              + (f", final {', '.join(f'{k}={v:.3f}' for k, v in last.items() if isinstance(v, float))}"
                 if last else "") + ")")
    return 0


def _train(args, run, profile, sources, targets, data, device, group, writes):
    """Train with ``run``'s method and write the run folder's files (rank 0 only).

    Returns:
        ``(model, curve)``; the caller writes the manifest last.
    """
    from mdlib.checkpoint import save_run
    from mdlib.evaluation import data_signature, new_model, pretrain, protocol_vocab, split_of

    method, out, seed = run["method"], Path(run["out"]), run["seed"]
    config = {"method": method, "profile_name": profile.name, "sources": sources, "targets": targets,
              "corpus": run["corpus"], "data": data_signature(data), "seed": seed,
              "inputs": profile.input_settings(), **_protocol_fields(run)}
    if method in _meta_methods():
        config.update(meta_batch=profile.meta_batch, meta_steps=profile.meta_steps)
    if method == "pretrain":
        model, vocab, info = pretrain(profile, seed, sources=sources, data=data, progress=args.progress,
                                      device=device, cache=False)
        save_run(out, model, vocab, config, info["curve"])
        return model, info["curve"]
    if method == "reweight":  # learned example weights (Ren et al. 2018), notebook 05
        return _train_reweight(args, profile, sources, data, device, _protocol_fields(run))
    vocab = protocol_vocab(profile, sources, data)
    model = new_model(vocab, profile, seed, device)
    curve: list[dict] = []
    learner_state = None
    if method != "scratch":
        from mdlib.meta.metatrain import meta_train
        from mdlib.meta.progress import PROGRESS_NAME, save_progress

        if getattr(profile, "meta_init", "random") == "pretrain":
            def start():
                return pretrain(profile, seed, sources=sources, data=data, device=device)

            # under torchrun rank 0 pretrains into the run cache first; the others then load it
            model, vocab, _ = start() if group is None else group.writer_first(start)
        tasks = {s: split_of(data, s, "train")[: profile.n_train] for s in sources}
        valid = {s: split_of(data, s, "valid")[: profile.n_valid] for s in sources}
        settings = {k: run[k] for k in ("method", "profile_name", "seed", "sources", "targets", "corpus",
                                        "meta_batch", "meta_steps", "checkpoint_every", "input",
                                        "protocol", "personas")
                    if k in run}
        settings.update(meta_batch=profile.meta_batch, meta_steps=profile.meta_steps,
                        model_config=profile.model_config())

        def checkpoint(state: dict) -> None:
            if writes:  # one writer; every process holds the same state
                save_progress(out / PROGRESS_NAME, state, settings)

        learner, hist = meta_train(method, model, tasks, vocab, profile, seed, valid=valid, targets=targets,
                                   progress=args.progress, device=device, engine=args.engine, process_group=group,
                                   on_checkpoint=checkpoint, checkpoint_every=run["checkpoint_every"],
                                   resume=run["resume"])
        curve = hist.to_dict()["steps"]
        learner_state = learner.state_dict()
    if writes:
        save_run(out, model, vocab, config, curve)
        if learner_state is not None:
            runs.save_learner(out, learner_state)
    return model, curve


def _train_reweight(args, profile, sources, data, device, protocol: dict):
    """Supervised training on the sources with learned example weights; returns ``(model, curve)``."""
    import math

    from mdlib.checkpoint import save_run
    from mdlib.data.corruption import check_rate, corrupt_pairs
    from mdlib.evaluation import collate_kw, new_model, protocol_vocab, source_pairs
    from mdlib.meta.reweight import train_reweighted

    rate = check_rate(args.corrupt)
    train_pairs = source_pairs(profile, sources, "train", data)
    vocab = protocol_vocab(profile, sources, data, train_pairs=train_pairs)
    model = new_model(vocab, profile, args.seed, device)
    train_pairs, flags = corrupt_pairs(train_pairs, rate, args.seed)
    clean = source_pairs(profile.replace(n_valid=min(profile.n_valid, 5)), sources, "valid", data)
    steps = profile.max_steps or profile.epochs * math.ceil(len(train_pairs) / profile.batch_size)
    out = train_reweighted(model, train_pairs, clean, vocab, steps=steps, batch_size=profile.batch_size,
                           lr=profile.lr, clip=profile.clip, labels=["corrupted" if f else "clean" for f in flags],
                           seed=args.seed, progress=args.progress, device=device, **collate_kw(profile))
    curve = [{"step": i + 1, "train_loss": v} for i, v in enumerate(out["losses"])]
    config = {"method": "reweight", "profile_name": profile.name, "sources": sources, "corrupt": rate,
              "mean_weight": out["mean_weight"], "seed": args.seed,
              "corpus": str(args.corpus) if args.corpus else None,
              "inputs": profile.input_settings(), **protocol}
    save_run(args.out, model, vocab, config, curve)
    return model, curve


def _adapt_settings(method: str, run: Path, model, profile):
    """(lr, steps, trainable) for adapting a checkpoint made by ``method``."""
    if method in ("pretrain", "reweight"):
        return profile.ft_lr, profile.ft_steps, None
    if method == "scratch":
        return profile.scratch_lr, profile.scratch_steps, None
    from mdlib.meta.learners import make_learner

    state = runs.load_learner(run, method)
    learner = make_learner(method, dict(model.named_parameters()), int(state["inner_steps"]),
                           float(state["inner_lr"]), head=model.head_names())
    learner.load_state_dict(state)
    steps = getattr(profile, "meta_test_steps", None) or profile.ft_steps
    if method == "lslr":  # a learned schedule covers exactly the inner steps it was trained for
        steps = int(state["inner_steps"])
    return learner.step_sizes(), steps, state.get("trainable")


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _run_inputs(args, man: dict | None, run: Path) -> tuple[list[str], Path | None]:
    """(sources, corpus) for ``adapt``: the run's, unless ``--sources`` / ``--corpus`` override them."""
    check_task_names("--sources", args.sources)
    if man is None:  # a bare checkpoint file: no manifest to take them from
        return _sources(args), args.corpus
    sources = list(man["sources"])
    if args.sources and list(args.sources) != sources:
        _warn(f"--sources {' '.join(args.sources)} overrides the run's sources ({' '.join(sources)})")
        sources = list(args.sources)
    if args.corpus is None:
        return sources, runs.check_corpus(man, run)
    trained = man.get("corpus")
    if trained is None:
        _warn(f"--corpus {args.corpus}: the run was trained on the protocol corpora")
    elif runs.sha256_file(args.corpus) != trained["sha256"]:
        _warn(f"--corpus {args.corpus} is not the corpus the run was trained on ({trained['path']})")
    return sources, args.corpus


def _run_protocol(args, man: dict | None, config: dict) -> str:
    """The run's protocol (from its manifest, else its config); a different ``--protocol`` is an error."""
    trained = (man or config).get("protocol", "domains")
    if args.protocol is not None and check_protocol(args.protocol) != trained:
        raise MdlibError(f"--protocol {args.protocol}: {args.checkpoint} was trained with --protocol {trained}")
    return trained


def _adapt_profile(args, config: dict):
    """The adaptation profile: ``--profile`` (default the run's) with the run's input settings."""
    from mdlib.profiles import get_profile

    profile = get_profile(args.profile or config.get("profile_name", "quick"))
    profile = profile.with_inputs(config.get("inputs") or {})
    if args.input and args.input != profile.input:
        raise MdlibError(f"--input {args.input}: {args.checkpoint} was trained with input {profile.input!r}")
    return profile


def _write_result(result: dict, out: Path, keys: tuple[str, ...]) -> int:
    """Write ``result`` as JSON and print one line with ``keys``."""
    from mdlib.report import save_json

    save_json(result, out)
    shown = ", ".join(f"{k}={result[k]:.3f}" if isinstance(result[k], float) else f"{k}={result[k]}"
                      for k in keys)
    print(f"wrote {out}: {result['method']} on {result['target']}, k={result['k']}, seed {result['seed']}: {shown}")
    return 0


def cmd_adapt(args) -> int:
    from mdlib.checkpoint import load_checkpoint
    from mdlib.evaluation import adapt, evaluate, sample_kshot, split_of
    from mdlib.seeding import default_device, seed_everything

    out = output_file(args.out)
    if args.split not in SPLITS:
        raise MdlibError(f"--split: unknown split {args.split!r}; known splits: {', '.join(SPLITS)}")
    run = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
    # A run folder must verify against its manifest; a bare checkpoint file is checked on its own.
    man = runs.load_run(run) if args.checkpoint.is_dir() or (run / runs.MANIFEST).exists() else None
    device = default_device()
    model, vocab, config, _ = load_checkpoint(args.checkpoint, device=device)
    if _run_protocol(args, man, config) == "personas":
        return _adapt_personas(args, out, run, man, model, vocab, config, device)
    if args.split != "test":
        raise MdlibError(f"--split {args.split}: validation targets are for --protocol personas; the domain "
                         "protocol's step sizes come from the profile")
    sources, corpus = _run_inputs(args, man, run)
    profile = _adapt_profile(args, config)
    if args.target in sources:
        raise MdlibError(f"--target {args.target} is one of the checkpoint's sources ({', '.join(sources)})")
    data = _data(args, sources, [args.target], corpus)
    seed_everything(args.seed)
    method = man["method"] if man else config.get("method", "pretrain")
    shots = sample_kshot(data, args.target, args.k_shot, args.seed)
    lr, steps, trainable = _adapt_settings(method, run, model, profile)
    params = adapt(model, None, shots, profile, args.seed, vocab=vocab, lr=lr, steps=steps,
                   trainable=trainable, device=device)
    test = split_of(data, args.target, "test")[: profile.n_test]
    ref = split_of(data, args.target, "train")[:200]
    result = evaluate(model, params, test, vocab, profile, act_reference=ref, device=device, samples=args.samples)
    result.update(method=method, protocol="domains", k=args.k_shot, seed=args.seed, target=args.target,
                  profile=profile.name, checkpoint=str(args.checkpoint), adapt_steps=steps if shots else 0)
    return _write_result(result, out, ("bleu", "entity_f1", "entity_f1_uncopyable", "success_f1", "ppl"))


def _adapt_personas(args, out: Path, run: Path, man: dict | None, model, vocab, config: dict, device) -> int:
    """``adapt --protocol personas``: k support dialogues of a held-out persona, its test dialogues scored.

    Every check (flags, the persona, k) comes before any work; the result adds to
    :func:`~mdlib.evaluation.evaluate`'s metrics ``persona_acc`` and ``ser``
    (:func:`~mdlib.data.personas.score_outputs`) and the oracle ceiling of the same support
    set (``oracle_prior``, ``oracle_factors``: :func:`~mdlib.data.personas.oracle_accuracy`).
    """
    from mdlib.data.personas import (get_held_out, oracle_accuracy, persona_kshot, phrasing_prior, score_outputs,
                                     splits_from_dict)
    from mdlib.evaluation import adapt, evaluate
    from mdlib.seeding import seed_everything

    _check_persona_flags(args, "adapt")
    fields = (man or {}).get("personas") or config.get("personas")
    if fields is None:
        raise MdlibError(f"{args.checkpoint}: a persona run without its persona splits; train it again")
    splits = splits_from_dict(fields)
    roles = (SPLITS[args.split],)
    persona = get_held_out(args.target, splits, roles)
    shots = persona_kshot(args.target, args.k_shot, args.seed, splits, roles)
    profile = _adapt_profile(args, config)
    seed_everything(args.seed)
    method = man["method"] if man else config.get("method", "pretrain")
    lr, steps, trainable = _adapt_settings(method, run, model, profile)
    params = adapt(model, None, shots, profile, args.seed, vocab=vocab, lr=lr, steps=steps,
                   trainable=trainable, device=device)
    test = splits.dialogues(args.target, "test")  # all of them: the splits fix how many
    result = evaluate(model, params, test, vocab, profile, act_reference=splits.dialogues(args.target, "pool"),
                      device=device, samples=args.samples, score=score_outputs)
    prior = phrasing_prior(splits.names("train"))
    result.update({f"oracle_{g}": oracle_accuracy(persona, shots, test, prior, g) for g in ("prior", "factors")})
    result.update(method=method, protocol="personas", split=args.split, k=args.k_shot, seed=args.seed,
                  target=args.target, profile=profile.name, checkpoint=str(args.checkpoint),
                  adapt_steps=steps if shots else 0)
    return _write_result(result, out, ("persona_acc", "oracle_prior", "oracle_factors", "ser", "bleu", "ppl"))
