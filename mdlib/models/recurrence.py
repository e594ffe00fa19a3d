"""A GRU layer written with plain tensor ops, so that ``torch.func.vmap`` goes through it.

``nn.GRU`` runs one fused kernel that ``vmap`` has no batching rule for, so the
task-batched meta-step (:mod:`mdlib.meta.batched`) cannot vmap a model that calls it.
:func:`gru` computes the same layer from the same weights (``nn.GRU``'s parameters, so
checkpoints do not change), with the equations of ``torch.nn.GRU`` (Cho et al., 2014)::

    [r_t, z_t] = sigmoid(W_i[r,z] x_t + b_i[r,z] + W_h[r,z] h_{t-1} + b_h[r,z])
    n_t        = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t        = n_t + z_t * (h_{t-1} - n_t)          (= (1 - z_t) n_t + z_t h_{t-1})

The input terms ``W_i x_t + b_i`` of all time steps are one matrix multiply before the
time loop; only the recurrent ``W_h h_{t-1}`` stays inside it (fewer, larger ops: the
per-op overhead is what a CPU meta-step pays for).

:class:`~mdlib.models.seq2seq.Seq2Seq` uses this path inside :func:`unrolled` (the batched
engine enters it) and ``nn.GRU`` otherwise; the two give the same loss (tested in float64).
Being plain ops, this path also has a double backward on CUDA without turning cuDNN off.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["gru", "unrolled", "is_unrolled"]

_UNROLLED = False


@contextlib.contextmanager
def unrolled(enabled: bool = True):
    """Context manager: models write their recurrences with :func:`gru` (vmap-friendly)."""
    global _UNROLLED
    before, _UNROLLED = _UNROLLED, enabled
    try:
        yield
    finally:
        _UNROLLED = before


def is_unrolled() -> bool:
    """Whether the code runs inside :func:`unrolled`."""
    return _UNROLLED


def gru(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor,
        h0: torch.Tensor, mask: torch.Tensor | None = None, reverse: bool = False,
        live: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One GRU layer, one direction, over a padded batch.

    Args:
        x: FloatTensor (B, L, E) inputs.
        w_ih: (3H, E), w_hh: (3H, H), b_ih, b_hh: (3H,): ``nn.GRU``'s ``weight_ih_l0`` etc.
        h0: FloatTensor (B, H) initial state.
        mask: optional BoolTensor (B, L), True at real steps. At padding the state is
            carried unchanged and the output is 0 (what ``pack_padded_sequence`` gives:
            the final state is the one after each row's last real step; in reverse, the
            first real step sees ``h0``).
        reverse: run from the last step to the first (the backward direction).
        live: optional, per step ``t``, how many leading rows can change there (rows
            sorted by length, longest first; the rest are padding at ``t``, so they keep
            their state and output 0 without being computed, as packed sequences do).

    Returns:
        ``out`` FloatTensor (B, L, H) and the final state FloatTensor (B, H).
    """
    H = w_hh.shape[1]
    # Every time step's input term in one matmul; split (not sliced) per step: one op each way.
    gi_rz, gi_n = F.linear(x, w_ih, b_ih).split([2 * H, H], dim=-1)  # (B, L, 2H), (B, L, H)
    gi_rz, gi_n = gi_rz.unbind(1), gi_n.unbind(1)
    masks = mask.unsqueeze(-1).unbind(1) if mask is not None else None
    h = h0
    outs: list[torch.Tensor | None] = [None] * len(gi_n)
    rows = h0.shape[0]
    for t in (range(len(gi_n) - 1, -1, -1) if reverse else range(len(gi_n))):
        k = rows if live is None else live[t]
        h_k = h[:k]
        gh_rz, gh_n = F.linear(h_k, w_hh, b_hh).split([2 * H, H], dim=-1)
        r, z = torch.sigmoid(gi_rz[t][:k] + gh_rz).chunk(2, dim=-1)
        n = torch.tanh(gi_n[t][:k] + r * gh_n)
        new = n + z * (h_k - n)
        out = new
        if masks is not None:
            new = torch.where(masks[t][:k], new, h_k)
            out = new * masks[t][:k]
        if k < rows:
            h = torch.cat([new, h[k:]], dim=0)
            out = F.pad(out, (0, 0, 0, rows - k))
        else:
            h = new
        outs[t] = out
    return torch.stack(outs, 1), h
