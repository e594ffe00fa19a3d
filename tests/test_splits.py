"""The DAML protocol: verified corpora, splits, k-shot samples, episodes, no leakage."""

from __future__ import annotations

import json

import pytest

from mdlib import paths
from mdlib.data import splits
from mdlib.data.domains import SOURCES, TARGETS
from mdlib.data.generator import generate
from mdlib.data.splits import (EpisodeSampler, check_no_leakage, ensure_corpora, kshot, load_split,
                               protocol_tasks, split_corpus)
from mdlib.errors import MdlibError


def _ids(recs):
    return [r["id"] for r in recs]


def test_protocol_corpora_reproduce_the_manifest():
    """The committed manifest is what the generator makes here (SHA-256 of every file)."""
    folder = ensure_corpora()
    man = json.loads((paths.DATA_DIR / "manifest.json").read_text())
    assert set(man["files"]) == {f"{d}.jsonl" for d in SOURCES + TARGETS}
    for name, entry in man["files"].items():
        assert (folder / name).stat().st_size == entry["bytes"]
        assert entry["dialogues"] == 1500 and entry["spec"] == "mix"
    # regenerate one corpus from scratch in memory: same bytes as the manifest says
    entry = man["files"]["weather.jsonl"]
    data = splits._render("weather", entry["seed"])
    assert splits._sha256(data) == entry["sha256"]


def test_committed_samples_are_the_first_dialogues_of_each_corpus():
    from mdlib.data.corpus import load_corpus

    for d in SOURCES + TARGETS:
        samples = load_corpus(splits.samples_path(d))
        assert samples == load_split(d, "train")[:3]


def test_split_sizes_and_disjointness():
    for d in SOURCES + TARGETS:
        parts = {s: load_split(d, s) for s in ("train", "valid", "test")}
        assert {s: len(v) for s, v in parts.items()} == {"train": 900, "valid": 100, "test": 500}
        ids = [i for v in parts.values() for i in _ids(v)]
        assert len(set(ids)) == 1500
        assert all(r["domain"] == d for v in parts.values() for r in v)
    with pytest.raises(MdlibError, match="unknown split"):
        load_split("bus", "dev")
    with pytest.raises(MdlibError, match="unknown domain"):
        load_split("taxi", "train")


def test_load_split_returns_fresh_copies():
    a = load_split("weather", "valid")
    a[0]["turns"].clear()
    assert load_split("weather", "valid")[0]["turns"]


def test_kshot_from_train_pool_nested_and_bounded():
    train = set(_ids(load_split("movie", "train")))
    test = set(_ids(load_split("movie", "test")))
    k9 = kshot("movie", 9, seed=0)
    assert len(k9) == 9 and set(_ids(k9)) <= train and not set(_ids(k9)) & test
    assert _ids(kshot("movie", 3, seed=0)) == _ids(k9)[:3]
    assert _ids(kshot("movie", 9, seed=1)) != _ids(k9)
    assert kshot("movie", 0, seed=0) == []
    assert len(kshot("movie", 900, seed=0)) == 900
    with pytest.raises(MdlibError, match="larger than the train pool"):
        kshot("movie", 901, seed=0)


def test_protocol_has_no_leakage():
    meta_train = protocol_tasks("train")
    assert set(meta_train) == set(SOURCES)
    targets = {t: load_split(t, "train") + load_split(t, "test") for t in TARGETS}
    check_no_leakage(meta_train, targets)  # does not raise
    assert not {r["domain"] for v in meta_train.values() for r in v} & set(TARGETS)


def test_check_no_leakage_catches_leaks():
    meta = {"bus": load_split("bus", "valid")[:20]}
    tgt = {"movie": load_split("movie", "test")[:20]}
    with pytest.raises(MdlibError, match="of target domain 'movie'"):
        check_no_leakage({"bus": meta["bus"] + [tgt["movie"][3]]}, tgt)
    twin = json.loads(json.dumps(tgt["movie"][5]))
    twin["id"], twin["domain"] = "renamed", "bus"
    with pytest.raises(MdlibError, match="same text"):
        check_no_leakage({"bus": meta["bus"] + [twin]}, tgt)
    same_id = json.loads(json.dumps(meta["bus"][0]))
    same_id["id"] = tgt["movie"][0]["id"]
    with pytest.raises(MdlibError, match="is in meta-training"):
        check_no_leakage({"bus": [same_id]}, tgt)
    with pytest.raises(MdlibError, match="both in meta-training and a target"):
        check_no_leakage({"movie": meta["bus"]}, tgt)


