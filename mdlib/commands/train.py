"""``python -m mdlib train`` and ``python -m mdlib adapt``: train a generator, then adapt
it to a target domain with k dialogues and score it.

Examples::

    python -m mdlib train --method pretrain --profile quick --seed 0 --out runs/pre0
    python -m mdlib adapt --checkpoint runs/pre0 --target movie --k-shot 9 --seed 0 --out results/pre0_movie.json
    python -m mdlib train --method pretrain --corpus my.jsonl --sources a b c --target d --out runs/mine
    python -m mdlib adapt --checkpoint runs/mine --target d --k-shot 3 --out r.json

Methods: ``pretrain`` (multi-domain supervised training on the sources), ``scratch``
(a random initialisation; ``adapt`` then trains it on the k target dialogues only), and
the meta-learners of :mod:`mdlib.meta.metatrain` when present (``maml``, ``fomaml``, ...).
With ``--corpus``, tasks come from each dialogue's ``"domain"`` field, split by
:func:`mdlib.data.splits.split_corpus` (seed 0, so ``train`` and ``adapt`` agree);
metrics that need annotations the corpus lacks are written as ``null``.

``train`` writes the run's manifest ``run.json`` last (:mod:`mdlib.runs`); ``adapt``
verifies the run against it and takes the sources and the corpus from it (``--sources``
and ``--corpus`` override them, with a warning).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mdlib import runs
from mdlib.commands._common import check_task_names, nonnegative_int, output_file
from mdlib.errors import MdlibError

SPLIT_SEED = 0


def _meta_methods() -> tuple[str, ...]:
    try:
        from mdlib.meta.learners import METHODS
        import mdlib.meta.metatrain  # noqa: F401  (must exist for dispatch)
    except ImportError:
        return ()
    return tuple(METHODS)


def _methods() -> tuple[str, ...]:
    return ("pretrain", "scratch", "reweight") + _meta_methods()


def _add_data_args(p: argparse.ArgumentParser, target_required: bool) -> None:
    from mdlib.profiles import PROFILES

    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="run size (default: quick for train, the checkpoint's for adapt)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--corpus", type=Path, default=None,
                   help="a JSONL corpus (format: docs/protocol.md); tasks from each dialogue's 'domain' "
                        "field (default: the protocol corpora; for adapt: the corpus the run was trained on)")
    p.add_argument("--sources", nargs="+", default=None, metavar="TASK",
                   help="source (training) tasks (default: bus restaurant weather; for adapt: the run's)")
    p.add_argument("--target", default=None, required=target_required, metavar="TASK",
                   help="the held-out target task" + ("" if target_required else " (needed with --corpus)"))
    p.add_argument("--progress", action="store_true", help="show progress bars")


def register(subparsers) -> None:
    """Add ``train`` and ``adapt`` to the CLI."""
    p = subparsers.add_parser("train", help="train a response generator on the source domains",
                              description="Train a response generator (pretrain, scratch or a meta-learner) "
                                          "and write checkpoint.pt, config.json, curve.json, vocab.json to --out, "
                                          "then run.json, the manifest that adapt verifies (docs/runs.md).")
    p.add_argument("--method", choices=_methods(), default="pretrain", help="training method (default pretrain)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--corrupt", type=float, default=0.0, metavar="RATE",
                   help="reweight: corrupt this fraction of the source responses, in [0, 1) (default 0)")
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


def cmd_train(args) -> int:
    from mdlib.checkpoint import save_run
    from mdlib.evaluation import data_signature, new_model, pretrain, protocol_vocab, split_of
    from mdlib.profiles import get_profile
    from mdlib.seeding import default_device, seed_everything

    runs.check_out(args.out)
    profile = get_profile(args.profile or "quick")
    check_task_names("--sources", args.sources)
    sources = _sources(args)
    targets = [args.target] if args.target else []
    if args.target and args.target in sources:
        raise MdlibError(f"--target {args.target} is also among --sources: that leaks the target into training")
    if args.corpus is not None and args.sources is None:
        raise MdlibError("--corpus needs --sources (the training tasks)")
    if args.method == "reweight":
        from mdlib.data.corruption import check_rate

        check_rate(args.corrupt)
    data = _data(args, sources, targets)
    corpus = runs.corpus_entry(args.corpus)  # hashed before training: what was loaded
    runs.begin(args.out)
    seed_everything(args.seed)
    device = default_device()
    config = {"method": args.method, "profile_name": profile.name, "sources": sources, "targets": targets,
              "corpus": str(args.corpus) if args.corpus else None, "data": data_signature(data),
              "seed": args.seed, "inputs": {"context_turns": profile.context_turns, "use_acts": profile.use_acts,
                                            "max_src": profile.max_src, "max_tgt": profile.max_tgt}}
    if args.method == "pretrain":
        model, vocab, info = pretrain(profile, args.seed, sources=sources, data=data, progress=args.progress,
                                      device=device, cache=False)
        curve = info["curve"]
        save_run(args.out, model, vocab, config, curve)
    elif args.method == "reweight":  # learned example weights (Ren et al. 2018), notebook 05
        model, curve = _train_reweight(args, profile, sources, data, device)
    else:
        vocab = protocol_vocab(profile, sources, data)
        model = new_model(vocab, profile, args.seed, device)
        curve = []
        learner_state = None
        if args.method != "scratch":
            from mdlib.meta.metatrain import meta_train

            if getattr(profile, "meta_init", "random") == "pretrain":
                model, vocab, _ = pretrain(profile, args.seed, sources=sources, data=data, device=device)
            tasks = {s: split_of(data, s, "train")[: profile.n_train] for s in sources}
            valid = {s: split_of(data, s, "valid")[: profile.n_valid] for s in sources}
            learner, hist = meta_train(args.method, model, tasks, vocab, profile, args.seed, valid=valid,
                                       targets=targets, progress=args.progress, device=device)
            curve = hist.to_dict()["steps"]
            learner_state = learner.state_dict()
        save_run(args.out, model, vocab, config, curve)
        if learner_state is not None:
            runs.save_learner(args.out, learner_state)
    runs.finish(args.out, method=args.method, profile=profile.name, seed=args.seed, sources=sources,
                targets=targets, model=model.config.to_dict(), corpus=corpus)
    last = curve[-1] if curve else {}
    print(f"wrote {args.out} (method {args.method}, profile {profile.name}, seed {args.seed}"
          + (f", final {', '.join(f'{k}={v:.3f}' for k, v in last.items() if isinstance(v, float))}" if last else "")
          + ")")
    return 0


def _train_reweight(args, profile, sources, data, device):
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
              "inputs": {"context_turns": profile.context_turns, "use_acts": profile.use_acts,
                         "max_src": profile.max_src, "max_tgt": profile.max_tgt}}
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
                           float(state["inner_lr"]))
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


def cmd_adapt(args) -> int:
    from mdlib.checkpoint import load_checkpoint
    from mdlib.evaluation import adapt, evaluate, sample_kshot, split_of
    from mdlib.profiles import get_profile
    from mdlib.report import save_json
    from mdlib.seeding import default_device, seed_everything

    out = output_file(args.out)
    run = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
    # A run folder must verify against its manifest; a bare checkpoint file is checked on its own.
    man = runs.load_run(run) if args.checkpoint.is_dir() or (run / runs.MANIFEST).exists() else None
    sources, corpus = _run_inputs(args, man, run)
    device = default_device()
    model, vocab, config, _ = load_checkpoint(args.checkpoint, device=device)
    profile = get_profile(args.profile or config.get("profile_name", "quick"))
    inputs = config.get("inputs") or {}
    profile = profile.replace(**{k: v for k, v in inputs.items() if hasattr(profile, k)})
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
    result.update(method=method, k=args.k_shot, seed=args.seed, target=args.target, profile=profile.name,
                  checkpoint=str(args.checkpoint), adapt_steps=steps if shots else 0)
    save_json(result, out)
    shown = ", ".join(f"{k}={result[k]:.3f}" if isinstance(result[k], float) else f"{k}={result[k]}"
                      for k in ("bleu", "entity_f1", "ppl"))
    print(f"wrote {out}: {method} on {args.target}, k={args.k_shot}, seed {args.seed}: {shown}")
    return 0
