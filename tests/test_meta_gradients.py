"""Meta-gradients of mdlib.meta against finite differences and closed forms (float64)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from mdlib.errors import MdlibError
from mdlib.meta.inner import inner_loop
from mdlib.meta.learners import FOMAML, MAML, MetaSGD, Reptile, TaskBatches, meta_gradient

DT = torch.float64


def _mlp_problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    g = torch.Generator().manual_seed(seed)
    xs, xq = torch.randn(6, 2, generator=g, dtype=DT), torch.randn(5, 2, generator=g, dtype=DT)
    ys, yq = torch.randn(6, 1, generator=g, dtype=DT), torch.randn(5, 1, generator=g, dtype=DT)

    def loss_fn(p, b):
        return ((functional_call(model, p, (b[0],)) - b[1]) ** 2).mean()

    return model, loss_fn, TaskBatches("t", [(xs, ys)], [(xq, yq)])


class TinyGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 3, batch_first=True)
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.out(h[:, -1])


def _gru_problem(seed=0):
    torch.manual_seed(seed)
    model = TinyGRU().to(DT)
    g = torch.Generator().manual_seed(seed)
    xs, xq = torch.randn(4, 5, 2, generator=g, dtype=DT), torch.randn(3, 5, 2, generator=g, dtype=DT)
    ys, yq = torch.randn(4, 1, generator=g, dtype=DT), torch.randn(3, 1, generator=g, dtype=DT)

    def loss_fn(p, b):
        return ((functional_call(model, p, (b[0],)) - b[1]) ** 2).mean()

    return model, loss_fn, TaskBatches("t", [(xs, ys)], [(xq, yq)])


def _objective(loss_fn, params, task, steps, lr):
    """F(theta) = L_query(U_support(theta)), a plain number (for finite differences)."""
    adapted, _ = inner_loop(loss_fn, {n: p.detach() for n, p in params.items()}, task.support, steps, lr)
    with torch.no_grad():
        return float(loss_fn(adapted, task.query[0]))


def _flat(d, names):
    return torch.cat([d[n].reshape(-1) for n in names])


@pytest.mark.parametrize("problem,steps", [(_mlp_problem, 1), (_mlp_problem, 2), (_gru_problem, 2)])
def test_maml_matches_central_finite_differences(problem, steps):
    model, loss_fn, task = problem()
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    lr = 0.3
    grads, _ = MAML(steps, lr).task_gradient(loss_fn, params, task)
    names = list(params)
    analytic = _flat(grads, names)
    flat = _flat(params, names).detach()
    g = torch.Generator().manual_seed(1)
    eps = 1e-5
    for _ in range(6):  # directional derivatives along random directions
        v = torch.randn(flat.shape, generator=g, dtype=DT)
        v /= v.norm()

        def at(x):
            off, p = 0, {}
            for n in names:
                k = params[n].numel()
                p[n] = x[off:off + k].view_as(params[n])
                off += k
            return _objective(loss_fn, p, task, steps, lr)

        fd = (at(flat + eps * v) - at(flat - eps * v)) / (2 * eps)
        assert abs(fd - float(analytic @ v)) < 1e-7 * max(1.0, abs(fd))
    # and the first-order gradient is NOT the derivative of F (it drops the Hessian terms)
    fo, _ = FOMAML(steps, lr).task_gradient(loss_fn, params, task)
    assert (_flat(fo, names) - analytic).norm() > 1e-4


def _linreg(seed=0, d=3):
    g = torch.Generator().manual_seed(seed)
    Xs, Xq = torch.randn(8, d, generator=g, dtype=DT), torch.randn(7, d, generator=g, dtype=DT)
    ys, yq = torch.randn(8, generator=g, dtype=DT), torch.randn(7, generator=g, dtype=DT)
    w = torch.randn(d, generator=g, dtype=DT)

    def loss_fn(p, b):
        X, y = b
        return 0.5 * ((X @ p["w"] - y) ** 2).mean()

    return loss_fn, TaskBatches("lin", [(Xs, ys)], [(Xq, yq)]), w, (Xs, ys, Xq, yq)


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_closed_form_linear_regression(steps):
    loss_fn, task, w, (Xs, ys, Xq, yq) = _linreg()
    a = 0.1
    As, bs = Xs.T @ Xs / len(ys), Xs.T @ ys / len(ys)
    Aq, bq = Xq.T @ Xq / len(yq), Xq.T @ yq / len(yq)
    M = torch.eye(3, dtype=DT) - a * As
    wk = w.clone()
    for _ in range(steps):
        wk = M @ wk + a * bs  # w - a (As w - bs)
    query_grad = Aq @ wk - bq
    expected_maml = torch.linalg.matrix_power(M, steps).T @ query_grad
    params = {"w": w.clone().requires_grad_(True)}
    maml, _ = MAML(steps, a).task_gradient(loss_fn, params, task)
    fomaml, _ = FOMAML(steps, a).task_gradient(loss_fn, params, task)
    torch.testing.assert_close(maml["w"], expected_maml, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fomaml["w"], query_grad, rtol=1e-10, atol=1e-12)


def test_first_and_second_order_agree_only_at_zero_step_size():
    model, loss_fn, task = _mlp_problem(3)
    params = dict(model.named_parameters())
    so0, _ = MAML(2, 0.0).task_gradient(loss_fn, params, task)
    fo0, _ = FOMAML(2, 0.0).task_gradient(loss_fn, params, task)
    plain = torch.autograd.grad(loss_fn(params, task.query[0]), list(params.values()))
    for (n, g), p in zip(so0.items(), plain):
        torch.testing.assert_close(g, p)
        torch.testing.assert_close(fo0[n], p)
    so, _ = MAML(2, 0.5).task_gradient(loss_fn, params, task)
    fo, _ = FOMAML(2, 0.5).task_gradient(loss_fn, params, task)
    names = list(params)
    assert (_flat(so, names) - _flat(fo, names)).norm() > 1e-3 * _flat(so, names).norm()


def test_reptile_one_step_is_joint_training_gradient():
    model, loss_fn, _ = _mlp_problem(4)
    params = dict(model.named_parameters())
    tasks = [_mlp_problem(s)[2] for s in (5, 6, 7)]
    lr = 0.05
    rep, _ = meta_gradient(Reptile(1, lr), loss_fn, params, tasks)
    joint = torch.stack([loss_fn(params, t.support[0]) for t in tasks]).mean()
    jg = torch.autograd.grad(joint, list(params.values()))
    for (n, g), j in zip(rep.items(), jg):
        torch.testing.assert_close(g, lr * j)
    # with two steps Reptile is no longer a multiple of the joint gradient
    rep2, _ = meta_gradient(Reptile(2, lr), loss_fn, params, tasks)
    names = list(params)
    a, b = _flat(rep2, names), torch.cat([j.reshape(-1) for j in jg])
    assert 1 - float(a @ b / a.norm() / b.norm()) > 1e-6


def test_metasgd_with_frozen_step_sizes_equals_maml():
    model, loss_fn, task = _gru_problem(2)
    params = dict(model.named_parameters())
    maml, _ = MAML(2, 0.2).task_gradient(loss_fn, params, task)
    learner = MetaSGD(params, 2, 0.2)
    msgd, _ = learner.task_gradient(loss_fn, params, task)
    for n in params:
        torch.testing.assert_close(msgd[n], maml[n])
    # the step sizes get a gradient, with the closed form on linear regression (1 step):
    loss_fn, task, w, (Xs, ys, Xq, yq) = _linreg(1)
    p = {"w": w.clone().requires_grad_(True)}
    ms = MetaSGD(p, 1, 0.1)
    g, _ = ms.task_gradient(loss_fn, p, task)
    gs = Xs.T @ (Xs @ w - ys) / len(ys)
    w1 = w - 0.1 * gs
    gq = Xq.T @ (Xq @ w1 - yq) / len(yq)
    torch.testing.assert_close(g["lr.w"], -gs * gq)


def test_meta_gradient_on_nan_names_the_task():
    model, loss_fn, task = _mlp_problem()
    params = dict(model.named_parameters())
    x, y = task.query[0]
    bad = TaskBatches("weather", task.support, [(x, y * float("nan"))])
    with pytest.raises(MdlibError, match="weather"):
        meta_gradient(MAML(1, 0.1), loss_fn, params, [task, bad])


def test_inner_loop_errors_name_the_step():
    model, loss_fn, task = _mlp_problem()
    params = dict(model.named_parameters())
    with pytest.raises(MdlibError, match="steps must be >= 0"):
        inner_loop(loss_fn, params, task.support, -1, 0.1)
    with pytest.raises(MdlibError, match="step 0"):
        inner_loop(loss_fn, params, [(task.support[0][0], task.support[0][1] * float("inf"))], 2, 0.1)
    # a huge step size makes the loss blow up at a later step: the message names it
    with pytest.raises(MdlibError, match=r"step [1-9]"):
        inner_loop(loss_fn, params, task.support, 200, 1e150)
    with pytest.raises(MdlibError, match="no step size"):
        inner_loop(loss_fn, params, task.support, 1, {"0.weight": 0.1})
    with pytest.raises(MdlibError, match="not among the parameters"):
        inner_loop(loss_fn, params, task.support, 1, 0.1, trainable=["nope"])
