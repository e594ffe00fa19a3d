"""Run the compute-matched persona probe for several seeds, write JSON, print the table.

    PYTHONPATH=. MDLIB_THREADS=1 .venv/bin/python scripts/persona_probe.py --seeds 0,1,2 \\
        [--out results/local/persona_probe.json] [--meta-steps 150] [--inner-lr 0.3] ...

The experiment is :func:`mdlib.experiments.personas.run_persona_probe` (docs/persona_probe.md).
Printed: mean persona accuracy (and slot error rate) per method, k and adaptation steps over
test personas and seeds, the oracle ceilings, and the paired per-seed difference of the best
meta-learner (chosen on validation personas) against the compute-matched control
(``multitask``) and against ``pretrain_ft``, with :func:`mdlib.stats.paired_difference`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from mdlib.atomic import read_json, write_text
from mdlib.data.personas import PersonaSplits
from mdlib.errors import MdlibError
from mdlib.experiments.personas import (PROBE_METHODS, PROBE_SPLITS, best_meta_learner, paired_rows,
                                        run_persona_probe, summarise, validation_table)
from mdlib.paths import ROOT
from mdlib.seeding import seed_everything


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _fmt(cell: dict, digits: int = 3) -> str:
    return f"{cell['mean']:.{digits}f}"


def print_report(runs: list[dict], out=sys.stdout) -> dict:
    """Print the table and the paired differences; return them (what goes into the JSON)."""
    summary = summarise(runs)
    best = best_meta_learner(runs)
    paired = paired_rows(runs, best)
    ks = sorted({c["k"] for c in summary["cells"]})
    steps = sorted({c["steps"] for c in summary["cells"]})
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"\nPersona accuracy (mean over {len(runs[0]['oracle']) // len(ks)} test personas and "
      f"{len({r['seed'] for r in runs})} seed(s); SER in brackets)")
    p(f"{'method':<12} {'k':>2} " + " ".join(f"{'steps ' + str(s):>16}" for s in steps))
    for method in PROBE_METHODS:
        for k in ks:
            cells = {c["steps"]: c for c in summary["cells"] if c["method"] == method and c["k"] == k}
            if not cells:
                continue
            p(f"{method:<12} {k:>2} " + " ".join(
                f"{_fmt(cells[s]['persona_acc']):>8} ({_fmt(cells[s]['ser'], 2):>5})" for s in steps))
    for k in ks:
        o = summary["oracle"][k]
        p(f"{'oracle':<12} {k:>2}   ceiling: {o['prior']:.3f} (guess = prior), {o['factors']:.3f} (guess = factors)")
    p(f"\nBest meta-learner on validation personas: {best}")
    p("Paired per-seed difference (seeds paired after averaging over test personas; "
      "t-intervals, clipped to the bounds for persona accuracy)")
    for r in paired:
        p(f"  {r['method']} - {r['baseline']:<11} {r['metric']:<11} k={r['k']} steps={r['steps']:>2}: "
          f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]  wins {r['wins']}/{r['n']}")
    return {"summary": summary, "best_meta_learner": best, "paired": paired}


def print_validation(runs: list[dict], out=sys.stdout) -> dict:
    """Print validation persona accuracy at the chosen step sizes (no test persona involved)."""
    table = validation_table(runs)
    steps = sorted({s for _, _, s in table})
    print(f"\nValidation persona accuracy at each method's chosen step size (mean over {len({r['seed'] for r in runs})} seed(s))",
          file=out)
    print(f"{'method':<12} {'k':>2} " + " ".join(f"{'steps ' + str(s):>9}" for s in steps), file=out)
    for method, k in sorted({(m, k) for m, k, _ in table}, key=lambda c: (PROBE_METHODS.index(c[0]), c[1])):
        print(f"{method:<12} {k:>2} " + " ".join(f"{table[(method, k, s)]:>9.3f}" for s in steps), file=out)
    return {"validation": [{"method": m, "k": k, "steps": s, "valid_acc": v} for (m, k, s), v in table.items()]}


def set_frame_noise(value: float) -> None:
    """Study only: make personas with another per-key noise (the committed default stays)."""
    from mdlib.data import personas

    if not 0.0 <= value <= 1.0:
        raise MdlibError(f"--frame-noise {value}: expected a probability in [0, 1]")
    personas.FRAME_NOISE = value
    personas.make_persona.cache_clear()  # personas and their dialogues were built with the old noise
    personas._dialogues_cached.cache_clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "local" / "persona_probe.json")
    parser.add_argument("--methods", default=",".join(PROBE_METHODS))
    parser.add_argument("--k", default="1,3", help="support dialogues at test")
    parser.add_argument("--adapt-steps", default="0,1,3,10")
    parser.add_argument("--meta-steps", type=int, default=150)
    parser.add_argument("--meta-batch", type=int, default=4)
    parser.add_argument("--k-support", type=int, default=2)
    parser.add_argument("--k-query", type=int, default=2)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--inner-lr", type=float, default=0.3)
    parser.add_argument("--outer-lr", type=float, default=1e-3)
    parser.add_argument("--lr-grid", default="0.03,0.1,0.3,1.0", help="adaptation SGD step sizes")
    parser.add_argument("--n-select", type=int, default=5, help="evaluation dialogues per validation persona")
    parser.add_argument("--n-valid", type=int, default=PROBE_SPLITS.n_valid, help="validation personas")
    parser.add_argument("--n-test", type=int, default=PROBE_SPLITS.n_test, help="test personas")
    parser.add_argument("--validation-only", action="store_true",
                        help="stop after the step-size choice and print validation persona accuracy "
                             "(for studying settings without touching a test persona)")
    parser.add_argument("--frame-noise", type=float, default=None,
                        help="study only: override mdlib.data.personas.FRAME_NOISE for this process "
                             "(turns off the pretraining cache, whose key does not see it)")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="print the report of JSON files this script wrote (no run); several files "
                             "(e.g. one seed each, run in parallel) are reported as one run")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    try:
        if args.from_json is not None:
            saved = [read_json(f) for f in args.from_json]
            runs = [r for one in saved for r in one["runs"]]
            cells = [(r["seed"], m) for r in runs for m in r["selection"]]
            twice = sorted({c for c in cells if cells.count(c) > 1})
            if twice:
                raise MdlibError(f"--from-json: (seed, method) {twice[0]} is in more than one file")
            print_validation(runs) if all("validation" in one for one in saved) else print_report(runs)
            for one in saved:
                print(f"\n{one['command']}\nwall-clock: {one['wall_seconds']:.0f} s")
            return 0
        if args.frame_noise is not None:
            set_frame_noise(args.frame_noise)
        splits = PersonaSplits(n_train=PROBE_SPLITS.n_train, n_valid=args.n_valid, n_test=args.n_test)
        runs = []
        t0 = time.perf_counter()
        for seed in _ints(args.seeds):
            seed_everything(seed)
            run = run_persona_probe(
                seed, splits=splits, methods=args.methods.split(","), k_values=_ints(args.k),
                adapt_steps=_ints(args.adapt_steps), meta_steps=args.meta_steps, meta_batch=args.meta_batch,
                k_support=args.k_support, k_query=args.k_query, inner_steps=args.inner_steps,
                inner_lr=args.inner_lr, outer_lr=args.outer_lr, adapt_lr_grid=_floats(args.lr_grid),
                n_select=args.n_select, test=not args.validation_only, cache=args.frame_noise is None,
                progress=args.progress)
            runs.append(run)
            print(f"seed {seed}: " + ", ".join(f"{k} {v:.0f} s" for k, v in run["seconds"].items()),
                  f"(torch threads {torch.get_num_threads()})", flush=True)
        wall = time.perf_counter() - t0
        report = print_validation(runs) if args.validation_only else print_report(runs)
        print(f"\nwall-clock: {wall:.0f} s")
        write_text(args.out, json.dumps({"command": " ".join(sys.argv), "wall_seconds": wall, **report,
                                         "runs": runs}, indent=1, default=str))
        print(f"wrote {args.out}")
    except MdlibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
