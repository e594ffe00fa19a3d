"""Functional response generators: the contract every generator meets and its registry
(:mod:`mdlib.models.contract`), the reference GRU seq2seq registered as ``"gru"``
(:mod:`mdlib.models.seq2seq`), batching with the copy mechanism's extended vocabulary
(:mod:`mdlib.models.batching`) and decoding (:mod:`mdlib.models.decoding`)."""

from mdlib.models.batching import Batch, collate, iterate_batches
from mdlib.models.contract import (GENERATORS, Generator, bind, generator_class, generator_config, make_generator,
                                   register_generator)
from mdlib.models.decoding import beam_search, greedy
from mdlib.models.seq2seq import ModelConfig, Seq2Seq, build_model

__all__ = ["Batch", "collate", "iterate_batches", "GENERATORS", "Generator", "bind", "generator_class",
           "generator_config", "make_generator", "register_generator", "beam_search", "greedy", "ModelConfig",
           "Seq2Seq", "build_model"]
