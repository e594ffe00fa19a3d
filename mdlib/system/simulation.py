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


def _bleu(records: Sequence[DialogueRecord]) -> float | None:
    from mdlib.metrics import corpus_bleu

    hyps = [h for r in records for h in r.responses]
    return corpus_bleu(hyps, [x for r in records for x in r.references]) if hyps else None


def _slot_error(records: Sequence[DialogueRecord], lexicon) -> float | None:
    from mdlib.metrics import slot_errors

    errors = n = 0
    for r in records:
        for acts, text in zip(r.system_acts, r.responses):
            e, k = slot_errors([a.value for a in acts if a.act in VALUED_ACTS and a.value is not None],
                               tokenise(text), lexicon)
            errors, n = errors + e, n + k
    return errors / n if n else None


def _lexicon(records_domain: str):
    from mdlib.metrics import lexicon_from_domains

    return lexicon_from_domains([records_domain])


def scores(records: Sequence[DialogueRecord], domain: str) -> dict:
    """Point scores of a set of dialogues: success rate, mean user turns, mean return, corpus
    BLEU and slot error of the system's responses, entity F1, the parser's act and slot F1."""
    from mdlib.metrics import entity_f1
    from mdlib.system.parser import act_slot_f1

    lex = _lexicon(domain)
    f1 = act_slot_f1([a for r in records for a in r.parsed], [g for r in records for g in r.gold])
    n = max(1, len(records))
    return {
        "success": sum(r.success for r in records) / n,
        "turns": sum(r.turns for r in records) / n,
        "return": sum(r.ret for r in records) / n,
        "bleu": _bleu(records),
        "slot_error": _slot_error(records, lex),
        "entity_f1": entity_f1([tokenise(h) for r in records for h in r.responses],
                               [tokenise(x) for r in records for x in r.references], lex),
        "parser_act_f1": f1["act_f1"],
        "parser_slot_f1": f1["slot_f1"],
        "repeats": sum(r.repeats for r in records) / n,
    }


def summarise(records: Sequence[DialogueRecord], domain: str, seed: int = 0, n_boot: int = 1000) -> dict:
    """``{metric: {"mean", "low", "high"}}`` with 95% percentile-bootstrap intervals over dialogues.

    Why the bootstrap: success is a rate in [0, 1] and turns are bounded below, so a
    t-interval could leave the bounds; corpus BLEU and slot error (a ratio of sums) are
    not means of per-dialogue values. Resampling dialogues handles all of them alike.
    ``"mean"`` is the statistic on all dialogues (for BLEU: the corpus BLEU).
    """
    from mdlib.stats import bootstrap

    lex = _lexicon(domain)
    stats = {
        "success": lambda rs: sum(r.success for r in rs) / len(rs),
        "turns": lambda rs: sum(r.turns for r in rs) / len(rs),
        "return": lambda rs: sum(r.ret for r in rs) / len(rs),
        "repeats": lambda rs: sum(r.repeats for r in rs) / len(rs),
        "slot_error": lambda rs: _nan(_slot_error(rs, lex)),
    }
    out = {}
    for name, fn in stats.items():
        mean, low, high = bootstrap(records, fn, n_boot=n_boot, seed=seed)
        out[name] = {"mean": mean, "low": low, "high": high}
    # corpus BLEU re-tokenises every resample (sacrebleu): fewer resamples keep it to seconds
    mean, low, high = bootstrap(records, lambda rs: _nan(_bleu(rs)), n_boot=min(n_boot, 200), seed=seed)
    out["bleu"] = {"mean": mean, "low": low, "high": high}
    return out


def _nan(x: float | None) -> float:
    return float("nan") if x is None else x


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
