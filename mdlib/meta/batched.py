"""The task-batched meta-step: the tasks of a meta-batch through one ``torch.func.vmap``.

:func:`mdlib.meta.learners.meta_gradient` with ``engine="batched"`` lands here. It
returns what the per-task loop returns (the reference, ``engine="loop"``), the mean of
the tasks' meta-gradients, but computes the N tasks' objectives as one vmapped function
and differentiates their mean once::

    g = d/dtheta (1/N) sum_i L_query_i(U_i(theta)),   [L_query_i(U_i(theta))]_i = vmap_i(objective)(theta; D_i)

``U_i`` is THE inner loop (:func:`mdlib.meta.inner.inner_loop` with ``functional=True``:
``torch.func.grad`` inside, which vmap goes through); the outer gradient is one
``torch.autograd.grad`` through the vmapped graph. vmap turns each task's small matrix
multiplies into one batched multiply, so a meta-step makes one op call where the loop
makes N. Reference: the MAML example of torch.func (functorch), PyTorch's
``functorch/examples/maml_omniglot/maml-omniglot-transforms.py``; docs/engine.md
measures both engines.

How the tasks become one input:

* every task's batch at inner step ``t`` (support batches used cyclically, as in the
  loop) and each of its query batches is padded with masked positions to the
  meta-batch's common shape (:func:`mdlib.models.batching.pad_batch`: padding changes
  no loss) and stacked along a leading task dimension; a task with fewer query batches
  repeats one with weight 0, so each task's query loss is still its mean;
* the model runs inside :func:`mdlib.models.recurrence.unrolled` (its GRUs as plain
  tensor ops: ``nn.GRU`` cannot be vmapped).

MAML, FOMAML, Meta-SGD and ANIL differentiate the query loss; Reptile averages
``theta - theta'``. A learner with its own objective (LSLR's multi-step loss, ...) is
not vmapped: :func:`unsupported` says why, and ``meta_gradient`` then runs the loop.
Memory: every task's graph is alive at once (the loop frees each before the next).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from mdlib.errors import MdlibError
from mdlib.meta.inner import LossFn, check_finite, inner_loop
from mdlib.meta.learners import MetaLearner, Reptile, TaskBatches
from mdlib.models.batching import ROW_FIELDS, Batch, pad_batch
from mdlib.models.recurrence import unrolled

__all__ = ["batched_meta_gradient", "unsupported", "stack_batches"]


def unsupported(learner: MetaLearner) -> str | None:
    """``None`` when the batched engine can run ``learner``, else the reason it cannot."""
    cls = type(learner)
    # The methods this engine re-expresses: MetaLearner's (MAML's objective) or Reptile's.
    base = Reptile if isinstance(learner, Reptile) else MetaLearner
    own = [m for m in ("adapt", "task_objective", "task_gradient") if getattr(cls, m) is not getattr(base, m)]
    if own:
        return (f"{learner.name} defines its own {', '.join(own)} (the batched engine vmaps only "
                f"MAML's objective, as in maml, fomaml, metasgd, anil, and Reptile's)")
    return None


def stack_batches(batches: Sequence[Any]) -> tuple[Any, Callable[[Any], Any]]:
    """One batch per task -> tensors with a leading task dimension, and the inverse for one task.

    Args:
        batches: :class:`~mdlib.models.batching.Batch` objects (padded to a common shape),
            or tensors / tuples / lists of tensors of equal shapes (e.g. the sine tasks).

    Returns:
        ``(stacked, rebuild)``: a pytree of Tensors (N, ...) that vmap can take, and
        ``rebuild(one_task_slice) -> batch`` that the vmapped function calls.

    Raises:
        MdlibError: tensors of different shapes (only ``Batch`` objects are padded).
    """
    first = batches[0]
    if isinstance(first, Batch):
        rows = max(len(b) for b in batches)
        src_len = max(b.src.shape[1] for b in batches)
        tgt_len = max(b.tgt_in.shape[1] for b in batches)
        padded = [_by_length(pad_batch(b, rows, src_len, tgt_len)) for b in batches]
        n_oov = max(b.n_oov for b in batches)
        stacked = {f: torch.stack([getattr(b, f) for b in padded]) for f in (*ROW_FIELDS, "tgt_order")}
        # With rows sorted by length, the rows that can be real at a position are a prefix:
        # the recurrences skip the rest (see Batch.live_src).
        src_lens = stacked["src_mask"].sum(-1)  # (N, rows)
        tgt_lens = torch.gather(stacked["tgt_mask"].sum(-1), 1, stacked["tgt_order"])
        live_src = tuple(max(1, int((src_lens > t).sum(1).max())) for t in range(src_len))
        live_tgt = tuple(max(1, int((tgt_lens > t).sum(1).max())) for t in range(tgt_len))
        return stacked, lambda d: Batch(**d, oovs=[], n_oov=n_oov, responses=[], pairs=[],
                                        live_src=live_src, live_tgt=live_tgt)
    if isinstance(first, torch.Tensor):
        shapes = {tuple(b.shape) for b in batches}
        if len(shapes) > 1:
            raise MdlibError(f"engine='batched': the tasks' tensor batches differ in shape {sorted(shapes)}; "
                             "only mdlib Batch objects are padded, use engine='loop'")
        return torch.stack(list(batches)), lambda x: x
    if isinstance(first, (tuple, list)) and all(isinstance(b, type(first)) and len(b) == len(first) for b in batches):
        parts = [stack_batches([b[i] for b in batches]) for i in range(len(first))]
        kind = type(first)
        return [p[0] for p in parts], lambda xs: kind(r(x) for x, (_, r) in zip(xs, parts))
    raise MdlibError(f"engine='batched' cannot stack batches of type {type(first).__name__}; use engine='loop'")


def _by_length(batch: Batch) -> Batch:
    """Rows sorted by source length, longest first, and ``tgt_order`` sorting them by target length."""
    order = torch.argsort(batch.src_mask.sum(1), descending=True, stable=True)
    rows = {f: getattr(batch, f)[order] for f in ROW_FIELDS}
    tgt_order = torch.argsort(rows["tgt_mask"].sum(1), descending=True, stable=True)
    return Batch(**rows, oovs=[], n_oov=batch.n_oov, responses=[], pairs=[], tgt_order=tgt_order)


def _inner_batches(learner: MetaLearner, task: TaskBatches) -> list:
    """The task's batch at each inner step (cyclic, as :func:`inner_loop` reads them)."""
    pool = list(task.support) + (list(task.query) if isinstance(learner, Reptile) else [])
    if learner.inner_steps and not pool:
        raise MdlibError(f"task {task.task!r}: no support batches to adapt on")
    return [pool[t % len(pool)] for t in range(learner.inner_steps)]


