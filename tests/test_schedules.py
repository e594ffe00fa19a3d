"""Learned inner-loop schedules (MAML++ LSLR + multi-step loss) through THE inner loop."""

import pytest
import torch

from mdlib.errors import MdlibError
from mdlib.meta.inner import inner_loop
from mdlib.meta.schedules import LearnedSchedule, multi_step_query_loss, per_layer


def _mlp(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "l1.weight": (torch.randn(6, 3, generator=g, dtype=dtype) * 0.5).requires_grad_(),
        "l1.bias": torch.zeros(6, dtype=dtype, requires_grad=True),
        "out.weight": (torch.randn(1, 6, generator=g, dtype=dtype) * 0.5).requires_grad_(),
        "out.bias": torch.zeros(1, dtype=dtype, requires_grad=True),
    }


def _loss(p, batch):
    x, y = batch
    h = torch.tanh(x @ p["l1.weight"].T + p["l1.bias"])
    return ((h @ p["out.weight"].T + p["out.bias"]).squeeze(-1) - y).pow(2).mean()


def _task(seed, dtype=torch.float32, n=16):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, generator=g, dtype=dtype)
    x = torch.randn(2 * n, 3, generator=g, dtype=dtype)
    y = torch.sin(x @ w)
    return (x[:n], y[:n]), (x[n:], y[n:])


@pytest.mark.parametrize("create_graph", [False, True])
def test_learned_step_sizes_receive_gradients_and_move(create_graph):
    torch.manual_seed(0)
    params = _mlp()
    sched = LearnedSchedule(params, steps=3, init_lr=0.1)
    before = {g: list(v) for g, v in sched.table().items()}
    opt = torch.optim.Adam([*params.values(), *sched.parameters()], lr=1e-2)
    for it in range(5):
        support, query = _task(it)
        adapted, _ = inner_loop(_loss, params, [support], 3, sched, create_graph=create_graph)
        opt.zero_grad()
        _loss(adapted, query).backward()
        if it == 0:
            for key, a in sched.alphas.items():
                assert a.grad is not None and bool((a.grad != 0).all()), key
        opt.step()
        sched.project_()
    after = sched.table()
    assert set(after) == set(params)
    for g in after:
        assert all(abs(a - b) > 1e-4 for a, b in zip(after[g], before[g])), g


def test_step_size_gradient_matches_finite_differences():
    params = {k: v.detach() for k, v in _mlp(torch.float64).items()}
    sched = LearnedSchedule(params, steps=2, init_lr=0.2).double()
    support, query = _task(3, torch.float64)

    def objective():
        adapted, _ = inner_loop(_loss, params, [support], 2, sched, create_graph=True)
        return _loss(adapted, query)

    key = "out__weight"
    (grad,) = torch.autograd.grad(objective(), [sched.alphas[key]])
    h = 1e-6
    for t in range(2):
        with torch.no_grad():
            sched.alphas[key][t] += h
        up = float(objective().detach())
        with torch.no_grad():
            sched.alphas[key][t] -= 2 * h
        down = float(objective().detach())
        with torch.no_grad():
            sched.alphas[key][t] += h
        assert abs((up - down) / (2 * h) - float(grad[t])) < 1e-6


def test_schedule_shorter_than_inner_loop_is_refused():
    params = _mlp()
    sched = LearnedSchedule(params, steps=2, init_lr=0.1)
    support, _ = _task(0)
    with pytest.raises(MdlibError, match="covers 2 inner step"):
        inner_loop(_loss, params, [support], 3, sched)
    with pytest.raises(MdlibError, match="steps >= 5"):
        sched.check_steps(5)
    sched.check_steps(2)


def test_bad_construction_is_refused():
    with pytest.raises(MdlibError):
        LearnedSchedule(_mlp(), steps=0, init_lr=0.1)
    with pytest.raises(MdlibError):
        LearnedSchedule(_mlp(), steps=2, init_lr=-0.1)
    with pytest.raises(MdlibError):
        LearnedSchedule(_mlp(), steps=2, init_lr=float("nan"))
    with pytest.raises(MdlibError, match="no step size"):
        LearnedSchedule(_mlp(), steps=2, init_lr=0.1)(0, "missing.weight")


