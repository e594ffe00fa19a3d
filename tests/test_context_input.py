"""Context-only input (DAML's protocol): no leak of the answer, the belief and the database
result in the source, delexicalisation that round-trips, acts input unchanged, success F1
and entity F1 on uncopyable values, and ``train``/``adapt --input context`` end to end."""

import hashlib
import json

import pytest

from mdlib.cli import main
from mdlib.data.acts import Act
from mdlib.data.context import DB_TOKENS, delexicalise_acts
from mdlib.data.domains import DOMAINS, get_domain
from mdlib.data.pairs import extract_pairs
from mdlib.data.splits import load_split
from mdlib.data.text import placeholder, relexicalise, tokenise
from mdlib.errors import MdlibError
from mdlib.metrics import entity_f1_uncopyable, informed_slots, lexicon_from_domains, success_f1
from mdlib.profiles import get_profile

ALL = ("bus", "restaurant", "weather", "movie", "restaurant_style", "rest_pitt")


def _occurs(needle, hay):
    return any(list(hay[i:i + len(needle)]) == list(needle) for i in range(len(hay) - len(needle) + 1))


def _split_user_turns(src):
    """(the source without the user's words, the user's words): a user may use a value as a
    word ("is it open now?" requests the slot open)."""
    out, words, user = [], [], False
    for tok in src:
        user = tok == "<usr>" or (user and tok not in ("<sys>", "<sep>"))
        (words if user else out).append(tok)
    return out, words


@pytest.fixture(scope="module")
def dialogues():
    return {d: load_split(d, "test")[:20] for d in ALL}


@pytest.mark.parametrize("domain", ALL)
def test_context_source_holds_no_answer_but_the_belief(dialogues, domain):
    dom = get_domain(domain)
    informs = 0
    for dlg in dialogues[domain]:
        turns = dlg["turns"]
        for p in extract_pairs([dlg], input="context"):
            src = p.source(use_acts=False)
            state = turns[p.turn]["state"]
            believed = {v["value"] for v in state.values() if v["value"] is not None}
            for a in p.acts:
                if a.act == "inform" and a.slot in dom.sys_slot_names:
                    informs += 1
                    value = tokenise(a.value)
                    assert not _occurs(value, p.response), (p.dialogue_id, p.turn, a)
                    if a.value not in believed:  # bus: a datetime of 5 and an arrival in 5 minutes
                        assert not _occurs(value, _split_user_turns(src)[0]), (p.dialogue_id, p.turn, a, src)
            for slot in dom.usr_slot_names:
                if state[slot]["value"] is not None:
                    assert _occurs([slot] + tokenise(state[slot]["value"]), src), (slot, src)
            assert src[-1] in DB_TOKENS
            for t in turns[max(0, p.turn - 2):p.turn]:  # a user's yes/no guess at a system slot is hidden too
                for a in t["acts"]:
                    if a.get("act") == "yn_question" and a.get("slot") in dom.sys_slot_names:
                        assert placeholder(a["slot"]) in _split_user_turns(src)[1], (t, src)
            assert not set(src) & {"inform", "implicit_confirm", "request_more"}  # no system act
    assert informs > 0


@pytest.mark.parametrize("domain", ALL)
def test_delexicalisation_round_trips(dialogues, domain):
    placeholders = 0
    for p in extract_pairs(dialogues[domain], input="context"):
        values = [(placeholder(a.slot), tokenise(a.value)) for a in p.acts
                  if a.act == "inform" and a.slot in DOMAINS[domain].sys_slot_names]
        assert relexicalise(p.response, values) == list(p.surface) == p.reference()
        # the database row fills in the same values the reference system informed
        assert p.lexicalise(p.response) == p.reference()
        placeholders += len(informed_slots(p.response))
    assert placeholders > 0


def test_delexicalise_acts_keeps_shared_values_apart():
    toks = tokenise("The bus arrives in 5 minutes and the ride takes 5 minutes.")
    acts = [Act("inform", "arrive_in", "5"), Act("inform", "duration", "5")]
    out, mapping = delexicalise_acts(toks, acts, {"arrive_in", "duration"})
    assert out.count("<slot_arrive_in>") == 1 and out.index("<slot_arrive_in>") < out.index("<slot_duration>")
    assert relexicalise(out, mapping) == toks


def test_acts_input_unchanged_byte_for_byte(dialogues):
    # fingerprint of (source, response, acts) of 120 dialogues, computed with the code before
    # context input existed (git show e0b5b8f:mdlib/data/pairs.py)
    h = hashlib.sha256()
    for d in ALL:
        for p in extract_pairs(dialogues[d], context_turns=2):
            h.update(json.dumps([p.source(), list(p.response), p.act_tokens()]).encode())
            assert (p.belief, p.surface, p.fill) == ((), (), ())
    assert h.hexdigest() == "cf1a6de2212de6860878610e7ebdcd75957a3e080a25e965cdd992646a2a750e"
    p = extract_pairs(dialogues["movie"][:1])[7]
    assert " ".join(p.source()) == ("<sys> from which country ? <usr> germany . <sep> implicit_confirm country "
                                    "germany query inform company walt disney request_more")


