"""(context, response) pairs for the response generator: one pair per system turn.

Two inputs (:data:`INPUTS`, the profile's ``input``; docs/protocol.md says which
protocol uses which):

* ``"acts"`` (:func:`extract_pairs`' default; a profile's is ``"context"``): the recent
  context *and* the system acts of the turn to put into words, informed values included:
  the act-to-text NLG setting of Meta-NLG. Every value of a reference response is in its
  acts, so entity F1 on this input measures copying. A corpus without act annotations
  still works: the acts are then empty and the input is the context only.
* ``"context"`` (the default of :class:`mdlib.profiles.Profile`, the domains protocol):
  what DAML's model read: the last turns, the belief and the database result, with
  system-slot values delexicalised in the context and in the target
  (:mod:`mdlib.data.context`).

Source layout of one pair (``Pair.source()``), with ``context_turns=2`` and acts input::

    <sys> what city are you in ? <usr> pittsburgh please <sep> inform food_pref thai request loc
    |---------------- context (last N turns) -------------|     |---- the turn's system acts ----|
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from mdlib.data import context as ctxin
from mdlib.data.acts import Act
from mdlib.data.text import SEP, SYS, USR, relexicalise, tokenise
from mdlib.errors import MdlibError

#: The generator's inputs: the turn's acts with their values, or the context only.
INPUTS: tuple[str, ...] = ("acts", "context")


@dataclass(frozen=True)
class Pair:
    """One training example of the generator.

    Attributes:
        context: tokens of the last ``context_turns`` turns, each preceded by ``<usr>`` or ``<sys>``.
        response: tokens of the system turn (the target).
        acts: the system acts of that turn (empty when the corpus has none).
        domain: the dialogue's ``domain`` field (the task key).
        dialogue_id: the dialogue's ``id``.
        turn: index of the system turn inside the dialogue.
        belief: context input only: the belief and database-result tokens
            (:mod:`mdlib.data.context`); empty with acts input.
        surface: context input only: the response as written, when ``response`` (the
            target) is delexicalised; empty when ``response`` is the text itself.
        fill: context input only: ``(placeholder, value tokens)`` of the latest database
            row, to put values back into a generated response (:meth:`lexicalise`).
    """

    context: tuple[str, ...]
    response: tuple[str, ...]
    acts: tuple[Act, ...] = field(default_factory=tuple)
    domain: str = ""
    dialogue_id: str = ""
    turn: int = 0
    belief: tuple[str, ...] = ()
    surface: tuple[str, ...] = ()
    fill: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def act_tokens(self) -> list[str]:
        """The acts as tokens: act name, slot name (one token), value tokens."""
        out: list[str] = []
        for a in self.acts:
            out.append(a.act)
            if a.slot:
                out.append(a.slot)
            if a.value is not None:
                out.extend(tokenise(str(a.value)))
        return out

    def source(self, use_acts: bool = True) -> list[str]:
        """Encoder input: the context, then ``<sep>`` and the belief when there is one,
        then ``<sep>`` and the act tokens when ``use_acts``."""
        src = list(self.context)
        if self.belief:
            src.append(SEP)
            src.extend(self.belief)
        if use_acts:
            src.append(SEP)
            src.extend(self.act_tokens())
        return src

    def reference(self) -> list[str]:
        """The response as written (what generated text is scored against)."""
        return list(self.surface or self.response)

    def lexicalise(self, tokens: Sequence[str]) -> list[str]:
        """Generated tokens with placeholders replaced by the database row's values
        (unchanged with acts input, or when no query has been made yet)."""
        return relexicalise(tokens, self.fill) if self.fill else list(tokens)


def _acts_of(turn: Mapping, where: str) -> tuple[Act, ...]:
    acts = turn.get("acts") or []
    try:
        return tuple(a if isinstance(a, Act) else Act.from_dict(a) for a in acts)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise MdlibError(f"{where}: acts: cannot read ({exc})") from None


def extract_pairs(dialogues: Iterable[Mapping], context_turns: int = 2, input: str = "acts") -> list[Pair]:
    """One :class:`Pair` per system turn with non-empty text.

    Args:
        dialogues: records in the corpus format (docs/data.md): ``{"id", "domain", "turns"}``.
        context_turns: how many preceding turns form the context (``>= 0``).
        input: one of :data:`INPUTS`; ``"context"`` delexicalises the system-slot values
            of the context and the target and fills ``belief``, ``surface`` and ``fill``.

    Returns:
        The pairs in dialogue order.
    """
    if context_turns < 0:
        raise MdlibError(f"context_turns must be >= 0, got {context_turns}")
    if input not in INPUTS:
        raise MdlibError(f"input must be one of {', '.join(INPUTS)}; got {input!r}")
    pairs: list[Pair] = []
    for d_index, dlg in enumerate(dialogues):
        did = str(dlg.get("id", d_index))
        turns = dlg.get("turns")
        if not isinstance(turns, Sequence):
            raise MdlibError(f"dialogue {did}: field 'turns' must be a list")
        domain = str(dlg.get("domain", ""))
        if input == "context":
            usr_slots, sys_slots = _slots(dlg, did)
        history: list[list[str]] = []
        pending: list[str] = []
        kb = None
        for t_index, turn in enumerate(turns):
            speaker = turn.get("speaker")
            where = f"dialogue {did}, turn {t_index}"
            if speaker not in ("user", "system"):
                raise MdlibError(f"{where}: speaker must be 'user' or 'system', got {speaker!r}")
            toks = tokenise(turn.get("text", ""))
            acts = _acts_of(turn, where)
            extra: dict = {}
            spoken = toks
            if input == "context":
                # the turn as the model sees it: system-slot values never appear
                spoken = ctxin.delexicalise_acts(toks, acts, sys_slots)[0]
                if speaker == "user":
                    heard = _acts_of({"acts": turn["asr_acts"]}, where) if "asr_acts" in turn else acts
                    pending = ctxin.requests_after(pending, heard, sys_slots)
                else:
                    kb = turn.get("kb", kb)
                    count = ctxin.match_count(domain, turn.get("state"), turn.get("kb"))
                    extra = {"belief": tuple(ctxin.belief_tokens(turn.get("state"), usr_slots, pending)
                                             + ([SEP, ctxin.db_token(count)] if count is not None else [])),
                             "surface": tuple(toks), "fill": ctxin.fill_of(kb, sys_slots)}
            if speaker == "system" and toks:
                ctx = [tok for h in history[len(history) - context_turns:] for tok in h] if context_turns else []
                pairs.append(Pair(context=tuple(ctx), response=tuple(spoken), acts=acts, domain=domain,
                                  dialogue_id=did, turn=t_index, **extra))
            if speaker == "system" and input == "context":
                pending = ctxin.informed(pending, acts)
            history.append([USR if speaker == "user" else SYS] + spoken)
    return pairs


def _slots(dialogue: Mapping, did: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(user slots, system slots) of a dialogue: its domain's, or for a user corpus the
    slots of its states and the slots its system turns inform."""
    from mdlib.data.domains import DOMAINS

    name = dialogue.get("domain")
    if name in DOMAINS:
        return DOMAINS[name].usr_slot_names, DOMAINS[name].sys_slot_names
    usr: dict[str, None] = {}
    sys: dict[str, None] = {}
    for t_index, turn in enumerate(dialogue.get("turns") or []):
        if turn.get("speaker") == "system":
            usr.update(dict.fromkeys(turn.get("state") or {}))
            sys.update(dict.fromkeys(a.slot for a in _acts_of(turn, f"dialogue {did}, turn {t_index}")
                                     if a.act == "inform" and a.slot))
    return tuple(usr), tuple(s for s in sys if s not in usr)
