"""Benchmark: generate N `mix` dialogues of each domain and write them to disk.

    .venv/bin/python benchmarks/bench_generator.py [--n 1500] [--repeat 3]

Prints, per domain, the best wall-clock and CPU time of ``repeat`` runs of
``generate([domain], "mix", n, seed=0)`` followed by ``save_corpus`` (issue 2's target:
1,500 dialogues in under 3 s on a 2-core machine). Timings, not tests: the machine is shared.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mdlib.data.corpus import save_corpus
from mdlib.data.domains import DOMAINS
from mdlib.data.generator import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'domain':<18}{'dialogues':>10}{'turns':>8}{'wall s':>9}{'cpu s':>8}{'MB':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in DOMAINS:
            best_wall = best_cpu = float("inf")
            for _ in range(args.repeat):
                out = Path(tmp) / f"{name}.jsonl"
                w0, c0 = time.perf_counter(), time.process_time()
                records = generate([name], "mix", args.n, seed=0)
                save_corpus(records, out)
                best_wall = min(best_wall, time.perf_counter() - w0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            turns = sum(len(r["turns"]) for r in records)
            size = out.stat().st_size / 2**20
            print(f"{name:<18}{len(records):>10}{turns:>8}{best_wall:>9.2f}{best_cpu:>8.2f}{size:>7.1f}")


if __name__ == "__main__":
    main()
