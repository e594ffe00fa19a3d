"""(context, response) pairs for the response generator: one pair per system turn.

The generator realises the dialogue manager's decision (docs/architecture.md), so by default its
input is the recent context *and* the system acts of the turn it must put into words,
informed values included; that is what makes entity F1 meaningful. A corpus without
act annotations still works: the acts are then empty and the input is the context only.

Source layout of one pair (``Pair.source()``), with ``context_turns=2``::

    <sys> what city are you in ? <usr> pittsburgh please <sep> inform food_pref thai request loc
    |---------------- context (last N turns) -------------|     |---- the turn's system acts ----|
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from mdlib.data.acts import Act
from mdlib.data.text import SEP, SYS, USR, tokenise
from mdlib.errors import MdlibError


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
    """

    context: tuple[str, ...]
    response: tuple[str, ...]
    acts: tuple[Act, ...] = field(default_factory=tuple)
    domain: str = ""
    dialogue_id: str = ""
    turn: int = 0

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
        """Encoder input: the context, then ``<sep>`` and the act tokens when ``use_acts``."""
        src = list(self.context)
        if use_acts:
            src.append(SEP)
            src.extend(self.act_tokens())
        return src


def _acts_of(turn: Mapping, where: str) -> tuple[Act, ...]:
    acts = turn.get("acts") or []
    try:
        return tuple(a if isinstance(a, Act) else Act.from_dict(a) for a in acts)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise MdlibError(f"{where}: acts: cannot read ({exc})") from None


def extract_pairs(dialogues: Iterable[Mapping], context_turns: int = 2) -> list[Pair]:
    """One :class:`Pair` per system turn with non-empty text.

    Args:
        dialogues: records in the corpus format (docs/protocol.md): ``{"id", "domain", "turns"}``.
        context_turns: how many preceding turns form the context (``>= 0``).

    Returns:
        The pairs in dialogue order.
    """
    if context_turns < 0:
        raise MdlibError(f"context_turns must be >= 0, got {context_turns}")
    pairs: list[Pair] = []
    for d_index, dlg in enumerate(dialogues):
        did = str(dlg.get("id", d_index))
        turns = dlg.get("turns")
        if not isinstance(turns, Sequence):
            raise MdlibError(f"dialogue {did}: field 'turns' must be a list")
        history: list[list[str]] = []
        for t_index, turn in enumerate(turns):
            speaker = turn.get("speaker")
            if speaker not in ("user", "system"):
                raise MdlibError(f"dialogue {did}, turn {t_index}: speaker must be 'user' or "
                                 f"'system', got {speaker!r}")
            toks = tokenise(turn.get("text", ""))
            if speaker == "system" and toks:
                ctx = [tok for h in history[len(history) - context_turns:] for tok in h] if context_turns else []
                pairs.append(Pair(context=tuple(ctx), response=tuple(toks),
                                  acts=_acts_of(turn, f"dialogue {did}, turn {t_index}"),
                                  domain=str(dlg.get("domain", "")), dialogue_id=did, turn=t_index))
            history.append([USR if speaker == "user" else SYS] + toks)
    return pairs
