"""The simulated user who listens: it understands every template phrasing, its success
matches the act-level user's, garbled words make it fail, and `simulate` refuses bad input."""

from __future__ import annotations

import json
import random

import pytest
import torch

from mdlib.cli import main
from mdlib.data.acts import Act
from mdlib.data.domains import DOMAINS, get_domain
from mdlib.data.templates import realise
from mdlib.system.listener import ACTIONABLE, understand
from mdlib.system.pipeline import DialogueSystem, TemplateGenerator
from mdlib.system.simulation import GarbledGenerator, run_dialogues, scores

#: Phrasings drawn per act: every (slot, act) has at most 5 phrasings, so 40 seeded draws
#: miss one with probability below 5 * (4/5)^40 < 1e-3 (and the draws are fixed).
DRAWS = 40


def _system_acts(domain) -> list[list[Act]]:
    """Every act the system side can say in ``domain``, alone and in the policy's combinations."""
    turns = []
    for s in domain.usr_slots:
        turns.append([Act("request", s.name)])
        turns += [[Act(k, s.name, None)] for k in ("explicit_confirm", "implicit_confirm")]
        turns += [[Act(k, s.name, v)] for v in s.values for k in ("explicit_confirm", "implicit_confirm")]
    for s in domain.sys_slots:
        turns += [[Act("query"), Act("inform", s.name, v), Act("request_more")] for v in s.values]
    first, second = domain.usr_slots[0], domain.usr_slots[-1]
    turns += [[Act("implicit_confirm", first.name, first.values[0]), Act("request", second.name)],
              [Act("query"), Act("no_result")], [Act("request_more")], [Act("goodbye")],
              [Act("query")] + [Act("inform", s.name, s.values[-1]) for s in domain.sys_slots] + [Act("request_more")]]
    return turns


@pytest.mark.parametrize("name", list(DOMAINS))
def test_listener_understands_every_template_phrasing(name):
    """Round trip: acts -> template text (every phrasing) -> the listener's acts."""
    domain = get_domain(name)
    for acts in _system_acts(domain):
        # what the user itself just said: "Do you mean Downtown?" is about the slot it named
        said = [(a.slot, a.value) for a in acts if a.act.endswith("confirm")]
        for draw in range(DRAWS):
            text = realise(domain, "system", acts, random.Random(draw))
            heard = understand(text, domain, said)
            assert [a for a in heard.acts if a.act in ACTIONABLE] == [a for a in acts if a.act in ACTIONABLE], text
            assert heard.unclear == 0, text


def test_listener_reads_unseen_phrasings_and_refuses_gibberish():
    movie = get_domain("movie")
    assert understand("Which decade are you into?", movie).acts == [Act("request", "years")]
    assert understand("So you are after a Comedy, correct?", movie).acts == [Act("explicit_confirm", "genre", "Comedy")]
    assert understand("That one got a rating of 3.", movie).acts == [Act("inform", "rating", "3")]
    assert understand("Sorry, no film fits that, none at all.", movie).acts == [Act("no_result")]
    gibberish = understand("purple colourless ideas.", movie)
    assert gibberish.acts == [] and gibberish.unclear == 1
    # a yes/no question whose value it cannot make out gets a guessed "no" (value "?")
    assert understand("Do you mean Comedx?", movie, [("genre", "Comedy")]).acts == [
        Act("explicit_confirm", "genre", "?")]


#: Tolerance of the listening vs act-level comparison, in success points on the same 80
#: users per domain. With the templates the listener reads every act (the round trip
#: above), so the only differences are turns whose words are truly ambiguous: a bus stop
#: confirmed without saying "from" or "to" ("Okay, Airport.") after the parser put it in
#: the wrong slot is heard by the user as the slot it meant, as a person would; that
#: failed 3 of 200 bus dialogues with seed 0 (docs/simulation.md). 5 points leaves room
#: for other seeds and domains while still failing if the listener misreads a phrasing.
TOLERANCE = 0.05


@pytest.mark.parametrize("name", ["bus", "movie", "restaurant_style"])
def test_listener_success_matches_the_act_level_user_with_templates(name):
    def success(user):
        recs = run_dialogues(DialogueSystem(name, TemplateGenerator(name, 0)), 80, 1, "mix", user=user)
        return sum(r.success for r in recs) / len(recs)

    acts, listener = success("acts"), success("listener")
    assert abs(acts - listener) <= TOLERANCE, (acts, listener)


def _garbled_success(name, p, user):
    system = DialogueSystem(name, GarbledGenerator(TemplateGenerator(name, 0), p, name))
    return scores(run_dialogues(system, 60, 2, "mix", user=user), name)


def test_success_falls_as_words_are_garbled_and_only_for_the_listener():
    s0, s3, s6 = (_garbled_success("movie", p, "listener") for p in (0.0, 0.3, 0.6))
    assert s0["success"] - s3["success"] >= 0.2 and s3["success"] - s6["success"] >= 0.1, (s0, s3, s6)
    assert s0["slot_error"] == 0.0 < s3["slot_error"] < s6["slot_error"]
    assert s3["repeats"] > 0
    # the act-level user reads the acts, so garbled words cannot hurt it: the control that
    # shows the listener's failures come from the words
    assert _garbled_success("movie", 0.6, "acts")["success"] == _garbled_success("movie", 0.0, "acts")["success"]


