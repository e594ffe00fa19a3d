"""``python -m mdlib train`` / ``adapt`` end to end on the smoke profile."""

import json
import math

import pytest

from mdlib.cli import main
from mdlib.data.corpus import save_corpus
from mdlib.data.generator import generate

KEYS = {"bleu", "entity_f1", "act_f1", "ppl", "distinct_1", "distinct_2", "n_test", "method", "k", "seed", "target"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pre"
    assert main(["train", "--method", "pretrain", "--profile", "smoke", "--seed", "0", "--out", str(out)]) == 0
    return out


def test_train_writes_a_run(run_dir):
    assert {p.name for p in run_dir.iterdir()} >= {"checkpoint.pt", "config.json", "curve.json", "vocab.json"}
    curve = json.loads((run_dir / "curve.json").read_text())
    assert curve and all(math.isfinite(r["train_loss"]) for r in curve)


def test_adapt_writes_finite_metrics(run_dir, tmp_path):
    out = tmp_path / "res.json"
    assert main(["adapt", "--checkpoint", str(run_dir), "--target", "movie", "--k-shot", "1", "--seed", "0",
                 "--profile", "smoke", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert KEYS <= set(res)
    assert (res["method"], res["k"], res["seed"], res["target"]) == ("pretrain", 1, 0, "movie")
    for k in ("bleu", "entity_f1", "ppl", "distinct_1", "distinct_2"):
        assert res[k] is not None and math.isfinite(res[k]), k
    assert res["n_test"] > 0 and res["ppl"] >= 1.0


@pytest.mark.parametrize("argv, message", [
    (["--target", "film", "--k-shot", "1"], "unknown domain 'film'"),
    (["--target", "movie", "--k-shot", "5000"], "larger than the train pool"),
    (["--target", "bus", "--k-shot", "1"], "sources"),
])
def test_adapt_bad_input_is_one_line(run_dir, tmp_path, capsys, argv, message):
    code = main(["adapt", "--checkpoint", str(run_dir), "--out", str(tmp_path / "x.json"), "--profile", "smoke"] + argv)
    err = capsys.readouterr().err.strip()
    assert code == 1 and message in err and "\n" not in err and err.startswith("error:")
    assert not (tmp_path / "x.json").exists()


def test_adapt_missing_or_foreign_checkpoint(tmp_path, capsys):
    (tmp_path / "foreign.pt").write_text("hello")
    for ck, msg in [(tmp_path / "none", "no such checkpoint"), (tmp_path / "foreign.pt", "not an mdlib checkpoint")]:
        code = main(["adapt", "--checkpoint", str(ck), "--target", "movie", "--k-shot", "1", "--out",
                     str(tmp_path / "x.json")])
        err = capsys.readouterr().err
        assert code == 1 and msg in err and err.count("\n") == 1


def test_user_corpus_without_annotations(tmp_path):
    recs = generate(["bus", "weather", "movie"], "clean", 8, seed=1)
    for r in recs:  # plain text dialogues of unknown tasks: no acts, no state
        r["domain"] = "task_" + r["domain"]
        for t in r["turns"]:
            for key in ("acts", "state", "asr_acts", "kb"):
                t.pop(key, None)
    corpus = save_corpus(recs, tmp_path / "plain.jsonl")
    run = tmp_path / "run"
    common = ["--corpus", str(corpus), "--sources", "task_bus", "task_weather", "--target", "task_movie", "--profile", "smoke"]
    assert main(["train", "--method", "pretrain", "--out", str(run)] + common) == 0
    out = tmp_path / "res.json"
    assert main(["adapt", "--checkpoint", str(run), "--k-shot", "2", "--out", str(out)] + common) == 0
    res = json.loads(out.read_text())
    assert res["act_f1"] is None and res["entity_f1"] is None  # no annotations: null, not zero
    assert res["target"] == "task_movie" and res["n_test"] > 0
    assert math.isfinite(res["bleu"]) and math.isfinite(res["ppl"])
