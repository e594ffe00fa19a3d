"""The input parser on hand-made utterances; the learned parser trains and adapts."""

from __future__ import annotations

import random

import pytest

from mdlib.data.acts import Act
from mdlib.data.complexity import get_complexity
from mdlib.data.domains import Database, get_domain
from mdlib.data.simulator import UserSimulator
from mdlib.data.templates import realise
from mdlib.system.parser import (LearnedParser, LexiconParser, ParserNet, act_slot_f1, adapt_parser,
                                 featurise, find_mentions, train_parser, user_turn_examples)
from mdlib.data.text import tokenise


@pytest.mark.parametrize("domain, text, last, expected", [
    ("movie", "I want a comedy from the 90s", [], {Act("inform", "genre", "Comedy"), Act("inform", "years", "90s")}),
    ("movie", "yes", [Act("explicit_confirm", "genre", "Comedy")], {Act("confirm")}),
    ("movie", "Nope.", [], {Act("disconfirm")}),
    ("movie", "goodbye", [], {Act("goodbye")}),
    ("movie", "Hi there.", [], {Act("greet")}),
    ("movie", "I don't care about the country.", [], {Act("inform", "country", None)}),
    ("movie", "Who is the director?", [], {Act("request", "director")}),
    ("movie", "Is it directed by A?", [], {Act("yn_question", "director", "A")}),
    ("movie", "I like War movies, oh sorry, I mean Drama.", [], {Act("inform", "genre", "Drama")}),
    ("bus", "I'm leaving from Downtown.", [], {Act("inform", "from_loc", "Downtown")}),
    ("bus", "I need to get to CMU.", [], {Act("inform", "to_loc", "CMU")}),
    ("bus", "Craig.", [Act("request", "to_loc")], {Act("inform", "to_loc", "Craig")}),
    ("bus", "How long do I have to wait?", [], {Act("request", "arrive_in")}),
    ("restaurant", "Thanks, that's all.", [], {Act("satisfy")}),
])
def test_lexicon_parser_on_hand_made_utterances(domain, text, last, expected):
    parse = LexiconParser(domain).parse(text, last)
    assert set(parse.acts) == expected
    assert 0.0 < parse.confidence <= 1.0


def test_empty_and_unknown_text_parse_to_nothing_with_low_confidence():
    p = LexiconParser("movie")
    assert p.parse("").acts == [] and p.parse("").confidence == 0.0
    nothing = p.parse("purple elephants sing")
    assert nothing.acts == [] and nothing.confidence < 0.5


def test_mentions_copy_values_and_keep_ambiguity():
    toks = tokenise("from Downtown to Forbes and Murray")
    ms = find_mentions(toks, get_domain("bus"))
    assert {(m.slot, m.value) for m in ms} >= {("from_loc", "Downtown"), ("to_loc", "Forbes and Murray")}
    assert any(m.end - m.start == 3 for m in ms)  # the multi-word value is one span


def test_f1_counts_acts_and_slots():
    gold = [[Act("inform", "genre", "Comedy"), Act("greet")]]
    assert act_slot_f1(gold, gold) == {"act_f1": 1.0, "slot_f1": 1.0, "turns": 1}
    half = act_slot_f1([[Act("inform", "genre", "Drama")]], gold)
    assert half["act_f1"] == pytest.approx(2 / 3) and half["slot_f1"] == 0.0


def _dialogues(domain, n, seed):
    dom = get_domain(domain)
    db = Database(dom, 0)
    comp = get_complexity("clean")
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}/{i}")
        user = UserSimulator(dom, db, comp, rng)
        acts = user.reset()
        turns, sys_acts = [], []
        for _ in range(6):
            turns.append({"speaker": "user", "text": realise(dom, "user", acts, rng), "acts": [a.to_dict() for a in acts]})
            sys_acts = [Act("request", dom.usr_slot_names[len(turns) % len(dom.usr_slot_names)])]
            turns.append({"speaker": "system", "text": "x", "acts": [a.to_dict() for a in sys_acts]})
            acts = user.step(sys_acts)
            if not acts:
                break
        out.append({"id": f"{domain}-{i}", "domain": domain, "turns": turns})
    return out


def test_learned_parser_learns_sources_and_adaptation_lowers_target_loss():
    import torch

    torch.manual_seed(0)
    src = [e for d in ("restaurant", "weather") for e in user_turn_examples(_dialogues(d, 40, 0))]
    model, params = train_parser(src, steps=150, seed=0)
    seen = _dialogues("restaurant", 15, 99)
    gold = [[Act.from_dict(a) for a in t["acts"]] for d in seen for t in d["turns"] if t["speaker"] == "user"]
    texts = [t["text"] for d in seen for t in d["turns"] if t["speaker"] == "user"]
    lp = LearnedParser(model, params, "restaurant")
    f1 = act_slot_f1([lp.parse(t).acts for t in texts], gold)
    assert f1["act_f1"] > 0.7 and f1["slot_f1"] > 0.6
    # adaptation through the inner loop on a few target (movie) turns lowers their loss
    target = user_turn_examples(_dialogues("movie", 3, 5))
    from mdlib.system.parser import collate_examples, parser_loss_fn
    batch = collate_examples(target, model.buckets)
    before = float(parser_loss_fn(model)(params, batch))
    adapted = adapt_parser(model, params, target, steps=10, lr=0.1)
    assert float(parser_loss_fn(model)(adapted, batch)) < before
    assert set(adapted) == set(params) and all(not v.requires_grad for v in adapted.values())


def test_featurise_labels_follow_the_gold_acts():
    ex = featurise("Is it directed by A? I want a Comedy.", get_domain("movie"), [],
                   gold=[Act("yn_question", "director", "A"), Act("inform", "genre", "Comedy")])
    roles = {(m.slot, m.value): r for m, r in zip(ex.mentions, ex.role_labels)}
    assert roles[("director", "A")] == 2 and roles[("genre", "Comedy")] == 1
    assert sum(ex.request_labels) == 0 and "<val>" in ex.tokens
    assert isinstance(ParserNet().config, dict)


def test_parser_file_round_trip_and_clear_errors(tmp_path):
    import torch

    from mdlib.errors import MdlibError
    from mdlib.system.parser import load_parser, save_parser

    torch.manual_seed(0)
    net = ParserNet(buckets=64, emb=8, hidden=8)
    params = {k: v.detach() for k, v in net.named_parameters()}
    path = save_parser(tmp_path / "run", net, params, {"domain": "movie", "threshold": 0.4})
    assert path.name == "parser.pt"
    lp = load_parser(tmp_path / "run", "movie")
    assert lp.threshold == 0.4 and all(torch.equal(lp.params[k], params[k]) for k in params)
    text = "I want a comedy from the 90s"
    assert LearnedParser(net, params, "movie", threshold=0.4).parse(text) == lp.parse(text)
    with pytest.raises(MdlibError, match="no such parser file"):
        load_parser(tmp_path / "nothing", "movie")
    bad = dict(params, **{"embed.weight": torch.zeros(3, 8)})
    torch.save({"format": "mdlib-parser-v1", "net": net.config, "params": bad, "config": {}}, tmp_path / "bad.pt")
    with pytest.raises(MdlibError, match="do not fit"):
        load_parser(tmp_path / "bad.pt", "movie")
