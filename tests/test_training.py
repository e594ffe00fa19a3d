"""Training, checkpoints, the run cache and profiles (mdlib.training, mdlib.checkpoint, mdlib.profiles)."""

import json
import math
import multiprocessing

import pytest
import torch

from mdlib.checkpoint import cached, config_key, load_checkpoint, save_checkpoint, save_run
from mdlib.data.acts import Act
from mdlib.data.pairs import Pair
from mdlib.data.text import Vocab, tokenise
from mdlib.errors import MdlibError
from mdlib.models import build_model
from mdlib.profiles import PROFILES, get_profile
from mdlib.training import corpus_nll, train


def _pair(ctx, resp, acts=()):
    return Pair(context=tuple(tokenise(ctx)), response=tuple(tokenise(resp)), acts=tuple(acts))


PAIRS = [_pair("<usr> hi", "hello , where to ?", [Act("request", "loc")]),
         _pair("<usr> boston", "boston , right ?", [Act("explicit_confirm", "loc", "boston")]),
         _pair("<usr> yes", "it is sunny .", [Act("inform", "weather_type", "sunny")])] * 3
VOCAB = Vocab.build(p.source() + list(p.response) for p in PAIRS)


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(len(VOCAB), emb=8, hidden=16)


def test_training_is_deterministic_and_lowers_the_loss():
    a, b = _model(), _model()
    ra = train(a, PAIRS, VOCAB, valid_pairs=PAIRS[:3], epochs=4, batch_size=4, lr=1e-2, seed=3)
    rb = train(b, PAIRS, VOCAB, valid_pairs=PAIRS[:3], epochs=4, batch_size=4, lr=1e-2, seed=3)
    assert ra.curve == rb.curve and len(ra.curve) == 4
    assert ra.curve[-1]["valid_loss"] < ra.curve[0]["valid_loss"]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    s, n = corpus_nll(a, PAIRS[:3], VOCAB)
    assert n == sum(len(p.response) + 1 for p in PAIRS[:3])
    assert s / n == pytest.approx(ra.best_valid, rel=1e-5)


def test_early_stopping_keeps_the_best_epoch():
    m = _model()
    # a huge step size makes validation worse after the first epochs
    res = train(m, PAIRS, VOCAB, valid_pairs=PAIRS[:3], epochs=30, batch_size=9, lr=0.5, patience=2, clip=1e9)
    best = min(r["valid_loss"] for r in res.curve)
    assert res.best_valid == best
    s, n = corpus_nll(m, PAIRS[:3], VOCAB)
    assert s / n == pytest.approx(best, rel=1e-4)


def test_nan_loss_names_the_step(tmp_path):
    m = _model()
    with torch.no_grad():
        m.out.bias.fill_(float("nan"))
    with pytest.raises(MdlibError, match="training step 1"):
        train(m, PAIRS, VOCAB, epochs=1)
    with pytest.raises(MdlibError, match="not finite"):
        save_checkpoint(tmp_path / "nan.pt", m, VOCAB, {})
    assert not (tmp_path / "nan.pt").exists()


