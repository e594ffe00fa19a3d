"""Learning to reweight examples / source tasks, and response corruption."""

import pytest
import torch

from mdlib.data.corruption import check_rate, corrupt_responses
from mdlib.errors import MdlibError
from mdlib.meta.reweight import (WeightTracker, alignment_grads, lookahead_grads, reweight_step,
                                 weights_from_grads)


def _mlp(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"w1": torch.randn(5, 2, generator=g, dtype=dtype) * 0.7, "b1": torch.zeros(5, dtype=dtype),
            "w2": torch.randn(5, generator=g, dtype=dtype) * 0.7}


def _pred(p, x):
    return torch.tanh(x @ p["w1"].T + p["b1"]) @ p["w2"]


def _data(dtype, seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=dtype)
    return x, torch.sin(x[:, 0]) + 0.5 * x[:, 1]


def test_reweighting_gradient_matches_finite_differences_float64():
    p = _mlp(torch.float64)
    x, y = _data(torch.float64, 1, 6)
    xv, yv = _data(torch.float64, 2, 8)
    lr = 0.3

    def terms(q):
        return (_pred(q, x) - y) ** 2

    def val(q):
        return ((_pred(q, xv) - yv) ** 2).mean()

    g = lookahead_grads(terms, p, val, lr)
    assert g.shape == (6,)

    def val_after(eps):  # one explicit SGD step on sum eps_i l_i, then the clean loss
        q = {k: v.clone().requires_grad_() for k, v in p.items()}
        grads = torch.autograd.grad((eps * terms(q)).sum(), list(q.values()))
        return float(val({k: v.detach() - lr * gk for (k, v), gk in zip(q.items(), grads)}))

    h = 1e-6
    for i in range(6):
        e = torch.zeros(6, dtype=torch.float64)
        e[i] = h
        fd = (val_after(e) - val_after(-e)) / (2 * h)
        assert fd == pytest.approx(float(g[i]), rel=1e-5, abs=1e-9)
    # the dot-product form gives the same numbers
    q = {k: v.clone().requires_grad_() for k, v in p.items()}
    a = alignment_grads(terms(q), val(q), list(q.values()), lr=lr)
    assert torch.allclose(a, g, rtol=1e-9, atol=1e-12)


def test_weights_from_grads():
    w = weights_from_grads(torch.tensor([-1.0, 0.5, -3.0, 0.0]))
    assert torch.allclose(w, torch.tensor([0.25, 0.0, 0.75, 0.0]))
    assert float(weights_from_grads(torch.tensor([1.0, 2.0])).sum()) == 0.0
    with pytest.raises(MdlibError):
        weights_from_grads(torch.tensor([float("nan"), 1.0]))
    with pytest.raises(MdlibError):
        lookahead_grads(lambda q: q["w"].sum(), {"w": torch.ones(2)}, lambda q: q["w"].sum(), 0.1)
    with pytest.raises(MdlibError):
        lookahead_grads(lambda q: (q["w"] ** 2), {"w": torch.ones(2)}, lambda q: q["w"].sum(), 0.0)


def _noisy_regression(seed, n=200, bad_frac=0.4):
    g = torch.Generator().manual_seed(seed)
    w_true = torch.tensor([2.0, -1.0, 0.5])
    x = torch.randn(n, 3, generator=g)
    y = x @ w_true + 0.5 * torch.randn(n, generator=g)  # clean labels carry mild noise
    bad = torch.rand(n, generator=g) < bad_frac
    y = torch.where(bad, -3.0 * y + 2.0 * torch.randn(n, generator=g), y)  # corrupted labels
    xv = torch.randn(10, 3, generator=g)
    return x, y, bad, xv, xv @ w_true + 0.5 * torch.randn(10, generator=g), w_true


