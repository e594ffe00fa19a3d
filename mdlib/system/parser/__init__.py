"""The input parser: user text to dialogue acts and slot values, with a confidence.

Two parsers with one interface, ``parser.parse(text, last_system_acts) -> Parse``:

* :class:`~mdlib.system.parser.rules.LexiconParser` (:mod:`~mdlib.system.parser.rules`),
  the baseline: the domain's value lists and hand-written keyword rules ("from X" is a
  departure, "how long ... wait" asks for the arrival time, "don't care about the genre"
  is a don't-care inform, "oh sorry, I mean Y" corrects).
* :class:`~mdlib.system.parser.network.LearnedParser` around
  :class:`~mdlib.system.parser.network.ParserNet` (:mod:`~mdlib.system.parser.network`):
  a small functional network that copies the values it finds and classifies their role,
  per domain slot decides requests and don't-cares, and serves every domain through the
  words of the slot names. :mod:`~mdlib.system.parser.training` pretrains it on the
  source domains, meta-trains it and adapts it to a target on a few dialogues through
  :func:`mdlib.meta.inner.inner_loop`, and saves and loads it.

Metrics (:mod:`~mdlib.system.parser.scores`): act F1 (micro, over the act names of each
user turn) and slot F1 (micro, over the ``(act, slot, value)`` triples of slot-carrying
acts), through :func:`mdlib.metrics.act_f1`. Notebook 07 uses both parsers.

Every name is importable from ``mdlib.system.parser`` as before the package was split.
"""

from mdlib.system.parser.network import (PLAIN_ACTS, ROLES, Example, LearnedParser, ParserBatch, ParserNet,
                                         Params, annotated_user_turns, collate_examples, decode, featurise,
                                         make_batches, parser_loss_fn, user_turn_examples)
from mdlib.system.parser.rules import LexiconParser, Mention, Parse, find_mentions
from mdlib.system.parser.scores import act_slot_f1, parser_scores
from mdlib.system.parser.training import (adapt_parser, load_parser, meta_train_parser, save_parser,
                                          train_parser)

__all__ = [
    "PLAIN_ACTS", "ROLES", "Example", "LearnedParser", "LexiconParser", "Mention", "Params", "Parse",
    "ParserBatch", "ParserNet", "act_slot_f1", "adapt_parser", "annotated_user_turns", "collate_examples",
    "decode", "featurise", "find_mentions", "load_parser", "make_batches", "meta_train_parser",
    "parser_loss_fn", "parser_scores", "save_parser", "train_parser", "user_turn_examples",
]
