"""A dialogue policy network that serves domains with different slot sets.

The action space is *act x slot* (Meta-DTQN, Xu et al. 2020, split state and action into
act and slot parts for the same reason): a few global acts (query the database and
answer, say goodbye, ...) plus, for every user slot of the domain, the slot acts
(request, explicit confirmation, implicit confirmation). One encoder with *shared
weights* reads each slot's features together with the global features and scores that
slot's acts; the global acts are scored from the global features and a mean/max pooling
over the slots. Nothing depends on how many slots a domain has or what they are called,
so one set of weights acts in bus (3 slots), restaurant (2) and movie (3) alike.

The network is used functionally (``torch.func.functional_call`` with a params dict), so
policy-gradient adaptation goes through :func:`mdlib.meta.inner.inner_loop`.
Notebook 06 introduces it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from mdlib.errors import MdlibError

NEG_INF = -1e9


class SlotActPolicy(nn.Module):
    """Per-slot scorer with shared weights plus a global head.

    Args:
        slot_dim: features per slot (``Fs``).
        global_dim: global features (``Fg``).
        n_slot_acts: acts per slot (``K``).
        n_global_acts: global acts (``G``).
        hidden: hidden units.
    """

    def __init__(self, slot_dim: int, global_dim: int, n_slot_acts: int, n_global_acts: int, hidden: int = 32):
        super().__init__()
        self.slot_dim, self.global_dim = slot_dim, global_dim
        self.n_slot_acts, self.n_global_acts = n_slot_acts, n_global_acts
        self.slot_enc = nn.Sequential(nn.Linear(slot_dim + global_dim, hidden), nn.Tanh(),
                                      nn.Linear(hidden, hidden), nn.Tanh())
        self.slot_head = nn.Linear(hidden, n_slot_acts)
        self.global_head = nn.Sequential(nn.Linear(global_dim + 2 * hidden, hidden), nn.Tanh(),
                                         nn.Linear(hidden, n_global_acts))

    def forward(self, slot_feats: torch.Tensor, global_feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked action logits.

        Args:
            slot_feats: Tensor (B, S, Fs), one row of features per user slot.
            global_feats: Tensor (B, Fg).
            mask: BoolTensor (B, G + S*K), True where the action is allowed.

        Returns:
            Tensor (B, G + S*K): logits laid out as ``[global acts, slot 0 acts, slot 1 acts, ...]``;
            masked actions get -1e9.
        """
        b, s, _ = slot_feats.shape
        g = global_feats.unsqueeze(1).expand(b, s, global_feats.shape[-1])
        h = self.slot_enc(torch.cat([slot_feats, g], dim=-1))                      # (B, S, H)
        slot_logits = self.slot_head(h).reshape(b, s * self.n_slot_acts)          # (B, S*K)
        pooled = torch.cat([h.mean(dim=1), h.max(dim=1).values, global_feats], -1)  # (B, 2H+Fg)
        global_logits = self.global_head(pooled)                                   # (B, G)
        logits = torch.cat([global_logits, slot_logits], dim=-1)
        return logits.masked_fill(~mask, NEG_INF)

    def init_params(self) -> dict[str, torch.Tensor]:
        """A detached copy of the parameters as a dict (the ``params`` of functional calls)."""
        return {k: v.detach().clone() for k, v in self.named_parameters()}


def action_logits(model: SlotActPolicy, params: dict[str, torch.Tensor], slot_feats: torch.Tensor,
                  global_feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``model`` with ``params`` (functional call): Tensor (B, A) of masked logits."""
    if slot_feats.shape[-1] != model.slot_dim or global_feats.shape[-1] != model.global_dim:
        raise MdlibError(f"policy: expected {model.slot_dim} slot and {model.global_dim} global features, "
                         f"got {slot_feats.shape[-1]} and {global_feats.shape[-1]}")
    return functional_call(model, params, (slot_feats, global_feats, mask))


def log_prob_entropy(model: SlotActPolicy, params: dict[str, torch.Tensor], slot_feats: torch.Tensor,
                     global_feats: torch.Tensor, mask: torch.Tensor,
                     actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``actions`` (LongTensor (B,)) and the policy entropy, both Tensor (B,)."""
    logits = action_logits(model, params, slot_feats, global_feats, mask)
    logp_all = torch.log_softmax(logits, dim=-1)
    p = logp_all.exp()
    entropy = -(p * logp_all).masked_fill(~mask, 0.0).sum(-1)
    return logp_all.gather(1, actions.unsqueeze(1)).squeeze(1), entropy


def choose(model: SlotActPolicy, params: dict[str, torch.Tensor], slot_feats: torch.Tensor,
           global_feats: torch.Tensor, mask: torch.Tensor, gen: torch.Generator | None = None,
           greedy: bool = False) -> torch.Tensor:
    """Sample (or pick the most likely) action per row: LongTensor (B,)."""
    with torch.no_grad():
        logits = action_logits(model, params, slot_feats, global_feats, mask)
        if greedy:
            return logits.argmax(-1)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(1)
