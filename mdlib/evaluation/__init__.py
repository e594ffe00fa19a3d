"""Adapt a generator to a target task with k dialogues, score it, and run the baselines.

One module per part, each named after what it holds:

* :mod:`mdlib.evaluation.data`: the tasks' dialogues (:func:`split_of`), k-shot samples
  (:func:`sample_kshot`), pairs and vocabularies (:func:`pairs_of`, :func:`source_pairs`,
  :func:`build_vocab`, :func:`protocol_vocab`), the collate settings (:func:`collate_kw`);
* :mod:`mdlib.evaluation.adaptation`: :func:`adapt`, fine-tuning through the shared inner loop;
* :mod:`mdlib.evaluation.scoring`: :func:`generate`, :func:`evaluate` and its metrics
  (:data:`METRICS`, :class:`ActRecogniser`, :func:`dialogue_success_f1`);
* :mod:`mdlib.evaluation.pretraining`: :func:`pretrain` (cached), :func:`new_model`,
  :func:`data_signature`, :func:`unseen_as_unk`;
* :mod:`mdlib.evaluation.baselines`: :func:`run_baselines` (notebook 02).

Every name is re-exported here, so ``from mdlib.evaluation import adapt, evaluate`` works.
A test that replaces a function (``monkeypatch``) must patch it in the module that calls
it: ``adapt`` looks up ``mdlib.evaluation.adaptation.inner_loop``, not this package's.
"""

from mdlib.evaluation.adaptation import adapt
from mdlib.evaluation.baselines import run_baselines
from mdlib.evaluation.data import (Data, adaptation_tasks, build_vocab, collate_kw, pairs_of, protocol_vocab,
                                   sample_kshot, source_pairs, split_of)
from mdlib.evaluation.pretraining import CACHE_VERSION, data_signature, new_model, pretrain, unseen_as_unk
from mdlib.evaluation.scoring import (METRICS, ActRecogniser, dialogue_success_f1, evaluate, generate,
                                      lexicon_for)

__all__ = ["Data", "CACHE_VERSION", "METRICS", "collate_kw", "pairs_of", "split_of", "sample_kshot", "adapt",
           "lexicon_for", "ActRecogniser", "generate", "evaluate", "dialogue_success_f1", "data_signature",
           "source_pairs", "build_vocab", "adaptation_tasks", "protocol_vocab", "unseen_as_unk", "new_model",
           "pretrain", "run_baselines"]
