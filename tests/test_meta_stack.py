"""One meta-learning stack: the registry, the multitask control, meta-RL through the learners."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from mdlib.dm import metarl
from mdlib.dm.rl import BanditTask, bandit_family
from mdlib.errors import MdlibError
from mdlib.meta.base import LEARNERS, MetaLearner, OnPolicy, TaskBatches, register
from mdlib.meta.inner import inner_loop
from mdlib.meta.learners import MAML, METHODS, Multitask, make_learner, meta_gradient
from mdlib.meta.sine import SineMLP, sine_episodes, sine_loss_fn

ROOT = Path(__file__).resolve().parents[1]


def _sine(seed=0):
    torch.manual_seed(seed)
    model = SineMLP(hidden=8)
    return sine_loss_fn(model), dict(model.named_parameters())


# ----------------------------------------------------------------------------- registry


def test_every_registered_method_builds_its_own_class():
    _, params = _sine()
    assert {"maml", "fomaml", "reptile", "metasgd", "anil", "lslr", "multitask"} <= set(METHODS)
    for name in METHODS:
        learner = make_learner(name, params, 1, 0.05, head=["net.4.weight", "net.4.bias"])
        assert type(learner) is LEARNERS[name] and learner.name == name


def test_a_new_learner_is_one_class_and_one_registration():
    from mdlib.commands.train import _methods

    @register("halfmaml")
    class HalfMAML(MetaLearner):
        def task_gradient(self, loss_fn, params, task):
            grads, stats = super().task_gradient(loss_fn, params, task)
            return {n: g / 2 for n, g in grads.items()}, stats

    try:
        loss_fn, params = _sine()
        tasks = sine_episodes(2, 5, 5, torch.Generator().manual_seed(0))
        half, _ = meta_gradient(make_learner("halfmaml", params, 1, 0.05), loss_fn, params, tasks)
        full, _ = meta_gradient(MAML(1, 0.05), loss_fn, params, tasks)
        for n in full:
            torch.testing.assert_close(half[n], full[n] / 2)
        assert "halfmaml" in METHODS and "halfmaml" in _methods()  # the command line sees it too
    finally:
        del LEARNERS["halfmaml"]
    with pytest.raises(MdlibError, match="unknown meta-learning method 'halfmaml'; known .*maml"):
        make_learner("halfmaml", params, 1, 0.05)


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already registered"):
        @register("maml")
        class Other(MetaLearner):
            pass


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_learners_and_schedules_do_not_import_each_other_in_a_circle():
    learners = _imports(ROOT / "mdlib/meta/learners.py")
    schedules = _imports(ROOT / "mdlib/meta/schedules.py")
    base = _imports(ROOT / "mdlib/meta/base.py")
    assert "mdlib.meta.learners" not in schedules and "mdlib.meta.base" in schedules
    assert not {"mdlib.meta.learners", "mdlib.meta.schedules"} & base


# ----------------------------------------------------------------------------- multitask control


def test_multitask_meta_gradient_equals_maml_with_zero_inner_steps():
    loss_fn, params = _sine(3)
    tasks = sine_episodes(3, 5, 5, torch.Generator().manual_seed(3))
    control = make_learner("multitask", params, 3, 0.1)  # the profile's inner steps are ignored
    assert isinstance(control, Multitask) and control.inner_steps == 0
    got, stats = meta_gradient(control, loss_fn, params, tasks)
    want, _ = meta_gradient(MAML(0, 0.1), loss_fn, params, tasks)
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=0, atol=0)
    # ... which is the gradient of the mean query loss at theta (no inner loop at all)
    mean_query = sum(loss_fn(params, t.query[0]) for t in tasks) / len(tasks)
    direct = torch.autograd.grad(mean_query, list(params.values()))
    for (n, _), g in zip(params.items(), direct):
        torch.testing.assert_close(got[n], g)
    with pytest.raises(MdlibError, match="inner_steps must be 0"):
        Multitask(2, 0.1)


# ----------------------------------------------------------------------------- meta-RL through the learners


class _Recorder(OnPolicy):
    """On-policy data that records the parameters it is played with."""

    def __init__(self):
        self.seen = []

    def collect(self, params, step):
        self.seen.append((step, params["w"].detach().clone()))
        return torch.tensor([1.0, 2.0])


def test_on_policy_support_is_played_by_the_current_parameters():
    def loss_fn(p, batch):
        return ((p["w"] - batch) ** 2).sum()

    params = {"w": torch.zeros(2, requires_grad=True)}
    support, query = _Recorder(), _Recorder()
    learner = MAML(2, 0.1)
    grads, _ = learner.task_gradient(loss_fn, params, TaskBatches("t", support, query))
    adapted, _ = inner_loop(loss_fn, params, [torch.tensor([1.0, 2.0])], 2, 0.1)
    assert [s for s, _ in support.seen] == [0, 1]
    torch.testing.assert_close(support.seen[0][1], torch.zeros(2))
    torch.testing.assert_close(support.seen[1][1], torch.tensor([0.2, 0.4]))  # theta_1, not theta_0
    torch.testing.assert_close(query.seen[0][1], adapted["w"].detach())  # the query: the adapted policy


def _written_out_maml(tasks, init, iterations, n_tasks, episodes, inner_lr, meta_lr, gen):
    """Meta-RL MAML as notebook 06 writes it: collect, one inner step, collect, query gradient, Adam.

    The task gradients are summed in task order (as ``meta_gradient`` does): a backward
    pass through the summed loss adds them in another order, and Adam turns that float
    rounding into visible steps on logits whose gradient is nearly 0.
    """
    theta = {k: v.detach().clone().requires_grad_(True) for k, v in init.items()}
    opt = torch.optim.Adam(theta.values(), lr=meta_lr)
    for _ in range(iterations):
        chosen = metarl._sample_tasks(tasks, n_tasks, gen)
        total = None
        for t in chosen:
            support = t.collect(theta, episodes, gen)
            fast, _ = inner_loop(t.loss, theta, [support], 1, inner_lr)
            (g,) = torch.autograd.grad(t.loss(fast, t.collect(fast, episodes, gen)), [theta["logits"]])
            total = g if total is None else total + g
        theta["logits"].grad = total / len(chosen)
        opt.step()
    return theta


def _written_out_reptile(tasks, init, iterations, n_tasks, episodes, batch, inner_lr, meta_lr, gen):
    """theta <- theta + eps_it * mean(adapt(task) - theta), eps decaying linearly to 0."""
    theta = {k: v.detach().clone() for k, v in init.items()}
    for it in range(iterations):
        chosen = metarl._sample_tasks(tasks, n_tasks, gen)
        delta = {k: torch.zeros_like(v) for k, v in theta.items()}
        for t in chosen:
            adapted = metarl.adapt(t, theta, episodes, batch, inner_lr, gen)
            for k in delta:
                delta[k] += (adapted[k].detach() - theta[k]) / len(chosen)
        theta = {k: theta[k] + meta_lr * (1.0 - it / iterations) * delta[k] for k in theta}
    return theta


def test_meta_rl_runs_the_generators_learners_and_matches_the_written_out_algorithms():
    tasks = bandit_family(12, seed=0)
    init = BanditTask.init_params(10)
    got, losses = metarl.maml(tasks, init, 8, 4, 10, 10, 5.0, 0.05, torch.Generator().manual_seed(0),
                              first_order=True)
    want = _written_out_maml(tasks, init, 8, 4, 10, 5.0, 0.05, torch.Generator().manual_seed(0))
    assert len(losses) == 8
    torch.testing.assert_close(got["logits"].detach(), want["logits"].detach(), rtol=0, atol=1e-6)
    got, norms = metarl.reptile(tasks, init, 8, 4, 30, 10, 5.0, 0.5, torch.Generator().manual_seed(1))
    want = _written_out_reptile(tasks, init, 8, 4, 30, 10, 5.0, 0.5, torch.Generator().manual_seed(1))
    assert len(norms) == 8
    torch.testing.assert_close(got["logits"].detach(), want["logits"], rtol=0, atol=0)  # bit for bit


def test_meta_rl_pretraining_is_the_multitask_learner():
    tasks = bandit_family(6, seed=1)
    init = BanditTask.init_params(10)
    got, _ = metarl.pretrain(tasks, init, 5, 3, 10, 0.05, torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    theta = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = torch.optim.Adam(theta.values(), lr=0.05)
    for _ in range(5):
        chosen = metarl._sample_tasks(tasks, 3, gen)
        grads = [torch.autograd.grad(t.loss(theta, t.collect(theta, 10, gen)), [theta["logits"]])[0]
                 for t in chosen]
        theta["logits"].grad = (grads[0] + grads[1] + grads[2]) / 3
        opt.step()
    torch.testing.assert_close(got["logits"].detach(), theta["logits"].detach(), rtol=0, atol=1e-6)
