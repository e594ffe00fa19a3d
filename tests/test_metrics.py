"""Dialogue-quality metrics (mdlib.metrics)."""

import math

import pytest
import sacrebleu

from mdlib.data.text import tokenise
from mdlib.metrics import (act_f1, corpus_bleu, distinct_n, entity_f1, extract_entities,
                           lexicon_from_acts, lexicon_from_domains, perplexity)


def test_bleu_matches_sacrebleu():
    hyps = ["the cat sat on the mat .", "where are you going today ?"]
    refs = ["the cat is on the mat .", "where do you want to go today ?"]
    assert corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        corpus_bleu(hyps, refs[:1])


def test_perplexity():
    assert perplexity(0.0, 5) == 1.0
    assert perplexity(10 * math.log(4), 10) == pytest.approx(4.0)
    assert math.isnan(perplexity(1.0, 0))


LEX = {("new", "york"): "loc", ("york",): "loc", ("cheap",): "price", ("thai",): "food_pref"}


def test_extract_entities_longest_match():
    assert extract_entities(tokenise("cheap thai in New York, not york"), LEX) == ["cheap", "thai", "new york", "york"]


def test_entity_f1_hand_made():
    refs = [tokenise("a cheap thai place in new york"), tokenise("goodbye")]
    # one right (cheap), one wrong (york instead of new york), one missed (thai)
    hyps = [tokenise("a cheap place in york"), tokenise("goodbye")]
    # tp=1, fp=1, fn=2 -> 2/(2+1+2)
    assert entity_f1(hyps, refs, LEX) == pytest.approx(2 / 5)
    assert entity_f1(refs, refs, LEX) == 1.0
    assert entity_f1([["x"]], [["cheap"]], LEX) == 0.0
    assert entity_f1(hyps, refs, None) is None
    assert entity_f1([["hello"]], [["bye"]], LEX) is None


def test_domain_lexicon_skips_ambiguous_letters():
    lex = lexicon_from_domains(["movie"])
    assert lex[("horror",)] == "genre" and lex[("20th", "century", "fox")] == "company"
    assert ("a",) not in lex and ("b",) in lex
    assert extract_entities(tokenise("a horror movie by director B"), lex) == ["horror", "b"]


def test_lexicon_from_acts():
    dialogues = [{"turns": [{"speaker": "system", "text": "x",
                             "acts": [{"act": "inform", "slot": "price", "value": "Cheap"}, {"act": "greet"}]}]},
                 {"turns": [{"speaker": "user", "text": "y"}]}]
    assert lexicon_from_acts(dialogues) == {("cheap",): "price"}
    assert lexicon_from_acts([{"turns": [{"speaker": "user", "text": "y"}]}]) == {}


def test_act_f1_and_distinct():
    pred = [{("inform", "price"), ("request", "loc")}, {("goodbye", None)}]
    ref = [{("inform", "price")}, {("greet", None)}]
    # tp=1, fp=2, fn=1
    assert act_f1(pred, ref) == pytest.approx(2 / 5)
    assert act_f1([set()], [set()]) is None
    hyps = [["a", "b", "a"], ["a", "b"]]
    assert distinct_n(hyps, 1) == pytest.approx(2 / 5)
    assert distinct_n(hyps, 2) == pytest.approx(2 / 3)
    assert math.isnan(distinct_n([[]], 2))
