"""What the task-batched engine computes that the loop does not: the figures behind
docs/engine.md's "Why the batched engine is not faster on this CPU".

    MDLIB_THREADS=1 .venv/bin/python scripts/engine_profile.py [--meta-batch 16] \\
        [--out results/bench/engine_profile.json]

On the benchmark's meta-batch (``mdlib.benchmark.bench_problem``, quick profile): the
share of real (non-padding) token positions when every task is padded to the meta-batch's
largest shape (the batched engine's input, before it skips dead rows) and when each batch
is padded only to its own shape (the loop's), and the time of one recurrent step's matrix
products for all tasks as one ``bmm`` over padded tasks against one ``mm`` per task.
Ratios within one run compare the two; absolute times depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import sys
import statistics
import time

import torch

from mdlib.atomic import write_text
from mdlib.benchmark import bench_problem
from mdlib.profiles import get_profile
from mdlib.seeding import seed_everything


def real_share(tasks) -> dict:
    """Real token positions / positions after padding every task to the meta-batch's largest
    shape (``src``, ``tgt``: what the batched engine computes on before skipping dead rows),
    and / positions of each batch padded only to its own shape (``*_loop``: the loop engine)."""
    batches = [b for t in tasks for b in list(t.support) + list(t.query)]
    rows = max(b.src.shape[0] for b in batches)
    src = max(b.src.shape[1] for b in batches)
    tgt = max(b.tgt_in.shape[1] for b in batches)
    real_src = sum(int(b.src_mask.sum()) for b in batches)
    real_tgt = sum(int(b.tgt_mask.sum()) for b in batches)
    n = len(batches)
    own_src = sum(b.src.numel() for b in batches)
    own_tgt = sum(b.tgt_in.numel() for b in batches)
    return {"src": real_src / (n * rows * src), "tgt": real_tgt / (n * rows * tgt),
            "src_loop": real_src / own_src, "tgt_loop": real_tgt / own_tgt,
            "rows_max": rows, "src_len_max": src, "tgt_len_max": tgt}


def matmul_rates(tasks, hidden: int, repeats: int = 20) -> dict:
    """Seconds of the recurrent matrix product of one time step, for all tasks: one ``bmm``
    over tasks padded to the largest row count (the batched engine: every task has its own
    adapted weights) against one ``mm`` per task at its own row count (the loop)."""
    rows = [b.src.shape[0] for t in tasks for b in t.support]
    w = torch.randn(len(rows), hidden, 3 * hidden)
    xs = [torch.randn(r, hidden) for r in rows]
    padded = torch.zeros(len(rows), max(rows), hidden)

    def loop():
        for x, wt in zip(xs, w):
            x @ wt

    def batched():
        torch.bmm(padded, w)

    out = {}
    for name, fn in (("loop_mm", loop), ("batched_bmm", batched)):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    out["flops_real"] = sum(2 * r * hidden * 3 * hidden for r in rows)
    out["flops_padded"] = 2 * len(rows) * max(rows) * hidden * 3 * hidden
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meta-batch", type=int, default=16)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    seed_everything(0)  # and MDLIB_THREADS: two threads per small product thrash a busy machine
    model, tasks = bench_problem(get_profile(args.profile), args.meta_batch, 0)
    out = {"profile": args.profile, "meta_batch": args.meta_batch, "threads": torch.get_num_threads(),
           "padding": real_share(tasks)}
    pad = out["padding"]
    print(f"real token positions: batched (padded to the meta-batch) source {pad['src']:.2f}, target "
          f"{pad['tgt']:.2f}; loop (each batch its own shape) source {pad['src_loop']:.2f}, target {pad['tgt_loop']:.2f}")
    mm = matmul_rates(tasks, get_profile(args.profile).hidden)
    out["matmul"] = mm
    print(f"one recurrent step's matrix products for {args.meta_batch} tasks: loop of mm {mm['loop_mm'] * 1e3:.3f} ms, "
          f"one bmm over padded tasks {mm['batched_bmm'] * 1e3:.3f} ms; padded / real FLOPs "
          f"{mm['flops_padded'] / mm['flops_real']:.2f}")
    if args.out:
        write_text(args.out, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
