"""Pairs -> padded tensors, with the extended vocabulary of the copy mechanism.

Copy over an *extended vocabulary* (pointer-generator, See et al. 2017): every source
token that is not in the vocabulary gets a temporary id ``len(vocab) + j``, where ``j``
is its index in that example's list of source OOV words (``Batch.oovs[b]``). A target
word that is out of the vocabulary but occurs in the source gets the same extended id,
so the model is trained to *copy* it; a target OOV word absent from the source stays
``<unk>``. At decoding time an extended id ``len(vocab) + j`` turns back into
``oovs[b][j]``: this is how a model trained on bus/restaurant/weather can say
"horror" or "coppola" in the movie domain without ever having seen them.
Inputs to embeddings always use plain vocabulary ids (OOV -> ``<unk>``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from mdlib.data.pairs import Pair
from mdlib.data.text import Vocab
from mdlib.errors import MdlibError


# The Batch fields that hold one row per example.
ROW_FIELDS = ("src", "src_ext", "src_mask", "tgt_in", "tgt_out", "tgt_mask")


@dataclass
class Batch:
    """A padded mini-batch (pad id 0 everywhere).

    Attributes:
        src: LongTensor (batch, src_len): vocabulary ids of the source, OOV -> ``<unk>``.
        src_ext: LongTensor (batch, src_len): extended ids (OOV j -> ``len(vocab) + j``).
        src_mask: BoolTensor (batch, src_len): True at real tokens.
        tgt_in: LongTensor (batch, tgt_len): ``<bos>`` + response (vocabulary ids).
        tgt_out: LongTensor (batch, tgt_len): response + ``<eos>`` (extended ids).
        tgt_mask: BoolTensor (batch, tgt_len): True at real target positions.
        oovs: per example, the source words outside the vocabulary (extended ids in order).
        n_oov: ``max(len(o) for o in oovs)``, the width of the extension.
        responses: the reference response tokens (for BLEU and entity F1).
        pairs: the pairs the batch was built from.
        live_src, live_tgt, tgt_order: set only by the task-batched engine
            (:func:`mdlib.meta.batched.stack_batches`), whose rows are sorted by source
            length: ``live_src[t]`` leading rows can hold a real token at source position
            ``t``; ``tgt_order`` (batch,) reorders the rows by target length for the
            decoder, after which ``live_tgt[t]`` leading rows can hold a real target at
            ``t``. The model's recurrences then skip the rows that are padding at a step.
    """

    src: torch.Tensor
    src_ext: torch.Tensor
    src_mask: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_mask: torch.Tensor
    oovs: list[list[str]]
    n_oov: int
    responses: list[list[str]]
    pairs: list[Pair]
    live_src: tuple[int, ...] | None = None
    live_tgt: tuple[int, ...] | None = None
    tgt_order: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        """A copy with every tensor on ``device``."""
        kw = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Batch(**kw)


def pad_batch(batch: Batch, rows: int, src_len: int, tgt_len: int) -> Batch:
    """``batch`` padded to ``rows`` examples, ``src_len`` source and ``tgt_len`` target tokens.

    Every added position and row is padding (id 0, masks False), so the loss (mean NLL
    over real target tokens) does not change; the task-batched meta-step
    (:mod:`mdlib.meta.batched`) pads the batches of a meta-batch's tasks to one shape
    with it. A padded batch carries no ``oovs``, ``responses`` or ``pairs`` for the added rows.

    Raises:
        MdlibError: a target shape smaller than the batch's.
    """
    B, S = batch.src.shape
    T = batch.tgt_in.shape[1]
    if rows < B or src_len < S or tgt_len < T:
        raise MdlibError(f"pad_batch: cannot pad a ({B}, {S}, {T}) batch to ({rows}, {src_len}, {tgt_len})")

    def pad(x: torch.Tensor, width: int) -> torch.Tensor:
        out = x.new_zeros((rows, width))
        out[:B, : x.shape[1]] = x
        return out

    return Batch(src=pad(batch.src, src_len), src_ext=pad(batch.src_ext, src_len),
                 src_mask=pad(batch.src_mask, src_len), tgt_in=pad(batch.tgt_in, tgt_len),
                 tgt_out=pad(batch.tgt_out, tgt_len), tgt_mask=pad(batch.tgt_mask, tgt_len),
                 oovs=batch.oovs, n_oov=batch.n_oov, responses=batch.responses, pairs=batch.pairs)


def collate(pairs: Sequence[Pair], vocab: Vocab, *, use_acts: bool = True,
            max_src: int = 80, max_tgt: int = 40, device: torch.device | str | None = None) -> Batch:
    """Pad ``pairs`` into a :class:`Batch`.

    Args:
        pairs: a non-empty sequence of pairs.
        vocab: the vocabulary.
        use_acts: append ``<sep>`` + the turn's system acts to the source.
        max_src: keep at most the last ``max_src`` source tokens (acts come last, so the
            oldest context goes first).
        max_tgt: truncate responses to ``max_tgt - 1`` tokens (+ ``<eos>``).
        device: where to put the tensors.
    """
    if not pairs:
        raise MdlibError("collate: no pairs to batch")
    V = len(vocab)
    srcs, exts, tins, touts, oovs = [], [], [], [], []
    for p in pairs:
        s = p.source(use_acts)[-max_src:] or ["<sep>"]
        ids = vocab.encode(s)
        oov: list[str] = []
        ext = []
        for tok, i in zip(s, ids):
            if i == vocab.unk_id and tok != "<unk>":
                if tok not in oov:
                    oov.append(tok)
                ext.append(V + oov.index(tok))
            else:
                ext.append(i)
        resp = list(p.response)[: max_tgt - 1]
        r_ids = vocab.encode(resp)
        r_ext = [V + oov.index(t) if (i == vocab.unk_id and t in oov) else i for t, i in zip(resp, r_ids)]
        srcs.append(ids)
        exts.append(ext)
        tins.append([vocab.bos_id] + r_ids)
        touts.append(r_ext + [vocab.eos_id])
        oovs.append(oov)

    def pad(rows: list[list[int]]) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long)

    src, src_ext, tgt_in, tgt_out = pad(srcs), pad(exts), pad(tins), pad(touts)
    tgt_mask = torch.zeros_like(tgt_out, dtype=torch.bool)
    for b, r in enumerate(touts):
        tgt_mask[b, : len(r)] = True
    batch = Batch(src=src, src_ext=src_ext, src_mask=src != 0, tgt_in=tgt_in, tgt_out=tgt_out,
                  tgt_mask=tgt_mask, oovs=oovs, n_oov=max(len(o) for o in oovs),
                  responses=[list(p.response) for p in pairs], pairs=list(pairs))
    return batch.to(device) if device is not None else batch


def iterate_batches(pairs: Sequence[Pair], vocab: Vocab, batch_size: int, *, shuffle: bool = False,
                    rng: random.Random | None = None, device: torch.device | str | None = None,
                    **collate_kw) -> Iterator[Batch]:
    """Yield batches of ``batch_size`` pairs (the last may be smaller).

    Args:
        shuffle: shuffle the order with ``rng`` (required then, for determinism).
    """
    order = list(range(len(pairs)))
    if shuffle:
        if rng is None:
            raise MdlibError("iterate_batches: shuffle=True needs an explicit random.Random")
        rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        yield collate([pairs[i] for i in order[start:start + batch_size]], vocab, device=device, **collate_kw)
