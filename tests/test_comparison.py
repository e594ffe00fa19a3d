"""The fair-comparison runner on both families (mdlib.experiments.comparison): every
method fills every cell, the matched control gets its budget, no test task reaches
meta-training or step-size choice, summaries pair by seed per target."""

import math

import pytest

from mdlib.data.personas import PersonaSplits
from mdlib.errors import MdlibError
from mdlib.experiments import comparison
from mdlib.experiments.comparison import (COMPARISON_METHODS, DomainFamily, family, paired_rows, run_comparison,
                                          summarise)

TINY = PersonaSplits(n_train=4, n_valid=1, n_test=1, pool=4, valid_dialogues=1, test_dialogues=1)
SMALL = {"emb": 16, "hidden": 32, "epochs": 1, "max_steps": 3, "n_train": 6, "n_valid": 2}
DOMAIN_RUN = dict(profile="smoke", profile_changes=SMALL, k_values=(1,), adapt_steps=(0, 2), meta_steps=2,
                  meta_batch=2, k_support=1, k_query=1, inner_steps=1, adapt_lr_grid=(0.1, 0.3), n_select=2,
                  cache=False)


@pytest.fixture(scope="module")
def domain_runs():
    fam = family("domains", targets=("movie",), n_test=2)
    return [run_comparison(fam, seed, methods=COMPARISON_METHODS, valid_every=1, **DOMAIN_RUN) for seed in (0, 1)]


def test_every_method_fills_every_cell_on_the_domain_protocol(domain_runs):
    run = domain_runs[0]
    assert {(r["method"], r["k"], r["steps"], r["task"]) for r in run["rows"]} == {
        (m, 1, s, "movie") for m in COMPARISON_METHODS for s in (0, 2)}
    assert run["config"]["input"] == "context" and run["family"] == "domains"
    for r in run["rows"]:
        assert set(DomainFamily.metrics) <= set(r)
        assert 0.0 <= r["bleu"] <= 100.0 and r["ppl"] > 1.0
    assert run["oracle"] == []  # the domain protocol has no ceiling


def test_matched_control_gets_the_meta_learners_gradient_evaluations(domain_runs):
    meta = domain_runs[0]["meta"]
    assert meta["multitask"]["outer_steps"] == 2 and meta["multitask_matched"]["outer_steps"] == 4
    assert meta["multitask_matched"]["grad_evals"] == meta["fomaml"]["grad_evals"] == 2 * meta["multitask"]["grad_evals"]
    assert len(meta["multitask_matched"]["query_loss"]) == 4
    # a validation curve at step 0, every step and at the end, with the kept step on it
    curve = meta["maml"]["valid_curve"]
    assert [s for s, _ in curve][:3] == [0, 1, 2] and all(math.isfinite(v) for _, v in curve)
    assert meta["maml"]["best_step"] in {s for s, _ in curve}


def test_metasgd_adapts_with_its_learned_step_sizes_and_anil_only_its_head(domain_runs):
    sel = domain_runs[0]["selection"]
    assert set(sel["metasgd"][1][2]["valid"]) == {"0.1", "0.3"}
    adapter = comparison._Adapter(comparison.method_learner("anil", {"out.weight": None, "embed.weight": None}, 1, 0.1,
                                                            head=["out.weight"]))
    assert adapter.trainable == ["out.weight"]


def test_no_test_target_reaches_step_size_choice(monkeypatch):
    seen = []
    real = comparison.sample_kshot
    monkeypatch.setattr(comparison, "sample_kshot", lambda data, task, *a: seen.append(task) or real(data, task, *a))
    real_split = comparison.split_of
    splits = []
    monkeypatch.setattr(comparison, "split_of", lambda data, task, split: splits.append((task, split))
                        or real_split(data, task, split))
    run = run_comparison(family("domains", targets=("movie",), n_test=2), 0, methods=("multitask",), test=False,
                         **DOMAIN_RUN)
    assert run["rows"] == [] and seen == []
    assert {t for t, _ in splits} <= {"bus", "restaurant", "weather"} and ("movie", "test") not in splits


def test_per_target_summaries_and_paired_rows(domain_runs):
    cells = summarise(domain_runs, per_task=True)["cells"]
    assert {c["task"] for c in cells} == {"movie"}
    rows = paired_rows(domain_runs, "maml", baselines=("multitask",), metrics=("bleu",), per_task=True)
    assert {(r["k"], r["steps"], r["task"]) for r in rows} == {(1, 0, "movie"), (1, 2, "movie")}
    assert all(r["n"] == 2 and 0 - 100 <= r["low"] <= r["high"] <= 100 for r in rows)


def test_bad_requests_are_refused():
    with pytest.raises(MdlibError, match="unknown task family"):
        family("sines")
    with pytest.raises(MdlibError, match="unknown target"):
        family("domains", targets=("bus",))
    with pytest.raises(MdlibError, match="unknown method"):
        run_comparison(family("personas", splits=TINY), 0, methods=("maml", "nope"))
    with pytest.raises(MdlibError, match="k_values"):
        run_comparison(family("personas", splits=TINY), 0, k_values=(5,))


def test_persona_family_can_use_the_first_validation_and_test_personas_of_its_splits():
    from mdlib.experiments.comparison import PersonaFamily

    whole, part = PersonaFamily(), PersonaFamily(n_valid=2, n_test=3)
    assert part.names("valid") == whole.names("valid")[:2]
    assert part.names("test") == whole.names("test")[:3]
    assert part.names("train") == whole.names("train")
    assert part.pretrain_data()["sources"] == whole.pretrain_data()["sources"]  # the same cached start
    assert part.describe()["used"] == {"valid": 2, "test": 3}
    for bad in ({"n_valid": 0}, {"n_test": 9}, {"n_valid": 1.5}):
        with pytest.raises(MdlibError, match="persona family: n_"):
            PersonaFamily(**bad)
