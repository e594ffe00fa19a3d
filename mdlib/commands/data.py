"""Data sub-commands: ``generate``, ``validate``, ``convert`` and ``data``.

Examples::

    python -m mdlib generate --domain movie --domain bus --spec mix --n 100 --seed 0 --out movie_bus.jsonl
    python -m mdlib validate movie_bus.jsonl
    python -m mdlib convert --from simdial simdial_output.json --out converted.jsonl
    python -m mdlib data            # generate + verify the six protocol corpora
    python -m mdlib data --protocol personas --list     # the held-out personas
    python -m mdlib data --protocol personas --stats    # the numbers of docs/personas.md
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from mdlib.commands._common import check_protocol, positive_int
from mdlib.errors import MdlibError


def _summary(records: list[dict]) -> str:
    domains = collections.Counter(r["domain"] for r in records)
    n_turns = sum(len(r["turns"]) for r in records)
    annotated = sum(1 for r in records for t in r["turns"] if "acts" in t)
    parts = ", ".join(f"{d} {n}" for d, n in sorted(domains.items()))
    return (f"{len(records)} dialogues, {n_turns} turns ({n_turns / len(records):.1f} per dialogue), "
            f"{annotated / max(1, n_turns):.0%} of turns with acts; domains: {parts}")


def _check_out(out: str) -> Path:
    path = Path(out)
    if path.is_dir():
        raise MdlibError(f"--out {out}: is a folder, expected a file name")
    return path


def cmd_generate(args) -> int:
    from mdlib.data.corpus import save_corpus
    from mdlib.data.generator import generate

    out = _check_out(args.out)
    records = generate(args.domain, args.spec, args.n, args.seed, progress=args.progress)
    save_corpus(records, out)
    print(f"wrote {out}: {_summary(records)}")
    return 0


def cmd_validate(args) -> int:
    from mdlib.data.corpus import load_corpus

    records = load_corpus(args.file)
    print(f"{args.file}: valid; {_summary(records)}")
    return 0


def cmd_convert(args) -> int:
    from mdlib.data.corpus import load_simdial, save_corpus

    out = _check_out(args.out)
    records = load_simdial(args.input)
    save_corpus(records, out)
    print(f"wrote {out}: {_summary(records)}")
    return 0


def cmd_data(args) -> int:
    from mdlib.data.splits import SPLITS, ensure_corpora, load_manifest, update_manifest

    if check_protocol(args.protocol) == "personas":
        return _personas(args)
    if args.stats or args.out:
        raise MdlibError(f"{'--stats' if args.stats else '--out'} is for --protocol personas; "
                         f"`python -m mdlib data` generates and verifies the domain corpora")
    if args.list:
        from mdlib.data.domains import SOURCES, TARGETS

        print(f"held-out target domains (adapt --target NAME): {', '.join(TARGETS)}; "
              f"meta-training domains: {', '.join(SOURCES)}")
        return 0
    if args.update_manifest:
        path = update_manifest(progress=args.progress)
        print(f"regenerated the protocol corpora and rewrote {path}")
    folder = ensure_corpora(progress=args.progress)
    man = load_manifest()
    print(f"protocol corpora in {folder} (verified against data/manifest.json):")
    for name, e in man["files"].items():
        print(f"  {name:24s} {e['dialogues']} {e['spec']} dialogues, seed {e['seed']}, "
              f"sha256 {e['sha256'][:12]}")
    print("splits: " + ", ".join(f"{k} {hi - lo}" for k, (lo, hi) in SPLITS.items()))
    return 0


def _personas(args) -> int:
    from mdlib.data.personas import (DEFAULT_SPLITS, family_stats, held_out_personas, make_persona,
                                     persona_seed)

    if args.update_manifest:
        raise MdlibError("--update-manifest is for --protocol domains; persona dialogues are "
                         "generated on the fly, deterministic per (persona seed, dialogue seed)")
    splits = DEFAULT_SPLITS
    if args.stats:
        _print_stats(family_stats(splits))
    if args.out:
        from mdlib.data.corpus import save_corpus

        out = _check_out(args.out)
        records = [d for role in ("train", "valid", "test") for name in splits.names(role)
                   for part in (("pool", "valid") if role == "train" else ("pool", "test"))
                   for d in splits.dialogues(name, part)]
        save_corpus(records, out)
        print(f"wrote {out}: {len(records)} dialogues of {splits.n_train + splits.n_valid + splits.n_test} "
              f"personas (meta.part: pool, valid or test)")
    if args.list or not (args.stats or args.out):
        roles = {r: splits.seeds(r) for r in ("train", "valid", "test")}
        print(f"persona protocol: {len(roles['train'])} meta-training personas "
              f"(persona-{roles['train'].start}..persona-{roles['train'].stop - 1}), "
              f"{len(roles['valid'])} validation personas "
              f"(persona-{roles['valid'].start}..persona-{roles['valid'].stop - 1}; step sizes, early stopping), "
              f"{len(roles['test'])} held-out test personas; {splits.pool} support dialogues per persona, "
              f"{splits.test_dialogues} test dialogues per held-out persona")
        print("held-out personas (adapt --protocol personas --target NAME):")
        for name in held_out_personas(splits):
            print("  " + make_persona(persona_seed(name)).describe())
    return 0


def _print_stats(s: dict) -> None:
    p, d = s["personas"], s["dialogues"]
    print(f"personas: {p['train']} meta-training, {p['valid']} validation, {p['test']} test; "
          f"{s['distinct_tables']} distinct phrasing tables")
    print(f"keys (act, slot): {s['keys']}; frames per pool: {s['pool_size']}; frame noise: {s['frame_noise']}")
    print(f"dialogues per persona: pool {d['pool']}, valid {d['valid']} (meta-training personas), "
          f"test {d['test']} (validation and test personas); "
          f"{d['system_turns_per_dialogue']:.2f} system turns per dialogue")
    print(f"share of keys whose frame follows the factors: {s['factor_share']:.3f}")
    print(f"persona accuracy, persona-blind output (turns of other personas): {s['blind_acc']:.3f} "
          f"(1/pool = {s['chance']:.3f})")
    print("oracle ceiling on the test personas (mean over personas and k-shot draws):")
    print("  k   units seen   guess=prior   guess=factors")
    for k, row in s["oracle"].items():
        print(f"  {k:<3d} {row['seen']:10.3f}   {row['prior']:11.3f}   {row['factors']:13.3f}")


def register(subparsers) -> None:
    """Add the data sub-commands to the CLI."""
    p = subparsers.add_parser(
        "generate", help="generate simulated dialogues (JSON Lines)",
        description="Generate slot-filling dialogues between the simulated user and the "
        "threshold policy, realised as text, in the corpus format (one dialogue per line).")
    p.add_argument("--domain", action="append", required=True, metavar="NAME",
                   help="domain (repeat for several): restaurant, restaurant_style, rest_pitt, bus, weather, movie")
    p.add_argument("--spec", default="mix", help="complexity preset: clean or mix (default mix)")
    p.add_argument("--n", type=positive_int, default=100, help="dialogues per domain (default 100)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="output file (written atomically)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_generate)

    p = subparsers.add_parser(
        "validate", help="check a JSON Lines corpus",
        description="Validate a corpus; print a summary, or the first problem as FILE:LINE: field ... and exit 1.")
    p.add_argument("file", metavar="FILE.jsonl")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser(
        "convert", help="convert a corpus from another format",
        description="Convert a file made by the original SimDial generator "
        "({\"dialogs\": [[turn, ...]], \"meta\": {...}}) to the mdlib corpus format.")
    p.add_argument("--from", dest="fmt", required=True, choices=["simdial"], help="input format")
    p.add_argument("input", metavar="IN.json")
    p.add_argument("--out", required=True, metavar="OUT.jsonl", help="output file (written atomically)")
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser(
        "data", help="generate and verify the six protocol corpora; list the persona family",
        description="--protocol domains (default): generate data/corpora/*.jsonl (1500 mix "
        "dialogues per domain) if missing and verify every file against data/manifest.json "
        "(SHA-256). --protocol personas: the persona task family (docs/personas.md): list the "
        "held-out personas, print its statistics or write its dialogues.")
    p.add_argument("--protocol", default="domains", help="domains (default) or personas")
    p.add_argument("--list", action="store_true",
                   help="print the held-out tasks (target domains, or test personas)")
    p.add_argument("--stats", action="store_true",
                   help="personas: print the family's statistics (blind score, oracle ceiling over k)")
    p.add_argument("--out", metavar="FILE.jsonl",
                   help="personas: write every persona dialogue (pool, valid, test) to one corpus file")
    p.add_argument("--update-manifest", action="store_true",
                   help="regenerate the corpora and rewrite data/manifest.json (after a deliberate generator change)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_data)
