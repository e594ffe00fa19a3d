"""Data access for adaptation and evaluation: the tasks' dialogues, k-shot samples, pairs,
vocabularies and the collate settings of a profile.

``data=None`` means the protocol corpora (:mod:`mdlib.data.splits`); otherwise ``data`` is
``{"train": {task: [...]}, "valid": {...}, "test": {...}}`` as made by
:func:`mdlib.data.splits.split_corpus` from a user corpus (or by
:meth:`mdlib.data.personas.PersonaSplits.data`).
"""

from __future__ import annotations

import random
from typing import Iterable, Mapping, Sequence

from mdlib.data.domains import DOMAINS, SOURCES
from mdlib.data.pairs import Pair, extract_pairs
from mdlib.data.text import Vocab
from mdlib.errors import MdlibError
from mdlib.profiles import Profile

#: The corpora of a run: ``{split: {task: [dialogue, ...]}}``.
Data = Mapping[str, Mapping[str, Sequence[dict]]]


def collate_kw(profile: Profile) -> dict:
    """The :func:`~mdlib.models.batching.collate` settings of a profile."""
    return {"use_acts": profile.use_acts, "max_src": profile.max_src, "max_tgt": profile.max_tgt}


def pairs_of(dialogues: Iterable[dict], profile: Profile) -> list[Pair]:
    """``extract_pairs`` with the profile's context length and input."""
    return extract_pairs(dialogues, context_turns=profile.context_turns, input=profile.input)


def split_of(data: Data | None, task: str, split: str) -> list[dict]:
    """Dialogues of ``task``'s ``split`` (protocol corpora when ``data`` is None)."""
    if data is None:
        from mdlib.data.splits import load_split

        return load_split(task, split)
    try:
        return list(data[split][task])
    except KeyError:
        known = ", ".join(sorted(data.get(split, {})))
        raise MdlibError(f"unknown task {task!r}; the corpus has: {known}") from None


def sample_kshot(data: Data | None, task: str, k: int, seed: int) -> list[dict]:
    """``k`` dialogues from the target's *train* pool (never its test split)."""
    if data is None:
        from mdlib.data.splits import kshot

        if task not in DOMAINS:
            raise MdlibError(f"unknown target {task!r}; known domains: {', '.join(DOMAINS)}")
        return kshot(task, k, seed)
    pool = split_of(data, task, "train")
    if k < 0 or k > len(pool):
        raise MdlibError(f"--k-shot {k}: the train pool of {task!r} has {len(pool)} dialogues")
    order = list(range(len(pool)))
    random.Random(f"kshot/{task}/{seed}").shuffle(order)
    return [pool[i] for i in order[:k]]


def source_pairs(profile: Profile, sources: Sequence[str], split: str, data: Data | None = None) -> list[Pair]:
    """Pairs of the first ``n_train`` (train) or ``n_valid`` (valid) dialogues of each source."""
    n = profile.n_train if split == "train" else profile.n_valid
    out: list[Pair] = []
    for s in sources:
        out.extend(pairs_of(split_of(data, s, split)[:n], profile))
    return out


def build_vocab(train_pairs: Sequence[Pair], profile: Profile) -> Vocab:
    """Vocabulary of the given pairs (inputs and responses)."""
    return Vocab.build((p.source(profile.use_acts) + list(p.response) for p in train_pairs),
                       min_freq=profile.min_freq)


def adaptation_tasks(sources: Sequence[str], data: Data | None = None) -> list[str]:
    """The tasks a model may later be adapted to: every task that is not a source
    (the protocol's targets, or the other tasks of a user corpus)."""
    if data is None:
        return [d for d in DOMAINS if d not in sources]
    return sorted(t for t in data.get("train", {}) if t not in sources)


def protocol_vocab(profile: Profile, sources: Sequence[str] = SOURCES, data: Data | None = None,
                   train_pairs: Sequence[Pair] | None = None) -> Vocab:
    """The generator's vocabulary: the source training pairs plus the *train* pools of the
    tasks it may be adapted to (never a test or validation split).

    Why the adaptation pools: with a source-only vocabulary every new word of a target
    (a movie genre, restaurant_style's new phrasings) is ``<unk>``, and fine-tuning on k
    target dialogues can only teach the model to write ``<unk>``. A pool word gets an
    index but no training signal until it occurs in the k dialogues a method adapts on,
    so this gives no method information about the target beyond the word list itself,
    the same for every method (DAML's vocabulary also covers every domain).

    ``train_pairs``: the source training pairs when the caller has them already
    (default: :func:`source_pairs` of the ``train`` split).
    """
    pairs = list(source_pairs(profile, sources, "train", data) if train_pairs is None else train_pairs)
    for task in adaptation_tasks(sources, data):
        pairs.extend(pairs_of(split_of(data, task, "train"), profile))
    return build_vocab(pairs, profile)
