"""Test-wide settings (tests and notebooks): one torch thread per pytest-xdist worker (also for notebook kernels)."""

import os

# Notebook kernels started by nbval inherit this environment.
os.environ.setdefault("MDLIB_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MDLIB_WORKERS", "1")  # a notebook runs its seeds in this process (xdist keeps the cores busy)
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_MININTERVAL", "5")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["MDLIB_THREADS"]))


def pytest_collection_modifyitems(items):
    """Give nbval more patience between a cell's output messages.

    nbval waits at most 5 s (hard-coded) for each output message after a cell has run;
    on a busy 2-core machine (two xdist workers, each with a kernel) a kernel's output
    thread can be starved longer than that, failing a cell that ran fine.
    """
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's IPyNbCell
            item.output_timeout = 60
