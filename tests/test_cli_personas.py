"""``train --protocol personas`` / ``adapt --protocol personas`` end to end on the smoke profile."""

import json
import math

import pytest

import mdlib.data.personas as personas
from mdlib.cli import main
from mdlib.data.personas import held_out_personas, splits_for_profile, training_data
from mdlib.evaluation import data_signature

SPLITS = splits_for_profile("smoke")
TARGET = SPLITS.names("test")[0]
METRICS = ("ppl", "bleu", "ser", "persona_acc", "oracle_prior", "oracle_factors")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The runs of a pretrain and a fomaml model, and every (persona seed, part) that training generated."""
    folder = tmp_path_factory.mktemp("persona_runs")
    calls = []
    real = personas._dialogues
    mp = pytest.MonkeyPatch()
    mp.setattr(personas, "_dialogues",
               lambda seed, part, n, spec: calls.append((seed, part)) or real(seed, part, n, spec))
    try:
        for method, extra in (("pretrain", []), ("fomaml", ["--meta-steps", "2"])):
            code = main(["train", "--protocol", "personas", "--method", method, "--profile", "smoke",
                         "--out", str(folder / method)] + extra)
            assert code == 0
    finally:
        mp.undo()
    return folder, calls


@pytest.mark.parametrize("method", ["pretrain", "fomaml"])
def test_train_records_the_persona_protocol(generated, method):
    folder, _ = generated
    man = json.loads((folder / method / "run.json").read_text())
    config = json.loads((folder / method / "config.json").read_text())
    assert man["protocol"] == config["protocol"] == "personas"
    assert man["personas"] == config["personas"]
    assert personas.splits_from_dict(man["personas"]) == SPLITS  # the splits rebuild the same data
    assert config["data"] == data_signature(training_data(SPLITS))
    assert config["inputs"]["context_turns"] == 0 and config["inputs"]["input"] == "acts"


def test_no_held_out_persona_reaches_training(generated):
    folder, calls = generated
    held_out = set(SPLITS.names("valid") + SPLITS.names("test"))
    for method in ("pretrain", "fomaml"):
        man = json.loads((folder / method / "run.json").read_text())
        assert man["sources"] == SPLITS.names("train")  # the tasks trained on
        assert not held_out & set(man["sources"]) and held_out == set(man["targets"])
    assert calls, "training generated no persona dialogue"
    assert not [c for c in calls if c[1] == "test"]  # no test dialogue of any persona was even generated
    train_seeds = set(SPLITS.seeds("train"))
    assert {seed for seed, part in calls if part == "valid"} <= train_seeds
    data = training_data(SPLITS)
    assert data["test"] == {} and set(data["valid"]) == set(SPLITS.names("train"))


@pytest.mark.parametrize("method, k", [("pretrain", 1), ("fomaml", 3)])
def test_adapt_on_a_held_out_persona(generated, tmp_path, method, k):
    folder, _ = generated
    out = tmp_path / "res.json"
    assert main(["adapt", "--checkpoint", str(folder / method), "--target", TARGET, "--k-shot", str(k),
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (res["method"], res["protocol"], res["split"], res["target"], res["k"]) == (method, "personas", "test",
                                                                                      TARGET, k)
    for key in METRICS:
        assert isinstance(res[key], float) and math.isfinite(res[key]), key
    for key in ("persona_acc", "oracle_prior", "oracle_factors"):
        assert 0.0 <= res[key] <= 1.0, key
    assert res["ser"] >= 0.0 and res["ppl"] >= 1.0
    assert res["n_dialogues"] == SPLITS.test_dialogues and res["n_test"] > 0


def test_adapt_on_a_validation_persona(generated, tmp_path):
    folder, _ = generated
    out = tmp_path / "val.json"
    name = SPLITS.names("valid")[0]
    assert main(["adapt", "--checkpoint", str(folder / "pretrain"), "--target", name, "--split", "validation",
                 "--k-shot", "1", "--protocol", "personas", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["split"] == "validation"


@pytest.fixture(scope="module")
def domains_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("domain_run") / "pre"
    assert main(["train", "--method", "pretrain", "--profile", "smoke", "--out", str(out)]) == 0
    return out


def _fails(capsys, argv, message, *written):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error:") and "\n" not in err, err
    assert message in err, err
    for path in written:
        assert not path.exists(), path


@pytest.mark.parametrize("argv, message", [
    (["--target", "persona-3"], "is a meta-training persona"),
    (["--target", "persona-1000"], "is a validation persona"),  # validation personas only with --split validation
    (["--target", "garbage"], "unknown persona 'garbage'"),
    (["--target", "persona-999"], "in no split"),
    (["--target", TARGET, "--k-shot", str(SPLITS.pool + 1)], f"has {SPLITS.pool} dialogues"),
    (["--target", TARGET, "--protocol", "domains"], "was trained with --protocol personas"),
    (["--target", TARGET, "--protocol", "bogus"], "unknown protocol 'bogus'"),
    (["--target", TARGET, "--corpus", "x.jsonl"], "takes no --corpus"),
    (["--target", TARGET, "--split", "train"], "unknown split 'train'"),
])
def test_adapt_bad_input(generated, tmp_path, capsys, argv, message):
    folder, _ = generated
    argv = ["adapt", "--checkpoint", str(folder / "pretrain"), "--out", str(tmp_path / "x.json")] + argv
    _fails(capsys, argv + ([] if "--k-shot" in argv else ["--k-shot", "1"]), message, tmp_path / "x.json")


def test_adapt_domains_run_as_personas(domains_run, tmp_path, capsys):
    _fails(capsys, ["adapt", "--checkpoint", str(domains_run), "--protocol", "personas", "--target", TARGET,
                    "--k-shot", "1", "--out", str(tmp_path / "x.json")],
           "was trained with --protocol domains", tmp_path / "x.json")


@pytest.mark.parametrize("argv, message", [
    (["--protocol", "bogus"], "unknown protocol 'bogus'; known protocols: domains, personas"),
    (["--protocol", "personas", "--corpus", "x.jsonl"], "takes no --corpus"),
    (["--protocol", "personas", "--target", TARGET], "takes no --target"),
    (["--protocol", "personas", "--sources", "persona-0"], "takes no --sources"),
    (["--protocol", "personas", "--input", "context"], "--input context"),
    (["--protocol", "personas", "--method", "reweight"], "for --protocol domains"),
])
def test_train_bad_input(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    _fails(capsys, ["train", "--profile", "smoke", "--out", str(out)] + argv, message, out)


def test_held_out_list_holds_the_smoke_targets():
    # the smoke profile's held-out personas are among those `data --protocol personas --list` names
    assert set(SPLITS.names("test")) <= set(held_out_personas())


def test_a_killed_persona_run_resumes_to_the_uninterrupted_result(generated, tmp_path, monkeypatch, capsys):
    import torch

    from mdlib.meta import progress

    folder, _ = generated
    killed = tmp_path / "killed"
    real = progress.save_progress

    def save_then_die(path, state, settings):  # Ctrl-C right after the checkpoint of step 1
        real(path, state, settings)
        if state["step"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress, "save_progress", save_then_die)
    assert main(["train", "--protocol", "personas", "--method", "fomaml", "--profile", "smoke", "--meta-steps", "2",
                 "--checkpoint-every", "1", "--out", str(killed)]) == 130
    monkeypatch.setattr(progress, "save_progress", real)
    capsys.readouterr()
    _fails(capsys, ["train", "--resume", str(killed), "--protocol", "domains"],
           "the run was made with --protocol personas, not domains")
    assert main(["train", "--resume", str(killed)]) == 0
    assert json.loads((killed / "run.json").read_text())["protocol"] == "personas"
    whole, resumed = (torch.load(f / "checkpoint.pt", weights_only=True)["state_dict"]
                      for f in (folder / "fomaml", killed))
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=0, atol=0)
