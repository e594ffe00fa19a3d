"""Meta-training: the ONE outer loop over meta-batches of tasks (notebooks 03 and 06).

:func:`meta_train_loop` is the outer loop of every meta-learner in mdlib (sine waves,
dialogue generators, the spoken-language parser, dialogue policies in
:mod:`mdlib.dm.metarl`, any ``loss_fn``)::

    for step in 1..meta_steps:
        tasks = sample(step)                        # meta-batch: support + query per task
        g = mean over tasks of learner.task_gradient(...)   # through THE inner loop
        clip(g); outer step (Adam, or SGD for Reptile) on the init (and meta-parameters)
        learner.post_step()
        every eval_every steps: validate(params) -> keep the best parameters

With a :class:`~mdlib.meta.distributed.Group` (``torchrun``) every process samples the
same meta-batch, computes the meta-gradient of its shard of the tasks, and the
gradients are all-reduced weighted by task count, so every process takes the same outer
step as one process would. With ``on_checkpoint`` the loop hands its complete state
(:mod:`mdlib.meta.progress`) out every ``checkpoint_every`` steps, and ``resume`` continues
from such a state to the same result as an uninterrupted run.

:func:`meta_train` is the dialogue version: tasks are source domains, episodes come
from :class:`mdlib.data.splits.EpisodeSampler` (support and query are *disjoint*
dialogues, unlike the published DAML code, whose query loss reused the support batch),
and meta-validation adapts on the source domains' held-out valid split.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from mdlib.errors import MdlibError
from mdlib.meta import progress as prog
# ENGINES: how a meta-batch's gradient is computed (one task at a time, or task-batched through vmap)
from mdlib.meta.learners import ENGINES, MetaLearner, TaskBatches, make_learner, mean_loss, meta_gradient

__all__ = ["MetaHistory", "meta_train_loop", "meta_train", "check_meta_tasks", "validation_loss",
           "ENGINES", "OUTER_OPTIMIZERS"]

#: The outer optimisers: Adam, or plain SGD (Reptile's interpolation step).
OUTER_OPTIMIZERS = ("adam", "sgd")


@dataclass
class MetaHistory:
    """What a meta-training run logs.

    Attributes:
        steps: one dict per meta-step (``step``, ``query_loss``, ``support_loss``,
            ``grad_norm``, ``seconds``, and the learner's ``post_step`` stats).
        valid: one dict per validation (``step``, ``valid_loss``).
        best_step: the meta-step whose parameters were kept (lowest validation loss).
        seconds_per_step: mean wall-clock seconds of a meta-step (without validation).
    """

    steps: list[dict] = field(default_factory=list)
    valid: list[dict] = field(default_factory=list)
    best_step: int = 0
    seconds_per_step: float = math.nan

    def to_dict(self) -> dict:
        return {"steps": self.steps, "valid": self.valid, "best_step": self.best_step,
                "seconds_per_step": self.seconds_per_step}


def _mean_stat(stats: Sequence[dict], key: str) -> float:
    return sum(s[key] for s in stats) / len(stats)


def check_engine(engine: str) -> str:
    """Return ``engine`` when it is one of :data:`ENGINES`; else a one-line :class:`MdlibError`."""
    if engine not in ENGINES:
        raise MdlibError(f"--engine: unknown engine {engine!r}; known engines: {', '.join(ENGINES)}")
    return engine


def meta_train_loop(
    learner: MetaLearner,
    loss_fn: Callable[[Mapping[str, torch.Tensor], Any], torch.Tensor],
    params: Mapping[str, torch.Tensor],
    sample: Callable[[int], Sequence[TaskBatches]],
    *,
    meta_steps: int,
    outer_lr: float = 1e-3,
    clip: float | None = 2.0,
    validate: Callable[[Mapping[str, torch.Tensor]], float] | None = None,
    eval_every: int = 50,
    progress: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
    outer_optimizer: str = "adam",
    outer_lr_decay: bool = False,
    engine: str = "loop",
    process_group=None,
    on_checkpoint: Callable[[dict], None] | None = None,
    checkpoint_every: int = 0,
    resume: Mapping[str, Any] | None = None,
    rng: tuple[Callable[[], Any], Callable[[Any], None]] | None = None,
) -> MetaHistory:
    """Meta-train ``params`` (and ``learner.meta_parameters()``) in place.

    Args:
        learner: the method (:func:`mdlib.meta.learners.make_learner`).
        loss_fn: ``loss_fn(params, batch) -> Tensor ()``.
        params: leaf tensors that require grad (``dict(model.named_parameters())``);
            the outer optimiser updates them; at the end they hold the best validated
            values (the last ones when ``validate`` is None).
        sample: ``sample(step) -> list[TaskBatches]``, the meta-batch of meta-step ``step``.
        meta_steps: number of outer steps (>= 0).
        outer_lr: the outer step size; clip: max global gradient norm (None: no clipping).
        validate: ``validate(params) -> loss`` (lower is better), run at step 0, every
            ``eval_every`` steps and at the end.
        progress: show a tqdm bar.
        on_step: ``on_step(step, record)`` after each meta-step (logging).
        outer_optimizer: ``"adam"`` or ``"sgd"`` (``theta -= lr * g``: with Reptile's
            direction this is Reptile's ``theta += lr (theta' - theta)``).
        outer_lr_decay: decay the outer step size linearly to 0 over ``meta_steps``
            (step ``s`` uses ``outer_lr * (1 - (s - 1) / meta_steps)``, as in Reptile).
        engine: ``"loop"`` (one task at a time) or ``"batched"`` (task-batched).
        process_group: a :class:`~mdlib.meta.distributed.Group`: this process computes the
            meta-gradient of its shard of every meta-batch; gradients are all-reduced.
        on_checkpoint: ``on_checkpoint(state)`` every ``checkpoint_every`` steps and after
            the last step, ``state`` being :func:`mdlib.meta.progress.capture`'s dict.
        resume: such a state: continue after its step (same parameters, optimiser,
            history, random streams) instead of starting at step 1.
        rng: ``(get, set)`` of the sampler's own random state, saved in checkpoints.

    Raises:
        MdlibError: ``meta_steps < 0``, an unknown engine or optimiser, a meta-batch with
            fewer tasks than processes, or a NaN/inf meta-gradient (naming the meta-step
            and the task).
    """
    if meta_steps < 0:
        raise MdlibError(f"meta_steps must be >= 0, got {meta_steps}")
    if eval_every < 1:
        raise MdlibError(f"meta_eval_every must be >= 1, got {eval_every}")
    if outer_optimizer not in OUTER_OPTIMIZERS:
        raise MdlibError(f"outer_optimizer: expected one of {', '.join(OUTER_OPTIMIZERS)}, got {outer_optimizer!r}")
    check_engine(engine)
    extra = learner.meta_parameters()
    targets = {**params, **extra}
    for n, p in targets.items():
        if not (p.is_leaf and p.requires_grad):
            raise MdlibError(f"meta_train_loop: parameter {n!r} must be a leaf tensor that requires grad")
    # SGD is written out below (no torch optimiser): torch's fused add would round
    # differently from ``theta + lr * delta`` and change meta-RL's curves.
    opt = torch.optim.Adam(list(targets.values()), lr=outer_lr) if outer_optimizer == "adam" else None
    hist = MetaHistory()
    best = (math.inf, None)
    first = 1
    seconds = 0.0
    if resume is not None:
        done, best, seconds = prog.restore(resume, targets, opt, hist, rng)
        first = done + 1

    def run_validation(step: int) -> None:
        nonlocal best
        if validate is None:
            return
        loss = float(validate(params))
        hist.valid.append({"step": step, "valid_loss": loss})
        if loss < best[0]:
            best = (loss, {n: t.detach().clone() for n, t in targets.items()})
            hist.best_step = step

    def gradient(tasks: Sequence[TaskBatches]):
        # "loop" is the reference; "batched" takes the same tasks at once through vmap
        return meta_gradient(learner, loss_fn, params, tasks, engine=engine)

    if resume is None:
        run_validation(0)
    bar = tqdm(range(first, meta_steps + 1), desc=f"meta-train {learner.name}", leave=False,
               disable=not progress or (process_group is not None and process_group.rank != 0))
    for step in bar:
        t0 = time.perf_counter()
        tasks = sample(step)
        try:
            if process_group is None:
                grads, stats = gradient(tasks)
            else:
                grads, stats = process_group.reduce(*gradient(process_group.shard(tasks)), len(tasks))
        except MdlibError as exc:
            raise MdlibError(f"meta-step {step}: {exc}") from None
        for t in targets.values():
            t.grad = None
        for n, t in targets.items():
            t.grad = grads[n].to(t.dtype)
        norm = (float(torch.nn.utils.clip_grad_norm_(list(targets.values()), clip)) if clip
                else float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))))
        lr = outer_lr * (1.0 - (step - 1) / meta_steps) if outer_lr_decay else outer_lr
        if opt is not None:
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
        else:
            with torch.no_grad():
                for t in targets.values():
                    t.sub_(lr * t.grad)
        post = learner.post_step()
        dt = time.perf_counter() - t0
        seconds += dt
        record = {"step": step, "query_loss": _mean_stat(stats, "query_loss"),
                  "support_loss": _mean_stat(stats, "support_loss"),
                  "grad_norm": norm, "seconds": dt, **post}
        hist.steps.append(record)
        bar.set_postfix(query=f"{record['query_loss']:.3f}")
        if step % eval_every == 0 or step == meta_steps:
            run_validation(step)
        if on_step is not None:
            on_step(step, record)
        if on_checkpoint is not None and (step == meta_steps or (checkpoint_every and step % checkpoint_every == 0)):
            on_checkpoint(prog.capture(step, targets, opt, hist, best, seconds, rng))
    hist.seconds_per_step = seconds / meta_steps if meta_steps else math.nan
    if best[1] is not None:
        with torch.no_grad():
            for n, t in targets.items():
                t.copy_(best[1][n])
    return hist


def validation_loss(learner: MetaLearner, loss_fn, params: Mapping[str, torch.Tensor],
                    tasks: Sequence[TaskBatches], steps: int | None = None) -> float:
    """Mean query loss after adapting on each task's support (first order, no meta-gradient)."""
    losses = []
    for task in tasks:
        adapted, _ = learner.adapt(loss_fn, params, task.support, steps)
        with torch.no_grad():
            losses.append(float(mean_loss(loss_fn, adapted, task.query)))
    return sum(losses) / len(losses)


