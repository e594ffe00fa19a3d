"""Check second-order meta-gradients on a GPU against the CPU, and time both (under 5 minutes).

    .venv/bin/python scripts/gpu_check.py [--meta-batches 4 16] [--repeats 3] [--tolerance 1e-8]

1. MAML meta-gradients in float64 on a small (smoke-size) generator, 4 tasks, with both
   engines (``loop`` and ``batched``), on CUDA and on the CPU: the largest difference must
   be below ``--tolerance`` (second-order passes on CUDA run with cuDNN off, through
   mdlib's own guard, :func:`mdlib.meta.inner.second_order_guard`).
2. Milliseconds per MAML meta-step, quick model size, float32, CPU vs CUDA, both engines
   (:func:`mdlib.benchmark.time_meta_steps`).

Without CUDA it prints that it was skipped and exits 0. Exit status 1 when a gradient
differs by more than the tolerance.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from mdlib.benchmark import bench_problem, device_gradient_check, time_meta_steps
from mdlib.meta.learners import TaskBatches
from mdlib.profiles import get_profile
from mdlib.seeding import seed_everything

ENGINES = ("loop", "batched")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta-batches", nargs="+", type=int, default=[4, 16], help="timed meta-batch sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed meta-steps per configuration (after 1 warm-up)")
    parser.add_argument("--tolerance", type=float, default=1e-8, help="largest allowed float64 difference")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: skipped (no CUDA device)")
        return 0
    seed_everything(0)
    start = time.perf_counter()
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    diffs = device_gradient_check("cuda", "cpu", ENGINES)
    ok = all(d <= args.tolerance for d in diffs.values())
    for name, d in diffs.items():
        print(f"MAML float64 meta-gradient, {name:>15}: max |difference| {d:.2e} "
              f"({'ok' if d <= args.tolerance else 'FAIL'}, tolerance {args.tolerance:g})")
    model, tasks = bench_problem(get_profile("quick"), max(args.meta_batches))
    print("MAML meta-step, quick model, float32, ms (median of "
          f"{args.repeats} after 1 warm-up)\nmeta-batch | engine | cpu | cuda | cpu/cuda")
    for mb in args.meta_batches:
        for engine in ENGINES:
            ms = {}
            for dev in ("cpu", "cuda"):
                m = model.to(dev)
                ts = [TaskBatches(t.task, [b.to(dev) for b in t.support], [b.to(dev) for b in t.query])
                      for t in tasks[:mb]]
                ms[dev] = time_meta_steps("maml", m, ts, engine, repeats=args.repeats, warmup=1)["ms"]
            print(f"{mb} | {engine} | {ms['cpu']:.0f} | {ms['cuda']:.0f} | {ms['cpu'] / ms['cuda']:.1f}x", flush=True)
    print(f"gpu_check: {'passed' if ok else 'FAILED'} in {time.perf_counter() - start:.0f} s "
          f"(cpu threads: {torch.get_num_threads()})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
