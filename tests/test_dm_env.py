"""The dialogue-policy environment (mdlib.dm.env), its encoding, policy network and CLI."""

from __future__ import annotations

import json

import pytest
import torch

from mdlib.cli import main
from mdlib.data.acts import Act
from mdlib.data.simulator import BeliefTracker, ThresholdPolicy
from mdlib.dm import metarl
from mdlib.dm.encoding import GLOBAL_DIM, SLOT_DIM, encode
from mdlib.dm.env import GLOBAL_ACTS, SLOT_ACTS, DialogueEnv
from mdlib.dm.policy import choose
from mdlib.dm.population import POPULATIONS, get_population
from mdlib.dm.rl import DialogueTask, evaluate_rule, make_policy, run_episodes
from mdlib.errors import MdlibError


def _play_random(env: DialogueEnv, seed: int, action_seed: int) -> list[str]:
    gen = torch.Generator().manual_seed(action_seed)
    env.reset(seed)
    while not env.done:
        _, _, mask = encode(env)
        allowed = mask.nonzero().flatten()
        env.step(int(allowed[torch.randint(len(allowed), (1,), generator=gen)]))
    return env.transcript() + [str(env.success)]


@pytest.mark.parametrize("users", ["clean", "mix", "noisy"])
def test_env_is_deterministic_per_seed(users):
    env = DialogueEnv("bus", users)
    a = _play_random(env, seed=7, action_seed=0)
    b = _play_random(DialogueEnv("bus", users), seed=7, action_seed=0)
    assert a == b
    others = [_play_random(env, seed=s, action_seed=0) for s in range(8, 13)]
    assert any(o != a for o in others)


def test_rule_policy_succeeds_with_clean_users():
    """Measured: the threshold policy succeeds in 300 of 300 clean dialogues in each of bus,
    restaurant, weather and movie (about 3.7-4.7 turns). The test asks for 95% of 100."""
    for domain in ("restaurant", "movie"):
        r = evaluate_rule(domain, "clean", 100)
        assert r["success"] >= 0.95, (domain, r)
        # the reward is the success bonus minus the cost of every system turn
        assert r["return"] == pytest.approx(r["success"] * 1.0 - 0.05 * r["turns"])


def test_noisy_users_are_harder_for_the_rule_policy():
    clean = evaluate_rule("movie", "clean", 100)
    noisy = evaluate_rule("movie", "noisy", 100)
    assert noisy["success"] < clean["success"] - 0.3


def test_invalid_actions_are_refused():
    env = DialogueEnv("restaurant", "clean").reset(0)
    with pytest.raises(MdlibError, match="not valid in domain 'restaurant'"):
        env.step(Act("request", "genre"))           # a movie slot
    with pytest.raises(MdlibError, match="not valid"):
        env.step(Act("dance"))
    with pytest.raises(MdlibError, match="not valid"):
        env.step([Act("inform", "loc", "Boston")])  # inform is for system slots
    with pytest.raises(MdlibError, match="out of range"):
        env.step(env.n_actions)
    with pytest.raises(MdlibError, match="expected an action index"):
        env.step("request")
    with pytest.raises(MdlibError, match="empty"):
        env.step([])
    assert env.turn == 0  # nothing was played
    env.step(Act("goodbye"))                        # a valid act ends the dialogue
    assert env.done and not env.success
    with pytest.raises(MdlibError, match="after the dialogue ended"):
        env.step(0)
    with pytest.raises(MdlibError, match="before reset"):
        DialogueEnv("bus").step(0)


def test_unknown_names_and_bad_episode_counts_are_refused():
    with pytest.raises(MdlibError, match="unknown domain 'mars'"):
        DialogueEnv("mars")
    with pytest.raises(MdlibError, match="unknown user population 'aliens'"):
        DialogueEnv("bus", "aliens")
    with pytest.raises(MdlibError, match="patience"):
        POPULATIONS["clean"].__class__("x", patience=0)
    model = make_policy()
    task = DialogueTask(model, "bus", "clean")
    gen = torch.Generator().manual_seed(0)
    for bad in (0, -2):
        with pytest.raises(MdlibError, match="episodes"):
            task.collect(model.init_params(), bad, gen)
        with pytest.raises(MdlibError, match="episodes"):
            evaluate_rule("bus", "clean", bad)
    with pytest.raises(MdlibError, match="episodes"):
        metarl.adapt(task, model.init_params(), -1, 10, 1.0, gen)


