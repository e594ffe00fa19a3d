"""The generator contract: what the rest of mdlib needs from a response generator.

Decoding (:mod:`mdlib.models.decoding`), checkpoints (:mod:`mdlib.checkpoint`), ANIL's
head (:mod:`mdlib.meta.learners`), training, adaptation and evaluation
(:mod:`mdlib.evaluation`) use a generator only through :class:`Generator` and the
registry below, never through one architecture's layers. The reference generator, the
GRU encoder-decoder with attention and copy (:class:`mdlib.models.seq2seq.Seq2Seq`), is
registered as ``"gru"``. A new one is a ``torch.nn.Module`` that meets the protocol::

    @register_generator("bow")
    class BagOfWords(nn.Module):
        @classmethod
        def config_from_dict(cls, d, where): ...      # checked config (has .vocab_size, .to_dict())
        def __init__(self, config): ...
        def forward(self, batch, reduction="mean"): ...   # NLL of batch.tgt_out
        def start(self, batch): ...                        # decoding state of the B rows
        def step(self, tokens, state): ...                 # (B, 1) -> logp (B, V + n_oov), state
        def select(self, state, rows): ...                 # the state of these rows (beam search)
        def head_names(self): ...                          # ANIL's parameters
        def read_as_unk(self, ids, unk_id): ...            # new words read as <unk>

after which ``make_generator({"generator": "bow", "vocab_size": ...})`` builds it, and a
checkpoint of it (which records the name) loads back as one. Checkpoints written before
the name was recorded load as ``"gru"``. The model must stay *functional*:
``torch.func.functional_call(model, params, (batch,))`` gives the loss from a parameter
dict, so every meta-learner can differentiate through adaptation.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import torch

from mdlib.errors import MdlibError
from mdlib.models.batching import Batch

#: The name a checkpoint without one was written by (every generator before the registry).
DEFAULT_GENERATOR = "gru"
#: ``name -> generator class`` (:func:`register_generator`).
GENERATORS: dict[str, type] = {}


class GeneratorConfig(Protocol):
    """A generator's settings: plain data that a checkpoint stores and rebuilds the model from."""

    vocab_size: int

    def to_dict(self) -> dict:
        """JSON-able fields; ``config_from_dict(to_dict())`` gives the same configuration."""
        ...


@runtime_checkable
class Generator(Protocol):
    """A response generator as mdlib uses it (an ``nn.Module``).

    Shapes: ``B`` rows, ``V`` the vocabulary, ``n_oov`` the batch's extended vocabulary
    of copyable source words (:class:`~mdlib.models.batching.Batch`).
    """

    config: GeneratorConfig

    def forward(self, batch: Batch, reduction: str = "mean") -> torch.Tensor:
        """NLL of ``batch.tgt_out`` given the inputs: ``"mean"`` per real target token
        (Tensor ()), ``"sum"`` (Tensor ()) or ``"none"`` (Tensor (B, T), 0 at padding)."""
        ...

    def start(self, batch: Batch) -> Any:
        """The decoding state of the batch's rows before the first generated token."""
        ...

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Log-probabilities of the next token: ``tokens`` LongTensor (B, 1), the previous
        token of each row (``<bos>`` first; extended ids for copied words) ->
        ``(logp FloatTensor (B, V + n_oov), the new state)``."""
        ...

    def select(self, state: Any, rows: torch.Tensor) -> Any:
        """The state of ``rows`` (LongTensor (R,), repeats allowed): beam search keeps and
        copies hypotheses with it."""
        ...

    def head_names(self) -> list[str]:
        """Names (as in ``named_parameters``) of the output head: what ANIL adapts."""
        ...

    def read_as_unk(self, ids: torch.Tensor, unk_id: int) -> None:
        """Make the vocabulary ids ``ids`` read as ``<unk>`` in the input (in place; a
        generator without input embeddings may do nothing)."""
        ...


def register_generator(name: str) -> Callable[[type], type]:
    """Class decorator: make a generator class available as ``name``.

    Raises:
        MdlibError: ``name`` is taken by another class, or the class lacks a method of
            :class:`Generator` or ``config_from_dict``.
    """

    def deco(cls: type) -> type:
        missing = [m for m in ("config_from_dict", "forward", "start", "step", "select", "head_names",
                               "read_as_unk") if not callable(getattr(cls, m, None))]
        if missing:
            raise MdlibError(f"register_generator({name!r}): {cls.__name__} lacks {', '.join(missing)} "
                             "(the generator contract, mdlib.models.contract)")
        if GENERATORS.get(name, cls) is not cls:
            raise MdlibError(f"register_generator: {name!r} is already {GENERATORS[name].__name__}")
        GENERATORS[name] = cls
        cls.generator_name = name
        return cls

    return deco


def _registered() -> dict[str, type]:
    import mdlib.models.seq2seq  # noqa: F401  (registers "gru")

    return GENERATORS


def generator_class(name: str) -> type:
    """The class registered as ``name``.

    Raises:
        MdlibError: an unknown name (listing the registered ones).
    """
    known = _registered()
    if not isinstance(name, str) or name not in known:
        raise MdlibError(f"unknown generator {name!r:.40}; registered: {', '.join(sorted(known))}")
    return known[name]


def generator_config(model: Generator) -> dict:
    """``{"generator": name, **model.config.to_dict()}``: what a checkpoint stores."""
    name = getattr(type(model), "generator_name", None)
    if name is None or _registered().get(name) is not type(model):
        raise MdlibError(f"{type(model).__name__} is not a registered generator "
                         "(mdlib.models.contract.register_generator)")
    return {"generator": name, **model.config.to_dict()}


def parse_config(config: Mapping[str, Any], where: str = "generator config") -> tuple[type, GeneratorConfig]:
    """The class and checked configuration of ``config`` (as :func:`generator_config` wrote
    it; without ``"generator"``: :data:`DEFAULT_GENERATOR`). Nothing is allocated.

    Raises:
        MdlibError: an unknown generator or a bad field, naming ``where`` and the field.
    """
    fields = dict(config)
    name = fields.pop("generator", DEFAULT_GENERATOR)
    try:
        cls = generator_class(name)
    except MdlibError as exc:
        raise MdlibError(f"{where}.generator: {exc}") from None
    return cls, cls.config_from_dict(fields, where)


def make_generator(config: Mapping[str, Any], *, device: torch.device | str | None = None) -> Generator:
    """Build the generator that ``config`` names (see :func:`parse_config`), on ``device``."""
    cls, conf = parse_config(config)
    model = cls(conf)
    return model.to(device) if device is not None else model


def bind(model: torch.nn.Module, params: Mapping[str, torch.Tensor] | None) -> torch.nn.Module:
    """A copy of ``model`` whose parameters hold the values of ``params`` (for decoding).

    ``params=None`` returns ``model`` itself. The copy is detached from autograd: use it
    to generate text, not to differentiate.
    """
    if params is None:
        return model
    import copy

    clone = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in clone.named_parameters():
            p.copy_(params[name].detach())
    return clone
