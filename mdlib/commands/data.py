"""Data sub-commands: ``generate``, ``validate``, ``convert`` and ``data``.

Examples::

    python -m mdlib generate --domain movie --domain bus --spec mix --n 100 --seed 0 --out movie_bus.jsonl
    python -m mdlib validate movie_bus.jsonl
    python -m mdlib convert --from simdial simdial_output.json --out converted.jsonl
    python -m mdlib data            # generate + verify the six protocol corpora
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from mdlib.commands._common import positive_int
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
        "data", help="generate and verify the six protocol corpora",
        description="Generate data/corpora/*.jsonl (1500 mix dialogues per domain) if missing "
        "and verify every file against data/manifest.json (SHA-256).")
    p.add_argument("--update-manifest", action="store_true",
                   help="regenerate the corpora and rewrite data/manifest.json (after a deliberate generator change)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_data)
