"""Text preprocessing and pair extraction (mdlib.data.text, mdlib.data.pairs)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlib.data.pairs import extract_pairs
from mdlib.data.text import (SPECIALS, Vocab, delexicalise, detokenise, normalise, relexicalise,
                             tokenise)
from mdlib.errors import MdlibError

ALPHABET = st.characters(whitelist_categories=("Ll", "Lu", "Nd", "Po", "Pd", "Zs", "Sm"),
                         max_codepoint=0x24F)


def test_normalise_and_tokenise():
    assert normalise("  Where   ARE you\tgoing? ") == "where are you going?"
    assert tokenise("I don't know, <slot_loc>?") == ["i", "don't", "know", ",", "<slot_loc>", "?"]
    assert detokenise(["where", "are", "you", "?"]) == "where are you?"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_tokenise_detokenise_round_trip(text):
    toks = tokenise(text)
    assert tokenise(detokenise(toks)) == toks


@given(st.lists(st.sampled_from(["hello", "don't", "3", ",", ".", "?", "<slot_loc>", "-", "new"]),
                max_size=20))
def test_detokenise_then_tokenise_is_identity_on_tokens(tokens):
    assert tokenise(detokenise(tokens)) == tokens


def test_vocab_specials_unknown_and_cutoff(tmp_path):
    v = Vocab.build([["a", "b", "b"], ["b", "c"]], min_freq=2)
    assert tuple(v.itos[:7]) == SPECIALS and v.pad_id == 0
    assert v.itos[7:] == ["b"]
    assert v.encode(["b", "zzz"]) == [7, v.unk_id]
    assert v.decode([7, 999]) == ["b", "<unk>"]
    path = v.save(tmp_path / "v.json")
    assert Vocab.load(path) == v
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(MdlibError, match="bad.json"):
        Vocab.load(tmp_path / "bad.json")
    with pytest.raises(MdlibError, match="special"):
        Vocab(["a", "b"])


VALUES = {"loc": ["new york", "boston", "york"], "food_pref": ["thai", "hot pot"]}
WORDS = st.sampled_from(["new", "york", "boston", "thai", "hot", "pot", "food", "in", "the", "?"])


def test_delexicalise_longest_match():
    toks, mapping = delexicalise("Thai food in New York?", VALUES)
    assert toks == ["<slot_food_pref>", "food", "in", "<slot_loc>", "?"]
    assert mapping == [("<slot_food_pref>", ["thai"]), ("<slot_loc>", ["new", "york"])]


@given(st.lists(WORDS, max_size=25))
def test_delexicalise_relexicalise_round_trip(tokens):
    delex, mapping = delexicalise(tokens, VALUES)
    assert relexicalise(delex, mapping) == tokens


def _dialogue():
    return {"id": "d1", "domain": "movie", "turns": [
        {"speaker": "system", "text": "Hello!", "acts": [{"act": "greet"}]},
        {"speaker": "user", "text": "I want a Horror movie.",
         "acts": [{"act": "inform", "slot": "genre", "value": "Horror"}]},
        {"speaker": "system", "text": "Horror, from which years?",
         "acts": [{"act": "implicit_confirm", "slot": "genre", "value": "Horror"},
                  {"act": "request", "slot": "years"}]},
        {"speaker": "user", "text": "90s"},
        {"speaker": "system", "text": ""},
    ]}


def test_extract_pairs_one_per_nonempty_system_turn():
    pairs = extract_pairs([_dialogue()], context_turns=2)
    assert len(pairs) == 2
    first, second = pairs
    assert first.context == () and first.response == ("hello", "!")
    assert second.context == ("<sys>", "hello", "!", "<usr>", "i", "want", "a", "horror", "movie", ".")
    assert second.domain == "movie" and second.dialogue_id == "d1" and second.turn == 2
    assert second.act_tokens() == ["implicit_confirm", "genre", "horror", "request", "years"]
    assert second.source()[-6:] == ["<sep>", "implicit_confirm", "genre", "horror", "request", "years"]
    assert second.source(use_acts=False) == list(second.context)
    assert extract_pairs([_dialogue()], context_turns=1)[1].context[0] == "<usr>"


def test_extract_pairs_bad_speaker():
    d = _dialogue()
    d["turns"][1]["speaker"] = "robot"
    with pytest.raises(MdlibError, match="turn 1"):
        extract_pairs([d])
