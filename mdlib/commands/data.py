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
import sys
from pathlib import Path

from mdlib.commands._common import check_protocol, output_file, positive_int
from mdlib.data.domains import DOMAINS  # light: records only (the generator loads on use)
from mdlib.errors import MdlibError


class _Summary:
    """Counts over records seen one at a time (the streaming ``generate`` keeps no list)."""

    def __init__(self):
        self.domains: collections.Counter = collections.Counter()
        self.dialogues = self.turns = self.annotated = 0

    def add(self, rec: dict) -> None:
        self.domains[rec["domain"]] += 1
        self.dialogues += 1
        self.turns += len(rec["turns"])
        self.annotated += sum(1 for t in rec["turns"] if "acts" in t)

    def __str__(self) -> str:
        parts = ", ".join(f"{d} {n}" for d, n in sorted(self.domains.items()))
        return (f"{self.dialogues} dialogues, {self.turns} turns ({self.turns / max(1, self.dialogues):.1f} per "
                f"dialogue), {self.annotated / max(1, self.turns):.0%} of turns with acts; domains: {parts}")


def _summary(records) -> str:
    summary = _Summary()
    for rec in records:
        summary.add(rec)
    return str(summary)


#: Dialogues per domain sampled to estimate the size of a generated corpus.
SIZE_SAMPLE = 20
#: Room kept free on the disk (bytes) besides the corpus itself.
DISK_MARGIN = 10**9


def _free_bytes(path: Path) -> int:
    """Free bytes on the file system that ``path`` would be written to."""
    import shutil

    folder = path.absolute().parent
    while not folder.exists():  # the folders are created when the file is written
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _check_disk(args, out: Path) -> int:
    """Estimate the corpus's size from a sample; refuse up front when the disk cannot hold it.

    Returns:
        The estimate in bytes.

    Raises:
        MdlibError: the estimate (plus :data:`DISK_MARGIN`) exceeds the free space.
    """
    from mdlib.data.corpus import dumps
    from mdlib.data.generator import iter_dialogues

    per_domain = []
    for domain in args.domain:
        sample = list(iter_dialogues([domain], args.spec, min(args.n, SIZE_SAMPLE), args.seed))
        per_domain.append(sum(len(dumps(r).encode("utf-8")) + 1 for r in sample) / len(sample))
    estimate = int(sum(per_domain) * args.n)
    free = _free_bytes(out)
    if estimate + DISK_MARGIN > free:
        raise MdlibError(f"--n {args.n}: the corpus would take about {estimate / 1e9:.1f} GB "
                         f"(estimated from {SIZE_SAMPLE} dialogues per domain), but {out.absolute().parent} "
                         f"has {free / 1e9:.1f} GB free (keeping {DISK_MARGIN / 1e9:.1f} GB spare); "
                         "ask for fewer dialogues or write elsewhere")
    return estimate


def cmd_generate(args) -> int:
    from tqdm.auto import tqdm

    from mdlib.data.corpus import write_corpus
    from mdlib.data.generator import iter_dialogues

    out = output_file(args.out)
    records = iter_dialogues(args.domain, args.spec, args.n, args.seed)  # checks the arguments
    estimate = _check_disk(args, out)
    total = args.n * len(args.domain)
    # A bar on a terminal (or with --progress), on stderr: stdout keeps the one summary line.
    bar = tqdm(total=total, desc="generate", unit="dialogue", disable=None if not args.progress else False,
               file=sys.stderr)
    if estimate > 1e9:
        bar.write(f"writing about {estimate / 1e9:.1f} GB to {out}", file=sys.stderr)
    summary = _Summary()

    def seen(rec: dict) -> None:
        summary.add(rec)
        bar.update(1)

    try:  # the generator's ids are unique by construction: no id set, so memory stays constant
        write_corpus(records, out, check_ids=False, on_record=seen)
    finally:
        bar.close()
    print(f"wrote {out}: {summary}")
    return 0


def cmd_validate(args) -> int:
    from mdlib.data.corpus import load_corpus

    records = load_corpus(args.file)
    print(f"{args.file}: valid; {_summary(records)}")
    return 0


def cmd_convert(args) -> int:
    from mdlib.data.corpus import load_simdial, save_corpus

    out = output_file(args.out)
    records = load_simdial(args.input)
    try:
        save_corpus(records, out)
    except MdlibError as exc:  # a record that cannot be written: the problem is in the input
        raise MdlibError(f"{args.input}: {exc}") from None
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

        out = output_file(args.out)
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
        "threshold policy, realised as text, in the corpus format (one dialogue per line, "
        "docs/data.md). Dialogues are written as they are made (constant memory); a request "
        "whose estimated size does not fit the free disk space is refused before it starts.")
    p.add_argument("--domain", action="append", required=True, metavar="NAME",
                   help=f"domain (repeat for several): {', '.join(DOMAINS)}")
    p.add_argument("--spec", default="mix", help="complexity preset: clean or mix (default mix)")
    p.add_argument("--n", type=positive_int, default=100, help="dialogues per domain (default 100)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="output file (written atomically)")
    p.add_argument("--progress", action="store_true",
                   help="show a progress bar on stderr even when it is not a terminal (on a terminal it always shows)")
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
