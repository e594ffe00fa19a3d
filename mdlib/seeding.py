"""The one seeding helper every notebook calls in its setup cell."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch; optionally cap torch's CPU threads.

    Args:
        seed: the seed.
        threads: number of torch CPU threads (``None`` leaves it, or reads
            ``MDLIB_THREADS`` when set; pytest-xdist workers set it to 1).

    Returns:
        A ``torch.Generator`` seeded with ``seed`` for code that wants its own stream.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if threads is None and os.environ.get("MDLIB_THREADS"):
        threads = int(os.environ["MDLIB_THREADS"])
    if threads:
        torch.set_num_threads(threads)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def default_device() -> torch.device:
    """The GPU when one is present (and ``MDLIB_DEVICE`` does not say otherwise), else the CPU."""
    name = os.environ.get("MDLIB_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """The device that ``--device NAME`` asks for.

    Args:
        name: ``"auto"`` (:func:`default_device`: the GPU when present), ``"cpu"`` or ``"cuda"``.

    Raises:
        MdlibError: an unknown name, or ``"cuda"`` on a machine without a visible GPU.
    """
    from mdlib.errors import MdlibError

    if name == "auto":
        return default_device()
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise MdlibError("--device cuda: no CUDA GPU is visible on this machine; use --device cpu or auto")
        return torch.device("cuda")
    raise MdlibError(f"--device: unknown device {name!r}; known devices: {', '.join(DEVICES)}")
