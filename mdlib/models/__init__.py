"""Functional response generators (:mod:`mdlib.models.seq2seq`), batching with the copy
mechanism's extended vocabulary (:mod:`mdlib.models.batching`) and decoding
(:mod:`mdlib.models.decoding`)."""

from mdlib.models.batching import Batch, collate, iterate_batches
from mdlib.models.decoding import beam_search, greedy
from mdlib.models.seq2seq import ModelConfig, Seq2Seq, bind, build_model

__all__ = ["Batch", "collate", "iterate_batches", "beam_search", "greedy", "ModelConfig",
           "Seq2Seq", "bind", "build_model"]
