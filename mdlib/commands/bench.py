"""``python -m mdlib bench``: milliseconds per meta-step of the two engines (docs/engine.md).

Example::

    MDLIB_THREADS=1 python -m mdlib bench --out results/bench/engine.json

For every method x meta-batch x engine it runs warm-up meta-steps, then times
``--repeats`` more (:func:`mdlib.benchmark.time_meta_steps`: meta-gradient plus an
Adam step, on the profile's model and episodes) and reports the median. Each
configuration runs in a fresh process, so that its peak memory is its own.

``--processes 1 2`` adds a second table: each method x engine at the largest meta-batch,
sharded over P gloo (NCCL on GPUs) processes as ``torchrun`` shards it
(:mod:`mdlib.meta.distributed`); rank 0's meta-step times include the all-reduce, and
every process reports its own peak memory.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

from mdlib.commands._common import nonnegative_int, positive_int
from mdlib.errors import MdlibError

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
    p.add_argument("--processes", nargs="+", type=positive_int, default=[1], metavar="P",
                   help="also time the largest meta-batch sharded over P processes (e.g. 1 2; default 1: "
                        "no process table)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the GPU when present)")
    p.add_argument("--out", type=Path, default=None, help="also write the table as JSON here")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_bench)


def _measure(rank: int, job: dict, world: int, port: int, folder: str) -> None:
    """One configuration in process ``rank`` of ``world`` (a fresh one): rebuild the model, time it.

    With ``world > 1`` it joins the process group through torchrun's environment variables
    (:func:`mdlib.meta.distributed.from_env`), as ``torchrun ... train`` does. The result
    goes to ``folder/rank.json``.
    """
    import torch

    from mdlib.benchmark import time_meta_steps
    from mdlib.meta.distributed import from_env, local_device
    from mdlib.meta.learners import TaskBatches
    from mdlib.models.contract import make_generator
    from mdlib.seeding import seed_everything

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = torch.device(job["device"])
    group = from_env(device)
    device = local_device(device)
    try:
        seed_everything(job["seed"])
        model = make_generator(job["config"])
        model.load_state_dict(job["state"])
        model.to(device)
        tasks = [TaskBatches(t.task, [b.to(device) for b in t.support], [b.to(device) for b in t.query])
                 for t in job["tasks"]]
        out = time_meta_steps(job["method"], model, tasks, job["engine"], inner_steps=job["inner_steps"],
                              inner_lr=job["inner_lr"], repeats=job["repeats"], warmup=job["warmup"], group=group)
    finally:
        if group is not None:
            group.close()
    out["threads"] = torch.get_num_threads()
    Path(folder, f"{rank}.json").write_text(json.dumps(out))


def _free_port() -> int:
    """A TCP port on this machine that nothing listens on now (for the process group's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(payload: dict, world: int) -> list[dict]:
    """Run :func:`_measure` in ``world`` fresh processes; every process's result, by rank.

    Raises:
        MdlibError: a process failed (its last error line); the others are stopped.
    """
    import torch.multiprocessing as torch_mp

    with tempfile.TemporaryDirectory(prefix="mdlib-bench-") as folder:
        try:
            # spawn: a fresh interpreter per process (its own peak memory, no forked threads)
            torch_mp.start_processes(_measure, args=(payload, world, _free_port(), folder), nprocs=world,
                                start_method="spawn")
        except (torch_mp.ProcessRaisedException, torch_mp.ProcessExitedException) as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise MdlibError(f"bench: a process of {payload['method']} {payload['engine']} failed: "
                             f"{lines[-1] if lines else exc}") from None
        return [json.loads(Path(folder, f"{r}.json").read_text()) for r in range(world)]


def render(result: dict) -> str:
    """The tables of a :func:`run_bench` result as text."""
    rows = {(r["method"], r["meta_batch"], r["engine"]): r for r in result["rows"] if r.get("processes", 1) == 1}
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
    if isinstance(result.get("processes"), list) and len(result["processes"]) > 1:
        lines += ["", *_render_processes(result)]
    return "\n".join(lines)


def _render_processes(result: dict) -> list[str]:
    """The table of 1 vs P processes at the largest meta-batch."""
    procs, mb = result["processes"], max(result["meta_batches"])
    rows = {(r["method"], r["engine"], r.get("processes", 1)): r for r in result["rows"] if r["meta_batch"] == mb}
    head = (["method", "engine"] + [f"{p} proc ms" for p in procs] + [f"speed-up {p} proc/1" for p in procs[1:]]
            + [f"{p} proc MB" for p in procs])
    load = result.get("load_average")
    lines = [f"meta-batch {mb} sharded over P processes ({result['backend']}): rank 0's ms per meta-step, "
             f"all-reduce included; MB: each process's peak, rank 0 / rank 1 / ..."
             + (f"; load average (1 min) {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end, "
                f"{result['cpus']} CPUs" if load else ""),
             " | ".join(head), " | ".join("---" for _ in head)]
    for method in result["methods"]:
        for e in result["engines"]:
            got = [rows[method, e, p] for p in procs]
            lines.append(" | ".join([method, e] + [f"{r['ms']:.0f}" for r in got]
                                    + [f"{got[0]['ms'] / r['ms']:.2f}x" for r in got[1:]]
                                    + [" / ".join(f"{m:.0f}" for m in r.get("peak_mb_ranks", [r["peak_mb"]]))
                                       for r in got]))
    return lines


def run_bench(methods, meta_batches, engines, *, profile="quick", seed=0, repeats=5, warmup=2,
              device=None, max_pairs=None, processes=(1,), progress=False) -> dict:
    """Time every configuration, each in fresh processes; returns the JSON-ready result.

    Args:
        processes: process counts; every method x meta-batch x engine runs in 1 process,
            and each method x engine at the largest meta-batch also in each other count.

    Raises:
        MdlibError: more processes than tasks in the largest meta-batch, or than GPUs.
    """
    import torch
    from tqdm.auto import tqdm

    from mdlib.benchmark import bench_problem
    from mdlib.models.contract import generator_config
    from mdlib.profiles import get_profile
    from mdlib.seeding import default_device

    prof = get_profile(profile)
    device = torch.device(device) if device else default_device()
    procs, largest = sorted({1, *processes}), max(meta_batches)
    if procs[-1] > largest:
        raise MdlibError(f"--processes {procs[-1]}: more processes than the {largest} task(s) of the largest "
                         f"meta-batch; give --meta-batches of at least {procs[-1]}")
    if device.type == "cuda" and procs[-1] > torch.cuda.device_count():
        raise MdlibError(f"--processes {procs[-1]}: one GPU per process, but {torch.cuda.device_count()} visible")
    # what else ran: P processes on C cores only get P cores when the machine is otherwise idle
    load_start = os.getloadavg()
    model, tasks = bench_problem(prof, largest, seed, max_pairs=max_pairs)
    state = {n: t.detach().clone() for n, t in model.state_dict().items()}
    # each P > 1 right after its 1-process row, so that both see about the same machine load
    jobs = [{"method": m, "meta_batch": mb, "engine": e, "processes": p}
            for m in methods for mb in meta_batches for e in engines for p in (procs if mb == largest else [1])]
    rows = []
    for job in tqdm(jobs, desc="bench", disable=not progress):
        payload = {**job, "config": generator_config(model), "state": state, "tasks": tasks[: job["meta_batch"]],
                   "seed": seed, "device": str(device), "inner_steps": prof.inner_steps,
                   "inner_lr": prof.inner_lr, "repeats": repeats, "warmup": warmup}
        outs = _launch(payload, job["processes"])
        rows.append({**job, "ms": outs[0]["ms"], "ms_all": outs[0]["ms_all"], "peak_mb": outs[0]["peak_mb"],
                     "peak_mb_ranks": [o["peak_mb"] for o in outs]})
        memory, threads = outs[0]["memory"], outs[0]["threads"]
    result = {"profile": prof.name, "parameters": model.n_parameters(), "device": str(device), "threads": threads,
              "memory": memory, "repeats": repeats, "warmup": warmup, "methods": list(methods),
              "meta_batches": list(meta_batches), "engines": list(engines), "max_pairs": max_pairs, "rows": rows,
              "processes": procs, "cpus": os.cpu_count(),
              "load_average": {"start": list(load_start), "end": list(os.getloadavg())}}
    if len(procs) > 1:
        result["backend"] = "nccl" if device.type == "cuda" else "gloo"
    return result


def cmd_bench(args) -> int:
    from mdlib.report import save_json

    engines = [args.engine] if args.engine else list(ENGINES)
    result = run_bench(args.methods, args.meta_batches, engines, profile=args.profile, seed=args.seed,
                       repeats=args.repeats, warmup=args.warmup, device=args.device, max_pairs=args.max_pairs,
                       processes=args.processes, progress=args.progress)
    result["command"] = " ".join(
        ["python -m mdlib bench --methods", *args.methods, "--meta-batches", *map(str, args.meta_batches),
         f"--repeats {args.repeats} --warmup {args.warmup} --profile {args.profile} --seed {args.seed}"]
        + ([f"--engine {args.engine}"] if args.engine else []) + ([f"--device {args.device}"] if args.device else [])
        + ([f"--max-pairs {args.max_pairs}"] if args.max_pairs else [])
        + (["--processes", *map(str, result["processes"])] if len(result["processes"]) > 1 else []))
    print(render(result))
    if args.out is not None:
        save_json(result, args.out)
        print(f"wrote {args.out}")
    return 0