def test_episode_sampler_support_and_query_are_disjoint():
    tasks = {d: load_split(d, "train")[:40] for d in SOURCES}
    sampler = EpisodeSampler(tasks, k_support=5, k_query=7, seed=0)
    for _ in range(50):
        eps = sampler.sample(3)
        assert sorted(e.task for e in eps) == sorted(SOURCES)
        for e in eps:
            assert len(e.support) == 5 and len(e.query) == 7
            assert not set(_ids(e.support)) & set(_ids(e.query))
            assert all(r["domain"] == e.task for r in e.support + e.query)
    a = [[_ids(e.support) for e in EpisodeSampler(tasks, 2, 2, seed=4).sample(2)] for _ in range(2)]
    assert a[0] == a[1], "deterministic per seed"
    assert len(sampler.sample(4)) == 4  # more than the tasks: drawn with replacement
    with pytest.raises(MdlibError, match="n_tasks"):
        sampler.sample(0)
    with pytest.raises(MdlibError, match="fewer than"):
        EpisodeSampler({"bus": tasks["bus"][:5]}, 3, 3, 0)
    with pytest.raises(MdlibError, match="repeated dialogue ids"):
        EpisodeSampler({"bus": tasks["bus"][:5] * 2}, 3, 3, 0)


def test_split_corpus_by_task_key():
    recs = generate(["bus", "weather", "movie"], "clean", 30, 0)
    out = split_corpus(recs, ["bus", "weather"], ["movie"], seed=0)
    assert set(out) == {"train", "valid", "test"}
    for task in ("bus", "weather", "movie"):
        parts = [out[s][task] for s in ("train", "valid", "test")]
        assert [len(p) for p in parts] == [18, 2, 10]
        ids = [i for p in parts for i in _ids(p)]
        assert len(set(ids)) == 30 and all(r["domain"] == task for p in parts for r in p)
    check_no_leakage({t: out["train"][t] for t in ("bus", "weather")}, {"movie": out["test"]["movie"]})
    with pytest.raises(MdlibError, match="both a source and a target"):
        split_corpus(recs, ["bus"], ["bus"], 0)
    with pytest.raises(MdlibError, match="task 'taxi' has no dialogues; the corpus has: bus, movie, weather"):
        split_corpus(recs, ["bus"], ["taxi"], 0)


@pytest.fixture
def tmp_data(tmp_path, monkeypatch):
    """A data folder with a one-corpus manifest (weather), so tests can tamper freely."""
    real = json.loads((paths.DATA_DIR / "manifest.json").read_text())
    man = dict(real, files={"weather.jsonl": real["files"]["weather.jsonl"]})
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path)
    monkeypatch.setattr(paths, "CORPORA_DIR", tmp_path / "corpora")
    return tmp_path


def test_ensure_corpora_generates_then_refuses_a_modified_file(tmp_data):
    folder = ensure_corpora()
    path = folder / "weather.jsonl"
    assert path.exists() and len(path.read_text().splitlines()) == 1500
    ensure_corpora()  # verified: nothing to do
    with open(path, "a") as f:
        f.write("\n")
    with pytest.raises(MdlibError, match="differs from data/manifest.json"):
        ensure_corpora()


def test_ensure_corpora_never_writes_a_corpus_that_does_not_match(tmp_data):
    man = json.loads((tmp_data / "manifest.json").read_text())
    man["files"]["weather.jsonl"]["sha256"] = "0" * 64
    (tmp_data / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(MdlibError, match="no longer reproduces"):
        ensure_corpora()
    assert not (tmp_data / "corpora" / "weather.jsonl").exists()


def test_missing_manifest_is_a_clear_error(tmp_data):
    (tmp_data / "manifest.json").unlink()
    with pytest.raises(MdlibError, match="manifest.json: missing"):
        ensure_corpora()
