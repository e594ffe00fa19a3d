"""Greedy (batched) and beam-search decoding for any generator of the contract.

Both use only :meth:`~mdlib.models.contract.Generator.start`, ``step`` and ``select``
(:mod:`mdlib.models.contract`), and return token lists; extended ids (copies of source
OOV words) become the copied words through ``batch.oovs``. ``beam_search(width=1)``
equals ``greedy`` (tested). Decoding never needs gradients: pass ``params`` (e.g.
adapted ones) and the model is bound to them with :func:`~mdlib.models.contract.bind`.
"""

from __future__ import annotations

import torch

from mdlib.data.text import Vocab
from mdlib.models.batching import Batch
from mdlib.models.contract import bind


def _token(i: int, b: int, vocab: Vocab, batch: Batch) -> str:
    V = len(vocab)
    if i < V:
        return vocab.itos[i]
    j = i - V
    return batch.oovs[b][j] if j < len(batch.oovs[b]) else "<unk>"


@torch.no_grad()
def greedy(model, batch: Batch, vocab: Vocab, *, params=None, max_len: int = 40) -> list[list[str]]:
    """Batched greedy decoding.

    Args:
        model: a generator (:class:`~mdlib.models.contract.Generator`); params: optional
            parameter dict to decode with.
        batch: the inputs (targets are ignored).
        max_len: maximum number of generated tokens (``<eos>`` excluded).

    Returns:
        One token list per example, without ``<bos>``/``<eos>``.
    """
    m = bind(model, params)
    was_training = m.training
    m.eval()
    try:
        state = m.start(batch)
        B, device = batch.src.shape[0], batch.src.device
        y = torch.full((B, 1), vocab.bos_id, dtype=torch.long, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        out: list[list[int]] = [[] for _ in range(B)]
        for _ in range(max_len):
            logp, state = m.step(y, state)
            nxt = logp.argmax(-1)
            for b in range(B):
                if not done[b]:
                    if int(nxt[b]) == vocab.eos_id:
                        done[b] = True
                    else:
                        out[b].append(int(nxt[b]))
            if bool(done.all()):
                break
            y = nxt.unsqueeze(1)
    finally:
        m.train(was_training)
    return [[_token(i, b, vocab, batch) for i in seq] for b, seq in enumerate(out)]


@torch.no_grad()
def beam_search(model, batch: Batch, vocab: Vocab, *, width: int = 4, params=None, max_len: int = 40,
                alpha: float = 0.0) -> list[list[str]]:
    """Beam search, one example at a time (beams of one example run as a batch).

    It stops when ``width`` hypotheses have ended and none still open ranks above the
    best of them (with ``alpha = 0`` an open hypothesis only loses probability, so the
    result is then the best hypothesis the beam can reach), or after ``max_len`` tokens.

    Args:
        width: beam width (1 gives greedy decoding).
        alpha: length normalisation: hypotheses are ranked by ``logp / len ** alpha``
            (0: plain log-probability).

    Returns:
        The best hypothesis per example, as in :func:`greedy`.
    """
    if width < 1:
        raise ValueError("beam width must be >= 1")
    m = bind(model, params)
    was_training = m.training
    m.eval()
    results: list[list[str]] = []
    try:
        start = m.start(batch)
        device = batch.src.device
        for b in range(batch.src.shape[0]):
            state = m.select(start, torch.tensor([b], device=device))
            seqs: list[list[int]] = [[]]
            scores = torch.zeros(1, device=device)
            finished: list[tuple[float, list[int]]] = []
            for _ in range(max_len):
                y = torch.tensor([[s[-1] if s else vocab.bos_id] for s in seqs], device=device)
                logp, new_state = m.step(y, state)
                total = (scores.unsqueeze(1) + logp).reshape(-1)
                top = total.topk(min(width, total.numel()))
                W = logp.shape[-1]
                new_seqs, new_scores, new_rows = [], [], []
                for sc, idx in zip(top.values.tolist(), top.indices.tolist()):
                    row, tok = divmod(idx, W)
                    if tok == vocab.eos_id:
                        seq = seqs[row]
                        finished.append((sc / max(len(seq), 1) ** alpha, seq))
                    else:
                        new_seqs.append(seqs[row] + [tok])
                        new_scores.append(sc)
                        new_rows.append(row)
                if not new_seqs:
                    break
                if len(finished) >= width:  # done once no live hypothesis can still beat the best finished one
                    best_live = max(sc / len(q) ** alpha for sc, q in zip(new_scores, new_seqs))
                    if max(f[0] for f in finished) >= best_live:
                        break
                seqs = new_seqs
                scores = torch.tensor(new_scores, device=device)
                state = m.select(new_state, torch.tensor(new_rows, device=device))
            else:
                finished.extend((float(s) / max(len(q), 1) ** alpha, q) for s, q in zip(scores.tolist(), seqs))
            best = max(finished, key=lambda t: t[0])[1] if finished else []
            results.append([_token(i, b, vocab, batch) for i in best])
    finally:
        m.train(was_training)
    return results