def check_meta_tasks(sources: Sequence[str], targets: Sequence[str], meta_batch: int) -> None:
    """Refuse target leakage and empty meta-batches.

    A meta-batch may be larger than the number of source tasks: the tasks are then drawn
    with replacement (:meth:`mdlib.data.splits.EpisodeSampler.sample`).

    Raises:
        MdlibError: a target listed among the sources, no sources, or ``meta_batch < 1``.
    """
    if not sources:
        raise MdlibError("meta-training needs at least one source task")
    leaked = sorted(set(sources) & set(targets))
    if leaked:
        raise MdlibError(f"target domain(s) {leaked} are listed among the meta-training sources: "
                         "that leaks the evaluation domain into meta-training; remove them from --sources")
    if isinstance(meta_batch, bool) or not isinstance(meta_batch, int) or meta_batch < 1:
        raise MdlibError(f"--meta-batch: expected a number >= 1 of tasks per meta-step, got {meta_batch!r}")


def _episode_batches(episode, vocab, profile, device) -> TaskBatches:
    """Collate one :class:`~mdlib.data.splits.Episode` (dialogues) into one support and one query batch."""
    from mdlib.data.pairs import extract_pairs
    from mdlib.models.batching import collate

    kw = dict(use_acts=profile.use_acts, max_src=profile.max_src, max_tgt=profile.max_tgt, device=device)
    sup = extract_pairs(episode.support, context_turns=profile.context_turns, input=profile.input)
    qry = extract_pairs(episode.query, context_turns=profile.context_turns, input=profile.input)
    if not sup or not qry:
        raise MdlibError(f"task {episode.task!r}: an episode has no system turns to learn from")
    return TaskBatches(episode.task, [collate(sup, vocab, **kw)], [collate(qry, vocab, **kw)])