def test_simulate_command_writes_bounded_intervals(tmp_path, capsys):
    out = tmp_path / "sim.json"
    assert main(["simulate", "--domain", "weather", "--dialogues", "12", "--seed", "3", "--garble", "0.3",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    m = res["metrics"]
    assert set(m) >= {"success", "turns", "return", "bleu", "slot_error"}
    assert 0.0 <= m["success"]["low"] <= m["success"]["mean"] <= m["success"]["high"] <= 1.0
    assert m["turns"]["low"] >= 1 and res["garble"] == 0.3 and res["user"] == "listener"
    assert res["parts"] == {"generator": "templates", "policy": "threshold", "parser": "keyword"}
    assert "success" in capsys.readouterr().out


def _one_line_error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("args, words", [
    (["--domain", "spaceship"], "unknown domain"),
    (["--dialogues", "0"], "--dialogues"),
    (["--garble", "1.5"], "--garble"),
    (["--garble", "-0.1"], "--garble"),
])
def test_simulate_refuses_bad_arguments(tmp_path, capsys, args, words):
    err = _one_line_error(capsys, ["simulate", *args, "--out", str(tmp_path / "x.json"), "--no-progress"])
    assert words in err
    assert not (tmp_path / "x.json").exists()


def test_simulate_refuses_a_generator_for_another_corpus_and_a_policy_for_another_layout(tmp_path, capsys):
    from mdlib.checkpoint import save_checkpoint
    from mdlib.data.text import Vocab
    from mdlib.dm.learned import save_policy
    from mdlib.dm.rl import make_policy
    from mdlib.models.seq2seq import build_model

    vocab = Vocab.build([["hello", "world"]])
    ck = save_checkpoint(tmp_path / "gen.pt", build_model(len(vocab), emb=8, hidden=8), vocab,
                         {"corpus": "shop.jsonl", "sources": ["shop"], "targets": ["returns"],
                          "inputs": {"use_acts": True}})
    err = _one_line_error(capsys, ["simulate", "--checkpoint", str(ck), "--out", str(tmp_path / "x.json")])
    assert "shop, returns" in err and "cannot serve domain 'movie'" in err
    params = {k: v.detach() for k, v in make_policy(8, seed=0).init_params().items()}
    name = next(k for k, v in params.items() if v.dim() == 2)
    params[name] = torch.zeros(params[name].shape[0], params[name].shape[1] + 3)  # another slot layout
    pol = save_policy(tmp_path / "p.policy.pt", params, {"hidden": 8})
    err = _one_line_error(capsys, ["simulate", "--policy", str(pol), "--out", str(tmp_path / "x.json")])
    assert str(pol) in err and "shape" in err


def test_simulate_with_a_parser_file(tmp_path):
    from mdlib.system.parser import ParserNet, save_parser

    torch.manual_seed(0)
    net = ParserNet(buckets=64, emb=8, hidden=8)
    save_parser(tmp_path / "parser", net, dict(net.named_parameters()))
    out = tmp_path / "sim.json"
    assert main(["simulate", "--parser", str(tmp_path / "parser"), "--dialogues", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert json.loads(out.read_text())["parts"]["parser"] == str(tmp_path / "parser")


def test_a_user_who_understands_nothing_asks_to_repeat_until_its_patience_ends():
    from mdlib.data.complexity import get_complexity
    from mdlib.data.domains import Database
    from mdlib.data.simulator import UserSimulator
    from mdlib.system.listener import REPEAT, ListeningUser

    dom = get_domain("movie")
    comp = get_complexity("clean")
    user = ListeningUser(UserSimulator(dom, Database(dom), comp, random.Random(0)))
    user.reset()
    replies = [user.step("purple colourless ideas.") for _ in range(comp.patience)]
    assert replies[0] == [REPEAT] and replies[-1] == [Act("goodbye")]
    assert user.done and not user.success and user.repeats == comp.patience - 1
    # the system's keyword parser reads a request to repeat as nothing
    from mdlib.system.parser import LexiconParser

    for draw in range(20):
        assert LexiconParser("movie").parse(realise(dom, "user", [REPEAT], random.Random(draw))).acts == []


def test_slot_errors_count_missing_and_wrong_values_and_bootstrap_stays_in_bounds():
    from mdlib.data.text import tokenise
    from mdlib.metrics import lexicon_from_domains, slot_errors
    from mdlib.stats import bootstrap

    lex = lexicon_from_domains(["movie"])
    assert slot_errors(["Comedy"], tokenise("Okay, Comedy."), lex) == (0, 1)
    assert slot_errors(["Comedy"], tokenise("Okay, Drama."), lex) == (2, 1)   # missing + wrong
    assert slot_errors(["Comedy", "90s"], tokenise("Okay."), lex) == (2, 2)
    assert slot_errors(["A"], tokenise("It is directed by A."), lex) == (0, 0)   # "a" cannot be checked
    value, low, high = bootstrap([1.0] * 18 + [0.0] * 2, lambda xs: sum(xs) / len(xs), n_boot=500)
    assert value == 0.9 and 0.0 <= low < 0.9 < high <= 1.0


def test_simulate_speaks_through_a_generator_checkpoint(tmp_path):
    """A protocol run's checkpoint serves every domain; the listener hears its (untrained) words."""
    from mdlib.checkpoint import save_checkpoint
    from mdlib.data.text import Vocab
    from mdlib.models.seq2seq import build_model

    torch.manual_seed(0)
    vocab = Vocab.build([["which", "genre", "?", "okay", "comedy", "."]])
    ck = save_checkpoint(tmp_path / "gen.pt", build_model(len(vocab), emb=8, hidden=8), vocab,
                         {"corpus": None, "sources": ["bus"], "targets": [], "profile_name": "smoke",
                          "inputs": {"use_acts": True, "context_turns": 1, "max_src": 40}})
    out = tmp_path / "sim.json"
    assert main(["simulate", "--checkpoint", str(ck), "--dialogues", "2", "--out", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["parts"]["generator"] == str(ck) and res["metrics"]["success"]["mean"] == 0.0