def test_negative_step_sizes_are_clamped_and_nonfinite_ones_stop():
    sched = LearnedSchedule(_mlp(), steps=2, init_lr=0.1, min_lr=0.0)
    with torch.no_grad():
        sched.alphas["l1__weight"][1] = -0.3
    sched.project_()
    assert sched.table()["l1.weight"] == [pytest.approx(0.1), 0.0]
    with torch.no_grad():
        sched.alphas["out__bias"][0] = float("nan")
    with pytest.raises(MdlibError, match="'out.bias' at inner step 1"):
        sched.project_()


def test_per_layer_groups_share_one_step_size():
    sched = LearnedSchedule(_mlp(), steps=1, init_lr=0.1, group=per_layer)
    assert sched.groups == ["l1", "out"]
    assert sched(0, "l1.weight") is not None
    assert sched(0, "l1.weight") is sched(0, "l1.bias") or float(sched(0, "l1.weight").detach()) == float(sched(0, "l1.bias").detach())


def test_multi_step_loss_and_learned_step_weights():
    params = _mlp(torch.float64)
    sched = LearnedSchedule(params, steps=3, init_lr=0.1).double()
    support, query = _task(1, torch.float64)
    _, val = _task(2, torch.float64)
    traj = []
    adapted, _ = inner_loop(_loss, params, [support], 3, sched, on_step=lambda t, p: traj.append(p))
    assert len(traj) == 3
    w = sched.step_weights()
    assert torch.allclose(w, torch.full((3,), 1 / 3, dtype=torch.float64))
    total, per_step = multi_step_query_loss(_loss, traj, query, w)
    assert torch.allclose(total, per_step.mean())
    last, _ = multi_step_query_loss(_loss, traj, query)
    assert torch.allclose(last, per_step[-1])
    with pytest.raises(MdlibError):
        multi_step_query_loss(_loss, traj, query, w[:2])
    val_loss = _loss(adapted, val)
    g = sched.step_weight_grad(per_step, val_loss, list(params.values()))
    # the look-ahead gradient is minus the dot product of the two gradients
    gv = torch.autograd.grad(val_loss, list(params.values()), retain_graph=True)
    g0 = torch.autograd.grad(per_step[0], list(params.values()), retain_graph=True)
    assert float(g[0]) == pytest.approx(-sum(float((a * b).sum()) for a, b in zip(g0, gv)))
    grad = sched.step_logits.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    assert float(grad.sum()) == pytest.approx(0.0, abs=1e-12)  # softmax: shifts cancel


def test_lslr_learner_meta_trains_through_the_outer_loop():
    from mdlib.meta.learners import TaskBatches, make_learner
    from mdlib.meta.metatrain import meta_train_loop

    params = _mlp()
    learner = make_learner("lslr", params, 2, 0.05)
    assert learner.name == "lslr" and set(learner.meta_parameters()) >= {"lslr.step_logits"}
    before = learner.schedule.table()

    def sample(step):
        return [TaskBatches(f"t{i}", [s], [q]) for i, (s, q) in enumerate(_task(10 * step + i) for i in range(2))]

    hist = meta_train_loop(learner, _loss, params, sample, meta_steps=4, outer_lr=1e-2)
    assert len(hist.steps) == 4 and all(r["lr_clamped"] >= 0 for r in hist.steps)
    after = learner.schedule.table()
    assert any(abs(a - b) > 1e-4 for g in after for a, b in zip(after[g], before[g]))
    assert float(learner.schedule.step_logits.detach().abs().sum()) > 0  # step weights moved
    state = learner.state_dict()
    other = make_learner("lslr", _mlp(), 2, 0.05)
    other.load_state_dict(state)
    assert other.schedule.table() == after
    with pytest.raises(MdlibError, match="covers 2"):
        learner.adapt(_loss, params, [_task(0)[0]], steps=3)
