"""Scoring: decode responses and compute the metrics of a generator on test dialogues.

:func:`evaluate` gives every metric of :data:`METRICS` (BLEU, entity F1, DAML-style
success F1, act F1 through the :class:`ActRecogniser` instrument, perplexity, distinct-n)
for one set of parameters; :func:`generate` is its decoding step.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

from mdlib.data.domains import DOMAINS
from mdlib.data.pairs import Pair, extract_pairs
from mdlib.data.text import Vocab, detokenise
from mdlib.errors import MdlibError
from mdlib.evaluation.data import collate_kw, pairs_of
from mdlib.metrics import (act_f1, corpus_bleu, distinct_n, entity_f1, entity_f1_uncopyable, informed_slots,
                           lexicon_from_acts, lexicon_from_domains, perplexity, success_f1)
from mdlib.models.batching import iterate_batches
from mdlib.models.decoding import beam_search, greedy
from mdlib.models.contract import Generator
from mdlib.profiles import Profile, get_profile
from mdlib.training import corpus_nll

METRICS = ("bleu", "entity_f1", "entity_f1_uncopyable", "success_f1", "act_f1", "ppl", "distinct_1",
           "distinct_2")


def lexicon_for(dialogues: Sequence[dict]):
    """Value lexicon for entity F1: the domains' value lists when every dialogue's domain
    is a known domain, else the valued acts of the dialogues, else ``None``."""
    domains = {d.get("domain") for d in dialogues}
    if domains and domains <= set(DOMAINS):
        return lexicon_from_domains(sorted(domains))
    return lexicon_from_acts(dialogues) or None


class ActRecogniser:
    """Labels a response with (act, slot) pairs, for act F1.

    Built from annotated reference dialogues (the target's *train* pool, never the test
    split): each system response is delexicalised (values -> ``<slot_NAME>``); a new
    response gets the labels of an identical delexicalised response, or else of the one
    with the most similar set of word bigrams (Jaccard). It is an instrument, the same
    for every method, so act F1 compares methods fairly; it is not perfect.
    """

    def __init__(self, dialogues: Sequence[dict], lexicon, context_turns: int = 0):
        self.lexicon = lexicon or {}
        table: dict[tuple[str, ...], Counter] = {}
        for p in extract_pairs(dialogues, context_turns=0):
            if p.acts:
                key = self._delex(p.response)
                table.setdefault(key, Counter())[frozenset((a.act, a.slot) for a in p.acts)] += 1
        self.table = {k: c.most_common(1)[0][0] for k, c in table.items()}
        self.keys = list(self.table)
        self.grams = [self._bigrams(k) for k in self.keys]

    def _delex(self, tokens: Sequence[str]) -> tuple[str, ...]:
        out, i, lex = [], 0, self.lexicon
        lengths = sorted({len(k) for k in lex}, reverse=True)
        while i < len(tokens):
            for n in lengths:
                key = tuple(tokens[i:i + n])
                if len(key) == n and key in lex:
                    out.append(f"<slot_{lex[key]}>")
                    i += n
                    break
            else:
                out.append(tokens[i])
                i += 1
        return tuple(out)

    @staticmethod
    def _bigrams(tokens: Sequence[str]) -> frozenset:
        t = ("<s>",) + tuple(tokens) + ("</s>",)
        return frozenset(zip(t, t[1:]))

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __call__(self, tokens: Sequence[str]) -> frozenset:
        key = self._delex(tokens)
        if key in self.table:
            return self.table[key]
        g = self._bigrams(key)
        best = max(range(len(self.keys)), key=lambda i: len(g & self.grams[i]) / len(g | self.grams[i]))
        return self.table[self.keys[best]]


def generate(model: Generator, params, pairs: Sequence[Pair], vocab: Vocab, profile: Profile,
             device=None, batch_size: int = 128) -> list[list[str]]:
    """Decode a response for every pair (greedy, or beam search when ``profile.beam > 1``)."""
    out: list[list[str]] = []
    for batch in iterate_batches(pairs, vocab, batch_size, device=device, **collate_kw(profile)):
        if profile.beam > 1:
            out.extend(beam_search(model, batch, vocab, width=profile.beam, params=params, max_len=profile.max_len))
        else:
            out.extend(greedy(model, batch, vocab, params=params, max_len=profile.max_len))
    return out


def evaluate(model: Generator, params, test_dialogues: Sequence[dict], vocab: Vocab,
             profile: Profile | str = "quick", *, act_reference: "Sequence[dict] | ActRecogniser | None" = None,
             device=None, samples: int = 0,
             score: Callable[[list[list[str]], list[Pair]], dict] | None = None) -> dict:
    """Score a generator on test dialogues.

    With context input the model writes placeholders for system-slot values; they are
    filled from the database row (:meth:`~mdlib.data.pairs.Pair.lexicalise`) before the
    text is scored against the reference as written, so BLEU, entity F1 and act F1 score
    text in both inputs. Perplexity is that of the model's own targets (delexicalised
    with context input), so it does not compare across inputs.

    Args:
        params: parameters to use (``None``: the model's own).
        test_dialogues: the target's test dialogues.
        act_reference: annotated dialogues to build the :class:`ActRecogniser` from, or a
            built recogniser (``None``: ``act_f1`` is ``None``).
        samples: how many (context, generated, reference) examples to include.
        score: ``score(generated, pairs) -> {metric: value}`` for further metrics of the
            same generated responses (lexicalised token lists, one per pair), merged into
            the result (e.g. :func:`mdlib.data.personas.score_outputs`).

    Returns:
        ``{"bleu", "entity_f1", "entity_f1_uncopyable", "success_f1", "act_f1", "ppl",
        "distinct_1", "distinct_2", "n_test", "n_dialogues"}`` (and ``"samples"``);
        ``entity_f1_uncopyable`` (:func:`~mdlib.metrics.entity_f1_uncopyable`) is
        ``None`` with acts input, where every value can be copied; a metric that needs
        annotations the corpus lacks is ``None``.
    """
    profile = get_profile(profile)
    pairs = pairs_of(test_dialogues, profile)
    if not pairs:
        raise MdlibError("evaluate: the test dialogues have no system turns")
    raw = generate(model, params, pairs, vocab, profile, device=device)
    hyps = [p.lexicalise(h) for p, h in zip(pairs, raw)]
    refs = [p.reference() for p in pairs]
    sources = [p.source(profile.use_acts)[-profile.max_src:] for p in pairs]
    nll, n_tok = corpus_nll(model, pairs, vocab, params=params, device=device, **collate_kw(profile))
    lexicon = lexicon_for(test_dialogues)
    a_f1 = None
    if act_reference and any(p.acts for p in pairs):
        rec = act_reference if isinstance(act_reference, ActRecogniser) else ActRecogniser(act_reference, lexicon)
        if rec:
            labelled = [(h, p) for h, p in zip(hyps, pairs) if p.acts]
            a_f1 = act_f1([rec(h) for h, _ in labelled],
                          [frozenset((a.act, a.slot) for a in p.acts) for _, p in labelled])
    result = {
        "bleu": corpus_bleu([detokenise(h) for h in hyps], [detokenise(r) for r in refs]),
        "entity_f1": entity_f1(hyps, refs, lexicon),
        "entity_f1_uncopyable": entity_f1_uncopyable(hyps, refs, sources, lexicon),
        "success_f1": dialogue_success_f1(pairs, raw),
        "act_f1": a_f1,
        "ppl": perplexity(nll, n_tok),
        "distinct_1": distinct_n(hyps, 1),
        "distinct_2": distinct_n(hyps, 2),
        "n_test": len(pairs),
        "n_dialogues": len(test_dialogues),
    }
    if score is not None:
        result.update(score(hyps, pairs))
    if samples:
        result["samples"] = [{"context": detokenise(p.context), "source": " ".join(s),
                              "acts": " ".join(p.act_tokens()), "generated": detokenise(h), "reference": detokenise(r)}
                             for p, s, h, r in list(zip(pairs, sources, hyps, refs))[:samples]]
    return result


def dialogue_success_f1(pairs: Sequence[Pair], generated: Sequence[Sequence[str]]) -> float | None:
    """:func:`~mdlib.metrics.success_f1` of generated responses, grouped by dialogue.

    A response informs a slot when, delexicalised with its turn's ``inform`` acts
    (:func:`~mdlib.data.context.delexicalise_acts`), it holds that slot's placeholder:
    with context input the model writes the placeholder itself; with acts input it
    writes the value the acts gave it. The reference side is the reference response,
    delexicalised the same way. ``None`` without act annotations.

    Args:
        pairs: the test pairs (any input).
        generated: the model's tokens per pair, before :meth:`~mdlib.data.pairs.Pair.lexicalise`.
    """
    from mdlib.data.context import delexicalise_acts

    pred: dict[str, set] = {}
    gold: dict[str, set] = {}
    for p, h in zip(pairs, generated):
        slots = {a.slot for a in p.acts if a.act == "inform" and a.slot}
        pred.setdefault(p.dialogue_id, set()).update(informed_slots(delexicalise_acts(h, p.acts, slots)[0]))
        gold.setdefault(p.dialogue_id, set()).update(informed_slots(delexicalise_acts(p.reference(), p.acts, slots)[0]))
    return success_f1([pred[d] for d in gold], [gold[d] for d in gold])
