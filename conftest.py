"""Test-wide settings (tests and notebooks): one torch thread per pytest-xdist worker (also for notebook kernels)."""

import os

# Notebook kernels started by nbval inherit this environment.
os.environ.setdefault("MDLIB_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_MININTERVAL", "5")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["MDLIB_THREADS"]))
