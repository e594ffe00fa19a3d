"""Users with hidden traits (mdlib.dm.traits): hidden from the features, yet each wants its own policy."""

from __future__ import annotations

import random

import pytest
import torch

from mdlib.data.acts import Act
from mdlib.dm.encoding import encode
from mdlib.dm.env import DialogueEnv
from mdlib.dm.rl import DialogueTask, make_policy, play_rule
from mdlib.dm.traits import (
    RULES, SPLITS, TRAIT_RANGES, TraitChannel, UserTraits, get_user, policy_gap, rule_name, rule_policy,
    rule_returns, sample_traits, split_seeds, split_users, user_env, user_tasks,
)
from mdlib.errors import MdlibError
from mdlib.stats import mean_ci

CLEAR_HURRIED = UserTraits("clear", noise=0.0, patience=6, confirm_cost=2, answers_yes_no=0.3)
NOISY_INATTENTIVE = UserTraits("noisy", noise=0.5, patience=16, notices_implicit=0.0)
NEVER, EXPLICIT = (0.2, 0.2), (0.8, 0.8)


def test_splits_are_disjoint_and_large_enough():
    seeds = {name: set(split_seeds(name)) for name in SPLITS}
    assert len(seeds["train"]) >= 64 and len(seeds["validation"]) >= 16 and len(seeds["test"]) >= 32
    assert not seeds["train"] & seeds["validation"] and not seeds["train"] & seeds["test"]
    assert not seeds["validation"] & seeds["test"]


def test_users_are_a_pure_function_of_their_seed_and_vary():
    users = split_users("train")
    assert users[3] == sample_traits(split_seeds("train")[3]) == get_user("train", 3)
    for trait, (lo, hi) in TRAIT_RANGES.items():
        values = [u.traits()[trait] for u in users]
        assert all(lo <= v <= hi for v in values)
        assert len(set(values)) > 1, f"every training user has the same {trait}"


def _replay(env, history):
    """Force ``history`` (system acts, observed acts, confidence per turn) on env's system side; features per turn."""
    env.belief.reset()
    env.start()
    feats = []
    for k, turn in enumerate(history):
        if k:
            env.said(turn.system)
        env.belief.update(turn.observed, turn.confidence, turn.system)
        env.observe(turn.observed, turn.confidence)
        feats.append(encode(env))
    return feats


def test_features_do_not_show_the_traits():
    a, b = DialogueEnv("bus", CLEAR_HURRIED), DialogueEnv("bus", NOISY_INATTENTIVE)
    a.reset(5)
    policy = rule_policy(a, (0.6, 0.95))
    policy.reset()
    seen = [encode(a)]
    while not a.done:
        a.step(policy.act(a.belief, a.user_acts))
        if not a.done:
            seen.append(encode(a))
    assert len(seen) > 2
    b.reset(5)
    for got, want in zip(_replay(b, a.history[:len(seen)]), seen):
        for x, y in zip(got, want):
            assert torch.equal(x, y)


def test_reported_confidence_is_the_same_for_clear_and_noisy_speakers():
    env = DialogueEnv("bus", CLEAR_HURRIED)
    clear, noisy = (TraitChannel(env.complexity, env.domain, n) for n in (0.0, 0.5))
    said = [Act("inform", "from_loc", "CMU")]
    out = {}
    for name, channel in (("clear", clear), ("noisy", noisy)):
        heard = [channel(said, random.Random(s)) for s in range(400)]
        out[name] = ([c for _, c in heard], sum(h != said for h, _ in heard) / len(heard))
    assert out["clear"][0] == out["noisy"][0]          # the same confidences, draw for draw
    assert out["clear"][1] == 0.0 and out["noisy"][1] > 0.3  # but not the same errors


def test_trait_users_plug_into_the_training_code():
    model = make_policy(hidden=8, seed=0)
    tasks = user_tasks(model, "validation")
    assert len(tasks) == len(SPLITS["validation"]) and isinstance(tasks[0], DialogueTask)
    assert tasks[0].name == f"bus/user{SPLITS['validation'][0]}"
    gen = torch.Generator().manual_seed(0)
    params = {k: v.requires_grad_() for k, v in model.init_params().items()}
    batch = tasks[0].collect(params, 3, gen)
    assert len(batch.success) == 3
    assert tasks[0].loss(params, batch).requires_grad
    assert tasks[1].evaluate(params, 2, gen)["dialogues"] == 2


