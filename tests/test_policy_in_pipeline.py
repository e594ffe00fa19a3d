"""A learned dialogue policy inside the end-to-end system (mdlib.dm.learned), its file, the CLI."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import subprocess
import sys

import pytest
import torch

from mdlib.cli import main
from mdlib.data.acts import SYSTEM_ACTS, Act
from mdlib.data.simulator import ThresholdPolicy
from mdlib.dm import metarl
from mdlib.dm.encoding import encode
from mdlib.dm.env import GLOBAL_ACTS, SLOT_ACTS, DialogueEnv
from mdlib.dm.learned import LearnedPolicy, TrainedPolicy, load_policy, save_policy
from mdlib.dm.rl import make_policy, run_episodes
from mdlib.errors import MdlibError
from mdlib.paths import ROOT
from mdlib.system.pipeline import DialogueSystem, TemplateGenerator, simulate


def _forced(rank: dict[str, float], hidden: int = 8) -> TrainedPolicy:
    """A policy whose logits are constants: ``rank[act]`` for every action of that kind."""
    model = make_policy(hidden, seed=0)
    params = {k: torch.zeros_like(v) for k, v in model.init_params().items()}
    params["global_head.2.bias"] = torch.tensor([float(rank[a]) for a in GLOBAL_ACTS])
    params["slot_head.bias"] = torch.tensor([float(rank[a]) for a in SLOT_ACTS])
    return TrainedPolicy(model, params, {"hidden": hidden})


#: sha256 of the fingerprint below, computed with the environment of commit 626bae3 (before
#: SystemState was factored out of DialogueEnv); notebook 06's results depend on it. If the
#: environment is changed on purpose, re-run notebook 06 and update the hash.
ENV_FINGERPRINT = "d60c5d3bfdd16b950839cd6978c6b3fc0344be5067b965c3845321a7f6bb97fe"


def test_env_behaviour_is_unchanged_by_the_shared_system_state():
    """Random allowed actions in 3 domains x 3 populations x 6 seeds: features, mask, pending,
    asked, queries, rewards, infos and transcripts hash exactly as before the refactor."""
    h = hashlib.sha256()
    for domain in ("movie", "restaurant", "bus"):
        for users in ("clean", "mix", "noisy"):
            env = DialogueEnv(domain, users)
            for seed in range(6):
                rng = random.Random(seed)
                env.reset(seed)
                while not env.done:
                    sf, gf, mask = encode(env)
                    h.update(repr((sf.tolist(), gf.tolist(), env.pending, env.asked, env.last_query)).encode())
                    r = env.step(rng.choice(mask.nonzero().flatten().tolist()))
                    h.update(repr((r.reward, r.done, r.info)).encode())
                h.update(repr((env.success, env.transcript())).encode())
    assert h.hexdigest() == ENV_FINGERPRINT


def _random(seed: int = 0, hidden: int = 16) -> TrainedPolicy:
    model = make_policy(hidden, seed)
    return TrainedPolicy(model, model.init_params(), {"hidden": hidden, "domain": "movie"})


def _valid(domain, a: Act) -> bool:
    if a.act not in SYSTEM_ACTS:
        return False
    if a.act in SLOT_ACTS:
        return a.slot in domain.usr_slot_names
    if a.act == "inform":
        return a.slot in domain.sys_slot_names and a.value in domain.slot(a.slot).values
    return a.slot is None


def test_learned_policy_holds_a_full_simulated_text_dialogue():
    system = DialogueSystem("movie", TemplateGenerator("movie"), policy=_random(0))
    assert isinstance(system.policy, LearnedPolicy)
    res = simulate(system, n=3, seed=1, complexity="mix", transcripts=1)
    assert res["n_dialogues"] == 3 and res["turns"] >= 1
    assert res["transcripts"][0].startswith("SYS: ") and "USR: " in res["transcripts"][0]
    for rec in system.history:
        assert rec.system_acts and all(_valid(system.domain, a) for a in rec.system_acts), rec.system_acts
        assert rec.system_text
    # the default stays the threshold policy; anything else is refused
    assert isinstance(DialogueSystem("movie", TemplateGenerator("movie")).policy, ThresholdPolicy)
    with pytest.raises(MdlibError, match="expected None .* or a TrainedPolicy"):
        DialogueSystem("movie", TemplateGenerator("movie"), policy="my.policy.pt")


def _lockstep(trained: TrainedPolicy, env: DialogueEnv, seed: int) -> list[tuple[int, torch.Tensor]]:
    """Play the env with the LearnedPolicy reading the env's belief; check both sides agree every turn.

    Returns:
        ``(chosen action, the env's action mask)`` per turn.
    """
    env.reset(seed)
    policy = trained.bind(env.domain, env.db)
    assert policy.reset() == env.last_system == [Act("greet")]
    chosen = []
    while not env.done:
        before = copy.deepcopy(env)
        mask = encode(env)[2]
        acts = policy.act(env.belief, env.user_acts, confidence=env.confidence)
        assert acts == before.system_acts(policy.last_action)    # what the env says for that action
        result = env.step(policy.last_action)
        assert result.info["system"] == acts
        # the features' inputs agree: what the policy heard, what it still owes, what it has said
        for name in ("user_acts", "confidence", "pending"):
            assert getattr(policy.state, name) == getattr(before, name), name
        # like ThresholdPolicy's, the policy's last_query is this turn's query (the env keeps the latest)
        assert policy.last_query == (before.last_query if acts[0] == Act("query") else None)
        for name in ("asked", "turn", "last_system"):
            assert getattr(policy.state, name) == getattr(env, name), name
        chosen.append((policy.last_action, mask))
    return chosen


@pytest.mark.parametrize("rank", [
    {"inform": 5, "request_more": 1, "request": 0, "explicit_confirm": -1, "implicit_confirm": -2},
    {"inform": -5, "request_more": -4, "request": 0, "explicit_confirm": 3, "implicit_confirm": 1},
    {"inform": 2, "request_more": -4, "request": 0, "explicit_confirm": -1, "implicit_confirm": 3},
])
def test_forced_action_says_exactly_what_the_env_says(rank):
    trained = _forced(rank)
    kinds = set()
    for users, seed in (("mix", 0), ("mix", 1), ("noisy", 2)):
        env = DialogueEnv("movie", users)
        logits = torch.tensor([float(rank[a.act]) for a in env.actions])
        for i, mask in _lockstep(trained, env, seed):
            # the ranking decides among the allowed actions (inform needs a request, confirmations a value)
            assert i == int(logits.masked_fill(~mask, -1e9).argmax())
            kinds.add(env.actions[i].act)
    assert max(rank, key=rank.get) in kinds


def test_learned_policy_replays_the_envs_greedy_rollouts():
    """Same features, same greedy choices: the pipeline's policy = run_episodes(greedy=True)."""
    trained = _random(seed=3)
    for domain, users, seed in (("movie", "noisy", 0), ("restaurant", "mix", 4), ("bus", "mumbling", 5)):
        batch = run_episodes(trained.model, trained.params, [DialogueEnv(domain, users)], [seed], greedy=True)
        assert [i for i, _ in _lockstep(trained, DialogueEnv(domain, users), seed)] == batch.actions.tolist()


def test_learned_policy_needs_confidence_and_answers_goodbye():
    env = DialogueEnv("movie", "clean").reset(0)
    policy = _random().bind(env.domain, env.db)
    policy.reset()
    with pytest.raises(MdlibError, match="confidence= is required"):
        policy.act(env.belief, env.user_acts)
    assert policy.act(env.belief, [Act("goodbye")], confidence=0.9) == [Act("goodbye")]
    assert ThresholdPolicy(env.domain, env.db).act(env.belief, [Act("goodbye")], confidence=0.9) == [Act("goodbye")]


def test_save_load_round_trip_gives_identical_dialogues(tmp_path):
    trained = _random(seed=2)
    path = save_policy(tmp_path / "p.policy.pt", trained.params, trained.config)
    loaded = load_policy(path)
    assert loaded.config == {"hidden": 16, "domain": "movie"}
    assert all(torch.equal(loaded.params[k], v) for k, v in trained.params.items())
    runs = []
    for t in (trained, loaded):
        system = DialogueSystem("movie", TemplateGenerator("movie"), policy=t)
        res = simulate(system, n=2, seed=5, complexity="mix", transcripts=2)
        runs.append(res["transcripts"])
    assert runs[0] == runs[1]


def test_loader_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(MdlibError, match=r"nope\.pt: no such policy file; make one with `python -m mdlib policy"):
        load_policy(tmp_path / "nope.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(MdlibError, match=r"text\.pt: not an mdlib policy file"):
        load_policy(tmp_path / "text.pt")
    torch.save({"format": "mdlib-checkpoint-v1", "state_dict": {}}, tmp_path / "gen.pt")
    with pytest.raises(MdlibError, match=r"gen\.pt: not an mdlib policy file \(expected format 'mdlib-policy-v1', "
                                         r"found 'mdlib-checkpoint-v1'\)"):
        load_policy(tmp_path / "gen.pt")
    params = _random(hidden=16).params
    save_policy(tmp_path / "size.pt", params, {"hidden": 32})
    with pytest.raises(MdlibError, match=r"size\.pt: parameter '.*' has shape \(16, .*\), expected \(32, .*hidden 32"):
        load_policy(tmp_path / "size.pt")
    save_policy(tmp_path / "keys.pt", {k: v for k, v in params.items() if k != "slot_head.bias"}, {"hidden": 16})
    with pytest.raises(MdlibError, match=r"keys\.pt: parameters do not fit .*missing \['slot_head.bias'\]"):
        load_policy(tmp_path / "keys.pt")
    with pytest.raises(MdlibError, match="hidden size"):
        save_policy(tmp_path / "x.pt", params, {})


def test_cli_policy_writes_the_adapted_policy(tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["--target", "movie", "--users", "clean", "--iterations", "1", "--episodes", "1",
            "--eval-episodes", "1", "--seed", "0"]
    assert main(["policy", "--method", "scratch", *args, "--out", str(out)]) == 0
    assert "r.policy.pt" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert set(res) == {"method", "target", "users", "seed", "curve", "config", "seconds"}
    loaded = load_policy(tmp_path / "r.policy.pt")
    assert loaded.config["hidden"] == 32 and loaded.config["domain"] == "movie"
    # the file holds the policy adapted with the most dialogues, as run_method returns it
    ref = metarl.run_method("scratch", "movie", "clean", [0, 1], 0, metarl.PolicyConfig(iterations=1, eval_episodes=1),
                            keep_params=True)["params"]
    assert all(torch.equal(loaded.params[k], ref[k].detach()) for k in ref)
    assert not torch.equal(loaded.params["slot_head.bias"], make_policy(32, 0).init_params()["slot_head.bias"])
    assert main(["policy", "--method", "rule", *args, "--out", str(tmp_path / "rule.json")]) == 0
    assert not (tmp_path / "rule.policy.pt").exists()   # nothing learned, nothing written


def _chat(*args: str, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mdlib", "chat", "--domain", "movie", "--templates", *args],
                          input=data, capture_output=True, timeout=120, cwd=ROOT)


def test_chat_with_a_policy_file_and_a_bad_one(tmp_path):
    always = _forced({"inform": -5, "request_more": 5, "request": 0, "explicit_confirm": 0, "implicit_confirm": 0})
    path = save_policy(tmp_path / "more.policy.pt", always.params, {"hidden": 8, "domain": "movie"})
    proc = _chat("--policy", str(path), "--show-acts", data=b"hi\nI want a comedy\n")
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout.decode().splitlines()) == 2
    err = proc.stderr.decode()
    assert err.count("system acts: request_more") == 2 and "Traceback" not in err  # the file's policy speaks
    (tmp_path / "bad.pt").write_bytes(b"\x00 not a policy")
    for bad in (tmp_path / "bad.pt", tmp_path / "missing.policy.pt"):
        proc = _chat("--policy", str(bad), data=b"hi\n")
        err = proc.stderr.decode().strip()
        assert proc.returncode == 1 and proc.stdout == b""
        assert err.startswith(f"error: {bad}: ") and len(err.splitlines()) == 1, err
