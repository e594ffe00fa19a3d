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
            for key, a in sched.log_alphas.items():
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
    (grad,) = torch.autograd.grad(objective(), [sched.log_alphas[key]])
    h = 1e-6
    for t in range(2):
        with torch.no_grad():
            sched.log_alphas[key][t] += h
        up = float(objective().detach())
        with torch.no_grad():
            sched.log_alphas[key][t] -= 2 * h
        down = float(objective().detach())
        with torch.no_grad():
            sched.log_alphas[key][t] += h
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


def test_step_sizes_stay_positive_are_floored_and_nonfinite_ones_stop():
    sched = LearnedSchedule(_mlp(), steps=2, init_lr=0.1, min_lr=0.0)
    with torch.no_grad():  # a huge push downwards: log space keeps the step size positive
        sched.log_alphas["l1__weight"][1] = -10.0
    sched.project_()
    table = sched.table()["l1.weight"]
    assert table[0] == pytest.approx(0.1) and 0.0 <= table[1] < 1e-100
    floored = LearnedSchedule(_mlp(), steps=2, init_lr=0.1, min_lr=0.05)
    with torch.no_grad():
        floored.log_alphas["l1__weight"][1] = -10.0
    floored.project_()
    assert floored.table()["l1.weight"] == [pytest.approx(0.1), pytest.approx(0.05)]
    with torch.no_grad():
        sched.log_alphas["out__bias"][0] = float("nan")
    with pytest.raises(MdlibError, match="'out.bias' at inner step 1"):
        sched.project_()
    with pytest.raises(MdlibError, match="rate"):
        LearnedSchedule(_mlp(), steps=2, init_lr=0.1, rate=0.0)


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


def _regression_tasks(step, n_tasks=4, n=32):
    """Noise-free linear regression tasks whose best one-step step size is far above 0.01:
    for y = x w with x ~ N(0, 1) one SGD step of size 0.5 halves the error, 0.01 barely moves."""
    from mdlib.meta.learners import TaskBatches

    g = torch.Generator().manual_seed(1000 + step)
    tasks = []
    for i in range(n_tasks):
        w = torch.randn(4, generator=g)
        x = torch.randn(2 * n, 4, generator=g)
        y = x @ w
        tasks.append(TaskBatches(f"t{i}", [(x[:n], y[:n])], [(x[n:], y[n:])]))
    return tasks


def _linear_loss(p, batch):
    x, y = batch
    return 0.5 * (x @ p["w"] - y).pow(2).mean()


@pytest.mark.parametrize("rate, moves", [(30.0, True), (1e-3, False)])
def test_lslr_schedule_moves_towards_a_better_step_size(rate, moves):
    """Started at 0.01 where the best one-step size is ~0.5, 60 outer Adam steps of 1e-3 move
    the learned step size by a factor > 3 and lower the query loss (rate 30); a schedule
    stored as itself (a tiny rate: the old parameterisation moved by <= 60 x 1e-3) cannot."""
    from mdlib.meta.learners import make_learner
    from mdlib.meta.metatrain import meta_train_loop, validation_loss

    params = {"w": torch.zeros(4, requires_grad=True)}
    learner = make_learner("lslr", params, 1, 0.01, msl=False, rate=rate)
    valid = _regression_tasks(-1, n_tasks=8)
    before = validation_loss(learner, _linear_loss, {"w": torch.zeros(4)}, valid)
    # the initialisation can move by at most 60 x 1e-3 per entry, and tasks w ~ N(0, 1) have
    # no better shared start than 0: only the schedule can lower the validation loss much
    meta_train_loop(learner, _linear_loss, params, _regression_tasks, meta_steps=60, outer_lr=1e-3, clip=None)
    alpha = learner.schedule.table()["w"][0]
    after = validation_loss(learner, _linear_loss, {"w": params["w"].detach()}, valid)
    if moves:
        assert alpha > 0.03 and after < 0.9 * before, (alpha, before, after)
    else:
        assert abs(alpha - 0.01) < 1e-3 and after > 0.95 * before, (alpha, before, after)