def _paired_gap(user, better, worse, n=150):
    seeds = range(n)
    a, b = rule_returns(user, better, seeds)[1], rule_returns(user, worse, seeds)[1]
    return mean_ci([x - y for x, y in zip(a, b)])


def test_different_users_prefer_different_rules_by_a_clear_margin():
    # the clear, impatient user who is annoyed by confirmations: never confirming wins
    m, lo, _ = _paired_gap(CLEAR_HURRIED, NEVER, EXPLICIT)
    assert m > 0.2 and lo > 0
    # the noisy, patient user who lets wrong values said in passing stand: explicit confirmations win
    m, lo, _ = _paired_gap(NOISY_INATTENTIVE, EXPLICIT, NEVER)
    assert m > 0.1 and lo > 0


def test_no_single_rule_is_best_for_every_user():
    rules = [NEVER, (0.2, 0.8), (0.2, 0.95), EXPLICIT]
    r = policy_gap("validation", dialogues=40, rules=rules)
    assert r["rules"] == [rule_name(x) for x in rules]
    assert sum(c > 0 for c in r["users_preferring"].values()) >= 2
    m, lo, _ = r["gap"]
    assert lo > 0 and r["oracle_return"] > r["single_return"] + 0.03


def test_rule_names_and_thresholds():
    assert rule_name(NEVER) == "never" and rule_name((0.2, 0.95)) == "implicit<0.95"
    assert rule_name(EXPLICIT) == "explicit<0.8" and rule_name((0.5, 0.8)) == "explicit<0.5,implicit<0.8"
    assert len(set(map(rule_name, RULES))) == len(RULES)
    env = DialogueEnv("bus", CLEAR_HURRIED)
    policy = rule_policy(env, NEVER)
    success, turns, _, counts = play_rule(env, policy, range(20))
    assert not counts["explicit_confirm"] and not counts["implicit_confirm"]


@pytest.mark.parametrize("kwargs, needle", [
    ({"noise": 0.7}, "noise"), ({"patience": 3}, "patience"), ({"patience": 7.5}, "patience"),
    ({"confirm_cost": -1}, "confirm_cost"), ({"answers_yes_no": 1.5}, "answers_yes_no"),
    ({"notices_implicit": -0.1}, "notices_implicit"), ({"asr_acc": 0.9}, "shared"),
])
def test_bad_traits_are_refused(kwargs, needle):
    with pytest.raises(MdlibError, match=needle) as e:
        UserTraits("u", **kwargs)
    assert "\n" not in str(e.value)


def test_unknown_split_and_bad_index_are_refused():
    with pytest.raises(MdlibError, match="unknown user split 'dev'.*train, validation, test"):
        split_users("dev")
    for index in (-1, 16, "0"):
        with pytest.raises(MdlibError, match=r"split 'validation' has users 0\.\.15"):
            get_user("validation", index)
    with pytest.raises(MdlibError, match="user index"):
        user_env("test", 32)
    with pytest.raises(MdlibError, match="dialogues"):
        policy_gap("test", dialogues=0)


def _user(traits, seed=0):
    env = DialogueEnv("bus", traits)
    env.reset(seed)
    return env.user, env.user.goals[0]["constraints"]


def _ask(cons, right=True):
    return [Act("explicit_confirm", "from_loc", cons["from_loc"] if right else "nowhere")]


WRONG_IN_PASSING = [Act("implicit_confirm", "from_loc", "nowhere"), Act("request", "to_loc")]


def test_each_trait_changes_what_the_user_does():
    user, cons = _user(UserTraits("deaf", answers_yes_no=0.0))
    assert not {a.act for a in user.step(_ask(cons))} & {"confirm", "disconfirm"}
    user, cons = _user(UserTraits("polite"))
    assert [a.act for a in user.step(_ask(cons))] == ["confirm"]
    user, _ = _user(UserTraits("inattentive", notices_implicit=0.0))
    assert "disconfirm" not in {a.act for a in user.step(WRONG_IN_PASSING)}
    user, _ = _user(UserTraits("attentive"))
    assert "disconfirm" in {a.act for a in user.step(WRONG_IN_PASSING)}
    user, cons = _user(UserTraits("annoyed", patience=6, confirm_cost=3))
    user.step(_ask(cons))
    assert user.step(_ask(cons)) == [Act("goodbye")] and user.gave_up
    user, _ = _user(UserTraits("trusting"))
    assert user.step([Act("query"), Act("no_result")]) == [Act("goodbye")] and not user.success
