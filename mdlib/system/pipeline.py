"""The end-to-end dialogue system: parser + belief tracker + policy + generator.

:class:`DialogueSystem` puts the three parts of a dialogue system (docs/architecture.md) behind one object::

    user text --parser--> acts, confidence --BeliefTracker--> belief
              --policy--> system acts --generator--> system text

* parser: :class:`~mdlib.system.parser.LexiconParser` or a (meta-)adapted
  :class:`~mdlib.system.parser.LearnedParser`;
* belief and policy: the dialogue manager's :class:`~mdlib.dm.belief.BeliefTracker` and
  by default the reference :class:`~mdlib.dm.threshold.ThresholdPolicy`, or a policy
  trained by reinforcement learning (``policy=``: a
  :class:`~mdlib.dm.learned.TrainedPolicy`, e.g. ``load_policy("R.policy.pt")``), acting
  through :class:`~mdlib.dm.learned.LearnedPolicy` with the RL environment's features and
  action-to-acts mapping. Both query the database, so answers satisfy the believed
  constraints;
* generator: a :class:`~mdlib.models.contract.Generator` (its parameters pretrained,
  fine-tuned or meta-adapted), decoding the turn's system acts in context, or the
  template realiser :func:`mdlib.data.templates.realise` *only* when asked for
  explicitly (``TemplateGenerator``): it is the reference the learned generator is
  scored against, not a learned part.

:func:`simulate` (:mod:`mdlib.system.simulation`) runs full text dialogues against the
simulated user (the act-level :class:`~mdlib.data.simulator.UserSimulator`, or with
``user="listener"`` the :class:`~mdlib.system.listener.ListeningUser`, who reads the
system's text) and scores success, turns, return, BLEU, slot error and entity F1 of the
system's responses, and the parser's act and slot F1. Notebook 07 uses it.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch

from mdlib.data.acts import Act
from mdlib.data.domains import Database, Domain, get_domain
from mdlib.data.pairs import Pair
from mdlib.dm.belief import BeliefTracker
from mdlib.dm.threshold import ThresholdPolicy
from mdlib.data.templates import realise
from mdlib.data.text import SYS, USR, detokenise, tokenise
from mdlib.dm.learned import TrainedPolicy
from mdlib.errors import MdlibError
from mdlib.system.parser import LexiconParser, Parse

MAX_INPUT_CHARS = 500


class TemplateGenerator:
    """The template realiser as a generator (used only when configured explicitly)."""

    kind = "templates"

    def __init__(self, domain: Domain | str, seed: int = 0):
        self.domain = get_domain(domain)
        self.rng = random.Random(f"templates/{seed}")

    def __call__(self, context: Sequence[str], acts: Sequence[Act]) -> str:
        return realise(self.domain, "system", list(acts), self.rng)


class NeuralGenerator:
    """A neural generator (the generator contract) with given parameters: the turn's acts in context -> text.

    Args:
        model: the generator (:class:`~mdlib.models.contract.Generator`).
        params: its (adapted) parameters (``None``: the model's own).
        vocab: its vocabulary.
        context_turns, use_acts, max_src, max_len: input and decoding settings (a
            :class:`~mdlib.profiles.Profile` has them).
    """

    kind = "seq2seq"

    def __init__(self, model, params: Mapping[str, torch.Tensor] | None, vocab, *, context_turns: int = 2,
                 use_acts: bool = True, max_src: int = 80, max_len: int = 40):
        self.model = model
        self.params = None if params is None else {k: v.detach() for k, v in params.items()}
        self.vocab = vocab
        self.context_turns = context_turns
        self.use_acts = use_acts
        self.max_src = max_src
        self.max_len = max_len
        self._copy = None  # the model that decodes with ``params`` (made at the first turn)

    @classmethod
    def from_profile(cls, model, params, vocab, profile) -> "NeuralGenerator":
        """Settings from a :class:`~mdlib.profiles.Profile` (or its name)."""
        from mdlib.profiles import get_profile

        p = get_profile(profile)
        if not p.use_acts:  # the live system has acts, not the corpus's belief and database columns
            raise MdlibError(f"profile {p.name!r} has input {p.input!r}; the end-to-end system's "
                             "generator reads the turn's acts (input 'acts')")
        return cls(model, params, vocab, context_turns=p.context_turns, use_acts=p.use_acts,
                   max_src=p.max_src, max_len=p.max_len)

    @classmethod
    def from_checkpoint(cls, path: str | Path, profile="quick", device=None) -> "NeuralGenerator":
        """Load a checkpoint of ``python -m mdlib train`` (MdlibError saying how to make one)."""
        from mdlib.checkpoint import load_checkpoint
        from mdlib.profiles import get_profile

        model, vocab, config, _ = load_checkpoint(path, device=device)
        # the checkpoint's own input settings (runs saved before they existed read acts)
        inputs = config.get("inputs") or {"input": "acts"}
        return cls.from_profile(model, None, vocab, get_profile(profile).with_inputs(inputs))

    @torch.no_grad()
    def __call__(self, context: Sequence[str], acts: Sequence[Act]) -> str:
        from mdlib.models.batching import collate
        from mdlib.models.decoding import greedy

        ctx: list[str] = []
        for turn in list(context)[-self.context_turns:] if self.context_turns else []:
            ctx.extend(turn)
        pair = Pair(context=tuple(ctx), response=(), acts=tuple(acts))
        model = self._decoder()
        device = next(model.parameters()).device
        batch = collate([pair], self.vocab, use_acts=self.use_acts, max_src=self.max_src, device=device)
        was = model.training
        model.eval()
        try:
            out = greedy(model, batch, self.vocab, max_len=self.max_len)[0]
        finally:
            model.train(was)
        return detokenise(out)

    def _decoder(self):
        """The model holding ``params``: one copy per generator, its values refreshed every turn.

        Why not ``greedy(..., params=...)``: that deep-copies the model at every turn, a
        third of the time of an end-to-end dialogue; copying the values is cheap.
        """
        if self.params is None:
            return self.model
        if self._copy is None:
            self._copy = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, p in self._copy.named_parameters():
                p.copy_(self.params[name])
        return self._copy


@dataclass
class TurnRecord:
    """One exchange: what the user said, how it was parsed, what the system did and said."""

    user_text: str
    parse: Parse
    system_acts: list[Act]
    system_text: str
    belief: dict = field(default_factory=dict)


class DialogueSystem:
    """Parser + belief tracker + policy + generator behind ``respond`` and ``reset``.

    Args:
        domain: the domain (or its name).
        parser: an object with ``parse(text, last_system_acts) -> Parse`` (default: the
            lexicon parser).
        generator: ``generator(context_turns, acts) -> text`` (a :class:`NeuralGenerator`
            or, explicitly, a :class:`TemplateGenerator`). Required: no silent fallback.
        db_seed: the database seed (the corpora use 0).
        policy: ``None`` for the rule-based :class:`ThresholdPolicy`, or a
            :class:`~mdlib.dm.learned.TrainedPolicy` (see :func:`mdlib.dm.learned.load_policy`).
    """

    def __init__(self, domain: Domain | str, generator, parser=None, db_seed: int = 0,
                 policy: TrainedPolicy | None = None):
        if generator is None:
            raise MdlibError("DialogueSystem needs a generator: a NeuralGenerator (from a checkpoint of "
                             "`python -m mdlib train`) or, explicitly, TemplateGenerator(domain)")
        self.domain = get_domain(domain)
        self.db = Database(self.domain, db_seed)
        self.parser = parser or LexiconParser(self.domain)
        self.generator = generator
        self.belief = BeliefTracker(self.domain)
        if policy is not None and not isinstance(policy, TrainedPolicy):
            raise MdlibError(f"policy: expected None (the threshold policy) or a TrainedPolicy "
                             f"(mdlib.dm.learned.load_policy), got {type(policy).__name__}")
        self.policy = ThresholdPolicy(self.domain, self.db) if policy is None else policy.bind(self.domain, self.db)
        self.history: list[TurnRecord] = []
        self.context: list[list[str]] = []
        self.last_acts: list[Act] = []

    def _say(self, acts: list[Act]) -> str:
        text = self.generator(self.context, acts)
        self.context.append([SYS] + tokenise(text))
        self.last_acts = acts
        return text

    def reset(self) -> str:
        """Start a new dialogue; return the system's greeting."""
        self.belief.reset()
        self.history = []
        self.context = []
        return self._say(self.policy.reset())

    def respond(self, user_text: str) -> str:
        """The system's reply to one user turn.

        Raises:
            MdlibError: empty input, or input longer than :data:`MAX_INPUT_CHARS`.
        """
        if not isinstance(user_text, str) or not user_text.strip():
            raise MdlibError("empty input: type what you want, e.g. 'I want a comedy'")
        if len(user_text) > MAX_INPUT_CHARS:
            raise MdlibError(f"input too long ({len(user_text)} characters; at most {MAX_INPUT_CHARS})")
        if not self.context:
            self.reset()
        parse = self.parser.parse(user_text, self.last_acts)
        return self.respond_parsed(user_text, parse)

    def respond_parsed(self, user_text: str, parse: Parse) -> str:
        """Like :meth:`respond` with the parse already made (batch evaluation)."""
        self.context.append([USR] + tokenise(user_text))
        self.belief.update(parse.acts, parse.confidence, self.last_acts)
        acts = self.policy.act(self.belief, parse.acts, confidence=parse.confidence)
        text = self._say(acts)
        self.history.append(TurnRecord(user_text, parse, acts, text, self.belief.snapshot()))
        return text


# --------------------------------------------------------------------------- evaluation

# simulated text dialogues live in mdlib.system.simulation; imported here, where they always were
from mdlib.system.simulation import simulate  # noqa: E402,F401