def test_populations_map_to_simulator_knobs():
    noisy = get_population("noisy").complexity()
    assert noisy.asr_acc == 0.5 and noisy.patience == 8
    assert get_population("clean").complexity().asr_acc == 1.0
    mix = get_population("mix").complexity()
    assert (mix.asr_acc, mix.yn_question, mix.dont_care) == (0.7, 0.4, 0.1)


def test_env_reuses_the_data_layer_and_scores_success():
    env = DialogueEnv("movie", "clean").reset(3)
    assert isinstance(env.belief, BeliefTracker)
    policy = ThresholdPolicy(env.domain, env.db)
    policy.reset()
    total = 0.0
    while not env.done:
        total += env.step(policy.act(env.belief, env.user_acts)).reward
    assert env.success and env.user.success
    assert total == pytest.approx(1.0 - 0.05 * env.turn)
    text = env.transcript(text=True)
    assert text[0].startswith("SYS:") and len(text) == 2 * env.turn + 2


def test_one_network_serves_domains_with_different_slot_sets():
    model = make_policy(hidden=16, seed=0)
    params = model.init_params()
    for domain, n_slots in (("restaurant", 2), ("movie", 3), ("bus", 3)):
        env = DialogueEnv(domain, "mix").reset(0)
        sf, gf, mask = encode(env)
        assert sf.shape == (n_slots, SLOT_DIM) and gf.shape == (GLOBAL_DIM,)
        assert mask.shape == (len(GLOBAL_ACTS) + n_slots * len(SLOT_ACTS),) == (env.n_actions,)
        gen = torch.Generator().manual_seed(0)
        acts = choose(model, params, sf[None].expand(500, -1, -1), gf[None].expand(500, -1),
                      mask[None].expand(500, -1), gen=gen)
        assert bool(mask[acts].all())  # masked actions are never chosen


def test_batched_rollouts_match_the_seeds():
    model = make_policy(seed=1)
    params = model.init_params()
    envs = [DialogueEnv("weather", "mix") for _ in range(3)]
    a = run_episodes(model, params, envs, [5, 6, 7], gen=torch.Generator().manual_seed(0))
    b = run_episodes(model, params, envs, [5, 6, 7], gen=torch.Generator().manual_seed(0))
    assert a.turns == b.turns and torch.equal(a.actions, b.actions)
    assert a.actions.shape[0] == sum(a.turns) == a.slot_feats.shape[0]


def test_reinforce_learns_restaurant_with_clean_users():
    """Measured (seed 0, 100 evaluation dialogues): before learning, success 0.68 in 14.3
    turns (return -0.03); after 300 dialogues of REINFORCE (batches of 10, lr 3) success
    1.00 in 3.8 turns (return 0.81). The test asks for +0.5 return and under 6 turns."""
    model = make_policy(seed=0)
    task = DialogueTask(model, "restaurant", "clean")
    curve = metarl.adaptation_curve(task, model.init_params(), [0, 300], batch=10, lr=3.0,
                                    eval_episodes=100, gen=torch.Generator().manual_seed(0))
    assert curve[1]["return"] > curve[0]["return"] + 0.5
    assert curve[1]["turns"] < 6 < curve[0]["turns"]
    assert curve[1]["success"] >= 0.9


def test_cli_policy_writes_curves_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "rule.json"
    assert main(["policy", "--method", "rule", "--target", "movie", "--users", "clean", "--episodes", "20",
                 "--eval-episodes", "20", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [p["episodes"] for p in res["curve"]] == [0, 10, 20]
    assert {"success", "success_ci", "turns", "turns_ci", "return", "return_ci"} <= set(res["curve"][0])
    out2 = tmp_path / "maml.json"
    assert main(["policy", "--method", "maml", "--target", "movie", "--users", "noisy", "--episodes", "10",
                 "--eval-episodes", "5", "--iterations", "1", "--out", str(out2)]) == 0
    assert json.loads(out2.read_text())["curve"][-1]["episodes"] == 10
    capsys.readouterr()
    for bad in (["--method", "dqn"], ["--target", "mars"], ["--users", "robots"], ["--episodes", "0"],
                ["--episodes", "-5"]):
        assert main(["policy", *bad, "--out", str(tmp_path / "x.json")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
