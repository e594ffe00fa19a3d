"""The end-to-end system's parts loaded from files, each checked against the domain it serves.

``python -m mdlib simulate`` builds its :class:`~mdlib.system.pipeline.DialogueSystem`
from these (defaults in brackets):

* generator: :func:`load_generator` of a run folder or checkpoint of ``python -m mdlib
  train`` [the template realiser];
* manager: :func:`mdlib.dm.learned.load_policy` of ``R.policy.pt`` from ``python -m mdlib
  policy --out R.json`` [the threshold policy];
* parser: :func:`mdlib.system.parser.load_parser` of a parser file or folder [the keyword
  parser].

Every failure is one :class:`~mdlib.errors.MdlibError` line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from mdlib.data.domains import get_domain
from mdlib.errors import MdlibError


def served_domains(config: dict) -> list[str] | None:
    """The domains a generator checkpoint can speak for, from its saved run settings.

    A run on the protocol corpora (no ``corpus``) has a vocabulary covering every protocol
    domain (:func:`mdlib.evaluation.protocol_vocab`): ``None`` (all). A run on a user
    corpus knows only that corpus's ``sources`` and ``targets``.
    """
    if not config.get("corpus"):
        return None
    return list(config.get("sources") or []) + list(config.get("targets") or [])


def load_generator(checkpoint: str | Path, domain: str, device=None):
    """A :class:`~mdlib.system.pipeline.NeuralGenerator` from a ``train`` run, for ``domain``.

    The decoding settings are the checkpoint's own (its ``inputs`` and profile).

    Raises:
        MdlibError: missing or foreign file; a generator trained without the system acts
            as input (it cannot say a manager's acts); one trained on a corpus whose tasks
            do not include ``domain``.
    """
    from mdlib.checkpoint import load_checkpoint
    from mdlib.profiles import get_profile
    from mdlib.system.pipeline import NeuralGenerator

    name = get_domain(domain).name
    model, vocab, config, _ = load_checkpoint(checkpoint, device=device)
    inputs = config.get("inputs") or {}
    # runs saved before the input setting existed read acts (use_acts true or no inputs at all)
    if inputs.get("use_acts") is False or inputs.get("input", "acts") != "acts":
        raise MdlibError(f"{checkpoint}: this generator was trained without the system acts as input, "
                         "so it cannot say what a dialogue manager decides; train one with --input acts")
    served = served_domains(config)
    if served is not None and name not in served:
        raise MdlibError(f"{checkpoint}: this generator was trained on corpus {config.get('corpus')} for "
                         f"{', '.join(served) or 'no named tasks'}; it cannot serve domain {name!r}")
    profile = get_profile(config.get("profile_name") or "quick")
    return NeuralGenerator(model, None, vocab, context_turns=inputs.get("context_turns", profile.context_turns),
                           use_acts=True, max_src=inputs.get("max_src", profile.max_src), max_len=profile.max_len)

