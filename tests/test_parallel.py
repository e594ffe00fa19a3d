"""Comparison runs in worker processes return what a loop over them returns."""

import time

import pytest
import torch

from mdlib.data.personas import PersonaSplits
from mdlib.errors import MdlibError
from mdlib.experiments.comparison import family
from mdlib.experiments.parallel import cpu_seconds, default_workers, run_comparisons, run_seeds

SETTINGS = dict(profile="smoke", methods=["pretrain_ft", "multitask", "fomaml"], k_values=[1], adapt_steps=[0, 1, 3],
                meta_steps=3, adapt_lr_grid=[0.3, 1.0], n_select=1, valid_every=1)


def _without_seconds(run: dict) -> dict:
    """A run without what two executions need not share: wall-clock times, and whether the
    pretrained start came from the cache (on a fresh clone the first execution trains it)."""
    out = {k: v for k, v in run.items() if k != "seconds"}
    out["meta"] = {m: {k: v for k, v in d.items() if k != "seconds"} for m, d in run["meta"].items()}
    out["pretrain"] = {k: v for k, v in run["pretrain"].items() if k != "cache_hit"}
    return out


def test_seeds_in_worker_processes_equal_the_loop_in_seed_order():
    fam = family("personas", splits=PersonaSplits(n_train=64, n_valid=2, n_test=2))
    here = run_seeds(fam, [2, 0, 1], workers=1, progress=False, **SETTINGS)
    cpu0, own0 = cpu_seconds(), time.process_time()
    pool = run_seeds(fam, [2, 0, 1], workers=2, progress=False, **SETTINGS)
    assert (cpu_seconds() - cpu0) - (time.process_time() - own0) > 1.0  # the ended workers' CPU time counts
    assert [r["seed"] for r in pool] == [2, 0, 1]
    assert [_without_seconds(r) for r in pool] == [_without_seconds(r) for r in here]
    assert here[0]["rows"] != here[1]["rows"]  # the seeds differ: the equality above is not vacuous


def test_a_kept_model_comes_back_from_a_worker_and_scores_as_in_the_worker():
    fam = family("personas", splits=PersonaSplits(n_train=64, n_valid=2, n_test=2))
    runs = [(fam, 0, dict(SETTINGS, keep_model=True)), (fam, 1, SETTINGS)]
    kept, other = run_comparisons(runs, workers=2, progress=False)
    assert "model" not in other
    model, vocab, prof = kept["model"], kept["vocab"], kept["profile"]
    name = fam.names("test")[0]
    start = kept["starts"]["multitask"]
    unadapted = [r for r in kept["rows"] if r["method"] == "multitask" and r["steps"] == 0 and r["task"] == name]
    scored = fam.score(model, start, fam.evaluation(name, "test", None, 0), vocab, prof)
    assert scored == {m: unadapted[0][m] for m in scored}


def test_default_workers_reads_mdlib_workers_and_never_exceeds_the_runs(monkeypatch):
    monkeypatch.setenv("MDLIB_WORKERS", "3")
    assert default_workers(10) == 3
    assert default_workers(2) == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MDLIB_WORKERS", bad)
        with pytest.raises(MdlibError, match="MDLIB_WORKERS must be a whole number >= 1"):
            default_workers(4)
    monkeypatch.delenv("MDLIB_WORKERS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert default_workers(10) == 2  # 4 cores at 2 threads per process
        torch.set_num_threads(1)
        assert default_workers(10) == 4
        assert default_workers(3) == 3
    finally:
        torch.set_num_threads(threads)
