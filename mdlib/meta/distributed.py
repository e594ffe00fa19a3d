"""Meta-training on several processes (``torchrun``): shard the meta-batch, all-reduce the gradient.

``torchrun --standalone --nproc_per_node N -m mdlib train ...`` starts N copies of the
same command. Every copy seeds the same way and so samples the *same* meta-batch of
``B`` tasks; process ``r`` takes the contiguous shard ``tasks[r*B//N : (r+1)*B//N]``,
computes the mean meta-gradient ``g_r`` of its ``n_r`` tasks, and the processes sum
``g_r * n_r / B``::

    g = sum_r (n_r / B) * g_r = (1 / B) * sum_tasks g_task

which is the single-process meta-gradient (up to float rounding), so every process takes
the same outer step and holds the same parameters. Only rank 0 writes files. The
backend is gloo on the CPU and NCCL on GPUs; nothing is initialised unless torchrun's
environment variables (``RANK``, ``WORLD_SIZE``) are set.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from mdlib.errors import MdlibError

__all__ = ["Group", "from_env", "local_device"]


class Group:
    """This process's place among ``world`` processes (an initialised process group).

    Args:
        rank: this process's index, 0 .. world - 1.
        world: the number of processes.
    """

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    @property
    def writes(self) -> bool:
        """Whether this process writes files (rank 0 only)."""
        return self.rank == 0

    def check_tasks(self, meta_batch: int) -> None:
        """Refuse more processes than tasks per meta-batch (a process would have no task)."""
        if self.world > meta_batch:
            raise MdlibError(f"torchrun started {self.world} processes but a meta-batch has {meta_batch} "
                             f"task(s); use --nproc_per_node <= {meta_batch} or a larger --meta-batch")

    def bounds(self, n: int) -> tuple[int, int]:
        """``(start, end)`` of this process's shard of ``n`` tasks (sizes differ by at most one)."""
        return self.rank * n // self.world, (self.rank + 1) * n // self.world

    def shard(self, tasks: Sequence[Any]) -> list[Any]:
        """This process's contiguous share of the meta-batch."""
        self.check_tasks(len(tasks))
        start, end = self.bounds(len(tasks))
        return list(tasks[start:end])

    def reduce(self, grads: dict[str, torch.Tensor], stats: list[dict], n_total: int
               ) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """The meta-batch's mean gradient and every task's stats (in meta-batch order) on every process.

        Args:
            grads: the mean gradient of this process's ``len(stats)`` tasks.
            stats: one dict per task of this process's shard.
            n_total: tasks in the whole meta-batch.
        """
        names = list(grads)
        weight = len(stats) / n_total  # this shard's share of the mean
        flat = torch.cat([grads[n].reshape(-1) for n in names]) * weight
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        out, offset = {}, 0
        for n in names:
            size = grads[n].numel()
            out[n] = flat[offset:offset + size].view_as(grads[n])
            offset += size
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, stats)
        return out, [s for shard in gathered for s in shard]

    def writer_first(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0, then (after a barrier) on the others: rank 0 fills a cache they read."""
        result = fn() if self.writes else None
        dist.barrier()
        return result if self.writes else fn()

    def close(self) -> None:
        """Leave the process group."""
        if dist.is_initialized():
            dist.destroy_process_group()


def from_env(device: torch.device) -> Group | None:
    """Join torchrun's process group when its environment variables say there is one.

    Returns:
        ``None`` for a plain (single-process) run, else the :class:`Group`.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    if world < 2:
        return None
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, each process's own GPU (``cuda:LOCAL_RANK``); otherwise ``device``."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        index = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device
