"""The end-to-end experiment (mdlib.experiments.end_to_end): every cell, shared parts, paired users."""

from __future__ import annotations

import math

import pytest
import torch

from mdlib.dm.threshold import ThresholdPolicy
from mdlib.errors import MdlibError
from mdlib.experiments import end_to_end as e2e


@pytest.fixture(scope="module")
def tiny():
    config = e2e.get_config("tiny")
    parts = e2e.build_parts(config, seed=0)
    systems = e2e.assemble(parts, config.target)
    # the users of seeds 0 and 1 (one build serves both: the cells need two seeds to pair)
    rows = e2e.evaluate_systems(systems, config, 0) + e2e.evaluate_systems(systems, config, 1)
    return config, parts, systems, rows


def test_every_system_and_metric_has_a_cell_and_a_paired_difference(tiny):
    config, parts, systems, rows = tiny
    summary = e2e.summarise(rows)
    assert set(summary["systems"]) == set(e2e.SYSTEMS)
    assert set(summary["vs_baseline"]) == set(e2e.SYSTEMS) - {e2e.BASELINE}
    for name, cells in summary["systems"].items():
        for m in ("success", "turns", "return", "bleu"):
            assert cells[m]["n"] == 2 and not math.isnan(cells[m]["mean"]), (name, m)
        assert set(e2e.METRICS) <= set(cells)
    for name, diffs in summary["vs_baseline"].items():
        assert set(e2e.METRICS) <= set(diffs)
        assert diffs["success"]["method"].startswith("t, clipped") and diffs["turns"]["method"] == "t"
        assert set(diffs["turns"]["diffs"]) == {"0", "1"}
        d = summary["discordant"][name]
        assert d["dialogues"] == 2 * config.n_dialogues and d["only_system"] + d["only_baseline"] <= d["dialogues"]
    table = e2e.format_table({"summary": summary})
    for name in e2e.SYSTEMS:
        assert name in table


def test_systems_that_share_a_part_share_its_object(tiny):
    config, parts, systems, rows = tiny
    ft = systems["all_fine_tuned"]
    for name, (p, m, g) in e2e.SYSTEMS.items():
        s = systems[name]
        assert s.parser is parts["parser"][p] and s.generator is parts["generator"][g]
        if m == "reference":
            assert isinstance(s.policy, ThresholdPolicy)
            continue
        for k, v in parts["manager"][m].params.items():
            assert torch.equal(s.policy.params[k], v)
    swapped = systems["meta_generator"]
    assert swapped.parser is ft.parser and swapped.generator is not ft.generator
    assert all(torch.equal(swapped.policy.params[k], v) for k, v in ft.policy.params.items())
    # the swap is real: the meta-learned parts differ from the fine-tuned ones
    meta_mgr = systems["meta_manager"].policy.params
    assert any(not torch.equal(meta_mgr[k], v) for k, v in ft.policy.params.items())
    assert systems["meta_parser"].parser is not ft.parser


def test_every_system_meets_the_same_users_and_seeds_change_them(tiny):
    config, parts, systems, rows = tiny
    goals = {seed: {r["goals"] for r in rows if r["seed"] == seed} for seed in (0, 1)}
    assert all(len(g) == 1 for g in goals.values()), goals   # one set of users per seed
    assert goals[0] != goals[1]
    again = e2e.evaluate_systems({"all_meta": systems["all_meta"]}, config, 0)
    assert {again[0]["goals"]} == goals[0]


def test_every_part_keeps_the_meta_learned_start_before_adaptation(tiny):
    config, parts, systems, rows = tiny
    for part in e2e.PARTS:
        assert set(e2e.VARIANTS) <= set(parts[part]), part
    # the start is what the k dialogues adapted: same network, other parameters
    start, adapted = parts["parser"]["meta_zero_shot"], parts["parser"]["meta"]
    assert start.model is adapted.model
    assert any(not torch.equal(start.params[k], v) for k, v in adapted.params.items())
    # (the tiny manager's two adaptation dialogues may end alike, giving no gradient: not checked)
    assert parts["manager"]["meta_zero_shot"].model is parts["manager"]["meta"].model
    assert parts["generator"]["meta_zero_shot"].model is parts["generator"]["meta"].model


def test_bad_configuration_is_refused():
    with pytest.raises(MdlibError, match="source domain"):
        e2e.get_config("tiny", target="bus")
    context_only = e2e.get_config("tiny").profile.replace(input="context")
    with pytest.raises(MdlibError, match="needs input 'acts'"):
        e2e.get_config("tiny", profile=context_only)
    with pytest.raises(MdlibError, match="unknown end-to-end size"):
        e2e.get_config("huge")
    with pytest.raises(MdlibError, match="unknown system"):
        e2e.assemble({}, "movie", systems=["all_wrong"])
