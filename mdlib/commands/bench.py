"""``python -m mdlib bench``: milliseconds per meta-step of the two engines (docs/engine.md).

Example::

    MDLIB_THREADS=1 python -m mdlib bench --out results/bench/engine.json

For every method x meta-batch x engine it runs warm-up meta-steps, then times
``--repeats`` more (:func:`mdlib.benchmark.time_meta_steps`: meta-gradient plus an
Adam step, on the profile's model and episodes) and reports the median. Each
configuration runs in a fresh process, so that its peak memory is its own. Two-process
(torchrun) rows are not measured here yet.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from mdlib.commands._common import nonnegative_int, positive_int

ENGINES = ("loop", "batched")  # mdlib.meta.learners.ENGINES, without importing torch at CLI start


def register(subparsers) -> None:
    """Add ``bench`` to the CLI."""
    from mdlib.profiles import PROFILES

    p = subparsers.add_parser("bench", help="time meta-steps of the loop and batched engines",
                              description="Time meta-steps (median ms after warm-up) and peak memory for "
                                          "method x meta-batch x engine; print a table, optionally write JSON.")
    p.add_argument("--methods", nargs="+", default=["fomaml", "maml", "reptile"],
                   choices=["maml", "fomaml", "reptile", "metasgd", "anil"], help="default: fomaml maml reptile")
    p.add_argument("--meta-batches", nargs="+", type=positive_int, default=[1, 4, 16], metavar="N",
                   help="tasks per meta-batch (default 1 4 16; drawn with replacement from the source domains)")
    p.add_argument("--engine", choices=ENGINES, default=None, help="time only this engine (default: both)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed meta-steps per configuration (default 5)")
    p.add_argument("--warmup", type=nonnegative_int, default=2, help="untimed meta-steps first (default 2)")
    p.add_argument("--profile", choices=list(PROFILES), default="quick", help="model and episode size (default quick)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the model and episodes (default 0)")
    p.add_argument("--max-pairs", type=positive_int, default=None, metavar="N",
                   help="keep only N responses per support and query batch (smaller tasks; default: whole episodes)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the GPU when present)")
    p.add_argument("--out", type=Path, default=None, help="also write the table as JSON here")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_bench)


def _measure(job: dict) -> dict:
    """One configuration, in its own process: rebuild the model, time it."""
    import torch

    from mdlib.benchmark import time_meta_steps
    from mdlib.meta.learners import TaskBatches
    from mdlib.models.seq2seq import Seq2Seq
    from mdlib.seeding import seed_everything

    seed_everything(job["seed"])
    model = Seq2Seq(job["config"])
    model.load_state_dict(job["state"])
    model.to(job["device"])
    tasks = [TaskBatches(t.task, [b.to(job["device"]) for b in t.support], [b.to(job["device"]) for b in t.query])
             for t in job["tasks"]]
    out = time_meta_steps(job["method"], model, tasks, job["engine"], inner_steps=job["inner_steps"],
                          inner_lr=job["inner_lr"], repeats=job["repeats"], warmup=job["warmup"])
    out["threads"] = torch.get_num_threads()
    return out


def render(result: dict) -> str:
    """The table of a :func:`run_bench` result as text."""
    rows = {(r["method"], r["meta_batch"], r["engine"]): r for r in result["rows"]}
    engines = result["engines"]
    head = ["method", "meta-batch"] + [f"{e} ms" for e in engines]
    if len(engines) == 2:
        head.append("speed-up loop/batched")
    head += [f"{e} MB" for e in engines]
    lines = [f"ms per meta-step: median of {result['repeats']} after {result['warmup']} warm-up; "
             f"{result['device']}, {result['threads']} thread(s); profile {result['profile']} "
             f"({result['parameters']} parameters"
             + (f", at most {result['max_pairs']} responses per batch" if result.get("max_pairs") else "")
             + f"); MB: {result['memory']}",
             " | ".join(head), " | ".join("---" for _ in head)]
    for method in result["methods"]:
        for mb in result["meta_batches"]:
            cells = [method, str(mb)] + [f"{rows[method, mb, e]['ms']:.0f}" for e in engines]
            if len(engines) == 2:
                cells.append(f"{rows[method, mb, 'loop']['ms'] / rows[method, mb, 'batched']['ms']:.2f}x")
            cells += [f"{rows[method, mb, e]['peak_mb']:.0f}" for e in engines]
            lines.append(" | ".join(cells))
    if {"maml", "fomaml"} <= set(result["methods"]):
        lines += ["", "second order / first order (maml ms / fomaml ms)",
                  " | ".join(["meta-batch"] + engines), " | ".join("---" for _ in range(len(engines) + 1))]
        for mb in result["meta_batches"]:
            lines.append(" | ".join([str(mb)] + [f"{rows['maml', mb, e]['ms'] / rows['fomaml', mb, e]['ms']:.2f}x"
                                                 for e in engines]))
    return "\n".join(lines)


def run_bench(methods, meta_batches, engines, *, profile="quick", seed=0, repeats=5, warmup=2,
              device=None, max_pairs=None, progress=False) -> dict:
    """Time every configuration, each in a fresh process; returns the JSON-ready result."""
    import torch
    from tqdm.auto import tqdm

    from mdlib.benchmark import bench_problem
    from mdlib.profiles import get_profile
    from mdlib.seeding import default_device

    prof = get_profile(profile)
    device = torch.device(device) if device else default_device()
    model, tasks = bench_problem(prof, max(meta_batches), seed, max_pairs=max_pairs)
    state = {n: t.detach().clone() for n, t in model.state_dict().items()}
    jobs = [{"method": m, "meta_batch": mb, "engine": e} for m in methods for mb in meta_batches for e in engines]
    rows = []
    ctx = get_context("spawn")  # a fresh interpreter per configuration: its own peak memory, no forked threads
    for job in tqdm(jobs, desc="bench", disable=not progress):
        payload = {**job, "config": model.config, "state": state, "tasks": tasks[: job["meta_batch"]],
                   "seed": seed, "device": str(device), "inner_steps": prof.inner_steps,
                   "inner_lr": prof.inner_lr, "repeats": repeats, "warmup": warmup}
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            out = pool.submit(_measure, payload).result()
        rows.append({**job, "ms": out["ms"], "ms_all": out["ms_all"], "peak_mb": out["peak_mb"]})
        memory, threads = out["memory"], out["threads"]
    return {"profile": prof.name, "parameters": model.n_parameters(), "device": str(device), "threads": threads,
            "memory": memory, "repeats": repeats, "warmup": warmup, "methods": list(methods),
            "meta_batches": list(meta_batches), "engines": list(engines), "max_pairs": max_pairs, "rows": rows,
            "processes": "2-process (torchrun) rows not measured: the distributed outer loop is not in this build"}


def cmd_bench(args) -> int:
    from mdlib.report import save_json

    engines = [args.engine] if args.engine else list(ENGINES)
    result = run_bench(args.methods, args.meta_batches, engines, profile=args.profile, seed=args.seed,
                       repeats=args.repeats, warmup=args.warmup, device=args.device, max_pairs=args.max_pairs,
                       progress=args.progress)
    result["command"] = " ".join(
        ["python -m mdlib bench --methods", *args.methods, "--meta-batches", *map(str, args.meta_batches),
         f"--repeats {args.repeats} --warmup {args.warmup} --profile {args.profile} --seed {args.seed}"]
        + ([f"--engine {args.engine}"] if args.engine else []) + ([f"--device {args.device}"] if args.device else [])
        + ([f"--max-pairs {args.max_pairs}"] if args.max_pairs else []))
    print(render(result))
    if args.out is not None:
        save_json(result, args.out)
        print(f"wrote {args.out}")
    return 0