def test_checkpoint_round_trip_and_mismatches(tmp_path):
    m = _model()
    path = save_checkpoint(tmp_path / "ck.pt", m, VOCAB, {"method": "pretrain", "seed": 0}, extra={"x": [1.5]})
    m2, v2, conf, extra = load_checkpoint(path, vocab=VOCAB, config={"method": "pretrain"})
    assert v2 == VOCAB and conf["seed"] == 0 and extra == {"x": [1.5]}
    assert all(torch.equal(x, y) for x, y in zip(m.state_dict().values(), m2.state_dict().values()))
    other = Vocab(VOCAB.itos + ["extra"])
    with pytest.raises(MdlibError, match="vocabulary differs"):
        load_checkpoint(path, vocab=other)
    with pytest.raises(MdlibError, match="method: expected 'maml'"):
        load_checkpoint(path, config={"method": "maml"})
    with pytest.raises(MdlibError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "foreign.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MdlibError, match="not an mdlib checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(MdlibError, match="not an mdlib checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    # weights that do not fit the configured model
    blob = torch.load(path, weights_only=True)
    blob["config"]["model"]["hidden"] = 32
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(MdlibError, match="damaged"):  # the recorded SHA-256 catches the edit
        load_checkpoint(tmp_path / "bad.pt")
    del blob["sha256"]  # a checkpoint without a digest is still checked field by field
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(MdlibError, match="weights do not match"):
        load_checkpoint(tmp_path / "bad.pt")


def test_run_folder(tmp_path):
    m = _model()
    out = save_run(tmp_path / "run", m, VOCAB, {"method": "pretrain"}, [{"epoch": 1, "train_loss": 2.0}])
    assert {p.name for p in out.iterdir()} == {"checkpoint.pt", "config.json", "curve.json", "vocab.json"}
    assert json.loads((out / "config.json").read_text())["model"]["hidden"] == 16
    assert load_checkpoint(out)[1] == VOCAB


def _train_fn():
    m = _model()
    res = train(m, PAIRS, VOCAB, epochs=1, batch_size=9)
    return m, VOCAB, res.curve


def _race(cache_dir):
    _, _, conf, extra = cached({"a": 1}, 0, _train_fn, cache_dir=cache_dir)
    return conf["seed"], extra["cache_hit"]


def test_cache_hit_miss_and_race(tmp_path):
    calls = []

    def fn():
        calls.append(1)
        return _train_fn()

    m1, _, _, e1 = cached({"a": 1}, 0, fn, cache_dir=tmp_path)
    m2, _, _, e2 = cached({"a": 1}, 0, fn, cache_dir=tmp_path)
    assert (e1["cache_hit"], e2["cache_hit"], len(calls)) == (False, True, 1)
    assert e1["curve"] == e2["curve"]
    assert config_key({"a": 1}, 0) != config_key({"a": 1}, 1) != config_key({"a": 2}, 1)
    race_dir = tmp_path / "race"
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map(_race, [race_dir, race_dir])
    # the lock makes one process train and the other wait and load its model
    assert sorted(results) == [(0, False), (0, True)]
    folder = race_dir / config_key({"a": 1}, 0)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_profiles():
    assert {"smoke", "quick", "paper"} <= set(PROFILES)
    quick = get_profile("quick")
    assert quick.replace(epochs=1).epochs == 1 and quick.epochs != 1
    with pytest.raises(MdlibError, match="known profiles: smoke, quick, paper"):
        get_profile("fast")
    with pytest.raises(MdlibError, match="no field"):
        quick.replace(epoch=1)
    with pytest.raises(Exception):
        quick.epochs = 3  # frozen
    assert math.isfinite(quick.ft_lr) and len(quick.seeds) >= 3


def test_adapt_goes_through_the_inner_loop_and_evaluate_reports(monkeypatch):
    import mdlib.evaluation as ev
    import mdlib.evaluation.adaptation
    from mdlib.data.generator import generate

    dialogues = generate(["movie"], "clean", 6, seed=2)
    prof = get_profile("smoke")
    pairs = ev.pairs_of(dialogues, prof)
    vocab = ev.build_vocab(pairs, prof)
    model = ev.new_model(vocab, prof, 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []
    real = mdlib.evaluation.adaptation.inner_loop

    def spy(*args, **kw):
        calls.append(args[3])
        return real(*args, **kw)

    monkeypatch.setattr(mdlib.evaluation.adaptation, "inner_loop", spy)  # where adapt looks it up
    params = ev.adapt(model, None, dialogues[:3], prof, 0, vocab=vocab, lr=0.5, steps=5)
    assert calls == [5]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.requires_grad for p in params.values())
    s0, n = corpus_nll(model, pairs, vocab)
    s1, _ = corpus_nll(model, pairs, vocab, params=params)
    assert s1 < s0
    same = ev.adapt(model, None, [], prof, 0, vocab=vocab)
    assert all(torch.equal(same[k], v) for k, v in model.state_dict().items())
    res = ev.evaluate(model, params, dialogues[3:], vocab, prof, act_reference=dialogues[:3], samples=2)
    assert set(ev.METRICS) <= set(res) and res["n_test"] > 0 and len(res["samples"]) == 2
    assert 0.0 <= res["entity_f1"] <= 1.0 and 0.0 <= res["act_f1"] <= 1.0
    s3, n3 = corpus_nll(model, ev.pairs_of(dialogues[3:], prof), vocab, params=params, **ev.collate_kw(prof))
    assert res["ppl"] == pytest.approx(math.exp(s3 / n3), rel=1e-4)


def test_evaluation_package_exports_every_name_of_its_modules():
    """``mdlib.evaluation`` was one module; every name it had is importable from the package."""
    import importlib

    import mdlib.evaluation as ev

    parts = {"data": ["Data", "collate_kw", "pairs_of", "split_of", "sample_kshot", "source_pairs", "build_vocab",
                      "adaptation_tasks", "protocol_vocab"],
             "adaptation": ["adapt"],
             "scoring": ["METRICS", "lexicon_for", "ActRecogniser", "generate", "evaluate", "dialogue_success_f1"],
             "pretraining": ["CACHE_VERSION", "data_signature", "unseen_as_unk", "new_model", "pretrain"],
             "baselines": ["run_baselines"]}
    for module, names in parts.items():
        mod = importlib.import_module(f"mdlib.evaluation.{module}")
        for name in names:
            assert getattr(ev, name) is getattr(mod, name), (module, name)
    assert sorted(ev.__all__) == sorted(n for names in parts.values() for n in names)
