"""Exercises on gradient-based meta-learning: references and checks (notebooks 00, 03, 04, 05).

Each exercise is one function that a student writes; its reference implementation here
goes through the library (:func:`mdlib.meta.inner.inner_loop`, the learners of
:mod:`mdlib.meta.learners`, :mod:`mdlib.meta.reweight`), so a passing student function
computes what the notebooks' experiments compute. The problems are tiny and float64:

* a *tiny regressor* ``f(x) = tanh(x @ w1 + b1) @ w2 + b2`` with parameters
  ``{"w1": (2, 3), "b1": (3,), "w2": (3, 1), "b2": (1,)}`` and the loss
  :func:`tiny_loss` ``(params, (x, y)) -> mean squared error``, ``x: (k, 2)``, ``y: (k, 1)``;
  each task has its own random target function;
* for exercise 0.1, notebook 00's sine-wave MLP (:class:`mdlib.meta.sine.SineMLP`, 8 units).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from mdlib.exercises.checking import Mistake, as_dict, as_tensor, fail, gradients, run_check
from mdlib.meta.inner import inner_loop

Params = dict[str, torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]

__all__ = ["tiny_loss", "tiny_problem", "bilevel_objective", "check_bilevel_objective", "maml_meta_gradient",
           "check_maml_meta_gradient", "reptile_update", "check_reptile_update", "metasgd_update",
           "check_metasgd_update", "lookahead_weights", "check_lookahead_weights"]


# --------------------------------------------------------------------------- tiny problems

def tiny_loss(params: Mapping[str, torch.Tensor], batch: Batch) -> torch.Tensor:
    """Mean squared error of the tiny regressor ``tanh(x @ w1 + b1) @ w2 + b2`` on ``(x: (k, 2), y: (k, 1))``."""
    x, y = batch
    pred = torch.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    return ((pred - y) ** 2).mean()


def tiny_params(gen: torch.Generator) -> Params:
    """Random parameters of the tiny regressor (float64 leaves that require grad)."""
    shapes = {"w1": (2, 3), "b1": (3,), "w2": (3, 1), "b2": (1,)}
    return {n: torch.randn(*s, generator=gen, dtype=torch.float64).requires_grad_(True) for n, s in shapes.items()}


def tiny_problem(seed: int, n_tasks: int = 3, k: int = 5) -> tuple[Params, list[tuple[Batch, Batch]]]:
    """``(params, tasks)``: the tiny regressor and ``n_tasks`` tasks, each ``(support, query)`` of ``k`` points.

    A task's targets are ``y = sin(x @ a) + c`` with its own ``a: (2, 1)`` and ``c``, so
    that adapting to it pays off and the second-order terms are not zero.
    """
    gen = torch.Generator().manual_seed(1000 + seed)
    params = tiny_params(gen)
    tasks = []
    for _ in range(n_tasks):
        a = torch.randn(2, 1, generator=gen, dtype=torch.float64)
        c = torch.randn(1, generator=gen, dtype=torch.float64)
        batches = []
        for _ in range(2):
            x = torch.randn(k, 2, generator=gen, dtype=torch.float64)
            batches.append((x, torch.sin(x @ a) + c))
        tasks.append((batches[0], batches[1]))
    return params, tasks


def _leaves(params: Mapping[str, torch.Tensor]) -> Params:
    """Fresh leaves with the same values (every check call differentiates its own copy)."""
    return {n: t.detach().clone().requires_grad_(True) for n, t in params.items()}


# --------------------------------------------------------------------------- 0.1 bilevel objective

def _sine_problem(case: dict):
    from mdlib.meta.sine import SineMLP, sample_tasks

    with torch.random.fork_rng(devices=[]):  # a check must not move the student's random stream
        torch.manual_seed(case["seed"])
        model = SineMLP(hidden=8).double()
    gen = torch.Generator().manual_seed(2000 + case["seed"])
    tasks = sample_tasks(case["n_tasks"], gen)
    support = [t.sample(case["k"], gen, torch.float64) for t in tasks]
    query = [t.sample(case["k"], gen, torch.float64) for t in tasks]
    xs, ys = (torch.stack(v) for v in zip(*support))
    xq, yq = (torch.stack(v) for v in zip(*query))
    return model, xs, ys, xq, yq


def _bilevel(model, xs, ys, xq, yq, lr, steps, *, first_order=False, on_support=False, total=False,
             sign=1.0, one_step=False, mixed=False):
    """The objective, with the optional mistakes the check recognises (all off: the reference)."""
    from mdlib.meta.sine import sine_loss_fn

    loss_fn = sine_loss_fn(model)
    theta = dict(model.named_parameters())
    steps = 1 if one_step and steps > 0 else steps
    if mixed:  # one adaptation on every task's support points together
        shared, _ = inner_loop(loss_fn, theta, [(xs.reshape(-1, 1), ys.reshape(-1, 1))], steps, sign * lr,
                               create_graph=not first_order)
    losses = []
    for i in range(len(xs)):
        if mixed:
            adapted = shared
        else:
            adapted, _ = inner_loop(loss_fn, theta, [(xs[i], ys[i])], steps, sign * lr, create_graph=not first_order)
        losses.append(loss_fn(adapted, (xs[i], ys[i]) if on_support else (xq[i], yq[i])))
    losses = torch.stack(losses)
    return losses.sum() if total else losses.mean()


def bilevel_objective(model: torch.nn.Module, xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor,
                      yq: torch.Tensor, lr: float, steps: int = 1) -> torch.Tensor:
    """Notebook 00's corrected bilevel (MAML) objective on sine tasks (exercise 0.1's reference).

    ``mean_i L_query_i(theta'_i)`` with ``theta'_i`` after ``steps`` gradient steps of size
    ``lr`` on task ``i``'s support points, the graph kept (second order).

    Args:
        model: a regressor ``(n, 1) -> (n, 1)`` whose ``named_parameters()`` are theta.
        xs, ys: support points, Tensor (n_tasks, k, 1) each; xq, yq: query points, same.
        lr: the inner step size alpha; steps: inner steps (0: no adaptation).

    Returns:
        Tensor (), differentiable with respect to the model's parameters.
    """
    return _bilevel(model, xs, ys, xq, yq, lr, steps)


_BILEVEL_CASES = [dict(seed=0, n_tasks=3, k=5, lr=0.05, steps=1), dict(seed=1, n_tasks=2, k=4, lr=0.02, steps=2),
                  dict(seed=2, n_tasks=4, k=6, lr=0.1, steps=3)]


def check_bilevel_objective(fn: Callable[..., torch.Tensor]) -> None:
    """Exercise 0.1 (notebook 00): check ``fn(model, xs, ys, xq, yq, lr, steps) -> Tensor ()``.

    ``fn`` must return the bilevel objective of :func:`bilevel_objective`: the mean over
    tasks of the query loss after ``steps`` inner gradient steps of size ``lr`` on the
    task's support points, differentiable through the inner steps. The check calls it on
    a small sine-wave MLP (float64; ``xs, ys, xq, yq``: Tensor (n_tasks, k, 1)) for three
    random problems and compares the value and its gradient with the reference.

    Raises:
        AssertionError: one sentence saying what is wrong (the sum over tasks instead of
            the mean, the support set scoring the adaptation, a missing second-order term ...).
    """
    def outputs(objective: Callable, case: dict, **mistake) -> dict:
        model, xs, ys, xq, yq = _sine_problem(case)
        value = objective(model, xs, ys, xq, yq, case["lr"], case["steps"], **mistake)
        value = as_tensor(value, "the objective", "0.1", ())
        return {"the objective's value": value, **gradients(value, dict(model.named_parameters()), "its gradient for ")}

    mistakes = [
        Mistake("the query loss is computed on the support points; score the adapted parameters on the query "
                "points (xq, yq), which the inner step has not seen.", lambda c: outputs(_bilevel, c, on_support=True)),
        Mistake("the value is right but the gradient misses the second-order term: keep the inner gradient in "
                "the graph (create_graph=True) so that the outer gradient flows through the inner step.",
                lambda c: outputs(_bilevel, c, first_order=True)),
        Mistake("you summed the tasks' query losses; average them (divide by the number of tasks).",
                lambda c: outputs(_bilevel, c, total=True)),
        Mistake("the inner step goes uphill; it is theta' = theta - lr * grad L_support(theta), with a minus.",
                lambda c: outputs(_bilevel, c, sign=-1.0)),
        Mistake("there is no adaptation: the query loss is taken at theta itself, which is joint training; "
                "take the inner steps on the support points first.", lambda c: outputs(_bilevel, {**c, "steps": 0})),
        Mistake("the inner loop takes one step whatever steps says; take steps steps, each from the previous "
                "step's parameters.", lambda c: outputs(_bilevel, c, one_step=True)),
        Mistake("you adapted once on every task's support points together; adapt each task from theta on its "
                "own support points.", lambda c: outputs(_bilevel, c, mixed=True)),
    ]
    run_check("0.1", "the objective or its gradient", _BILEVEL_CASES, lambda c: outputs(lambda *a: fn(*a), c),
              lambda c: outputs(_bilevel, c), mistakes)


# --------------------------------------------------------------------------- 3.1 MAML meta-gradient

def _maml_grad(loss_fn, params, tasks, inner_lr, inner_steps, *, method="maml", on_support=False, total=False,
               negate=False) -> Params:
    from mdlib.meta.learners import TaskBatches, make_learner, meta_gradient

    batches = [TaskBatches(f"task{i}", [s], [s if on_support else q]) for i, (s, q) in enumerate(tasks)]
    learner = make_learner(method, params, 0 if method == "multitask" else inner_steps, inner_lr)
    grads, _ = meta_gradient(learner, loss_fn, params, batches)
    scale = (len(tasks) if total else 1.0) * (-1.0 if negate else 1.0)
    return {n: g * scale for n, g in grads.items()}


def maml_meta_gradient(loss_fn: Callable[[Mapping[str, torch.Tensor], Batch], torch.Tensor],
                       params: Mapping[str, torch.Tensor], tasks: Sequence[tuple[Batch, Batch]],
                       inner_lr: float, inner_steps: int) -> Params:
    """The second-order MAML meta-gradient (exercise 3.1's reference; notebook 03).

    ``d/d theta mean_tasks L_query(theta')`` with ``theta'`` after ``inner_steps`` steps
    ``theta <- theta - inner_lr * grad L_support(theta)`` from ``theta = params``: the
    ``maml`` learner's :func:`~mdlib.meta.learners.meta_gradient`.

    Args:
        loss_fn: ``loss_fn(params, batch) -> Tensor ()``.
        params: ``name -> Tensor`` leaves that require grad (theta).
        tasks: one ``(support_batch, query_batch)`` per task.

    Returns:
        ``name -> Tensor`` shaped like ``params``.
    """
    return _maml_grad(loss_fn, params, tasks, inner_lr, inner_steps)


_TINY_CASES = [dict(seed=0, n_tasks=3, lr=0.3, steps=1), dict(seed=1, n_tasks=2, lr=0.2, steps=2),
               dict(seed=2, n_tasks=4, lr=0.5, steps=3)]


def check_maml_meta_gradient(fn: Callable[..., Mapping[str, torch.Tensor]]) -> None:
    """Exercise 3.1 (notebook 03): check ``fn(loss_fn, params, tasks, inner_lr, inner_steps) -> dict``.

    ``fn`` must return the second-order MAML meta-gradient of :func:`maml_meta_gradient`:
    for every name of ``params``, the gradient of the mean over tasks of the query loss at
    the adapted parameters. The check calls it with :func:`tiny_loss`, the tiny regressor's
    ``params`` (``{"w1": (2, 3), "b1": (3,), "w2": (3, 1), "b2": (1,)}``, float64 leaves
    that require grad) and ``tasks``, a list of ``(support, query)`` batches ``(x: (5, 2),
    y: (5, 1))``, on three random problems.

    Raises:
        AssertionError: one sentence saying what is wrong.
    """
    def problem(case):
        params, tasks = tiny_problem(case["seed"], case["n_tasks"])
        return params, tasks

    def student(case):
        params, tasks = problem(case)
        return as_dict(fn(tiny_loss, params, tasks, case["lr"], case["steps"]), params, "the meta-gradient", "3.1")

    def variant(**mistake):
        def out(case):
            params, tasks = problem(case)
            return _maml_grad(tiny_loss, params, tasks, case["lr"], case["steps"], **mistake)
        return out

    mistakes = [
        Mistake("this is the first-order (FOMAML) gradient: it misses the second-order term, so keep the inner "
                "gradients in the graph (create_graph=True).", variant(method="fomaml")),
        Mistake("the query loss is computed on the support batch; score the adapted parameters on the task's "
                "query batch.", variant(on_support=True)),
        Mistake("you summed the tasks' gradients; average them over the tasks.", variant(total=True)),
        Mistake("the sign is flipped: return the gradient of the query loss (the outer optimiser subtracts it), "
                "not its negative.", variant(negate=True)),
        Mistake("the inner step goes uphill; it is theta' = theta - inner_lr * grad L_support(theta).",
                lambda c: _maml_grad(tiny_loss, *problem(c), -c["lr"], c["steps"])),
        Mistake("there is no inner loop: this is the multi-task gradient at theta; adapt on the support batch first.",
                variant(method="multitask")),
        Mistake("the inner loop takes one step whatever inner_steps says; take inner_steps steps.",
                lambda c: _maml_grad(tiny_loss, *problem(c), c["lr"], 1)),
    ]
    run_check("3.1", "the meta-gradient", _TINY_CASES, student,
              lambda c: _maml_grad(tiny_loss, *problem(c), c["lr"], c["steps"]), mistakes)


# --------------------------------------------------------------------------- 3.2 Reptile update

def _reptile(loss_fn, params, batches, inner_lr, inner_steps, outer_lr, *, total=False, sign=1.0, chained=False,
             direction_only=False) -> Params:
    theta = {n: t.detach() for n, t in params.items()}
    moves = []
    start = theta
    for batch in batches:
        adapted, _ = inner_loop(loss_fn, start if chained else theta, [batch], inner_steps, inner_lr)
        moves.append({n: adapted[n].detach() - theta[n] for n in theta})
        if chained:
            start = {n: adapted[n].detach() for n in theta}
    out = {}
    for n in theta:
        move = torch.stack([m[n] for m in moves]).sum(0)
        move = move if total else move / len(moves)
        out[n] = sign * outer_lr * move + (0.0 if direction_only else theta[n])
    return out


def reptile_update(loss_fn: Callable[[Mapping[str, torch.Tensor], Batch], torch.Tensor],
                   params: Mapping[str, torch.Tensor], batches: Sequence[Batch], inner_lr: float, inner_steps: int,
                   outer_lr: float) -> Params:
    """One Reptile meta-step (exercise 3.2's reference; notebook 03; Nichol et al., 2018).

    ``theta + outer_lr * mean_tasks(theta'_task - theta)``, where ``theta'_task`` is
    ``inner_steps`` plain gradient steps of size ``inner_lr`` from ``theta`` on the task's batch
    (:func:`mdlib.meta.inner.inner_loop`): the ``reptile`` learner's direction with an
    outer SGD step of size ``outer_lr``.

    Args:
        batches: one batch per task.

    Returns:
        The new parameters ``name -> Tensor`` (detached).
    """
    return _reptile(loss_fn, params, batches, inner_lr, inner_steps, outer_lr)


def check_reptile_update(fn: Callable[..., Mapping[str, torch.Tensor]]) -> None:
    """Exercise 3.2 (notebook 03): check ``fn(loss_fn, params, batches, inner_lr, inner_steps, outer_lr) -> dict``.

    ``fn`` must return the new parameters after one Reptile meta-step
    (:func:`reptile_update`): every task adapts from ``params`` with ``inner_steps`` SGD
    steps on its batch, and the parameters move ``outer_lr`` of the way toward the mean of
    the adapted ones. The check calls it with :func:`tiny_loss`, the tiny regressor's
    ``params`` and ``batches`` (one ``(x: (5, 2), y: (5, 1))`` per task) on three random
    problems.

    Raises:
        AssertionError: one sentence saying what is wrong.
    """
    def problem(case):
        params, tasks = tiny_problem(case["seed"], case["n_tasks"])
        return params, [s for s, _ in tasks]

    def variant(**mistake):
        def out(case):
            return _reptile(tiny_loss, *problem(case), case["lr"], case["steps"], case["outer_lr"], **mistake)
        return out

    def student(case):
        params, batches = problem(case)
        return as_dict(fn(tiny_loss, params, batches, case["lr"], case["steps"], case["outer_lr"]), params,
                       "the new parameters", "3.2")

    mistakes = [
        Mistake("the step moves away from the adapted parameters; Reptile moves toward them: theta + outer_lr * "
                "(theta' - theta).", variant(sign=-1.0)),
        Mistake("you summed the tasks' moves; average them over the tasks.", variant(total=True)),
        Mistake("each task adapted from the previous task's adapted parameters; every task must start from the "
                "same theta.", variant(chained=True)),
        Mistake("you returned the update outer_lr * mean(theta' - theta), not the new parameters theta + update.",
                variant(direction_only=True)),
        Mistake("these are the mean adapted parameters; move only outer_lr of the way from theta toward them.",
                lambda c: _reptile(tiny_loss, *problem(c), c["lr"], c["steps"], 1.0)),
        Mistake("the inner loop takes one step whatever inner_steps says; take inner_steps steps.",
                lambda c: _reptile(tiny_loss, *problem(c), c["lr"], 1, c["outer_lr"])),
    ]
    cases = [{**c, "outer_lr": lr} for c, lr in zip(_TINY_CASES, (0.5, 0.25, 0.1))]
    run_check("3.2", "the new parameters", cases, student, variant(), mistakes)


# --------------------------------------------------------------------------- 4.1 Meta-SGD update

def _metasgd(loss_fn, params, lrs, support, *, first_order=False, detach_lrs=False, sign=1.0, scalar=False):
    if detach_lrs:
        lrs = {n: l.detach() for n, l in lrs.items()}
    if scalar:
        lrs = {n: l.mean() for n, l in lrs.items()}
    lrs = {n: sign * l for n, l in lrs.items()}
    adapted, _ = inner_loop(loss_fn, params, [support], 1, lrs, create_graph=not first_order)
    return adapted


def metasgd_update(loss_fn: Callable[[Mapping[str, torch.Tensor], Batch], torch.Tensor],
                   params: Mapping[str, torch.Tensor], lrs: Mapping[str, torch.Tensor], support: Batch) -> Params:
    """Meta-SGD's inner step (exercise 4.1's reference; notebook 04; Li et al., 2017).

    ``theta' = theta - alpha * grad L_support(theta)``, ``alpha = lrs[name]`` a learned step
    size per parameter entry (the ``*`` is element-wise), differentiable with respect to
    both ``theta`` and ``alpha`` (second order): :func:`mdlib.meta.inner.inner_loop` with a
    dict of step sizes, as the ``metasgd`` learner runs it.

    Returns:
        ``name -> Tensor``, the adapted parameters.
    """
    return _metasgd(loss_fn, params, lrs, support)


def check_metasgd_update(fn: Callable[..., Mapping[str, torch.Tensor]]) -> None:
    """Exercise 4.1 (notebook 04): check ``fn(loss_fn, params, lrs, support) -> dict``.

    ``fn`` must return the adapted parameters after one Meta-SGD step
    (:func:`metasgd_update`): ``params[n] - lrs[n] * grad``, element-wise, differentiable with
    respect to ``params`` *and* ``lrs``. The check calls it with :func:`tiny_loss`, the tiny
    regressor's ``params``, step sizes ``lrs`` shaped like them (positive, float64 leaves
    that require grad) and a support batch ``(x: (5, 2), y: (5, 1))``; it compares the
    adapted parameters and the gradients of a query loss at them with respect to ``params``
    and ``lrs``, on three random problems.

    Raises:
        AssertionError: one sentence saying what is wrong.
    """
    def problem(case):
        params, tasks = tiny_problem(case["seed"], 1)
        gen = torch.Generator().manual_seed(3000 + case["seed"])
        lrs = {n: (case["lr"] * (0.5 + torch.rand(p.shape, generator=gen, dtype=torch.float64))).requires_grad_(True)
               for n, p in params.items()}
        return params, lrs, tasks[0][0], tasks[0][1]

    def outputs(update, case, **mistake):
        params, lrs, support, query = problem(case)
        adapted = as_dict(update(tiny_loss, params, lrs, support, **mistake), params, "the adapted parameters", "4.1")
        if not any(t.requires_grad for t in adapted.values()):
            fail("4.1", "the adapted parameters carry no gradient; build them from params and lrs without "
                        ".detach() or torch.no_grad(), so that the query loss can be differentiated.")
        query_loss = tiny_loss(adapted, query)
        return {**{f"adapted {n}": t for n, t in adapted.items()}, **gradients(query_loss, params, "d query / d "),
                **gradients(query_loss, lrs, "d query / d lr of ")}

    mistakes = [
        Mistake("the step sizes get no gradient; do not detach lrs, the outer loop learns them.",
                lambda c: outputs(_metasgd, c, detach_lrs=True)),
        Mistake("the adapted parameters are right but the gradient with respect to params misses the "
                "second-order term; keep the inner gradient in the graph (create_graph=True).",
                lambda c: outputs(_metasgd, c, first_order=True)),
        Mistake("the step goes uphill; it is theta - lrs * grad, with a minus.",
                lambda c: outputs(_metasgd, c, sign=-1.0)),
        Mistake("you used one step size per tensor (the mean of lrs); Meta-SGD multiplies every gradient entry "
                "by its own step size, element-wise.", lambda c: outputs(_metasgd, c, scalar=True)),
    ]
    run_check("4.1", "the adapted parameters or their gradients", _TINY_CASES,
              lambda c: outputs(lambda *a: fn(*a), c), lambda c: outputs(_metasgd, c), mistakes)


# --------------------------------------------------------------------------- 5.1 look-ahead weights

def _lookahead(terms_fn, params, val_loss_fn, lr, *, flip=False, normalise=True, clamp=True, raw=False,
               against_training=False) -> torch.Tensor:
    from mdlib.meta.reweight import lookahead_grads, weights_from_grads

    target = (lambda p: terms_fn(p).mean()) if against_training else val_loss_fn
    g = lookahead_grads(terms_fn, params, target, lr)
    if raw:
        return g
    if clamp and normalise and not flip:
        return weights_from_grads(g)
    score = g if flip else -g
    if clamp:
        score = torch.clamp(score, min=0.0)
    return score / score.sum() if normalise else score


def lookahead_weights(terms_fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
                      params: Mapping[str, torch.Tensor],
                      val_loss_fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor], lr: float) -> torch.Tensor:
    """Learning-to-reweight's example weights (exercise 5.1's reference; notebook 05; Ren et al., 2018).

    ``g_i = d L_val(theta - lr * grad sum_j eps_j l_j(theta)) / d eps_i`` at ``eps = 0`` and
    ``w_i = max(-g_i, 0) / sum_j max(-g_j, 0)``: :func:`mdlib.meta.reweight.lookahead_grads`
    then :func:`~mdlib.meta.reweight.weights_from_grads`.

    Args:
        terms_fn: ``terms_fn(params) -> Tensor (n,)``, one loss per training example.
        val_loss_fn: ``val_loss_fn(params) -> Tensor ()``, the clean validation loss.
        lr: the look-ahead step size.

    Returns:
        Tensor (n,): non-negative weights summing to 1.
    """
    return _lookahead(terms_fn, params, val_loss_fn, lr)


def _reweight_problem(case: dict):
    """A linear regression with ``n`` training examples, the first ``n_bad`` with corrupted targets."""
    gen = torch.Generator().manual_seed(4000 + case["seed"])
    d, n, n_val = 3, case["n"], 6
    w_true = torch.randn(d, 1, generator=gen, dtype=torch.float64)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = x @ w_true + 0.1 * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    y[: case["n_bad"]] = -3.0 * y[: case["n_bad"]]      # corrupted: the wrong sign, amplified
    xv = torch.randn(n_val, d, generator=gen, dtype=torch.float64)
    yv = xv @ w_true
    params = {"w": (0.5 * w_true + 0.3 * torch.randn(d, 1, generator=gen, dtype=torch.float64)).requires_grad_(True),
              "b": torch.zeros(1, dtype=torch.float64, requires_grad=True)}

    def terms_fn(p):
        return ((x @ p["w"] + p["b"] - y) ** 2).squeeze(1)

    def val_loss_fn(p):
        return ((xv @ p["w"] + p["b"] - yv) ** 2).mean()

    return terms_fn, params, val_loss_fn


def check_lookahead_weights(fn: Callable[..., torch.Tensor]) -> None:
    """Exercise 5.1 (notebook 05): check ``fn(terms_fn, params, val_loss_fn, lr) -> Tensor (n,)``.

    ``fn`` must return the example weights of :func:`lookahead_weights`. The check calls it
    on a linear regression (``params = {"w": (3, 1), "b": (1,)}``, float64 leaves that
    require grad; ``terms_fn(params) -> Tensor (n,)`` the squared errors of ``n`` training
    examples of which a few have corrupted targets; ``val_loss_fn(params) -> Tensor ()`` a
    clean validation loss) on three random problems.

    Raises:
        AssertionError: one sentence saying what is wrong.
    """
    def variant(**mistake):
        return lambda case: {"weights": _lookahead(*_reweight_problem(case), case["lr"], **mistake)}

    def student(case):
        terms_fn, params, val_loss_fn = _reweight_problem(case)
        return {"weights": as_tensor(fn(terms_fn, params, val_loss_fn, case["lr"]), "the weights", "5.1",
                                     (case["n"],))}

    mistakes = [
        Mistake("the weights go to the examples whose step would raise the validation loss; the weight is "
                "max(-g_i, 0), with a minus.", variant(flip=True)),
        Mistake("these are the look-ahead gradients g themselves; turn them into weights max(-g_i, 0) / "
                "sum_j max(-g_j, 0).", variant(raw=True)),
        Mistake("the weights do not sum to 1; divide max(-g_i, 0) by its sum over the examples.",
                variant(normalise=False)),
        Mistake("some weights are negative; clamp -g_i at 0 before normalising, so that harmful examples get "
                "weight 0.", variant(clamp=False)),
        Mistake("the weights are uniform; each weight must come from how a step on that example changes the "
                "clean validation loss.",
                lambda c: {"weights": torch.full((c["n"],), 1.0 / c["n"], dtype=torch.float64)}),
        Mistake("the look-ahead is scored on the training loss; score it on the clean validation loss "
                "(val_loss_fn), the point of the method.", variant(against_training=True)),
    ]
    cases = [dict(seed=0, n=8, n_bad=3, lr=0.1), dict(seed=1, n=6, n_bad=2, lr=0.05),
             dict(seed=2, n=10, n_bad=4, lr=0.2)]
    run_check("5.1", "the weights", cases, student, variant(), mistakes)
