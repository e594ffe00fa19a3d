"""Text preprocessing: normalisation, tokenisation, the vocabulary, delexicalisation.

Notebook 02 introduces these. The pipeline for one utterance is::

    "Where are you LEAVING from?"  --normalise-->  "where are you leaving from?"
                                   --tokenise--->  ["where", "are", "you", "leaving", "from", "?"]
                                   --Vocab.encode-> [57, 12, 9, 140, 33, 6]

Tokens are lower-case words (``don't`` stays one token), single punctuation marks, and
placeholders such as ``<slot_loc>`` or ``<usr>`` that stay whole. ``detokenise`` joins
tokens with spaces and glues the marks ``. , ! ? ; :`` to the word before, so that
``tokenise(detokenise(tokenise(s))) == tokenise(s)`` for every string ``s`` (tested with
hypothesis).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from mdlib.atomic import read_json, write_text
from mdlib.errors import MdlibError

PAD, UNK, BOS, EOS, SEP, USR, SYS = "<pad>", "<unk>", "<bos>", "<eos>", "<sep>", "<usr>", "<sys>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS, SEP, USR, SYS)

_TOKEN_RE = re.compile(r"<[a-z_]+>|[a-z0-9]+(?:'[a-z0-9]+)*|\S")
_GLUE = frozenset(".,!?;:")
_SPACE_RE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Unicode NFKC, lower case, curly quotes to ``'``, runs of white space to one space.

    Args:
        text: any string.

    Returns:
        The normalised string, stripped at both ends.
    """
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return _SPACE_RE.sub(" ", text).strip()


def tokenise(text: str) -> list[str]:
    """Split normalised ``text`` into word, punctuation and placeholder tokens.

    Example:
        ``tokenise("Is <slot_loc> OK?") == ["is", "<slot_loc>", "ok", "?"]``
    """
    return _TOKEN_RE.findall(normalise(text))


def detokenise(tokens: Sequence[str]) -> str:
    """Join tokens into readable text (``.,!?;:`` attach to the word before)."""
    out: list[str] = []
    for tok in tokens:
        if out and tok in _GLUE:
            out[-1] = out[-1] + tok
        else:
            out.append(tok)
    return " ".join(out)


class Vocab:
    """Token <-> id mapping with the special tokens first.

    Ids 0..6 are ``<pad> <unk> <bos> <eos> <sep> <usr> <sys>`` (so ``pad_id == 0``).
    Words seen fewer than ``min_freq`` times map to ``<unk>``; the copy mechanism of
    :class:`mdlib.models.seq2seq.Seq2Seq` can still emit them when they occur in the input.

    Args:
        itos: the id -> token list; must start with :data:`SPECIALS`.
    """

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if tuple(itos[: len(SPECIALS)]) != SPECIALS:
            raise MdlibError(f"vocabulary must start with the special tokens {list(SPECIALS)}")
        if len(set(itos)) != len(itos):
            dup = [t for t, c in Counter(itos).items() if c > 1][:5]
            raise MdlibError(f"vocabulary has duplicate tokens: {dup}")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}

    pad_id = property(lambda self: self.stoi[PAD])
    unk_id = property(lambda self: self.stoi[UNK])
    bos_id = property(lambda self: self.stoi[BOS])
    eos_id = property(lambda self: self.stoi[EOS])

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1,
              max_size: int | None = None) -> "Vocab":
        """Count tokens and keep those seen ``>= min_freq`` times (most frequent first).

        Args:
            token_lists: tokenised sentences.
            min_freq: frequency cut-off (``>= 1``).
            max_size: optional cap on the number of non-special tokens.
        """
        if min_freq < 1:
            raise MdlibError(f"min_freq must be >= 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for toks in token_lists:
            counts.update(toks)
        for s in SPECIALS:
            counts.pop(s, None)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[:max_size]
        return cls(list(SPECIALS) + words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids; unknown tokens become ``unk_id``."""
        unk = self.unk_id
        return [self.stoi.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` (ids outside the vocabulary become ``<unk>``)."""
        n = len(self.itos)
        return [self.itos[i] if 0 <= i < n else UNK for i in (int(x) for x in ids)]

    def to_dict(self) -> dict:
        """JSON-able form (also stored inside checkpoints)."""
        return {"format": "mdlib-vocab-v1", "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "vocabulary") -> "Vocab":
        """Inverse of :meth:`to_dict`; ``where`` names the source in error messages."""
        if not isinstance(data, Mapping) or not isinstance(data.get("itos"), list):
            raise MdlibError(f"{where}: expected an object with a list field 'itos'")
        return cls(data["itos"])

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON (atomically)."""
        return write_text(path, json.dumps(self.to_dict(), indent=0) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """Read a vocabulary written by :meth:`save`."""
        data = read_json(path, missing="no such vocabulary file")
        return cls.from_dict(data, where=str(path))


def placeholder(slot: str) -> str:
    """The placeholder token of a slot: ``placeholder("food_pref") == "<slot_food_pref>"``."""
    return f"<slot_{normalise(slot).replace(' ', '_')}>"


def _value_table(domain_or_values) -> dict[str, list[str]]:
    """``slot -> values`` from a Domain (usr and sys slots) or a mapping."""
    if isinstance(domain_or_values, Mapping):
        return {str(k): [str(v) for v in vs] for k, vs in domain_or_values.items()}
    slots = list(getattr(domain_or_values, "usr_slots", ())) + list(getattr(domain_or_values, "sys_slots", ()))
    if not slots:
        raise MdlibError("delexicalise: expected a Domain or a mapping slot -> values")
    return {s.name: [str(v) for v in s.values] for s in slots}


def delexicalise(text: str | Sequence[str], domain_or_values) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Replace slot values by placeholders such as ``<slot_loc>``.

    Values are matched as whole token sequences, longest first (so ``no parking`` wins
    over ``parking``). Slots with one value per mention are replaced left to right; the
    mapping records every replacement in order, so :func:`relexicalise` restores the text
    even when one placeholder occurs several times.

    Args:
        text: a string or a token list.
        domain_or_values: a :class:`mdlib.data.domains.Domain` or ``{slot: [values]}``.

    Returns:
        ``(tokens, mapping)``: the delexicalised tokens and the list of
        ``(placeholder, value_tokens)`` replacements in order of occurrence.
    """
    tokens = tokenise(text) if isinstance(text, str) else list(text)
    candidates: list[tuple[list[str], str]] = []
    for slot, values in _value_table(domain_or_values).items():
        for v in values:
            vt = tokenise(v)
            if vt:
                candidates.append((vt, placeholder(slot)))
    candidates.sort(key=lambda c: -len(c[0]))
    out: list[str] = []
    mapping: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(tokens):
        for vt, ph in candidates:
            if tokens[i:i + len(vt)] == vt:
                out.append(ph)
                mapping.append((ph, vt))
                i += len(vt)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out, mapping


def relexicalise(tokens: Sequence[str], mapping: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Put values back: the j-th occurrence of a placeholder gets its j-th recorded value.

    A placeholder with no recorded value (a generated one the input did not contain) is
    left as is.
    """
    queues: dict[str, list[Sequence[str]]] = {}
    for ph, vt in mapping:
        queues.setdefault(ph, []).append(vt)
    used: dict[str, int] = {}
    out: list[str] = []
    for tok in tokens:
        q = queues.get(tok)
        if q:
            j = used.get(tok, 0)
            out.extend(q[min(j, len(q) - 1)])
            used[tok] = j + 1
        else:
            out.append(tok)
    return out
