"""The task-batched meta-step (mdlib.meta.batched) against the per-task loop, in float64."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from torch.func import functional_call

from mdlib.data.pairs import Pair
from mdlib.data.text import Vocab
from mdlib.errors import MdlibError
from mdlib.meta.batched import stack_batches, unsupported
from mdlib.meta.learners import TaskBatches, make_learner, meta_gradient
from mdlib.models import build_model, collate
from mdlib.models.batching import pad_batch
from mdlib.models.recurrence import unrolled

DT = torch.float64
WORDS = [f"w{i}" for i in range(30)]
VOCAB = Vocab.build([WORDS[:20]])  # w20..w29 and zz* are out of vocabulary: copy has work to do


def _pairs(n: int, rng: random.Random, src_max: int, tgt_max: int) -> list[Pair]:
    out = []
    for _ in range(n):
        ctx = ["<usr>"] + [rng.choice(WORDS + [f"zz{rng.randint(0, 5)}"]) for _ in range(rng.randint(1, src_max))]
        resp = [rng.choice(WORDS + ctx[1:]) for _ in range(rng.randint(1, tgt_max))]
        out.append(Pair(context=tuple(ctx), response=tuple(resp), acts=(), domain="d"))
    return out


def _problem(copy: bool = True, seed: int = 0):
    """A float64 generator and 4 tasks of different batch sizes and lengths; the last task
    has two support and two query batches (cyclic support, mean over query batches)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = build_model(len(VOCAB), emb=8, hidden=12, copy=copy).to(DT)
    tasks = []
    for i, (n_sup, n_qry, src_max, tgt_max) in enumerate([(2, 3, 4, 3), (5, 2, 9, 7), (3, 4, 6, 2), (1, 1, 11, 5)]):
        sup = [collate(_pairs(n_sup, rng, src_max, tgt_max), VOCAB)]
        qry = [collate(_pairs(n_qry, rng, src_max, tgt_max), VOCAB)]
        if i == 3:
            sup.append(collate(_pairs(4, rng, 3, 2), VOCAB))
            qry.append(collate(_pairs(2, rng, 5, 4), VOCAB))
        tasks.append(TaskBatches(f"task{i}", sup, qry))
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    return model, params, tasks


def _loss_fn(model):
    return lambda p, b: functional_call(model, p, (b,))


@pytest.mark.parametrize("copy", [True, False])
def test_unrolled_gru_gives_the_same_loss_and_gradients(copy):
    model, _, tasks = _problem(copy)
    batch = tasks[1].support[0]
    params = list(model.parameters())
    ref = model(batch)
    g_ref = torch.autograd.grad(ref, params)
    with unrolled():
        mine = model(batch)
        g_mine = torch.autograd.grad(mine, params)
    assert abs(float(ref.detach() - mine.detach())) < 1e-10
    for a, b in zip(g_ref, g_mine):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_padding_with_masked_positions_changes_no_loss():
    model, _, tasks = _problem()
    batch = tasks[0].support[0]
    padded = pad_batch(batch, len(batch) + 3, batch.src.shape[1] + 4, batch.tgt_in.shape[1] + 2)
    with unrolled():
        assert abs(float(model(batch).detach() - model(padded).detach())) < 1e-12
    with pytest.raises(MdlibError, match="cannot pad"):
        pad_batch(batch, len(batch) - 1, batch.src.shape[1], batch.tgt_in.shape[1])


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile", "metasgd", "anil"])
def test_batched_meta_gradient_equals_the_loop(method):
    model, params, tasks = _problem()
    learner = make_learner(method, params, 2, 0.3, head=model.head_names())
    g_loop, s_loop = meta_gradient(learner, _loss_fn(model), params, tasks, engine="loop")
    g_batch, s_batch = meta_gradient(learner, _loss_fn(model), params, tasks, engine="batched")
    assert set(g_loop) == set(g_batch) == set(params) | set(learner.meta_parameters())
    for n in g_loop:
        torch.testing.assert_close(g_batch[n], g_loop[n], rtol=0, atol=1e-8, msg=n)
    assert any(float(g.abs().max()) > 1e-3 for g in g_loop.values())  # not trivially zero
    assert [s["task"] for s in s_batch] == [s["task"] for s in s_loop]
    for a, b in zip(s_loop, s_batch):
        assert a["support_loss"] == pytest.approx(b["support_loss"], abs=1e-10)
        assert a["query_loss"] == pytest.approx(b["query_loss"], abs=1e-10)


def test_second_order_terms_are_there_in_the_batched_engine():
    model, params, tasks = _problem()
    maml, _ = meta_gradient(make_learner("maml", params, 1, 0.3), _loss_fn(model), params, tasks, engine="batched")
    fo, _ = meta_gradient(make_learner("fomaml", params, 1, 0.3), _loss_fn(model), params, tasks, engine="batched")
    assert max(float((maml[n] - fo[n]).abs().max()) for n in maml) > 1e-6


def _mlp_problem():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).to(DT)
    params = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}

    def loss_fn(p, b):
        return ((functional_call(net, p, (b[0],)) - b[1]) ** 2).mean()

    def task(name, n):
        return TaskBatches(name, [(torch.randn(n, 2, dtype=DT), torch.randn(n, 1, dtype=DT))],
                           [(torch.randn(n, 2, dtype=DT), torch.randn(n, 1, dtype=DT))])

    return params, loss_fn, task


def test_tensor_batches_are_stacked_and_unequal_shapes_refused():
    params, loss_fn, task = _mlp_problem()
    tasks = [task(f"t{i}", 5) for i in range(3)]
    learner = make_learner("maml", params, 2, 0.1)
    g_loop, _ = meta_gradient(learner, loss_fn, params, tasks)
    g_batch, _ = meta_gradient(learner, loss_fn, params, tasks, engine="batched")
    for n in g_loop:
        torch.testing.assert_close(g_batch[n], g_loop[n], rtol=0, atol=1e-10)
    with pytest.raises(MdlibError, match="differ in shape"):
        meta_gradient(learner, loss_fn, params, tasks + [task("odd", 6)], engine="batched")
    with pytest.raises(MdlibError, match="cannot stack"):
        stack_batches([{"x": 1}, {"x": 2}])


def test_bad_engine_nan_task_and_loop_only_learners():
    params, loss_fn, task = _mlp_problem()
    learner = make_learner("fomaml", params, 1, 0.3)
    tasks = [task("bus", 5), task("weather", 5)]
    with pytest.raises(MdlibError, match="unknown engine 'fast'"):
        meta_gradient(learner, loss_fn, params, tasks, engine="fast")
    x, y = tasks[1].query[0]
    bad = TaskBatches("weather", tasks[1].support, [(x, y * float("nan"))])
    with pytest.raises(MdlibError, match="task 'weather'"):
        meta_gradient(learner, loss_fn, params, [tasks[0], bad], engine="batched")
    lslr = make_learner("lslr", params, 1, 0.3)
    assert "lslr" in unsupported(lslr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g_batch, _ = meta_gradient(lslr, loss_fn, params, tasks, engine="batched")
    assert any("using the per-task loop" in str(w.message) for w in caught)
    g_loop, _ = meta_gradient(lslr, loss_fn, params, tasks)
    for n in g_loop:
        torch.testing.assert_close(g_batch[n], g_loop[n], rtol=0, atol=1e-12)
