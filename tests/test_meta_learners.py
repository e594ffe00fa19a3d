"""Behaviour of the meta-learners and the meta-training loop (on the sine toy; fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdlib.errors import MdlibError
from mdlib.meta.inner import inner_loop
from mdlib.meta.learners import ANIL, MAML, MetaSGD, TaskBatches, make_learner, meta_gradient
from mdlib.meta.sine import SineMLP, sample_tasks, sine_episodes, sine_loss_fn


def _setup(seed=0):
    torch.manual_seed(seed)
    model = SineMLP(hidden=16)
    return model, sine_loss_fn(model), dict(model.named_parameters())


def test_inner_loop_is_functional_and_reports_losses():
    model, loss_fn, params = _setup()
    before = {n: p.detach().clone() for n, p in params.items()}
    task = sine_episodes(1, 10, 10, torch.Generator().manual_seed(0))[0]
    seen = []
    adapted, losses = inner_loop(loss_fn, params, task.support, 5, 0.01, on_step=lambda t, p: seen.append(t))
    assert seen == [1, 2, 3, 4, 5] and len(losses) == 5
    assert losses[-1] < losses[0]  # descent on the support set
    for n, p in params.items():  # nothing updated in place
        torch.testing.assert_close(p.detach(), before[n])
        assert not torch.equal(adapted[n].detach(), p.detach())
    same, none = inner_loop(loss_fn, params, task.support, 0, 0.01)
    assert none == [] and all(same[n] is params[n] for n in params)


def test_inner_loop_plain_tensors_and_callable_lr_and_batches():
    model, loss_fn, params = _setup(1)
    plain = {n: p.detach() for n, p in params.items()}
    task = sine_episodes(1, 10, 10, torch.Generator().manual_seed(1))[0]
    calls = []

    def lr(step, name):
        calls.append((step, name))
        return 0.0 if name.startswith("net.0") else 0.01

    adapted, _ = inner_loop(loss_fn, plain, lambda t: task.support[0], 2, lr)
    assert {s for s, _ in calls} == {0, 1}
    torch.testing.assert_close(adapted["net.0.weight"].detach(), plain["net.0.weight"])
    assert not torch.equal(adapted["net.4.weight"].detach(), plain["net.4.weight"])


def test_anil_adapts_only_the_head():
    model, loss_fn, params = _setup(2)
    task = sine_episodes(1, 10, 10, torch.Generator().manual_seed(2))[0]
    learner = make_learner("anil", params, 3, 0.01, head=["net.4.weight", "net.4.bias"])
    assert isinstance(learner, ANIL)
    adapted, _ = learner.adapt(loss_fn, params, task.support)
    for n in params:
        assert (adapted[n] is params[n]) == (not n.startswith("net.4"))
    grads, _ = learner.task_gradient(loss_fn, params, task)
    assert all(g.abs().sum() > 0 for g in grads.values())  # the body still gets a meta-gradient


def test_metasgd_step_sizes_learn_and_are_projected():
    model, loss_fn, params = _setup(3)
    learner = MetaSGD(params, 1, 0.01, lr_min=0.0, lr_max=0.05)
    grads, _ = meta_gradient(learner, loss_fn, params, sine_episodes(4, 10, 10, torch.Generator().manual_seed(3)))
    assert set(grads) == set(params) | {f"lr.{n}" for n in params}
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith("lr."))
    with torch.no_grad():
        learner.lrs["net.0.weight"][0, 0] = -1.0
        learner.lrs["net.0.bias"][0] = 7.0
    assert learner.post_step()["lr_clipped"] == 2
    assert float(learner.lrs["net.0.weight"][0, 0].detach()) == 0.0
    assert float(learner.lrs["net.0.bias"][0].detach()) == pytest.approx(0.05)
    with torch.no_grad():
        learner.lrs["net.0.bias"][1] = float("nan")
    with pytest.raises(MdlibError, match="NaN"):
        learner.post_step()


def test_learner_state_round_trip():
    model, loss_fn, params = _setup(4)
    a = MetaSGD(params, 2, 0.03)
    with torch.no_grad():
        a.lrs["net.2.weight"].mul_(2)
    b = MetaSGD(params, 2, 0.03)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.lrs["net.2.weight"], a.lrs["net.2.weight"])
    other = MetaSGD(SineMLP(hidden=8).state_dict(), 2, 0.03)
    with pytest.raises(MdlibError, match="does not match"):
        other.load_state_dict(a.state_dict())


def test_bad_learner_arguments():
    _, _, params = _setup()
    with pytest.raises(MdlibError, match="inner_steps"):
        MAML(-1, 0.1)
    with pytest.raises(MdlibError, match="unknown meta-learning method"):
        make_learner("mamll", params, 1, 0.1)
    with pytest.raises(MdlibError, match="no tasks"):
        meta_gradient(MAML(1, 0.1), lambda p, b: p["x"].sum(), {"x": torch.zeros(1)}, [])
    with pytest.raises(MdlibError, match="lr_min"):
        MetaSGD(params, 1, 0.1, lr_min=1.0, lr_max=0.5)


def test_sine_family_ranges():
    tasks = sample_tasks(200, torch.Generator().manual_seed(0))
    assert all(0.1 <= t.amplitude <= 5.0 and 0.0 <= t.phase <= 3.1416 for t in tasks)
    x, y = tasks[0].sample(50, torch.Generator().manual_seed(1))
    assert x.shape == (50, 1) and float(x.min()) >= -5 and float(x.max()) <= 5
    torch.testing.assert_close(y, tasks[0].amplitude * torch.sin(x - tasks[0].phase))


def test_meta_train_loop_improves_adaptation_on_sines():
    from mdlib.meta.metatrain import meta_train_loop, validation_loss

    torch.manual_seed(0)
    model = SineMLP(hidden=20)
    loss_fn = sine_loss_fn(model)
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(0)
    val = sine_episodes(8, 10, 20, torch.Generator().manual_seed(99))
    learner = MAML(1, 0.01)
    before = validation_loss(learner, loss_fn, params, val)
    hist = meta_train_loop(learner, loss_fn, params, lambda s: sine_episodes(4, 10, 10, gen), meta_steps=150,
                           outer_lr=3e-3, validate=lambda p: validation_loss(learner, loss_fn, p, val),
                           eval_every=50)
    after = validation_loss(learner, loss_fn, params, val)
    assert len(hist.steps) == 150 and [v["step"] for v in hist.valid] == [0, 50, 100, 150]
    assert after < 0.8 * before
    assert after == pytest.approx(min(v["valid_loss"] for v in hist.valid))  # best kept


def test_meta_train_loop_stops_on_nan_naming_step_and_task():
    from mdlib.meta.metatrain import meta_train_loop

    model, loss_fn, params = _setup(5)
    gen = torch.Generator().manual_seed(0)

    def sample(step):
        tasks = sine_episodes(2, 5, 5, gen)
        if step == 3:
            x, y = tasks[1].query[0]
            tasks[1] = TaskBatches("bus", tasks[1].support, [(x, y * float("nan"))])
        return tasks

    with pytest.raises(MdlibError, match=r"meta-step 3: .*'bus'"):
        meta_train_loop(MAML(1, 0.01), loss_fn, params, sample, meta_steps=5)
    with pytest.raises(MdlibError, match="meta_steps"):
        meta_train_loop(MAML(1, 0.01), loss_fn, params, sample, meta_steps=-1)


def test_check_meta_tasks_refuses_leakage_and_empty_meta_batches():
    from mdlib.meta.metatrain import check_meta_tasks

    check_meta_tasks(["bus", "restaurant", "weather"], ["movie"], 3)
    check_meta_tasks(["bus", "restaurant", "weather"], ["movie"], 8)  # drawn with replacement
    with pytest.raises(MdlibError, match="leaks"):
        check_meta_tasks(["bus", "movie"], ["movie", "rest_pitt"], 2)
    with pytest.raises(MdlibError, match="--meta-batch: expected a number >= 1"):
        check_meta_tasks(["bus", "restaurant", "weather"], ["movie"], 0)


def test_episode_sampler_draws_with_replacement_beyond_the_task_count():
    from mdlib.data.splits import EpisodeSampler, load_split

    tasks = {s: load_split(s, "train")[:6] for s in ("bus", "restaurant")}
    small = EpisodeSampler(tasks, 2, 2, seed=0).sample(2)
    assert sorted(e.task for e in small) == ["bus", "restaurant"]
    big = EpisodeSampler(tasks, 2, 2, seed=0).sample(7)
    assert len(big) == 7 and {e.task for e in big} == {"bus", "restaurant"}
    same = [e for e in big if e.task == big[0].task]
    # a task drawn twice comes with fresh episodes (its own dialogues)
    assert len(same) >= 2 and len({tuple(d["id"] for d in e.support) for e in same}) > 1


def test_meta_train_on_dialogue_domains_and_bad_input():
    from mdlib import evaluation as ev
    from mdlib.data.splits import load_split
    from mdlib.meta.metatrain import meta_train
    from mdlib.profiles import get_profile

    prof = get_profile("smoke")
    sources = ["bus", "restaurant", "weather"]
    tasks = {s: load_split(s, "train")[:6] for s in sources}
    valid = {s: load_split(s, "valid")[:2] for s in sources}
    vocab = ev.build_vocab(ev.source_pairs(prof, sources, "train"), prof)
    model = ev.new_model(vocab, prof, 0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    learner, hist = meta_train("metasgd", model, tasks, vocab, prof, 0, valid=valid, targets=["movie"])
    assert len(hist.steps) == prof.meta_steps and hist.valid[0]["step"] == 0
    assert all(np.isfinite(r["query_loss"]) for r in hist.steps)
    if hist.best_step > 0:  # the kept parameters moved
        assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters())
    assert set(learner.meta_parameters()) == {f"lr.{n}" for n in before}
    with pytest.raises(MdlibError, match="leaks"):
        meta_train("maml", model, {**tasks, "movie": load_split("movie", "train")[:6]}, vocab, prof, 0,
                   targets=["movie"])
    with pytest.raises(MdlibError, match="--meta-batch"):
        meta_train("maml", model, tasks, vocab, prof.replace(meta_batch=0), 0)
    with pytest.raises(MdlibError, match="inner_steps"):
        meta_train("maml", model, tasks, vocab, prof.replace(inner_steps=-1), 0)
