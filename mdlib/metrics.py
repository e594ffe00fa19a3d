"""Dialogue-quality metrics (a leaf: anything may import it). docs/evaluation.md; notebook 02.

* :func:`perplexity` from summed token NLL;
* :func:`corpus_bleu`: sacrebleu's corpus BLEU (0-100) on detokenised text;
* :func:`entity_f1`: micro F1 of the slot values mentioned in the generated responses
  against those in the references, with the value lists of :mod:`mdlib.data.domains`
  (or of a user corpus's acts); ``None`` when no lexicon is known;
* :func:`act_f1`: micro F1 of (act, slot) labels;
* :func:`distinct_n`: distinct-1/2, the share of unique n-grams among all generated n-grams.

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


def act_f1(predicted: Sequence[Iterable], reference: Sequence[Iterable]) -> float | None:
    """Micro F1 of act labels (e.g. ``("inform", "price")``) per response; ``None`` when there are none."""
    if len(predicted) != len(reference):
        raise ValueError(f"{len(predicted)} predictions but {len(reference)} references")
    return _micro_f1((Counter(set(p)) for p in predicted), (Counter(set(r)) for r in reference))


def distinct_n(hypotheses: Sequence[Sequence[str]], n: int) -> float:
    """Unique n-grams / all n-grams over the generated token lists (``nan`` if none)."""
    grams: list[tuple[str, ...]] = []
    for h in hypotheses:
        grams.extend(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
    return len(set(grams)) / len(grams) if grams else math.nan
