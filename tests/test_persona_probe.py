"""The persona probe (mdlib.experiments.personas): a tiny run fills every cell; the
compute-matched control is MAML with 0 inner steps."""

import pytest
import torch

from mdlib.data.personas import PersonaSplits, persona_profile
from mdlib.errors import MdlibError
from mdlib.experiments.comparison import PersonaFamily, _episode
from mdlib.experiments.personas import (PROBE_METHODS, best_meta_learner, paired_rows,
                                        probe_learner, run_persona_probe, summarise)
from mdlib.evaluation import build_vocab, new_model
from mdlib.data.personas import persona_pairs
from mdlib.data.splits import EpisodeSampler
from mdlib.meta.learners import make_learner, meta_gradient

TINY = PersonaSplits(n_train=4, n_valid=1, n_test=1, pool=4, valid_dialogues=1, test_dialogues=1)
TINY_RUN = dict(splits=TINY, profile="smoke", profile_changes={"emb": 16, "hidden": 32, "epochs": 1, "max_steps": 3},
                k_values=(1, 2), adapt_steps=(0, 1, 3), meta_steps=2, meta_batch=2, k_support=1, k_query=1,
                adapt_lr_grid=(0.1, 0.3), cache=False)


@pytest.fixture(scope="module")
def tiny_runs():
    return [run_persona_probe(seed, **TINY_RUN) for seed in (0, 1)]


def test_tiny_probe_returns_every_cell(tiny_runs):
    run = tiny_runs[0]
    cells = {(r["method"], r["k"], r["steps"], r["persona"]) for r in run["rows"]}
    assert cells == {(m, k, s, "persona-2000") for m in PROBE_METHODS for k in (1, 2) for s in (0, 1, 3)}
    for r in run["rows"]:
        assert 0.0 <= r["persona_acc"] <= 1.0 and r["ppl"] > 0 and r["n_acts"] > 0
        assert (r["lr"] is None) == (r["steps"] == 0)
        assert r["lr"] in (None, 0.1, 0.3)
    # the step size is chosen per method, k and steps, on validation personas only
    assert set(run["selection"]) == set(PROBE_METHODS)
    assert set(run["selection"]["maml"][2]) == {1, 3}
    assert {(o["k"], o["persona"]) for o in run["oracle"]} == {(1, "persona-2000"), (2, "persona-2000")}
    # every meta-trained method took the same number of outer steps
    assert {m: len(v["query_loss"]) for m, v in run["meta"].items()} == {m: 2 for m in PROBE_METHODS[1:]}
    # no adaptation: the k-shot cells at step 0 are one score, whatever k
    zero = [r["persona_acc"] for r in run["rows"] if r["method"] == "maml" and r["steps"] == 0]
    assert len(set(zero)) == 1


def test_summaries_pair_by_seed(tiny_runs):
    summary = summarise(tiny_runs)
    assert len(summary["cells"]) == len(PROBE_METHODS) * 2 * 3
    assert all(c["persona_acc"]["n"] == 2 for c in summary["cells"])
    best = best_meta_learner(tiny_runs)
    assert best in ("fomaml", "reptile", "maml")
    rows = paired_rows(tiny_runs, best)
    assert {(r["baseline"], r["metric"], r["k"], r["steps"]) for r in rows} == \
        {(b, m, k, s) for b in ("multitask", "pretrain_ft") for m in ("persona_acc", "ser")
         for k in (1, 2) for s in (0, 1, 3)}
    assert all(set(r["diffs"]) == {"0", "1"} for r in rows)
    assert {r["method"] for r in rows} == {best}
    assert {r["interval"] for r in rows} == {"t, clipped to the bounds", "t"}  # bounded persona accuracy, unbounded SER
    with pytest.raises(ValueError):  # a dropped seed is an error, never a silent mismatch
        paired_rows([tiny_runs[0], {**tiny_runs[1], "rows": [r for r in tiny_runs[1]["rows"]
                                                              if r["method"] != "multitask"] + [
            dict(r, seed=7) for r in tiny_runs[1]["rows"] if r["method"] == "multitask"]}], best)


def test_multitask_control_is_maml_with_zero_inner_steps():
    profile = persona_profile("smoke")
    tasks = TINY.tasks("train")
    pairs = persona_pairs([d for v in tasks.values() for d in v])
    vocab = build_vocab(pairs, profile)
    model = new_model(vocab, profile, seed=0)
    params = dict(model.named_parameters())
    episode = EpisodeSampler(tasks, 1, 1, seed=0).sample(1)
    batches = [_episode(PersonaFamily(TINY), ep, vocab, profile, None) for ep in episode]

    def loss_fn(p, batch):
        return torch.func.functional_call(model, p, (batch,))

    control, _ = meta_gradient(probe_learner("multitask", params, 1, 0.3), loss_fn, params, batches)
    maml0, _ = meta_gradient(make_learner("maml", params, 0, 0.3), loss_fn, params, batches)
    maml1, _ = meta_gradient(make_learner("maml", params, 1, 0.3), loss_fn, params, batches)
    assert set(control) == set(maml0)
    for n in control:
        torch.testing.assert_close(control[n], maml0[n])
    # the check can fail: one inner step changes the meta-gradient
    assert any(not torch.allclose(control[n], maml1[n]) for n in control)


def test_unknown_method_is_refused():
    with pytest.raises(MdlibError, match="unknown method"):
        probe_learner("metasgd_typo", {}, 1, 0.1)
    with pytest.raises(MdlibError, match="k_values"):
        run_persona_probe(0, **dict(TINY_RUN, k_values=(9,)))


def test_validation_only_run_never_scores_a_test_persona(monkeypatch):
    import mdlib.experiments.comparison as comparison
    import mdlib.experiments.personas as probe

    seen = []
    real = comparison.persona_kshot
    monkeypatch.setattr(comparison, "persona_kshot", lambda name, *a, **kw: seen.append(name) or real(name, *a, **kw))
    run = run_persona_probe(0, **dict(TINY_RUN, methods=("multitask",), test=False))
    assert run["rows"] == [] and run["oracle"] == []
    assert set(seen) == set(TINY.names("valid"))
    assert set(probe.validation_table([run])) == {("multitask", k, s) for k in (1, 2) for s in (1, 3)}
