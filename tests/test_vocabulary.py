"""The generator's vocabulary: sources plus the targets' adaptation pools, never a test split."""

from __future__ import annotations

import torch

import mdlib.evaluation as ev
from mdlib.data.domains import SOURCES, TARGETS
from mdlib.data.splits import load_split
from mdlib.profiles import get_profile

P = get_profile("smoke")


def _words(dialogues):
    return {t for p in ev.pairs_of(dialogues, P) for t in p.source(P.use_acts) + list(p.response)}


def test_protocol_vocab_covers_the_adaptation_pools_and_no_test_only_word():
    vocab = ev.protocol_vocab(P, SOURCES)
    words = set(vocab.itos)
    source_only = set(ev.build_vocab(ev.source_pairs(P, SOURCES, "train"), P).itos)
    assert source_only <= words
    pool_words = set()
    for target in TARGETS:
        pool = _words(load_split(target, "train"))
        pool_words |= pool
        assert pool <= words, f"{target}: pool words missing from the vocabulary"
    assert words - source_only, "the targets' pools add no word: the test would not notice a source-only vocabulary"
    held_out = set()
    for split in ("valid", "test"):
        for d in (*SOURCES, *TARGETS):
            held_out |= _words(load_split(d, split))
    leaked = (held_out - pool_words - source_only) & words
    assert not leaked, f"words seen only in held-out splits are in the vocabulary: {sorted(leaked)[:10]}"


def test_adaptation_tasks_of_a_user_corpus():
    data = {"train": {"a": [], "b": [], "c": []}, "valid": {}, "test": {}}
    assert ev.adaptation_tasks(["a", "b"], data) == ["c"]
    assert sorted(ev.adaptation_tasks(SOURCES)) == sorted(TARGETS)


def test_unseen_words_start_as_unk():
    vocab = ev.protocol_vocab(P, SOURCES)
    pairs = ev.source_pairs(P, SOURCES, "train")
    model = ev.new_model(vocab, P, seed=0)
    before = model.embed.weight.detach().clone()
    seen = set(vocab.encode([t for p in pairs for t in p.source(P.use_acts) + list(p.response)]))
    n = ev.unseen_as_unk(model, vocab, pairs, P)
    after = model.embed.weight.detach()
    unk = vocab.unk_id
    unseen = [i for i in range(len(vocab)) if i not in seen and vocab.itos[i] not in ("<pad>", "<bos>", "<eos>",
                                                                                        "<sep>", "<usr>", "<sys>")
              and i != unk]
    assert n == len(unseen) > 0
    assert torch.equal(after[unseen], before[unk].expand(len(unseen), -1))
    kept = sorted(seen | {unk})
    assert torch.equal(after[kept], before[kept])