def test_success_f1_hand_made():
    gold = [{"rating", "company"}, {"director"}]
    assert success_f1(gold, gold) == 1.0
    assert success_f1([{"rating"}, {"director"}], gold) == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))  # missing one
    assert success_f1([{"rating", "company", "director"}, {"director"}], gold) == pytest.approx(2 * 3 / (2 * 3 + 1))
    assert success_f1([set()], [set()]) is None
    assert informed_slots(tokenise("the rating is <slot_rating> .")) == {"rating"}


def test_dialogue_success_f1_on_references(dialogues):
    from mdlib.evaluation import dialogue_success_f1

    for mode in ("acts", "context"):
        pairs = extract_pairs(dialogues["movie"], input=mode)
        assert dialogue_success_f1(pairs, [list(p.response) for p in pairs]) == 1.0
        silent = [[t for t in p.response if not t.startswith("<slot_")] if mode == "context"
                  else ["ok"] for p in pairs]
        assert dialogue_success_f1(pairs, silent) == 0.0


def test_entity_f1_uncopyable(dialogues):
    lex = lexicon_from_domains(["movie"])
    acts = extract_pairs(dialogues["movie"], input="acts")
    refs = [p.reference() for p in acts]
    # acts input: every reference value is in the source, nothing is left to score
    assert entity_f1_uncopyable(refs, refs, [p.source() for p in acts], lex) is None
    ctx = extract_pairs(dialogues["movie"], input="context")
    assert entity_f1_uncopyable(refs, refs, [p.source(False) for p in ctx], lex) == 1.0
    # a copied value does not count; an uncopyable one does
    hyp, ref, src = [tokenise("germany , walt disney")], [tokenise("germany , mgm")], [["germany"]]
    assert entity_f1_uncopyable(hyp, ref, src, lex) == 0.0
    assert entity_f1_uncopyable(ref, ref, src, lex) == 1.0


def test_input_setting_is_checked():
    with pytest.raises(MdlibError, match="input must be one of acts, context"):
        get_profile("smoke").replace(input="belief")
    with pytest.raises(MdlibError, match="input must be one of"):
        extract_pairs([], input="acts+values")
    smoke = get_profile("smoke")
    assert smoke.input == "context" and not smoke.use_acts  # DAML's input is the default
    assert smoke.with_inputs({"use_acts": True, "context_turns": 2}).input == "acts"  # runs saved before
    assert smoke.replace(input="acts").use_acts
    assert smoke.with_inputs({"input": "acts"}).use_acts


def test_evaluate_acts_input_has_no_uncopyable_f1(dialogues):
    from mdlib.evaluation import evaluate, new_model, protocol_vocab

    prof = get_profile("smoke").replace(input="acts")
    vocab = protocol_vocab(prof)
    res = evaluate(new_model(vocab, prof, 0), None, dialogues["movie"][:2], vocab, prof)
    assert res["entity_f1_uncopyable"] is None and "success_f1" in res


def test_train_and_adapt_with_context_input(tmp_path, capsys):
    run, out = tmp_path / "ctx", tmp_path / "res.json"
    assert main(["train", "--method", "pretrain", "--profile", "smoke", "--out", str(run)]) == 0  # the default
    assert json.loads((run / "config.json").read_text())["inputs"]["input"] == "context"
    vocab = json.loads((run / "vocab.json").read_text())["itos"]
    assert "<slot_company>" in vocab and "<db_many>" in vocab
    assert main(["adapt", "--checkpoint", str(run), "--target", "movie", "--k-shot", "1", "--input", "context",
                 "--samples", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"entity_f1", "entity_f1_uncopyable", "success_f1", "bleu"} <= set(res)
    assert all("inform" not in s["source"].split() for s in res["samples"])
    capsys.readouterr()
    assert main(["adapt", "--checkpoint", str(run), "--target", "movie", "--k-shot", "1", "--input", "acts",
                 "--out", str(tmp_path / "x.json")]) == 1
    assert "trained with input 'context'" in capsys.readouterr().err


def test_database_count_from_the_belief_matches_the_queries(dialogues):
    from mdlib.data.context import match_count

    queried = 0
    for d in ALL:
        for dlg in dialogues[d]:
            for t in dlg["turns"]:
                if "kb" in t:
                    queried += 1
                    assert match_count(d, t["state"], None) == t["kb"]["count"], (dlg["id"], t)
    assert queried > 0
