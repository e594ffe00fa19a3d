"""The sine-wave regression toy of MAML (Finn et al., 2017) and Reptile (Nichol et al., 2018).

A task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5]`` and phase
``phi ~ U[0, pi]``, inputs ``x ~ U[-5, 5]``; a learner sees ``k`` points of a new task
and must fit the whole curve. The model is the papers' MLP 1-40-40-1 with ReLU.
Notebook 03 warms up on it before the dialogue experiments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call

from mdlib.meta.learners import TaskBatches

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, math.pi)
X_RANGE = (-5.0, 5.0)

__all__ = ["SineTask", "SineMLP", "sample_tasks", "sine_loss_fn", "sine_episodes", "AMPLITUDE", "PHASE", "X_RANGE"]


@dataclass(frozen=True)
class SineTask:
    """One regression task ``y = amplitude * sin(x - phase)``."""

    amplitude: float
    phase: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Targets for inputs ``x: (n, 1)``."""
        return self.amplitude * torch.sin(x - self.phase)

    def sample(self, k: int, gen: torch.Generator, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` points ``(x: (k, 1), y: (k, 1))`` with ``x ~ U[-5, 5]``."""
        x = torch.rand(k, 1, generator=gen, dtype=dtype) * (X_RANGE[1] - X_RANGE[0]) + X_RANGE[0]
        return x, self(x)


def sample_tasks(n: int, gen: torch.Generator) -> list[SineTask]:
    """``n`` tasks with amplitude in [0.1, 5] and phase in [0, pi] (uniform)."""
    u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    return [SineTask(float(AMPLITUDE[0] + a * (AMPLITUDE[1] - AMPLITUDE[0])), float(PHASE[0] + p * (PHASE[1] - PHASE[0])))
            for a, p in u.tolist()]


class SineMLP(nn.Module):
    """The 1-40-40-1 ReLU regressor of the MAML paper.

    Args:
        hidden: units in each of the two hidden layers.
    """

    def __init__(self, hidden: int = 40) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (n, 1) -> (n, 1)``."""
        return self.net(x)


def sine_loss_fn(model: nn.Module) -> Callable[[Mapping[str, torch.Tensor], tuple], torch.Tensor]:
    """``loss_fn(params, (x, y)) -> mean squared error`` through ``functional_call``."""

    def loss_fn(params, batch):
        x, y = batch
        return ((functional_call(model, params, (x,)) - y) ** 2).mean()

    return loss_fn


def sine_episodes(n_tasks: int, k_support: int, k_query: int, gen: torch.Generator,
                  dtype: torch.dtype = torch.float32) -> list[TaskBatches]:
    """A meta-batch of new tasks, each with disjoint support and query points."""
    out = []
    for i, task in enumerate(sample_tasks(n_tasks, gen)):
        out.append(TaskBatches(f"sine{i}", [task.sample(k_support, gen, dtype)], [task.sample(k_query, gen, dtype)]))
    return out