def batched_meta_gradient(learner: MetaLearner, loss_fn: LossFn, params: dict[str, torch.Tensor],
                          tasks: Sequence[TaskBatches]) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The mean meta-gradient of ``tasks``, all tasks in one vmapped pass.

    Same arguments and result as :func:`mdlib.meta.learners.meta_gradient` (call that,
    with ``engine="batched"``, rather than this).

    Raises:
        MdlibError: a learner the engine cannot vmap (see :func:`unsupported`), tasks
            without query batches, or a NaN/inf loss or meta-gradient (naming the task
            where it can be told).
    """
    reason = unsupported(learner)
    if reason:
        raise MdlibError(f"engine='batched': {reason}")
    reptile = isinstance(learner, Reptile)
    create_graph = not (learner.first_order or reptile)
    for task in tasks:
        if not task.query:
            raise MdlibError(f"task {task.task!r}: no query batches to score the adaptation")
    steps = [stack_batches(list(col)) for col in zip(*(_inner_batches(learner, t) for t in tasks))]
    n_query = max(len(t.query) for t in tasks)
    # A task with fewer query batches repeats its first one with weight 0.
    query = [stack_batches([t.query[j] if j < len(t.query) else t.query[0] for t in tasks])
             for j in range(n_query)]
    ref = next(iter(params.values()))
    weights = torch.tensor([[1.0 / len(t.query) if j < len(t.query) else 0.0 for j in range(n_query)]
                            for t in tasks], dtype=ref.dtype, device=ref.device)
    # Reptile's direction needs no outer graph.
    base = {n: p.detach() for n, p in params.items()} if reptile else dict(params)
    lr = learner.step_sizes()

    def one_task(step_data: list, query_data: list, w: torch.Tensor):
        support = [rebuild(x) for x, (_, rebuild) in zip(step_data, steps)]
        adapted, losses = inner_loop(loss_fn, base, support, learner.inner_steps, lr, create_graph=create_graph,
                                     trainable=learner.trainable, functional=True)
        with torch.set_grad_enabled(not reptile):
            q = sum(w[j] * loss_fn(adapted, rebuild(x)) for j, (x, (_, rebuild)) in enumerate(zip(query_data, query)))
        support_losses = torch.stack(losses) if losses else q.new_zeros(0)
        if reptile:
            return q, support_losses, {n: base[n] - adapted[n] for n in base}
        return q, support_losses

    with unrolled():
        out = torch.func.vmap(one_task, randomness="different")([s for s, _ in steps], [s for s, _ in query], weights)
    objectives, support_losses = out[0], out[1].detach()
    for i, task in enumerate(tasks):
        for t in range(support_losses.shape[1]):
            check_finite(support_losses[i, t], f"task {task.task!r}: inner loop step {t}: the support loss")
        check_finite(objectives[i], f"task {task.task!r}: the query loss")
    if reptile:
        grads = {n: d.mean(0) for n, d in out[2].items()}
    else:
        targets = {**params, **learner.meta_parameters()}
        found = torch.autograd.grad(objectives.mean(), list(targets.values()), allow_unused=True)
        grads = {n: (torch.zeros_like(t) if g is None else g.detach()) for (n, t), g in zip(targets.items(), found)}
    names = ", ".join(repr(t.task) for t in tasks)
    for n, g in grads.items():
        check_finite(g, f"the meta-gradient of {n!r} on one of the tasks {names}")
    stats = [{"task": task.task,
              "support_loss": float(support_losses[i, 0]) if support_losses.shape[1] else math.nan,
              "query_loss": float(objectives[i].detach())} for i, task in enumerate(tasks)]
    return grads, stats
