"""Independent comparison runs (seeds, task families) side by side in worker processes.

One run of :func:`mdlib.experiments.comparison.run_comparison` depends only on its
arguments: every random draw in it is seeded by its ``seed`` and the generator has no
dropout. Runs of different seeds can therefore go to separate processes and come back
exactly as a loop over seeds would return them, as long as each process uses the same
number of torch threads as the loop would (matrix products split their sums by thread).

On a 2-core laptop CPU a notebook that runs its seeds with one torch thread leaves a core
idle; :func:`run_seeds` fills it. How many processes: ``MDLIB_WORKERS`` when set
(``python -m mdlib reproduce`` sets it so that its notebooks at once do not oversubscribe
the cores; the tests set 1), else 1 on a GPU, else as many as the cores hold at this
process's torch thread count, never more than there are runs. With 1 every run happens
in this process, one after the other.

Workers are started fresh (``spawn``): they see the arguments, not changes a caller made to
module-level settings (such as :data:`mdlib.data.personas.FRAME_NOISE`); a study that
changes those runs with ``workers=1``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Sequence

import torch
from tqdm.auto import tqdm

from mdlib.errors import MdlibError
from mdlib.experiments.comparison import run_comparison

__all__ = ["cpu_seconds", "default_workers", "run_comparisons", "run_seeds"]


def default_workers(n_runs: int) -> int:
    """Processes for ``n_runs`` independent runs (see the module docstring)."""
    env = os.environ.get("MDLIB_WORKERS")
    if env:
        try:
            workers = int(env)
        except ValueError:
            workers = 0
        if workers < 1:
            raise MdlibError(f"MDLIB_WORKERS must be a whole number >= 1, got {env!r}")
    elif torch.cuda.is_available():
        workers = 1
    else:
        workers = (os.cpu_count() or 1) // max(torch.get_num_threads(), 1)
    return max(1, min(workers, n_runs))


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of the worker processes it has
    ended (the OS counts a child once it has been waited for, as a finished pool's are)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    os.environ["MDLIB_THREADS"] = str(threads)
    os.environ["MDLIB_WORKERS"] = "1"  # no pools inside a worker


def run_comparisons(runs: Sequence[tuple], *, workers: int | None = None, progress: bool = True,
                    desc: str = "runs") -> list[dict]:
    """Each ``(family, seed, keyword arguments)`` of ``runs`` through
    :func:`~mdlib.experiments.comparison.run_comparison`, ``workers`` at a time.

    Args:
        runs: ``(fam, seed, kwargs)`` triples; ``kwargs`` go to ``run_comparison``
            (``keep_model=True`` works too: the model comes back pickled).
        workers: processes (default :func:`default_workers`); 1 runs them here, in order.
        progress: one progress bar over the runs.

    Returns:
        The results in the order of ``runs``, equal to ``[run_comparison(f, s, **kw) for
        f, s, kw in runs]``.
    """
    runs = [(fam, seed, dict(kw)) for fam, seed, kw in runs]
    workers = default_workers(len(runs)) if workers is None else workers
    if workers < 1:
        raise MdlibError(f"run_comparisons: workers must be >= 1, got {workers}")
    bar = tqdm(total=len(runs), desc=desc, disable=not progress)
    if workers == 1 or len(runs) <= 1:
        out = []
        for fam, seed, kw in runs:
            out.append(run_comparison(fam, seed, **kw))
            bar.update(1)
        bar.close()
        return out
    results: list[dict | None] = [None] * len(runs)
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(torch.get_num_threads(),)) as pool:
        futures = {pool.submit(run_comparison, fam, seed, **{**kw, "progress": False}): i
                   for i, (fam, seed, kw) in enumerate(runs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update(1)
    bar.close()
    return results


def run_seeds(fam, seeds: Sequence[int], *, workers: int | None = None, progress: bool = True,
              desc: str = "seeds", **kwargs) -> list[dict]:
    """``[run_comparison(fam, seed, **kwargs) for seed in seeds]``, ``workers`` seeds at a
    time (:func:`run_comparisons`)."""
    return run_comparisons([(fam, seed, kwargs) for seed in seeds], workers=workers, progress=progress, desc=desc)
