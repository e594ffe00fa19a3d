"""Parser metrics: act F1 and slot F1 through :func:`mdlib.metrics.act_f1` (micro F1)."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from mdlib.data.acts import Act
from mdlib.metrics import act_f1
from mdlib.system.parser.network import LearnedParser, annotated_user_turns


def _f1(predicted: list[set], gold: list[set]) -> float:
    # metrics.act_f1 says None when neither side has a label; nothing to find and nothing
    # found is a perfect reading (as the parser's scores have always said)
    f1 = act_f1(predicted, gold)
    return 1.0 if f1 is None else f1


def act_slot_f1(predicted: Sequence[Sequence[Act]], gold: Sequence[Sequence[Act]]) -> dict[str, float]:
    """Micro act F1 (act names per turn) and slot F1 (``(act, slot, value)`` of slot acts).

    ``kb_return`` (the database's turn, not the user's words) is left out of the gold acts.
    """
    n = min(len(predicted), len(gold))
    predicted = list(predicted)[:n]
    gold = [[a for a in ref if a.act != "kb_return"] for ref in list(gold)[:n]]
    names = _f1([{a.act for a in p} for p in predicted], [{a.act for a in g} for g in gold])
    slots = _f1([{(a.act, a.slot, a.value) for a in p if a.slot is not None} for p in predicted],
                [{(a.act, a.slot, a.value) for a in g if a.slot is not None} for g in gold])
    return {"act_f1": names, "slot_f1": slots, "turns": len(gold)}


def parser_scores(parser, dialogues: Iterable[Mapping]) -> dict[str, float]:
    """Act F1 and slot F1 of ``parser`` on the user turns of corpus dialogues."""
    items, gold = [], []
    for _, text, last, acts in annotated_user_turns(dialogues):
        items.append((text, last))
        gold.append(acts)
    if isinstance(parser, LearnedParser):
        preds = []
        for i in range(0, len(items), 256):
            preds += parser.parse_many(items[i:i + 256])
    else:
        preds = [parser.parse(t, last) for t, last in items]
    return act_slot_f1([p.acts for p in preds], gold)
