"""Measuring meta-steps: the problem, the timer and the gradient comparison.

Shared by ``python -m mdlib bench`` (:mod:`mdlib.commands.bench`, docs/engine.md) and
``scripts/gpu_check.py``, so that both time and compare the same thing: a generator of
the profile's size, meta-batches of dialogue episodes from the source domains (drawn
with replacement, so a meta-batch may hold more tasks than there are domains), and one
meta-step = :func:`mdlib.meta.learners.meta_gradient` plus an Adam step.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from typing import Mapping, Sequence

import torch
from torch.func import functional_call

from mdlib.errors import MdlibError
from mdlib.meta.learners import TaskBatches, make_learner, meta_gradient

__all__ = ["bench_problem", "time_meta_steps", "max_abs_difference", "device_gradient_check"]


def bench_problem(profile, n_tasks: int, seed: int = 0, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, max_pairs: int | None = None):
    """A generator of ``profile``'s size and ``n_tasks`` episodes of the source domains.

    Args:
        max_pairs: keep only the first ``max_pairs`` responses of each support and query
            batch (smaller tasks; ``None``: the whole episode).

    Returns:
        ``(model, tasks)``: a generator (:class:`~mdlib.models.contract.Generator`) in ``dtype`` on
        ``device`` and a list of :class:`~mdlib.meta.learners.TaskBatches` (one support
        and one query batch of ``meta_k_support`` / ``meta_k_query`` dialogues each).
    """
    from mdlib.data.domains import SOURCES
    from mdlib.data.splits import EpisodeSampler
    from mdlib.evaluation import collate_kw, new_model, protocol_vocab, split_of
    from mdlib.models.batching import collate
    from mdlib.meta.metatrain import _episode_batches

    vocab = protocol_vocab(profile, SOURCES)
    model = new_model(vocab, profile, seed).to(device=device, dtype=dtype)
    sampler = EpisodeSampler({s: split_of(None, s, "train")[: profile.n_train] for s in SOURCES},
                             profile.meta_k_support, profile.meta_k_query, seed)
    # One task per draw: tasks repeat (with fresh episodes) when n_tasks > the domains.
    tasks = [_episode_batches(sampler.sample(1)[0], vocab, profile, device) for _ in range(n_tasks)]
    if max_pairs is not None:
        kw = {**collate_kw(profile), "device": device}
        tasks = [TaskBatches(t.task, [collate(b.pairs[:max_pairs], vocab, **kw) for b in t.support],
                             [collate(b.pairs[:max_pairs], vocab, **kw) for b in t.query]) for t in tasks]
    return model, tasks


def _rss_mb() -> float:
    """The process's resident memory now, MB (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb(reset: bool) -> float:
    """Peak resident memory, MB: ``VmHWM`` since the reset, else ``ru_maxrss`` since the start."""
    if reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def time_meta_steps(method: str, model: torch.nn.Module, tasks: Sequence[TaskBatches], engine: str, *,
                    inner_steps: int = 1, inner_lr: float = 0.1, repeats: int = 5, warmup: int = 2,
                    group=None) -> dict:
    """Median milliseconds of a meta-step (meta-gradient + Adam step) and its peak memory.

    Run it in a fresh process per configuration when the memory figure matters: the CPU
    figure is the process's peak resident memory above its resident memory before the
    first meta-step (Linux ``VmHWM``, reset just before; ``getrusage`` ``ru_maxrss`` since
    the process started where the reset is not possible); on CUDA it is
    ``torch.cuda.max_memory_allocated`` above the allocation before the first meta-step.

    With ``group`` (a :class:`~mdlib.meta.distributed.Group`), this process computes the
    meta-gradient of its shard of ``tasks`` and the meta-step includes the all-reduce, as
    in :func:`mdlib.meta.metatrain.meta_train_loop`; the figures are this process's.

    Returns:
        ``{"ms": median, "ms_all": [...], "peak_mb": float, "memory": what peak_mb measures}``.
    """
    if repeats < 1 or warmup < 0:
        raise MdlibError(f"time_meta_steps: need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    params = dict(model.named_parameters())
    learner = make_learner(method, params, inner_steps, inner_lr, head=model.head_names())
    targets = {**params, **learner.meta_parameters()}
    opt = torch.optim.Adam(list(targets.values()), lr=1e-3)
    device = next(iter(params.values())).device
    cuda = device.type == "cuda"

    def loss_fn(p, b):
        return functional_call(model, p, (b,))

    shard = list(tasks) if group is None else group.shard(tasks)

    def step() -> None:
        grads, stats = meta_gradient(learner, loss_fn, params, shard, engine=engine)
        if group is not None:
            grads, _ = group.reduce(grads, stats, len(tasks))
        for n, t in targets.items():
            t.grad = grads[n]
        opt.step()
        learner.post_step()

    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        reset = _reset_peak_rss()  # else the peak of imports and set-up would hide the meta-step's
        base = _rss_mb()
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    if cuda:
        peak, memory = (torch.cuda.max_memory_allocated(device) - base) / 2**20, "cuda max_memory_allocated"
    else:
        peak = max(0.0, _peak_rss_mb(reset) - base)
        memory = "peak RSS above RSS before the first step (" + ("VmHWM" if reset else "ru_maxrss") + ")"
    return {"ms": statistics.median(times), "ms_all": times, "peak_mb": peak, "memory": memory}


def max_abs_difference(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Largest absolute entry-wise difference of two gradient dicts (on the CPU, float64).

    Raises:
        MdlibError: when the dicts name different tensors or shapes.
    """
    if set(a) != set(b):
        raise MdlibError(f"gradients name different tensors: {sorted(set(a) ^ set(b))[:5]}")
    worst = 0.0
    for n in a:
        x, y = a[n].detach().cpu().double(), b[n].detach().cpu().double()
        if x.shape != y.shape:
            raise MdlibError(f"gradient of {n!r}: shapes {tuple(x.shape)} and {tuple(y.shape)} differ")
        worst = max(worst, float((x - y).abs().max()) if x.numel() else 0.0)
    return worst


def device_gradient_check(device: torch.device | str, reference: torch.device | str = "cpu",
                          engines: Sequence[str] = ("loop", "batched"), *, method: str = "maml",
                          profile: str = "smoke", n_tasks: int = 4, seed: int = 0) -> dict[str, float]:
    """Float64 meta-gradients on ``device`` against ``reference``: the largest difference.

    A ``profile``-sized generator and ``n_tasks`` episodes; each device computes the
    meta-gradient of ``method`` with each engine through mdlib's own code (second-order
    passes on CUDA turn cuDNN off there: :func:`mdlib.meta.inner.second_order_guard`).
    ``scripts/gpu_check.py`` calls it with ``device="cuda"``.

    Returns:
        ``{engine: max abs difference device vs reference, "batched-vs-loop": on device}``.
    """
    import copy

    from mdlib.profiles import get_profile

    prof = get_profile(profile)
    model, tasks = bench_problem(prof, n_tasks, seed, dtype=torch.float64)
    grads = {}
    for dev in (reference, device):
        m = copy.deepcopy(model).to(dev)
        on_dev = [TaskBatches(t.task, [b.to(dev) for b in t.support], [b.to(dev) for b in t.query]) for t in tasks]
        params = dict(m.named_parameters())
        learner = make_learner(method, params, prof.inner_steps, prof.inner_lr, head=m.head_names())

        def loss_fn(p, b, m=m):
            return functional_call(m, p, (b,))

        for engine in engines:
            grads[str(dev), engine] = meta_gradient(learner, loss_fn, params, on_dev, engine=engine)[0]
    out = {e: max_abs_difference(grads[str(reference), e], grads[str(device), e]) for e in engines}
    if len(engines) == 2:
        out["batched-vs-loop"] = max_abs_difference(grads[str(device), engines[0]], grads[str(device), engines[1]])
    return out
