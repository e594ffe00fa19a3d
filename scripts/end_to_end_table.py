"""Which part's meta-learning matters end to end? Run mdlib.experiments.end_to_end and print its table.

Builds, for every seed, the parser, manager and generator of a system for the target
domain zero-shot / fine-tuned / meta-learned from k target dialogues, assembles the
systems of ``mdlib.experiments.end_to_end.SYSTEMS`` (all fine-tuned, all meta-learned,
one part meta-learned at a time) and lets each talk with the same listening users.
Writes the JSON (per-seed rows, intervals, paired differences against all fine-tuned)
and prints system x metric as ``mean [95% interval]``, then the paired differences.

Example::

    MDLIB_THREADS=1 python scripts/end_to_end_table.py --size small --seeds 0 1 2

Sizes (``mdlib.experiments.end_to_end.SIZES``): ``small`` (the default: notebook 07's
parser and generator budgets, notebook 06's policy defaults, 40 dialogues per system and
seed) and ``tiny`` (seconds, meaningless numbers: a smoke run).

``--target persona-N`` (a held-out persona of the persona family) runs
``mdlib.experiments.end_to_end_personas`` instead: source-domain parser and manager, the
generator zero-shot / fine-tuned / meta-learned / compute-matched control, against the
listening user in the source domains (its own ``small`` and ``tiny`` sizes; ``--dialogues``
counts per source domain), with paired differences against fine-tuned and the control::

    MDLIB_THREADS=1 python scripts/end_to_end_table.py --target persona-2000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdlib.errors import MdlibError  # noqa: E402


def main(argv=None) -> int:
    from mdlib.experiments import end_to_end as e2e
    from mdlib.experiments import end_to_end_personas as e2p

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--size", default="small", choices=list(e2e.SIZES), help="sizes and budgets of every part")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (one system build each)")
    ap.add_argument("--target", default="movie", help="target domain, or a held-out persona (persona-N)")
    ap.add_argument("--k-shot", type=int, default=None, help="target dialogues per part (default: the size's)")
    ap.add_argument("--dialogues", type=int, default=None, help="listening-user dialogues per system and seed")
    ap.add_argument("--out", default=None, help="output JSON (default: results/local/end_to_end.json, "
                    "or end_to_end_personas.json with a persona target)")
    ap.add_argument("--progress", action="store_true", help="show a progress bar over seeds")
    ap.add_argument("--table", metavar="JSON", help="only print the table of a result this script wrote "
                    "(summarised again from its per-seed rows)")
    args = ap.parse_args(argv)
    if args.table:
        return print_saved(args.table)
    persona = args.target.startswith("persona-")
    module = e2p if persona else e2e
    try:
        config, result, out = run_and_save(module, args, argv, "end_to_end_personas.json" if persona
                                           else "end_to_end.json")
    except MdlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if persona:
        print(f"end to end on the held-out persona {config.target}, k = {config.k_shot}, {config.adapt_steps} "
              f"adaptation steps, {config.n_dialogues} listening-user dialogues per source domain "
              f"({', '.join(e2p.SOURCES)}), system and seed, seeds {args.seeds}, size {args.size}; 95% intervals "
              f"over seeds (t-intervals, clipped to the bounds of success, BLEU and persona accuracy); BLEU against "
              f"the persona's own words\n")
    else:
        print(f"end to end on {config.target}, k = {config.k_shot}, {config.n_dialogues} listening-user dialogues "
              f"per system and seed, seeds {args.seeds}, size {args.size}; 95% intervals over seeds "
              f"(t-intervals, clipped to the bounds of success and BLEU)\n")
    print(module.format_table(result))
    chosen = f"\nadaptation step sizes chosen on validation personas: {result['lr']}" if persona else ""
    print(f"{chosen}\nwrote {out} ({result['wall_seconds']:.0f} s wall-clock)")
    return 0


def run_and_save(module, args, argv, default_name: str):
    """Build the configuration from the flags, run ``module.run`` over the seeds and save the JSON.

    ``module`` is :mod:`mdlib.experiments.end_to_end` or :mod:`~mdlib.experiments.end_to_end_personas`
    (the same ``get_config`` / ``run`` interface). Returns ``(config, result, path written)``.
    """
    from mdlib import paths
    from mdlib.report import save_json
    from mdlib.seeding import seed_everything

    changes = {"target": args.target}
    if args.k_shot is not None:
        changes["k_shot"] = args.k_shot
    if args.dialogues is not None:
        changes["n_dialogues"] = args.dialogues
    config = module.get_config(args.size, **changes)
    seed_everything(args.seeds[0])  # reads MDLIB_THREADS
    start = time.time()
    result = module.run(config, args.seeds, progress=args.progress)
    result["size"] = args.size
    result["command"] = " ".join(["scripts/end_to_end_table.py"] + list(argv if argv is not None else sys.argv[1:]))
    result["wall_seconds"] = round(time.time() - start, 1)
    out = save_json(result, args.out or paths.LOCAL_RESULTS_DIR / default_name)
    return config, result, out


def print_saved(path: str) -> int:
    """Print the table of a saved result, summarised again from its rows."""
    import json

    from mdlib.experiments.end_to_end import format_table, summarise

    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = result["rows"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: --table {path}: expected a JSON file written by this script ({e})", file=sys.stderr)
        return 1
    if str(result.get("config", {}).get("target", "")).startswith("persona-"):
        from mdlib.experiments import end_to_end_personas as e2p

        print(e2p.format_table({"summary": e2p.summarise(rows)}))
    else:
        print(format_table({"summary": summarise(rows)}))
    print(f"\n{path}: seeds {result.get('seeds')}, size {result.get('size')}, "
          f"{result.get('wall_seconds')} s wall-clock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
