"""Text dialogues of the end-to-end system against a simulated user, and their scores.

:func:`run_dialogues` plays ``n`` dialogues of a :class:`~mdlib.system.pipeline.DialogueSystem`
against the simulated user of its domain. The user's acts are realised as text
(``templates.realise`` with the complexity's disfluencies) and the system only sees
that text. The user hears the system in one of two ways (``user=``):

* ``"acts"``: the act-level :class:`~mdlib.data.simulator.UserSimulator` reacts to the
  system's *acts*, whatever the generator said (fast; what reinforcement learning uses);
* ``"listener"``: the :class:`~mdlib.system.listener.ListeningUser` reacts to the
  system's *text*, so the generator's words decide what happens.

Each dialogue becomes a :class:`DialogueRecord`. :func:`simulate` averages them (the
dictionary notebook 07 reads); :func:`summarise` adds 95% percentile-bootstrap
intervals over dialogues (``python -m mdlib simulate``). Scores of the system's turns
compare each response with ``templates.realise`` of the same acts (BLEU) and with the
acts' own values (slot error, :func:`mdlib.metrics.slot_errors`).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from mdlib.data.acts import Act
from mdlib.data.complexity import Complexity, get_complexity
from mdlib.data.simulator import UserSimulator
from mdlib.data.templates import realise, system_vocabulary
from mdlib.data.text import detokenise, tokenise
from mdlib.errors import MdlibError
from mdlib.system.listener import REPEAT, ListeningUser

if TYPE_CHECKING:
    from mdlib.system.pipeline import DialogueSystem

USERS = ("acts", "listener")
#: The return of a dialogue, as in the RL environment (:class:`mdlib.dm.env.DialogueEnv`'s defaults).
SUCCESS_REWARD, TURN_COST = 1.0, 0.05
#: Acts whose value the system's words must say (slot error).
VALUED_ACTS = frozenset({"inform", "explicit_confirm", "implicit_confirm"})


class GarbledGenerator:
    """A generator whose every word is replaced, with probability ``p``, by a random word of
    the domain's system vocabulary (:func:`mdlib.data.templates.system_vocabulary`).

    A control: a user who listens must do worse as ``p`` grows; one who reads the acts
    cannot notice. Punctuation is kept. :func:`run_dialogues` reseeds ``rng`` per dialogue.

    Raises:
        MdlibError: ``p`` outside [0, 1].
    """

    def __init__(self, generator, p: float, domain, seed: int = 0):
        if not 0.0 <= p <= 1.0:
            raise MdlibError(f"--garble: expected a probability in [0, 1], got {p}")
        self.generator = generator
        self.p = float(p)
        self.kind = f"{generator.kind}+garble{p:g}"
        self.words = system_vocabulary(domain)
        self.rng = random.Random(f"garble/{seed}")

    def __call__(self, context, acts: Sequence[Act]) -> str:
        text = self.generator(context, acts)
        if self.p == 0.0:
            return text
        return detokenise([self.rng.choice(self.words) if t[0].isalnum() and self.rng.random() < self.p else t
                           for t in tokenise(text)])


@dataclass
class DialogueRecord:
    """One simulated text dialogue.

    Attributes:
        success: the user left with every goal met.
        turns: user turns.
        repeats: times the (listening) user asked the system to repeat.
        responses: the system's responses (text), one per user turn.
        references: ``templates.realise`` of the same system acts.
        system_acts: the system's acts per response.
        parsed, gold: the parser's acts and the user's true acts per user turn (a
            request to repeat has no parser act: its gold is empty).
        transcript: the dialogue as text lines.
        goals: the user's goals (``UserSimulator.goals``): the same seed gives every system
            the same goals, which is what makes comparisons of systems paired.
    """

    success: bool
    turns: int
    repeats: int = 0
    responses: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    system_acts: list[list[Act]] = field(default_factory=list)
    parsed: list[list[Act]] = field(default_factory=list)
    gold: list[list[Act]] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    goals: list[dict] = field(default_factory=list)

    @property
    def ret(self) -> float:
        """The RL return: ``SUCCESS_REWARD`` on success minus ``TURN_COST`` per system turn."""
        return (SUCCESS_REWARD if self.success else 0.0) - TURN_COST * self.turns


def run_dialogues(system: "DialogueSystem", n: int, seed: int, complexity: Complexity | str = "clean",
                  max_turns: int | None = None, user: str = "acts", progress: bool = False) -> list[DialogueRecord]:
    """Play ``n`` text dialogues of ``system`` against the simulated user of its domain.

    Args:
        system: the dialogue system.
        n: number of dialogues (>= 1).
        seed: seeds the users' goals and phrasings (same seed: same users for every system).
        complexity: the user's behaviour (a preset name or a Complexity).
        max_turns: cap on user turns (default: the complexity's ``max_turns // 2``).
        user: ``"acts"`` (reacts to the system's acts) or ``"listener"`` (to its text).
        progress: show a tqdm bar.

    Raises:
        MdlibError: ``n < 1`` or an unknown ``user``.
    """
    from tqdm.auto import tqdm

    if not isinstance(n, int) or n < 1:
        raise MdlibError(f"dialogues: expected a whole number >= 1, got {n!r}")
    if user not in USERS:
        raise MdlibError(f"user: expected one of {', '.join(USERS)}, got {user!r}")
    comp = get_complexity(complexity)
    cap = max_turns or max(2, comp.max_turns // 2)
    dom = system.domain
    out = []
    for i in tqdm(range(n), desc=f"simulated dialogues ({user})", disable=not progress):
        rng = random.Random(f"e2e/{dom.name}/{seed}/{i}")
        ref_rng = random.Random(f"e2e-ref/{dom.name}/{seed}/{i}")
        if isinstance(system.generator, GarbledGenerator):
            system.generator.rng = random.Random(f"garble/{dom.name}/{seed}/{i}")
        acts_user = UserSimulator(dom, system.db, comp, rng)
        listener = ListeningUser(acts_user) if user == "listener" else None
        rec = DialogueRecord(False, 0, transcript=[f"SYS: {system.reset()}"])
        user_acts = listener.reset() if listener else acts_user.reset()
        rec.goals = copy.deepcopy(acts_user.goals)
        while user_acts and not acts_user.done and rec.turns < cap:
            rec.turns += 1
            text = realise(dom, "user", user_acts, rng, comp) or "..."
            reply = system.respond(text)
            turn = system.history[-1]
            rec.parsed.append(turn.parse.acts)
            rec.gold.append([a for a in user_acts if a != REPEAT])
            rec.responses.append(reply)
            rec.references.append(realise(dom, "system", turn.system_acts, ref_rng))
            rec.system_acts.append(turn.system_acts)
            rec.transcript += [f"USR: {text}", f"     parsed: {turn.parse}", f"SYS: {reply}",
                               f"     acts: {', '.join(map(str, turn.system_acts))}"]
            if listener:
                user_acts = listener.step(reply)
                heard = listener.heard[-1]
                rec.transcript.append(f"     heard: {', '.join(map(str, heard.acts)) or '(nothing)'}"
                                      + (f" [{heard.unclear} unclear]" if heard.unclear else ""))
            else:
                user_acts = acts_user.step(turn.system_acts)
        rec.success = bool(acts_user.done and acts_user.success)
        rec.repeats = listener.repeats if listener else 0
        rec.transcript.append(f"-> {'success' if rec.success else 'failure'} after {rec.turns} user turns")
        out.append(rec)
    return out


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class _Unit:
    """What the scores need of one dialogue (the unit the bootstrap resamples)."""

    success: float
    turns: float
    ret: float
    repeats: float
    slot_counts: tuple[int, int]          # (errors, values) of its system turns
    bleu_stats: tuple[tuple[int, ...], ...]  # sacrebleu statistics of its system turns


def _unit(record: DialogueRecord, lexicon) -> _Unit:
    from mdlib.metrics import bleu_statistics, slot_errors

    errors = n = 0
    for acts, text in zip(record.system_acts, record.responses):
        e, k = slot_errors([a.value for a in acts if a.act in VALUED_ACTS and a.value is not None],
                           tokenise(text), lexicon)
        errors, n = errors + e, n + k
    stats = bleu_statistics(record.responses, record.references) if record.responses else []
    return _Unit(float(record.success), float(record.turns), record.ret, float(record.repeats), (errors, n),
                 tuple(tuple(x) for x in stats))


def _mean(field_name: str):
    return lambda units: sum(getattr(u, field_name) for u in units) / len(units)


def _slot_error(units: Sequence[_Unit]) -> float:
    n = sum(u.slot_counts[1] for u in units)
    return sum(u.slot_counts[0] for u in units) / n if n else math.nan


def _bleu(units: Sequence[_Unit]) -> float:
    from mdlib.metrics import bleu_from_statistics

    return bleu_from_statistics([s for u in units for s in u.bleu_stats])


#: The statistics of a set of dialogues (each a function of their units).
STATISTICS = {
    "success": _mean("success"),
    "turns": _mean("turns"),
    "return": _mean("ret"),
    "repeats": _mean("repeats"),
    "bleu": _bleu,
    "slot_error": _slot_error,
}


def scores(records: Sequence[DialogueRecord], domain: str) -> dict:
    """Point scores of a set of dialogues: success rate, mean user turns, mean return, mean
    requests to repeat, corpus BLEU and slot error of the system's responses (``nan``
    without values to say), entity F1, and the parser's act and slot F1."""
    from mdlib.metrics import entity_f1, lexicon_from_domains
    from mdlib.system.parser import act_slot_f1

    lex = lexicon_from_domains([domain])
    units = [_unit(r, lex) for r in records]
    f1 = act_slot_f1([a for r in records for a in r.parsed], [g for r in records for g in r.gold])
    out = {name: fn(units) for name, fn in STATISTICS.items()}
    out.update(entity_f1=entity_f1([tokenise(h) for r in records for h in r.responses],
                                   [tokenise(x) for r in records for x in r.references], lex),
               parser_act_f1=f1["act_f1"], parser_slot_f1=f1["slot_f1"])
    return out


def summarise(records: Sequence[DialogueRecord], domain: str, seed: int = 0, n_boot: int = 1000) -> dict:
    """``{statistic: {"mean", "low", "high"}}`` for :data:`STATISTICS`, with 95%
    percentile-bootstrap intervals over dialogues.

    Why the bootstrap: success is a rate in [0, 1] and turns are bounded below, so a
    t-interval could leave the bounds; corpus BLEU and slot error (a ratio of sums) are
    not means of per-dialogue values. Resampling dialogues handles all of them alike.
    ``"mean"`` is the statistic on all dialogues (for BLEU: the corpus BLEU).
    """
    from mdlib.metrics import lexicon_from_domains
    from mdlib.stats import bootstrap

    lex = lexicon_from_domains([domain])
    units = [_unit(r, lex) for r in records]
    out = {}
    for name, fn in STATISTICS.items():
        mean, low, high = bootstrap(units, fn, n_boot=n_boot, seed=seed)
        out[name] = {"mean": mean, "low": low, "high": high}
    return out


def simulate(system: "DialogueSystem", n: int, seed: int, complexity: Complexity | str = "clean",
             max_turns: int | None = None, transcripts: int = 0, progress: bool = False,
             user: str = "acts") -> dict:
    """Full text dialogues of ``system`` against the simulated user of its domain (:func:`run_dialogues`).

    Returns:
        :func:`scores` plus ``"n_dialogues"``, ``"user"`` and ``"transcripts"`` (the first
        ``transcripts`` dialogues as text).
    """
    records = run_dialogues(system, n, seed, complexity, max_turns=max_turns, user=user, progress=progress)
    out = scores(records, system.domain.name)
    out.update(n_dialogues=n, user=user, transcripts=["\n".join(r.transcript) for r in records[:transcripts]])
    return out