@pytest.mark.parametrize("seed", [0, 1])
def test_corrupted_examples_get_lower_mean_weight(seed):
    x, y, bad, xv, yv, w_true = _noisy_regression(seed)
    params = {"w": torch.zeros(3, requires_grad=True)}
    opt = torch.optim.SGD(params.values(), lr=0.02)
    tracker = WeightTracker()
    g = torch.Generator().manual_seed(seed + 100)
    for _ in range(60):
        idx = torch.randperm(len(x), generator=g)[:20]
        w, _ = reweight_step(lambda q: (x[idx] @ q["w"] - y[idx]) ** 2, params,
                             lambda q: ((xv @ q["w"] - yv) ** 2).mean(), opt, lookahead_lr=0.1)
        tracker.add(w, ["bad" if b else "clean" for b in bad[idx].tolist()])
    mean = tracker.mean()
    assert mean["bad"] < 0.6 * mean["clean"]
    assert sum(tracker.share().values()) == pytest.approx(1.0)
    # and the learned weights recover the clean solution; uniform weights do not
    uni = {"w": torch.zeros(3, requires_grad=True)}
    opt_u = torch.optim.SGD(uni.values(), lr=0.02)
    for _ in range(60):
        reweight_step(lambda q: (x @ q["w"] - y) ** 2, uni, None, opt_u, lookahead_lr=0.1, uniform=True)
    err_learned = float((params["w"].detach() - w_true).norm())
    err_uniform = float((uni["w"].detach() - w_true).norm())
    assert err_learned < 0.5 * err_uniform


def test_source_task_weights_favour_the_related_task():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    ws = {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([-1.0, 0.5]), "c": torch.tensor([0.0, -2.0])}
    tasks = {k: (lambda x: (x, x @ w))(torch.randn(30, 2, generator=g)) for k, w in ws.items()}
    xv = torch.randn(5, 2, generator=g)
    yv = xv @ (ws["a"] + 0.1)
    params = {"w": torch.zeros(2, requires_grad=True)}
    opt = torch.optim.SGD(params.values(), lr=0.1)
    tracker = WeightTracker()
    names = sorted(tasks)
    for _ in range(40):
        w, _ = reweight_step(
            lambda q: torch.stack([((tasks[k][0] @ q["w"] - tasks[k][1]) ** 2).mean() for k in names]),
            params, lambda q: ((xv @ q["w"] - yv) ** 2).mean(), opt, lookahead_lr=0.1)
        tracker.add(w, names)
    share = tracker.share()
    assert max(share, key=share.get) == "a"
    assert share["a"] > 0.5


def test_weight_tracker_refuses_mismatch():
    with pytest.raises(MdlibError):
        WeightTracker().add(torch.ones(3), ["a"])


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "lots", float("nan")])
def test_corruption_rate_outside_unit_interval_is_refused(rate):
    with pytest.raises(MdlibError, match=r"\[0, 1\)"):
        check_rate(rate)
    with pytest.raises(MdlibError):
        corrupt_responses([["hi"]], rate, 0, foreign=[["x"]], mode="domain")


def test_corrupt_responses_values_and_domain():
    values = {"price": ["cheap", "moderate", "expensive"], "parking": ["street", "valet", "no parking"]}
    responses = [["it", "is", "cheap", "with", "no", "parking"], ["it", "is", "expensive"]] * 10 + [["hello"]] * 5
    foreign = [["the", "bus", "arrives", "in", "5", "minutes"], ["it", "is", "sunny"]]
    new, flags = corrupt_responses(responses, 0.4, seed=7, values=values, foreign=foreign, mode="mix")
    assert sum(flags) == round(0.4 * 25)
    for old, nw, bad in zip(responses, new, flags):
        if not bad:
            assert nw == old
        elif old == ["hello"]:
            assert nw in foreign
        else:
            assert nw != old and nw[:2] == ["it", "is"]
            assert "cheap" not in nw[:3] or old[2] != "cheap"
    # "values" only corrupts responses that hold a value; same seed -> same result
    new_v, flags_v = corrupt_responses(responses, 0.5, seed=1, values=values, mode="values")
    assert sum(flags_v) == 10 and not any(f for r, f in zip(responses, flags_v) if r == ["hello"])
    assert corrupt_responses(responses, 0.5, seed=1, values=values, mode="values") == (new_v, flags_v)
    new_d, flags_d = corrupt_responses(responses, 0.2, seed=1, foreign=foreign, mode="domain")
    assert sum(flags_d) == 5 and all(n in foreign for n, f in zip(new_d, flags_d) if f)
    same, none = corrupt_responses(responses, 0.0, seed=1, values=values, foreign=foreign)
    assert same == responses and not any(none)
    with pytest.raises(MdlibError, match="mode"):
        corrupt_responses(responses, 0.2, 0, values=values, mode="typo")
    with pytest.raises(MdlibError, match="foreign"):
        corrupt_responses(responses, 0.2, 0, mode="domain")