def meta_train(
    method: str,
    model: torch.nn.Module,
    tasks: Mapping[str, Sequence[dict]],
    vocab,
    profile,
    seed: int,
    *,
    valid: Mapping[str, Sequence[dict]] | None = None,
    targets: Sequence[str] = (),
    progress: bool = False,
    device: torch.device | str | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    engine: str = "loop",
    process_group=None,
    on_checkpoint: Callable[[dict], None] | None = None,
    checkpoint_every: int = 0,
    resume: Mapping[str, Any] | None = None,
    **learner_kw,
) -> tuple[MetaLearner, MetaHistory]:
    """Meta-train a response generator on source domains (the DAML protocol).

    Args:
        method: ``maml``, ``fomaml``, ``reptile``, ``metasgd`` or ``anil``.
        model: a generator (:class:`~mdlib.models.contract.Generator`; random or pretrained init:
            ``profile.meta_init``); its parameters are meta-trained in place.
        tasks: ``domain -> training dialogues`` of the meta-training (source) tasks.
        vocab: the vocabulary of the model.
        profile: a :class:`~mdlib.profiles.Profile` (``meta_*``, ``inner_*``, ``outer_lr``).
        seed: seeds episode sampling.
        valid: ``domain -> held-out dialogues`` of the same sources for meta-validation
            (adapt on ``meta_k_support`` of them, score on the rest); ``None``: no
            validation (the last parameters are kept).
        targets: the evaluation domains; listing one of them in ``tasks`` is refused.
        on_step: called after each meta-step (logging).
        engine, process_group, on_checkpoint, checkpoint_every, resume: as in
            :func:`meta_train_loop` (task-batched meta-steps, ``torchrun`` shards,
            checkpoints and resuming); the episode sampler's random state is part of
            every checkpoint.
        **learner_kw: extra arguments of :func:`~mdlib.meta.learners.make_learner`.

    Returns:
        ``(learner, history)``; the learner holds Meta-SGD's learned step sizes
        (``learner.state_dict()`` goes into the checkpoint).

    Raises:
        MdlibError: leakage (a target among the sources), ``meta_batch < 1``, fewer
            tasks per meta-batch than processes, ``inner_steps < 0``, a NaN
            meta-gradient (step and task).
    """
    from mdlib.data.splits import EpisodeSampler

    sources = list(tasks)
    check_meta_tasks(sources, targets, profile.meta_batch)
    if process_group is not None:
        process_group.check_tasks(profile.meta_batch)
    if profile.inner_steps < 0:
        raise MdlibError(f"inner_steps must be >= 0, got {profile.inner_steps}")
    params = dict(model.named_parameters())
    learner_kw.setdefault("head", model.head_names())  # ANIL's (the generator contract); others ignore it
    learner = make_learner(method, params, profile.inner_steps, profile.inner_lr, **learner_kw)
    sampler = EpisodeSampler({d: list(v) for d, v in tasks.items()}, profile.meta_k_support,
                             profile.meta_k_query, seed)
    model.train()

    def loss_fn(p, batch):
        return torch.func.functional_call(model, p, (batch,))

    def sample(step: int) -> list[TaskBatches]:
        return [_episode_batches(ep, vocab, profile, device) for ep in sampler.sample(profile.meta_batch)]

    validate = None
    if valid:
        val_tasks = []
        for d in sources:
            dialogues = list(valid.get(d, ()))
            if len(dialogues) < 2:
                raise MdlibError(f"meta-validation: source {d!r} has {len(dialogues)} valid dialogues; need >= 2")
            k = min(profile.meta_k_support, len(dialogues) // 2)
            sup, qry = dialogues[:k], dialogues[k:k + 30]  # at most 30 query dialogues: bounded memory
            ep = type("Episode", (), {"task": d, "support": sup, "query": qry})
            val_tasks.append(_episode_batches(ep, vocab, profile, device))

        def validate(p):
            return validation_loss(learner, loss_fn, p, val_tasks)

    hist = meta_train_loop(learner, loss_fn, params, sample, meta_steps=profile.meta_steps,
                           outer_lr=profile.outer_lr, clip=profile.meta_clip, validate=validate,
                           eval_every=profile.meta_eval_every, progress=progress, on_step=on_step,
                           engine=engine, process_group=process_group, on_checkpoint=on_checkpoint,
                           checkpoint_every=checkpoint_every, resume=resume,
                           rng=(sampler.rng.getstate, sampler.rng.setstate))
    model.eval()
    return learner, hist



def meta_step_cost(learner: MetaLearner, loss_fn, params: Mapping[str, torch.Tensor],
                   tasks: Sequence[TaskBatches], repeats: int = 3) -> dict:
    """Measure one meta-gradient on ``tasks``: wall-clock seconds and graph memory.

    Memory is the bytes of tensors autograd saves for the backward pass (the part that
    grows with second-order terms and inner steps), summed over the meta-batch and
    independent of the allocator; on a GPU the peak allocated memory is added.

    Returns:
        ``{"seconds": median seconds per meta-gradient, "saved_mb": MB saved for backward,
        "peak_cuda_mb": peak GPU MB or None}``.
    """
    saved = 0

    def pack(t):
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    device = next(iter(params.values())).device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        meta_gradient(learner, loss_fn, params, tasks)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        meta_gradient(learner, loss_fn, params, tasks)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"seconds": sorted(times)[len(times) // 2], "saved_mb": saved / 2**20, "peak_cuda_mb": peak}
