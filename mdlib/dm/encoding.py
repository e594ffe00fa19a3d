"""State features and action mask of a :class:`~mdlib.dm.env.DialogueEnv` for the policy network.

They read only the system side (:class:`~mdlib.dm.env.SystemState`), so the learned policy
inside the end-to-end system (:class:`mdlib.dm.learned.LearnedPolicy`) computes them the same way.

The state is split like the action space (act x slot): a row of features per user slot,
computed the same way for every slot of every domain, and a vector of global features.
Slot names and values never appear, so the same network reads bus, restaurant or movie
dialogues (:mod:`mdlib.dm.policy`).

Per-slot features (``SLOT_FEATURES``): the belief's confidence, whether the value is
known, "don't care" or grounded (>= 0.95), confidence bands (< 0.2, < 0.6, < 0.95),
whether the last user turn informed / disconfirmed this slot, which act the last system
turn used on it, and how often it has been asked about.

Global features (``GLOBAL_FEATURES``): turn count, the last turn's recognition
confidence, the share of known and grounded slots, whether the user is waiting for an
answer, whether the last query found nothing, the kinds of the last user acts, and the
kind of the last system action.

Action mask: confirmations of a slot the belief knows nothing about are not allowed (they
would confirm no value); ``inform`` needs a pending user request. Everything else is.
"""

from __future__ import annotations

import torch

from mdlib.data.acts import USER_ACTS
from mdlib.dm.env import GLOBAL_ACTS, SLOT_ACTS, SystemState

_LAST_SYS = ("request", "explicit_confirm", "implicit_confirm", "inform", "request_more", "other")
SLOT_FEATURES: tuple[str, ...] = (
    "conf", "known", "dont_care", "grounded", "band<0.2", "band<0.6", "band<0.95", "informed_last",
    "disconfirmed_last", "sys_request_last", "sys_explicit_last", "sys_implicit_last", "times_asked",
)
GLOBAL_FEATURES: tuple[str, ...] = (
    ("bias", "turn", "confidence", "share_known", "share_grounded", "all_grounded", "pending",
     "no_result_last") + tuple(f"user_{a}" for a in USER_ACTS) + tuple(f"sys_{a}" for a in _LAST_SYS)
)
SLOT_DIM = len(SLOT_FEATURES)
GLOBAL_DIM = len(GLOBAL_FEATURES)
N_SLOT_ACTS = len(SLOT_ACTS)
N_GLOBAL_ACTS = len(GLOBAL_ACTS)


def encode(env: SystemState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features of the current state of an environment (or any :class:`SystemState`).

    Returns:
        ``(slot_feats, global_feats, mask)``: Tensor (S, SLOT_DIM), Tensor (GLOBAL_DIM,),
        BoolTensor (N_GLOBAL_ACTS + S * N_SLOT_ACTS,) with S the domain's number of user slots.
    """
    belief = env.belief.slots
    informed = {a.slot for a in env.user_acts if a.act == "inform"}
    disconfirmed = any(a.act == "disconfirm" for a in env.user_acts)
    sys_on = {a.slot: a.act for a in env.last_system if a.slot is not None}
    slot_rows = []
    for s in env.slots:
        conf, value = belief[s]["conf"], belief[s]["value"]
        last = sys_on.get(s)
        slot_rows.append([
            conf, float(conf > 0), float(conf > 0 and value is None), float(conf >= 0.95),
            float(conf < 0.2), float(0.2 <= conf < 0.6), float(0.6 <= conf < 0.95),
            float(s in informed), float(disconfirmed and last in ("explicit_confirm", "implicit_confirm")),
            float(last == "request"), float(last == "explicit_confirm"), float(last == "implicit_confirm"),
            min(env.asked[s], 5) / 5.0,
        ])
    n = len(env.slots)
    user_kinds = {a.act for a in env.user_acts}
    sys_kinds = {a.act for a in env.last_system}
    last_sys = next((k for k in _LAST_SYS[:-1] if k in sys_kinds), "other")
    glob = [
        1.0, min(env.turn, 20) / 20.0, env.confidence,
        sum(belief[s]["conf"] > 0 for s in env.slots) / n,
        sum(belief[s]["conf"] >= 0.95 for s in env.slots) / n,
        float(all(belief[s]["conf"] >= 0.95 for s in env.slots)),
        float(bool(env.pending)),
        float("no_result" in sys_kinds),
    ] + [float(a in user_kinds) for a in USER_ACTS] + [float(k == last_sys) for k in _LAST_SYS]
    mask = [bool(env.pending), True]
    for s in env.slots:
        known = belief[s]["conf"] > 0
        mask += [True, known, known]
    return (torch.tensor(slot_rows, dtype=torch.float32), torch.tensor(glob, dtype=torch.float32),
            torch.tensor(mask, dtype=torch.bool))