def test_cli_refuses_a_bad_corruption_rate(tmp_path, capsys):
    from mdlib.cli import main

    assert main(["train", "--method", "reweight", "--corrupt", "1.5", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: corruption rate must be in [0, 1)") and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_train_reweighted_on_a_tiny_generator():
    from mdlib.data.pairs import Pair
    from mdlib.data.text import Vocab
    from mdlib.meta.reweight import train_reweighted
    from mdlib.models.seq2seq import build_model

    good = [Pair(context=("<usr>", "cheap", "food"), response=("it", "is", "cheap"), domain="restaurant"),
            Pair(context=("<usr>", "bus", "at", "5"), response=("the", "bus", "leaves", "at", "5"), domain="bus")]
    bad = [Pair(context=("<usr>", "cheap", "food"), response=("sunny", "today"), domain="restaurant")]
    pairs = good * 4 + bad * 4
    vocab = Vocab.build([list(p.context) + list(p.response) for p in pairs])
    torch.manual_seed(0)
    model = build_model(len(vocab), emb=8, hidden=8)
    out = train_reweighted(model, pairs, good, vocab, steps=3, batch_size=8,
                           labels=["clean"] * 8 + ["corrupted"] * 4, use_acts=False)
    assert set(out["mean_weight"]) == {"clean", "corrupted"} and len(out["losses"]) == 3
    by_task = train_reweighted(model, pairs, good, vocab, steps=2, batch_size=4, by_task=True, use_acts=False)
    assert set(by_task["weight_share"]) == {"bus", "restaurant"} and len(by_task["history"]) == 2
    with pytest.raises(MdlibError):
        train_reweighted(model, pairs, good, vocab, steps=0)


def test_corrupt_pairs_per_domain():
    from mdlib.data.corruption import corrupt_pairs, domain_values
    from mdlib.data.pairs import Pair

    price = domain_values("restaurant")["price"]
    pairs = [Pair(context=("<usr>", "hi"), response=tuple(f"it is {price[i % len(price)]} here".split()),
                  domain="restaurant", dialogue_id=str(i)) for i in range(10)]
    pairs += [Pair(context=("<usr>", "hi"), response=("it", "will", "be", "sunny"), domain="weather",
                   dialogue_id=f"w{i}") for i in range(10)]
    new, flags = corrupt_pairs(pairs, 0.3, seed=0, mode="mix")
    assert sum(flags) == 6
    for old, nw, bad in zip(pairs, new, flags):
        assert nw.context == old.context and nw.dialogue_id == old.dialogue_id
        assert (nw.response != old.response) == bad and isinstance(nw.response, tuple)
    new_d, flags_d = corrupt_pairs(pairs, 0.2, seed=0, mode="domain")
    assert all(n.response == ("it", "will", "be", "sunny") for n, o, f in zip(new_d, pairs, flags_d)
               if f and o.domain == "restaurant")
    with pytest.raises(MdlibError):
        corrupt_pairs(pairs, 1.0, seed=0)
