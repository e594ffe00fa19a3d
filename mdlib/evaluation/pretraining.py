"""Multi-domain supervised pretraining on the source tasks, cached under ``runs/cache``.

:func:`pretrain` is the starting point of ``zero_shot``, ``pretrain_ft`` and of every
meta-learner with ``meta_init = "pretrain"``; :func:`new_model` builds the generator
that every method starts from.
"""

from __future__ import annotations

import json
from typing import Sequence

import torch

from mdlib.data.domains import SOURCES
from mdlib.data.pairs import Pair
from mdlib.data.text import SPECIALS, Vocab
from mdlib.evaluation.data import Data, collate_kw, protocol_vocab, source_pairs
from mdlib.models.contract import Generator, make_generator
from mdlib.profiles import Profile, get_profile
from mdlib.training import train

#: Bump when the model, the pairs or the training change, so cached models are retrained.
CACHE_VERSION = 3


def data_signature(data: Data | None) -> str:
    """A short identity of the data for cache keys.

    The protocol corpora are identified by their SHA-256 in ``data/manifest.json`` (a
    regenerated corpus gives a new key, so a stale cached model is never reused); a user
    corpus by the ids of its split dialogues.
    """
    import hashlib

    if data is None:
        from mdlib.data.splits import load_manifest

        files = load_manifest()["files"]
        text = json.dumps({k: v.get("sha256") for k, v in sorted(files.items())})
        return "protocol-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    text = json.dumps({s: {t: [d.get("id") for d in v] for t, v in data[s].items()} for s in data},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unseen_as_unk(model: Generator, vocab: Vocab, pairs: Sequence[Pair], profile: Profile) -> int:
    """Give every word the pairs never contain the input embedding of ``<unk>``.

    After pretraining, the words that only the adaptation pools contain
    (:func:`protocol_vocab`) still hold their random initial embeddings. Copying the
    ``<unk>`` row into them makes the pretrained model read a new word exactly as a
    source-only vocabulary would (as ``<unk>``, which the copy mechanism can still copy),
    while fine-tuning can now give it an embedding and an output row of its own.

    Returns:
        How many words now read as ``<unk>`` (:meth:`~mdlib.models.contract.Generator.read_as_unk`).
    """
    seen = set(vocab.encode(SPECIALS))
    for p in pairs:
        seen.update(vocab.encode(p.source(profile.use_acts)))
        seen.update(vocab.encode(p.response))
    unseen = torch.tensor(sorted(set(range(len(vocab))) - seen), dtype=torch.long)
    if len(unseen):
        model.read_as_unk(unseen, vocab.unk_id)
    return len(unseen)


def new_model(vocab: Vocab, profile: Profile, seed: int, device=None) -> Generator:
    """A freshly initialised generator of the profile's size (initialisation seeded by ``seed``).

    Built through the registry (:func:`~mdlib.models.contract.make_generator`) as the
    reference ``"gru"``: a profile does not name a generator yet.
    """
    torch.manual_seed(seed)
    return make_generator({"generator": "gru", "vocab_size": len(vocab), "emb": profile.emb,
                           "hidden": profile.hidden, "copy": profile.copy, "dropout": 0.0}, device=device)


def pretrain(profile: Profile | str, seed: int, *, sources: Sequence[str] = SOURCES, data: Data | None = None,
             progress: bool = False, device=None, cache: bool = True):
    """Multi-domain supervised pretraining on the sources (cached under ``runs/cache``).

    Returns:
        ``(model, vocab, info)`` with ``info = {"curve", "cache_hit", "path", "config"}``.
    """
    from mdlib.checkpoint import cached

    profile = get_profile(profile)
    config = {"method": "pretrain", "cache_version": CACHE_VERSION, "sources": list(sources),
              "data": data_signature(data),
              "profile": {k: v for k, v in profile.to_dict().items()
                          if k in ("emb", "hidden", "copy", "context_turns", "input", "max_src",
                                   "max_tgt", "min_freq", "n_train", "n_valid", "epochs",
                                   "batch_size", "lr", "clip", "patience", "max_steps")}}

    def train_fn():
        tr = source_pairs(profile, sources, "train", data)
        va = source_pairs(profile, sources, "valid", data)
        vocab = protocol_vocab(profile, sources, data, train_pairs=tr)
        model = new_model(vocab, profile, seed, device)
        res = train(model, tr, vocab, valid_pairs=va, epochs=profile.epochs, batch_size=profile.batch_size,
                    lr=profile.lr, clip=profile.clip, patience=profile.patience, max_steps=profile.max_steps,
                    seed=seed, progress=progress, device=device, **collate_kw(profile))
        unseen_as_unk(model, vocab, tr, profile)
        return model, vocab, res.curve

    if cache:
        model, vocab, conf, extra = cached(config, seed, train_fn, device=device)
        return model, vocab, {"curve": extra.get("curve", []), "cache_hit": extra["cache_hit"],
                              "path": extra["path"], "config": conf}
    model, vocab, curve = train_fn()
    return model, vocab, {"curve": curve, "cache_hit": False, "path": None, "config": dict(config, seed=seed)}
