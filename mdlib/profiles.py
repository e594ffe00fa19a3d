"""Named run profiles: ``smoke`` (seconds, tests), ``quick`` (notebook default, minutes on
2 cores) and ``paper`` (the full runs).

A profile is a frozen dataclass; derive a variant with ``profile.replace(epochs=3)``.
To add fields (meta-learning settings, ...), add them with defaults to :class:`Profile`
and set per-profile values in :data:`PROFILES`.

Fine-tuning step size and step count (``ft_lr``, ``ft_steps``) are fixed a priori, never
chosen on a target's test set: plain SGD with lr 0.1 for 20 steps on the k target
dialogues (notebook 02 shows the curve over steps on the *source* validation split).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mdlib.errors import MdlibError, lookup


@dataclass(frozen=True)
class Profile:
    """Every size, budget and protocol setting of a run.

    Attributes:
        name: the profile's name.
        emb, hidden, copy: generator size (:class:`~mdlib.models.seq2seq.ModelConfig`).
        context_turns: turns of context per pair.
        input: the generator's input (:data:`mdlib.data.pairs.INPUTS`): ``"context"`` (the
            default, the domains protocol as DAML ran it), the context, belief and
            database result with system-slot values delexicalised; or ``"acts"``, the
            context and the turn's system acts with their values, which a response can
            copy (docs/protocol.md). The persona family reads acts
            (:func:`mdlib.data.personas.persona_profile`); so does the end-to-end system's
            generator, which realises the manager's acts.
        max_src, max_tgt: token caps of source and target.
        min_freq: vocabulary cut-off (vocabulary built on the source train split).
        n_train, n_valid: dialogues per source domain for pretraining / early stopping.
        n_test: test dialogues per target.
        epochs, batch_size, lr, clip, patience: supervised (pre)training.
        max_steps: optional cap on optimiser steps (``None``: epochs decide).
        seeds: seeds of the comparisons; k_list: shots (target dialogues) to adapt on.
        ft_steps, ft_lr, ft_batch: fine-tuning on k target dialogues (SGD through the inner loop).
        scratch_steps, scratch_lr: the train-on-target-only baseline (from a random init).
        max_len, beam: decoding.
        targets: target domains evaluated.
        meta_steps, meta_batch: meta-training (issue 4): outer steps and tasks (source
            domains) per meta-batch; meta_k_support, meta_k_query: dialogues in an
            episode's disjoint support and query sets; inner_steps, inner_lr: the inner
            loop (SGD) while meta-training; outer_lr, meta_clip: outer Adam and gradient
            clipping; meta_eval_every: meta-validation on the source valid split;
            meta_init: "pretrain" (start from the supervised checkpoint) or "scratch".
    """

    name: str
    emb: int = 64
    hidden: int = 128
    copy: bool = True
    context_turns: int = 2
    input: str = "context"
    max_src: int = 80
    max_tgt: int = 40
    min_freq: int = 1
    n_train: int = 900
    n_valid: int = 100
    n_test: int = 500
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    clip: float = 5.0
    patience: int = 2
    max_steps: int | None = None
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    k_list: tuple[int, ...] = (0, 1, 3, 9, 27)
    ft_steps: int = 20
    ft_lr: float = 0.1
    ft_batch: int = 64
    scratch_steps: int = 200
    scratch_lr: float = 0.5
    max_len: int = 40
    beam: int = 1
    targets: tuple[str, ...] = ("movie", "restaurant_style", "rest_pitt")
    meta_steps: int = 300
    meta_batch: int = 3
    meta_k_support: int = 4
    meta_k_query: int = 4
    inner_steps: int = 1
    inner_lr: float = 0.1
    outer_lr: float = 1e-3
    meta_clip: float = 2.0
    meta_eval_every: int = 50
    meta_init: str = "pretrain"
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        from mdlib.data.pairs import INPUTS

        if self.input not in INPUTS:
            raise MdlibError(f"profile {self.name!r}: input must be one of {', '.join(INPUTS)}; got {self.input!r}")

    @property
    def use_acts(self) -> bool:
        """Whether the source ends with the turn's acts (``input == "acts"``)."""
        return self.input == "acts"

    def input_settings(self) -> dict:
        """The settings that decide what the generator reads (saved with a run as ``inputs``)."""
        return {k: getattr(self, k) for k in ("context_turns", "input", "max_src", "max_tgt")}

    def with_inputs(self, inputs: dict) -> "Profile":
        """A copy with a run's saved ``inputs`` (:meth:`input_settings`). Runs saved before
        ``input`` existed carry ``use_acts: true``, which is ``input: "acts"``."""
        inputs = dict(inputs)
        if "use_acts" in inputs:
            if not inputs.pop("use_acts"):
                raise MdlibError("the run was saved with use_acts=false, an input this version no longer "
                                 "reads; train it again with --input acts or --input context")
            inputs.setdefault("input", "acts")
        return self.replace(**{k: v for k, v in inputs.items() if k in self.input_settings()})

    def replace(self, **changes) -> "Profile":
        """A copy with ``changes`` (unknown field -> MdlibError naming it)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise MdlibError(f"profile {self.name!r} has no field(s) {unknown}; known: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def model_config(self) -> dict:
        """The fields that decide the model and its inputs (hashed for the run cache)."""
        return {k: getattr(self, k) for k in ("emb", "hidden", "copy", "context_turns", "input",
                                               "max_src", "max_tgt", "min_freq")}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(name="smoke", emb=16, hidden=32, n_train=6, n_valid=2, n_test=3, epochs=1,
                     batch_size=16, max_steps=6, seeds=(0,), k_list=(0, 1), ft_steps=2,
                     scratch_steps=3, max_len=12, targets=("movie",),
                     meta_steps=3, meta_k_support=2, meta_k_query=2, meta_eval_every=3),
    "quick": Profile(name="quick", emb=48, hidden=96, n_train=80, n_valid=15, n_test=15, epochs=6,
                     batch_size=32, patience=2, seeds=(0, 1, 2), k_list=(0, 1, 3, 9),
                     ft_steps=20, scratch_steps=40, max_len=30),
    # Sized so that `reproduce --profile paper --jobs 2` finishes well within 90 minutes on a
    # 2-core laptop CPU (the committed run records its wall-clock time): the quick model, 6
    # times its training data, 5 seeds, k up to 27 and 100 test dialogues per target. DAML's
    # full protocol (900 training and 500 test dialogues, a larger model) needs a GPU or hours.
    "paper": Profile(name="paper", emb=48, hidden=96, n_train=500, n_valid=60, n_test=100, epochs=8,
                     batch_size=32, patience=2, seeds=(0, 1, 2, 3, 4), k_list=(0, 1, 3, 9, 27),
                     ft_steps=20, scratch_steps=40, max_len=30),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (a :class:`Profile` is returned unchanged).

    Raises:
        MdlibError: for an unknown name, listing the known profiles.
    """
    return lookup(PROFILES, name, "profile", Profile)
