"""The end-to-end table on a held-out persona (mdlib.experiments.end_to_end_personas)."""

from __future__ import annotations

import math

import pytest

from mdlib.data.pairs import Pair
from mdlib.data.personas import persona_kshot
from mdlib.errors import MdlibError
from mdlib.experiments import end_to_end_personas as e2p


@pytest.fixture(scope="module")
def tiny():
    """A tiny run of two seeds, recording the dialogue of every generator pair made on the way."""
    config = e2p.get_config("tiny", cache=False)  # a cached pretrained model would hide pretraining's pairs
    made: list[str] = []
    original = Pair.__init__

    def spy(self, *args, **kw):
        original(self, *args, **kw)
        made.append(self.dialogue_id)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Pair, "__init__", spy)
        result = e2p.run(config, [0, 1])
    return config, result, set(made)


def test_the_table_has_every_system_metric_and_both_paired_baselines(tiny):
    config, result, _ = tiny
    for baseline in e2p.BASELINES:
        summary = result["summary"][baseline]
        assert set(summary["systems"]) == set(e2p.SYSTEMS)
        assert set(summary["vs_baseline"]) == set(e2p.SYSTEMS) - {baseline}
        for name, diffs in summary["vs_baseline"].items():
            assert set(e2p.METRICS) <= set(diffs)
            assert diffs["success"]["method"].startswith("t, clipped")
            assert diffs["persona_accuracy"]["method"].startswith("t, clipped")
            assert summary["discordant"][name]["dialogues"] == 2 * 3 * config.n_dialogues  # seeds x source domains
    for name in e2p.SYSTEMS:
        cells = result["summary"]["fine_tuned"]["systems"][name]
        assert cells["success"]["n"] == 2 and not math.isnan(cells["turns"]["mean"])
    # every system of a seed met the same users
    for seed in (0, 1):
        assert len({r["goals"] for r in result["rows"] if r["seed"] == seed}) == 1
    # the persona's own words: the reference scores are exact whatever the users did
    persona = [r for r in result["rows"] if r["system"] == "persona"]
    assert all(r["persona_accuracy"] == 1.0 and r["bleu"] == pytest.approx(100.0) for r in persona)
    table = e2p.format_table(result)
    for name in e2p.SYSTEMS:
        assert name in table
    assert "vs fine_tuned" in table and "vs multitask" in table


def test_no_test_dialogue_of_a_held_out_persona_reaches_training(tiny):
    config, _, made = tiny
    splits = config.splits
    test_ids = {d["id"] for name in splits.names("test") for d in splits.dialogues(name, "test")}
    assert test_ids and not test_ids & made
    # the spy sees what training reads: the target's k support dialogues and meta-training pools
    support = {d["id"] for d in persona_kshot(config.target, config.k_shot, 0, splits, roles=("test",))}
    assert support <= made
    assert {d["id"] for d in splits.dialogues(splits.names("train")[0], "pool")} & made


@pytest.mark.parametrize("target", ["persona-0", "persona-1000", "persona-7", "movie-2000", "persona-abc"])
def test_a_target_that_is_not_a_held_out_persona_is_one_line_error(target):
    with pytest.raises(MdlibError) as err:
        e2p.get_config("tiny", target=target)
    assert "\n" not in str(err.value) and ("persona" in str(err.value))
