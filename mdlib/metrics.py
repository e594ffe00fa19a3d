"""Dialogue-quality metrics (a leaf: anything may import it). docs/evaluation.md; notebook 02.

* :func:`perplexity` from summed token NLL;
* :func:`corpus_bleu`: sacrebleu's corpus BLEU (0-100) on detokenised text (and from
  summed per-response statistics, :func:`bleu_statistics`, for bootstrap intervals);
* :func:`entity_f1`: micro F1 of the slot values mentioned in the generated responses
  against those in the references, with the value lists of :mod:`mdlib.data.domains`
  (or of a user corpus's acts); ``None`` when no lexicon is known;
* :func:`entity_f1_uncopyable`: the same on the values absent from the model's input;
* :func:`success_f1`: DAML's success F1, the requested slots the responses inform, per dialogue;
* :func:`act_f1`: micro F1 of (act, slot) labels;
* :func:`slot_errors`: the slot error of one response (values of its acts missing from
  its text, and values in its text that its acts do not have);
* :func:`distinct_n`: distinct-1/2, the share of unique n-grams among all generated n-grams;
* :func:`slot_error_rate` and :func:`persona_accuracy`: the persona family (docs/personas.md).

Intervals over seeds: :func:`mdlib.stats.mean_ci`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

#: Single-token values that are also ordinary English words; counting them as entities
#: would make every "a" a director (movie has directors A..Z). They are left out.
AMBIGUOUS_VALUES = frozenset({"a", "i"})

Lexicon = dict[tuple[str, ...], str]


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """``exp(nll_sum / n_tokens)``; ``nan`` with no tokens."""
    if n_tokens <= 0:
        return math.nan
    return float(math.exp(min(nll_sum / n_tokens, 700.0)))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenisation, exp smoothing), 0-100.

    Args:
        hypotheses: generated responses (one string each).
        references: one reference string per hypothesis.
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return math.nan
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> list[list[int]]:
    """Per response, sacrebleu's sufficient statistics (hypothesis and reference lengths,
    matching and total n-grams); :func:`bleu_from_statistics` of their sum is the
    :func:`corpus_bleu` of the responses. Why: a bootstrap over dialogues then sums
    counts instead of re-tokenising every resample."""
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return [list(map(int, s)) for s in BLEU()._extract_corpus_statistics(list(hypotheses), [list(references)])]


def bleu_from_statistics(stats: Sequence[Sequence[int]]) -> float:
    """Corpus BLEU (0-100) from summed :func:`bleu_statistics` (``nan`` with none)."""
    from sacrebleu.metrics import BLEU

    if not stats:
        return math.nan
    total = [sum(col) for col in zip(*stats)]
    return float(BLEU()._compute_score_from_stats(total).score)


def lexicon_from_domains(names: Iterable[str]) -> Lexicon:
    """``value tokens -> slot`` for every slot value of the named domains."""
    from mdlib.data.domains import get_domain
    from mdlib.data.text import tokenise

    table: Lexicon = {}
    for name in names:
        for slot, values in get_domain(name).values().items():
            for v in values:
                toks = tuple(tokenise(v))
                if toks and " ".join(toks) not in AMBIGUOUS_VALUES:
                    table.setdefault(toks, slot)
    return table


def lexicon_from_acts(dialogues: Iterable[Mapping]) -> Lexicon:
    """``value tokens -> slot`` from the valued acts of a corpus (for user corpora)."""
    from mdlib.data.text import tokenise

    table: Lexicon = {}
    for d in dialogues:
        for t in d.get("turns", []):
            for a in t.get("acts") or []:
                if a.get("slot") and a.get("value") is not None:
                    toks = tuple(tokenise(str(a["value"])))
                    if toks and " ".join(toks) not in AMBIGUOUS_VALUES:
                        table.setdefault(toks, a["slot"])
    return table


def extract_entities(tokens: Sequence[str], lexicon: Lexicon) -> list[str]:
    """Slot values mentioned in ``tokens`` (longest match first, left to right).

    Returns:
        The matched values as space-joined strings, with repeats.
    """
    lengths = sorted({len(k) for k in lexicon}, reverse=True)
    found: list[str] = []
    i = 0
    while i < len(tokens):
        for n in lengths:
            key = tuple(tokens[i:i + n])
            if len(key) == n and key in lexicon:
                found.append(" ".join(key))
                i += n
                break
        else:
            i += 1
    return found


def _micro_f1(pred: Iterable[Counter], gold: Iterable[Counter]) -> float | None:
    tp = fp = fn = 0
    for p, g in zip(pred, gold):
        common = sum((p & g).values())
        tp += common
        fp += sum(p.values()) - common
        fn += sum(g.values()) - common
    if tp + fp + fn == 0:
        return None
    return 2 * tp / (2 * tp + fp + fn)


def entity_f1(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
              lexicon: Lexicon | None) -> float | None:
    """Micro F1 of slot values in generated vs reference responses (token lists).

    Each response contributes the multiset of values it mentions; true positives are
    the values both mention (with multiplicity). ``None`` when ``lexicon`` is ``None``
    or empty (a corpus without annotations) or when no response mentions any value.
    """
    if not lexicon:
        return None
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return _micro_f1((Counter(extract_entities(h, lexicon)) for h in hypotheses),
                     (Counter(extract_entities(r, lexicon)) for r in references))


def _occurs(value: str, tokens: Sequence[str]) -> bool:
    vt = value.split(" ")
    return any(list(tokens[i:i + len(vt)]) == vt for i in range(len(tokens) - len(vt) + 1))


def entity_f1_uncopyable(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                         sources: Sequence[Sequence[str]], lexicon: Lexicon | None) -> float | None:
    """:func:`entity_f1` on the values the model could not copy from its input.

    A value that occurs (as a token sequence) in example ``i``'s source is dropped from
    both the generated and the reference values of that example; F1 is taken over what
    is left. ``None`` when no reference holds a value absent from its source (recall is
    undefined: with acts-with-values input every reference value is in the acts), or
    when there is no lexicon.

    Args:
        hypotheses, references: generated and reference responses (token lists).
        sources: the model's input of each example (token lists, as the encoder read them).
        lexicon: ``value tokens -> slot``.
    """
    if not lexicon:
        return None
    if not len(hypotheses) == len(references) == len(sources):
        raise ValueError(f"{len(hypotheses)} hypotheses, {len(references)} references, {len(sources)} sources")
    pred, gold = [], []
    for h, r, s in zip(hypotheses, references, sources):
        pred.append(Counter(v for v in extract_entities(h, lexicon) if not _occurs(v, s)))
        gold.append(Counter(v for v in extract_entities(r, lexicon) if not _occurs(v, s)))
    if not any(gold):
        return None
    return _micro_f1(pred, gold)


def informed_slots(tokens: Sequence[str]) -> set[str]:
    """The slots whose placeholder (``<slot_NAME>``) a delexicalised response contains."""
    return {t[len("<slot_"):-1] for t in tokens if t.startswith("<slot_") and t.endswith(">")}


def success_f1(predicted: Sequence[Iterable[str]], reference: Sequence[Iterable[str]]) -> float | None:
    """DAML's success F1: micro F1, over dialogues, of the requested slots informed.

    For each dialogue, ``reference`` holds the system slots its reference responses
    inform (the slots the user requested that the reference system answered) and
    ``predicted`` the system slots the generated responses of the same turns inform
    (:func:`informed_slots` of the delexicalised responses). Each dialogue counts each
    slot once: a true positive is a slot in both sets. As DAML's ``success_f1_metric``
    (its SimDial evaluation, built on Sequicity's): placeholders collected per dialogue,
    tp/fp/fn summed over dialogues. ``None`` when no dialogue has a slot on either side.
    """
    if len(predicted) != len(reference):
        raise ValueError(f"{len(predicted)} predictions but {len(reference)} references")
    return _micro_f1((Counter(set(p)) for p in predicted), (Counter(set(r)) for r in reference))


def act_f1(predicted: Sequence[Iterable], reference: Sequence[Iterable]) -> float | None:
    """Micro F1 of act labels (e.g. ``("inform", "price")``) per response; ``None`` when there are none."""
    if len(predicted) != len(reference):
        raise ValueError(f"{len(predicted)} predictions but {len(reference)} references")
    return _micro_f1((Counter(set(p)) for p in predicted), (Counter(set(r)) for r in reference))


def slot_errors(values: Iterable[str], tokens: Sequence[str], lexicon: Lexicon) -> tuple[int, int]:
    """``(errors, n)`` of one response: ``n`` slot values its acts carry, ``errors`` the
    values missing from its ``tokens`` plus the values its tokens mention that the acts do
    not carry (a wrong value counts as one of each). Slot error rate = sum of errors /
    sum of ``n`` over the responses (it can exceed 1). Values the lexicon leaves out
    (:data:`AMBIGUOUS_VALUES`, such as the director "A") cannot be told from ordinary words
    and are not counted."""
    from mdlib.data.text import tokenise

    gold = Counter(k for k in (tuple(tokenise(v)) for v in values) if k in lexicon)
    gold = Counter({" ".join(k): c for k, c in gold.items()})
    said = Counter(extract_entities(tokens, lexicon))
    return sum((gold - said).values()) + sum((said - gold).values()), sum(gold.values())


def distinct_n(hypotheses: Sequence[Sequence[str]], n: int) -> float:
    """Unique n-grams / all n-grams over the generated token lists (``nan`` if none)."""
    grams: list[tuple[str, ...]] = []
    for h in hypotheses:
        grams.extend(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
    return len(set(grams)) / len(grams) if grams else math.nan


def slot_error_rate(hypotheses: Sequence, acts: Sequence[Iterable], lexicon: Lexicon) -> float | None:
    """Slot error rate: (missing + wrong values) / values in the acts, over all responses.

    A value of a turn's acts is *missing* when the response does not say it; a value the
    response says (any value of ``lexicon``) that is not in the turn's acts is *wrong*
    (counted as multisets, through :func:`slot_errors`, which skips values the lexicon leaves
    out). The act-to-text
    measure of Wen et al. (2015), ERR = (p + q) / N. Used by the persona family
    (docs/personas.md).

    Args:
        hypotheses: generated responses (token lists or strings), one per turn.
        acts: each turn's acts (:class:`~mdlib.data.acts.Act` or dicts); ``value=None`` (a
            don't-care) carries no value.
        lexicon: ``value tokens -> slot`` of every value that may occur
            (:func:`lexicon_from_domains`).

    Returns:
        The rate (0 = every value said, nothing else); ``None`` when the acts have no values.
    """
    from mdlib.data.text import tokenise

    if len(hypotheses) != len(acts):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(acts)} act lists")
    errors = total = 0
    for hyp, turn_acts in zip(hypotheses, acts):
        tokens = tokenise(hyp) if isinstance(hyp, str) else list(hyp)
        values = [v for v in ((a.get("value") if isinstance(a, Mapping) else a.value) for a in turn_acts)
                  if v is not None]
        e, n = slot_errors([str(v) for v in values], tokens, lexicon)
        errors, total = errors + e, total + n
    return errors / total if total else None


def persona_accuracy(hypotheses: Sequence, acts: Sequence[Iterable], tables: Sequence[Mapping[str, int]]) -> float | None:
    """Persona accuracy: the share of (turn, act) units said in the target persona's frame.

    Each response is read by :func:`mdlib.data.phrasings.recognise` (value, nouns and thing
    words delexicalised, then every frame of the act's pool looked for); a unit counts when
    exactly the persona's frame is found. A model that ignores the persona scores about
    1 / pool size (docs/personas.md).

    Args:
        hypotheses: generated responses (token lists or strings), one per turn.
        acts: each turn's acts (the generator's input).
        tables: each turn's target persona table ``{act key: frame index}``
            (:attr:`mdlib.data.personas.Persona.table`).

    Returns:
        The share in [0, 1]; ``None`` when there are no acts.
    """
    from mdlib.data.phrasings import recognise

    if not len(hypotheses) == len(acts) == len(tables):
        raise ValueError(f"{len(hypotheses)} hypotheses, {len(acts)} act lists, {len(tables)} tables")
    hits = units = 0
    for hyp, turn_acts, table in zip(hypotheses, acts, tables):
        for key, found in recognise(hyp, turn_acts).items():
            units += 1
            hits += found == {table[key]}
    return hits / units if units else None
