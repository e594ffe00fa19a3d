"""A learned dialogue policy inside the end-to-end system, and the file it is saved in.

:class:`LearnedPolicy` has the interface of the data layer's
:class:`~mdlib.dm.threshold.ThresholdPolicy` (``reset()``, ``act(belief, user_acts,
confidence=...)``, ``pending``, ``last_query``), so :class:`mdlib.system.pipeline.DialogueSystem`
can use either. It keeps the system side of the dialogue in a
:class:`~mdlib.dm.env.SystemState`, the class the RL environment is built on, computes
:func:`~mdlib.dm.encoding.encode`'s features from it, takes the most likely action of a
:class:`~mdlib.dm.policy.SlotActPolicy` and says it with ``SystemState.system_acts``: the
same features and the same acts as in training.

``python -m mdlib policy --out R.json`` also writes ``R.policy.pt`` (:func:`policy_path`):
one ``torch.save`` of plain data, read with ``torch.load(..., weights_only=True)``::

    {"format": "mdlib-policy-v1", "params": {name: Tensor}, "config": {"hidden", "domain", "users", ...}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from mdlib.atomic import atomic_path, read_torch
from mdlib.data.acts import Act
from mdlib.data.domains import Database, Domain
from mdlib.dm.belief import BeliefTracker
from mdlib.dm.encoding import GLOBAL_DIM, SLOT_DIM, encode
from mdlib.dm.env import SystemState
from mdlib.dm.policy import SlotActPolicy, choose
from mdlib.errors import MdlibError

FORMAT = "mdlib-policy-v1"
#: The largest hidden size a policy file may ask for (checked before any allocation).
MAX_HIDDEN = 4096
HOW_TO_MAKE = "make one with `python -m mdlib policy --method pretrain --out result.json` (writes result.policy.pt)"


def policy_path(result: str | Path) -> Path:
    """The policy file written next to a result JSON: ``R.json`` -> ``R.policy.pt``."""
    return Path(result).with_suffix(".policy.pt")


class LearnedPolicy:
    """A trained :class:`SlotActPolicy` acting greedily; a drop-in for ``ThresholdPolicy``.

    Args:
        domain: the domain it talks about.
        db: the database its ``inform`` action queries (the system's).
        model: the policy network (architecture; the weights come from ``params``).
        params: its parameters.

    Attributes:
        state: the :class:`SystemState` (the features' input; its ``belief`` is the one
            passed to :meth:`act`).
        last_action: index into ``state.actions`` of the latest chosen action (``None``
            before the first, and for a goodbye answered to the user's goodbye).
    """

    def __init__(self, domain: str | Domain, db: Database, model: SlotActPolicy, params: dict[str, torch.Tensor]):
        self.state = SystemState(domain, db)
        self.model = model
        self.params = {k: v.detach() for k, v in params.items()}
        self.last_action: int | None = None

    @property
    def pending(self) -> list[str]:
        """The system slots the user asked about and has not been told yet."""
        return self.state.pending

    @property
    def last_query(self) -> dict | None:
        """``{"constraints", "count"}`` of the latest turn's query, or ``None`` when it made none."""
        return self.state.last_query

    def reset(self) -> list[Act]:
        """Start a dialogue; return the greeting."""
        self.last_action = None
        return self.state.start()

    def act(self, belief: BeliefTracker, user_acts: list[Act], confidence: float | None = None) -> list[Act]:
        """The system's acts given the belief (already updated with this turn) and the user's acts.

        Args:
            belief: the dialogue's belief tracker.
            user_acts: the recognised user acts of this turn.
            confidence: their recognition confidence (a feature of the policy, so required).

        Raises:
            MdlibError: ``confidence`` missing.
        """
        if confidence is None:
            raise MdlibError("LearnedPolicy.act: confidence= is required (the recognition confidence of the "
                             "user turn is one of the policy's features)")
        s = self.state
        s.belief = belief
        s.observe(list(user_acts), confidence)
        s.last_query = None
        self.last_action = None
        if any(a.act == "goodbye" for a in user_acts):
            system = [Act("goodbye")]
        else:
            slot_feats, global_feats, mask = encode(s)   # (S, Fs), (Fg,), (A,)
            self.last_action = int(choose(self.model, self.params, slot_feats[None], global_feats[None],
                                          mask[None], greedy=True)[0])
            system = s.system_acts(self.last_action)
        s.said(system)
        return system


@dataclass
class TrainedPolicy:
    """A policy network, its parameters and the configuration saved with them."""

    model: SlotActPolicy
    params: dict[str, torch.Tensor]
    config: dict = field(default_factory=dict)

    def bind(self, domain: str | Domain, db: Database) -> LearnedPolicy:
        """A :class:`LearnedPolicy` for one dialogue system's domain and database."""
        return LearnedPolicy(domain, db, self.model, self.params)


def save_policy(path: str | Path, params: dict[str, torch.Tensor], config: dict) -> Path:
    """Write a policy's parameters (Tensors) and JSON-able ``config`` (with ``"hidden"``) atomically.

    Raises:
        MdlibError: ``config`` has no hidden size, or a parameter is not finite.
    """
    if not isinstance(config.get("hidden"), int):
        raise MdlibError(f"refusing to save {path}: config['hidden'] (the hidden size) is missing")
    state = {k: v.detach().cpu().clone() for k, v in params.items()}
    for k, v in state.items():
        if not bool(torch.isfinite(v).all()):
            raise MdlibError(f"refusing to save {path}: parameter {k!r} is not finite")
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "params": state, "config": dict(config)}, tmp)
    return Path(path)


def load_policy(path: str | Path) -> TrainedPolicy:
    """Read a policy file of :func:`save_policy`.

    Raises:
        MdlibError: naming the file: missing, not a policy file, or parameters that do not
            fit the network of its hidden size and this version's features.
    """
    from mdlib.dm.rl import make_policy

    path = Path(path)
    blob = read_torch(path, FORMAT, "policy file", HOW_TO_MAKE)
    config, params = blob.get("config"), blob.get("params")
    hidden = config.get("hidden") if isinstance(config, dict) else None
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= MAX_HIDDEN:
        raise MdlibError(f"{path}: config.hidden: expected a whole number in [1, {MAX_HIDDEN}], got {hidden!r:.40}")
    if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               and v.layout == torch.strided and v.is_floating_point()
                                               for k, v in params.items()):
        raise MdlibError(f"{path}: params: expected a dict of floating-point tensors")
    with torch.device("meta"):  # shapes only: nothing is allocated before the file is checked
        expected = {k: tuple(v.shape) for k, v in make_policy(hidden).named_parameters()}
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or extra:
        raise MdlibError(f"{path}: parameters do not fit the policy network: missing {missing}, unexpected {extra}")
    for k, shape in expected.items():
        if tuple(params[k].shape) != shape:
            raise MdlibError(f"{path}: parameter {k!r} has shape {tuple(params[k].shape)}, expected {shape} "
                             f"(hidden {hidden}, {SLOT_DIM} slot and {GLOBAL_DIM} global features)")
    bad = next((k for k in expected if not bool(torch.isfinite(params[k]).all())), None)
    if bad is not None:
        raise MdlibError(f"{path}: parameter {bad!r} is not finite")
    return TrainedPolicy(make_policy(hidden), {k: params[k].float() for k in expected}, dict(config))
