"""Training the learned parser: supervised pretraining, meta-training, adaptation.

Every adaptation goes through the one inner loop (:func:`mdlib.meta.inner.inner_loop`
or a meta-learner's :meth:`~mdlib.meta.learners.MetaLearner.adapt`); meta-training
through :func:`mdlib.meta.metatrain.meta_train_loop`. Notebook 07 uses all three.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Mapping, Sequence

import torch

from mdlib.atomic import atomic_path, read_torch
from mdlib.errors import MdlibError
from mdlib.system.parser.network import (Example, LearnedParser, ParserBatch, ParserNet, Params, collate_examples,
                                         make_batches, parser_loss_fn)



def train_parser(examples: Sequence[Example], *, steps: int = 300, batch_size: int = 32, lr: float = 3e-3,
                 seed: int = 0, model: ParserNet | None = None, params: Params | None = None,
                 progress: bool = False) -> tuple[ParserNet, Params]:
    """Supervised training (multi-domain pretraining on the sources) with Adam.

    Returns:
        ``(model, params)`` with ``params`` detached copies of the trained weights.
    """
    from tqdm.auto import tqdm

    if not examples:
        raise MdlibError("train_parser: no user turns to train on")
    torch.manual_seed(seed)
    model = model or ParserNet()
    params = {k: v.detach().clone().requires_grad_(True)
              for k, v in (params or dict(model.named_parameters())).items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    rng = random.Random(seed)
    loss_fn = parser_loss_fn(model)
    batches: list[ParserBatch] = []
    for _ in tqdm(range(steps), desc="parser pretraining", disable=not progress):
        if not batches:
            batches = make_batches(examples, batch_size, model.buckets, rng)
        loss = loss_fn(params, batches.pop())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, {k: v.detach() for k, v in params.items()}


def meta_train_parser(tasks: Mapping[str, Sequence[Example]], learner, *, iterations: int = 200,
                      k_support: int = 16, k_query: int = 16, tasks_per_iter: int = 3, outer_lr: float = 3e-3,
                      seed: int = 0, model: ParserNet | None = None, params: Params | None = None,
                      progress: bool = False) -> tuple[ParserNet, Params]:
    """Meta-train the parser across source tasks with a meta-learner of :mod:`mdlib.meta.learners`.

    Each meta-step samples ``tasks_per_iter`` source tasks and from each disjoint support
    and query turns; the outer loop is :func:`mdlib.meta.metatrain.meta_train_loop`.

    Returns:
        ``(model, params)``; Meta-SGD's learned step sizes stay in ``learner``.
    """
    from mdlib.meta.learners import TaskBatches
    from mdlib.meta.metatrain import meta_train_loop

    names = [t for t, ex in tasks.items() if len(ex) >= k_support + k_query]
    if not names:
        raise MdlibError(f"meta_train_parser: every task needs >= {k_support + k_query} user turns")
    torch.manual_seed(seed)
    model = model or ParserNet()
    params = {k: v.detach().clone().requires_grad_(True)
              for k, v in (params or dict(model.named_parameters())).items()}
    rng = random.Random(seed)

    def sample(step: int) -> list[TaskBatches]:
        out = []
        for t in rng.sample(names, min(tasks_per_iter, len(names))):
            ex = rng.sample(list(tasks[t]), k_support + k_query)
            out.append(TaskBatches(t, [collate_examples(ex[:k_support], model.buckets)],
                                   [collate_examples(ex[k_support:], model.buckets)]))
        return out

    meta_train_loop(learner, parser_loss_fn(model), params, sample, meta_steps=iterations,
                    outer_lr=outer_lr, progress=progress)
    return model, {k: v.detach() for k, v in params.items()}


def adapt_parser(model: ParserNet, params: Params, examples: Sequence[Example], *, steps: int = 20,
                 lr: float | object = 0.05, batch_size: int = 32, learner=None, seed: int = 0) -> Params:
    """Adapt to a target domain on its few user turns through the one inner loop.

    Args:
        learner: a meta-learner (its step sizes and trainable names are used through
            :meth:`~mdlib.meta.learners.MetaLearner.adapt`); ``None``: plain SGD
            fine-tuning with step size ``lr`` via :func:`mdlib.meta.inner.inner_loop`.
    """
    from mdlib.meta.inner import inner_loop

    if not examples or steps == 0:
        return dict(params)
    batches = make_batches(examples, batch_size, model.buckets, random.Random(seed))
    loss_fn = parser_loss_fn(model)
    if learner is not None:
        adapted, _ = learner.adapt(loss_fn, params, batches, steps=steps)
    else:
        adapted, _ = inner_loop(loss_fn, params, batches, steps, lr)
    return {k: v.detach() for k, v in adapted.items()}



# --------------------------------------------------------------------------- parser files

FORMAT = "mdlib-parser-v1"
PARSER_NAME = "parser.pt"
HOW_TO_MAKE = ("save one with mdlib.system.parser.save_parser(path, model, params, {...}) "
               "(notebook 07 trains parsers)")


def save_parser(path: str | Path, model: ParserNet, params: Params, config: Mapping | None = None) -> Path:
    """Write a learned parser (network sizes, parameters, JSON-able ``config``) atomically.

    ``path``: a ``.pt`` file, or a run folder (then ``parser.pt`` in it). ``config`` may
    name the domain it was adapted to (``{"domain": "movie"}``) and its ``threshold``.

    Raises:
        MdlibError: a parameter is not finite.
    """
    path = Path(path)
    if path.suffix != ".pt":
        path = path / PARSER_NAME
    state = {k: v.detach().cpu().clone() for k, v in params.items()}
    for k, v in state.items():
        if not bool(torch.isfinite(v).all()):
            raise MdlibError(f"refusing to save {path}: parameter {k!r} is not finite")
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "net": dict(model.config), "params": state, "config": dict(config or {})}, tmp)
    return path


def load_parser(path: str | Path, domain) -> LearnedParser:
    """A :class:`LearnedParser` for ``domain`` from a file (or run folder) of :func:`save_parser`.

    Raises:
        MdlibError: naming the file: missing, not a parser file, or parameters that do not
            fit the network its sizes describe.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PARSER_NAME
    blob = read_torch(path, FORMAT, "parser file", HOW_TO_MAKE)
    net, params, config = blob.get("net"), blob.get("params"), blob.get("config") or {}
    try:
        model = ParserNet(**net)
    except TypeError:
        raise MdlibError(f"{path}: net: expected the ParserNet sizes {{buckets, emb, hidden}}, got {net!r}") from None
    expected = {k: tuple(v.shape) for k, v in model.named_parameters()}
    if not isinstance(params, dict) or {k: tuple(getattr(v, "shape", ())) for k, v in params.items()} != expected:
        raise MdlibError(f"{path}: parameters do not fit a ParserNet of sizes {net}")
    return LearnedParser(model, params, domain, threshold=float(config.get("threshold", 0.5)))
