"""Adapt a generator to a target domain with k dialogues, score it, and run the baselines.

Every adaptation goes through :func:`mdlib.meta.inner.inner_loop`, the same code that
serves the meta-learners, so methods differ only in where their parameters start
(and, for Meta-SGD, in their step sizes). Notebook 02 runs the baselines:

* ``scratch``: a fresh random model trained on the k target dialogues only
  (``scratch_steps`` SGD steps at ``scratch_lr``);
* ``zero_shot``: pretrained on the source domains, not adapted (k = 0);
* ``pretrain_ft``: pretrained, then fine-tuned on the k target dialogues
  (``ft_steps`` SGD steps at ``ft_lr``).

The fine-tuning step size and step count are fixed a priori in the profile
(:mod:`mdlib.profiles`), never chosen on a target's test set.

Data: ``data=None`` means the protocol corpora (:mod:`mdlib.data.splits`); otherwise
``data`` is ``{"train": {task: [...]}, "valid": {...}, "test": {...}}`` as made by
:func:`mdlib.data.splits.split_corpus` from a user corpus.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Callable, Iterable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from mdlib.data.domains import DOMAINS, SOURCES
from mdlib.data.pairs import Pair, extract_pairs
from mdlib.data.text import SPECIALS, Vocab, detokenise
from mdlib.errors import MdlibError
from mdlib.meta.inner import inner_loop
from mdlib.metrics import (act_f1, corpus_bleu, distinct_n, entity_f1, entity_f1_uncopyable, informed_slots,
                           lexicon_from_acts, lexicon_from_domains, perplexity, success_f1)
from mdlib.models.batching import collate, iterate_batches
from mdlib.models.decoding import beam_search, greedy
from mdlib.models.seq2seq import Seq2Seq, build_model
from mdlib.profiles import Profile, get_profile
from mdlib.training import corpus_nll, train

Data = Mapping[str, Mapping[str, Sequence[dict]]]
#: Bump when the model, the pairs or the training change, so cached models are retrained.
CACHE_VERSION = 3
METRICS = ("bleu", "entity_f1", "entity_f1_uncopyable", "success_f1", "act_f1", "ppl", "distinct_1",
           "distinct_2")


def collate_kw(profile: Profile) -> dict:
    """The :func:`~mdlib.models.batching.collate` settings of a profile."""
    return {"use_acts": profile.use_acts, "max_src": profile.max_src, "max_tgt": profile.max_tgt}


def pairs_of(dialogues: Iterable[dict], profile: Profile) -> list[Pair]:
    """``extract_pairs`` with the profile's context length and input."""
    return extract_pairs(dialogues, context_turns=profile.context_turns, input=profile.input)


# ----------------------------------------------------------------------------- data access
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


# ----------------------------------------------------------------------------- adaptation
def adapt(model: Seq2Seq, params: Mapping[str, torch.Tensor] | None, k_dialogues: Sequence[dict],
          profile: Profile | str, seed: int, *, vocab: Vocab, lr=None, steps: int | None = None,
          trainable: Iterable[str] | None = None, device=None) -> dict[str, torch.Tensor]:
    """Fine-tune ``params`` on the k target dialogues through the shared inner loop.

    Args:
        model: the generator (its own weights are not changed).
        params: the starting parameters (``None``: the model's own).
        k_dialogues: the target dialogues to adapt on (may be empty: no adaptation).
        profile: gives ``ft_steps``, ``ft_lr``, ``ft_batch`` and the input settings.
        seed: shuffles the pairs into support batches.
        lr: SGD step size, a per-parameter dict (Meta-SGD) or a schedule callable
            (default ``profile.ft_lr``); steps: default ``profile.ft_steps``.
        trainable: names of the parameters that adapt (``None``: all).

    Returns:
        The adapted parameters, detached (a new dict).
    """
    profile = get_profile(profile)
    params = dict(model.named_parameters()) if params is None else dict(params)
    steps = profile.ft_steps if steps is None else steps
    lr = profile.ft_lr if lr is None else lr
    pairs = pairs_of(k_dialogues, profile)
    if not pairs or steps == 0:
        return {k: v.detach() for k, v in params.items()}
    rng = random.Random(f"adapt/{seed}")
    order = list(range(len(pairs)))
    rng.shuffle(order)
    size = profile.ft_batch
    batches = [collate([pairs[i] for i in order[j:j + size]], vocab, device=device, **collate_kw(profile))
               for j in range(0, len(order), size)]

    def loss_fn(p, batch):
        return torch.func.functional_call(model, p, (batch,))

    was = model.training
    model.train()
    try:
        adapted, _ = inner_loop(loss_fn, params, batches, steps, lr, trainable=trainable)
    finally:
        model.train(was)
    return {k: v.detach() for k, v in adapted.items()}


# ----------------------------------------------------------------------------- evaluation
def lexicon_for(dialogues: Sequence[dict]):
    """Value lexicon for entity F1: the domains' value lists when every dialogue's domain
    is a known domain, else the valued acts of the dialogues, else ``None``."""
    domains = {d.get("domain") for d in dialogues}
    if domains and domains <= set(DOMAINS):
        return lexicon_from_domains(sorted(domains))
    return lexicon_from_acts(dialogues) or None


class ActRecogniser:
    """Labels a response with (act, slot) pairs, for act F1.

    Built from annotated reference dialogues (the target's *train* pool, never the test
    split): each system response is delexicalised (values -> ``<slot_NAME>``); a new
    response gets the labels of an identical delexicalised response, or else of the one
    with the most similar set of word bigrams (Jaccard). It is an instrument, the same
    for every method, so act F1 compares methods fairly; it is not perfect.
    """

    def __init__(self, dialogues: Sequence[dict], lexicon, context_turns: int = 0):
        self.lexicon = lexicon or {}
        table: dict[tuple[str, ...], Counter] = {}
        for p in extract_pairs(dialogues, context_turns=0):
            if p.acts:
                key = self._delex(p.response)
                table.setdefault(key, Counter())[frozenset((a.act, a.slot) for a in p.acts)] += 1
        self.table = {k: c.most_common(1)[0][0] for k, c in table.items()}
        self.keys = list(self.table)
        self.grams = [self._bigrams(k) for k in self.keys]

    def _delex(self, tokens: Sequence[str]) -> tuple[str, ...]:
        out, i, lex = [], 0, self.lexicon
        lengths = sorted({len(k) for k in lex}, reverse=True)
        while i < len(tokens):
            for n in lengths:
                key = tuple(tokens[i:i + n])
                if len(key) == n and key in lex:
                    out.append(f"<slot_{lex[key]}>")
                    i += n
                    break
            else:
                out.append(tokens[i])
                i += 1
        return tuple(out)

    @staticmethod
    def _bigrams(tokens: Sequence[str]) -> frozenset:
        t = ("<s>",) + tuple(tokens) + ("</s>",)
        return frozenset(zip(t, t[1:]))

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __call__(self, tokens: Sequence[str]) -> frozenset:
        key = self._delex(tokens)
        if key in self.table:
            return self.table[key]
        g = self._bigrams(key)
        best = max(range(len(self.keys)), key=lambda i: len(g & self.grams[i]) / len(g | self.grams[i]))
        return self.table[self.keys[best]]


def generate(model: Seq2Seq, params, pairs: Sequence[Pair], vocab: Vocab, profile: Profile,
             device=None, batch_size: int = 128) -> list[list[str]]:
    """Decode a response for every pair (greedy, or beam search when ``profile.beam > 1``)."""
    out: list[list[str]] = []
    for batch in iterate_batches(pairs, vocab, batch_size, device=device, **collate_kw(profile)):
        if profile.beam > 1:
            out.extend(beam_search(model, batch, vocab, width=profile.beam, params=params, max_len=profile.max_len))
        else:
            out.extend(greedy(model, batch, vocab, params=params, max_len=profile.max_len))
    return out


def evaluate(model: Seq2Seq, params, test_dialogues: Sequence[dict], vocab: Vocab,
             profile: Profile | str = "quick", *, act_reference: "Sequence[dict] | ActRecogniser | None" = None,
             device=None, samples: int = 0,
             score: Callable[[list[list[str]], list[Pair]], dict] | None = None) -> dict:
    """Score a generator on test dialogues.

    With context input the model writes placeholders for system-slot values; they are
    filled from the database row (:meth:`~mdlib.data.pairs.Pair.lexicalise`) before the
    text is scored against the reference as written, so BLEU, entity F1 and act F1 score
    text in both inputs. Perplexity is that of the model's own targets (delexicalised
    with context input), so it does not compare across inputs.

    Args:
        params: parameters to use (``None``: the model's own).
        test_dialogues: the target's test dialogues.
        act_reference: annotated dialogues to build the :class:`ActRecogniser` from, or a
            built recogniser (``None``: ``act_f1`` is ``None``).
        samples: how many (context, generated, reference) examples to include.
        score: ``score(generated, pairs) -> {metric: value}`` for further metrics of the
            same generated responses (lexicalised token lists, one per pair), merged into
            the result (e.g. :func:`mdlib.data.personas.score_outputs`).

    Returns:
        ``{"bleu", "entity_f1", "entity_f1_uncopyable", "success_f1", "act_f1", "ppl",
        "distinct_1", "distinct_2", "n_test", "n_dialogues"}`` (and ``"samples"``);
        ``entity_f1_uncopyable`` (:func:`~mdlib.metrics.entity_f1_uncopyable`) is
        ``None`` with acts input, where every value can be copied; a metric that needs
        annotations the corpus lacks is ``None``.
    """
    profile = get_profile(profile)
    pairs = pairs_of(test_dialogues, profile)
    if not pairs:
        raise MdlibError("evaluate: the test dialogues have no system turns")
    raw = generate(model, params, pairs, vocab, profile, device=device)
    hyps = [p.lexicalise(h) for p, h in zip(pairs, raw)]
    refs = [p.reference() for p in pairs]
    sources = [p.source(profile.use_acts)[-profile.max_src:] for p in pairs]
    nll, n_tok = corpus_nll(model, pairs, vocab, params=params, device=device, **collate_kw(profile))
    lexicon = lexicon_for(test_dialogues)
    a_f1 = None
    if act_reference and any(p.acts for p in pairs):
        rec = act_reference if isinstance(act_reference, ActRecogniser) else ActRecogniser(act_reference, lexicon)
        if rec:
            labelled = [(h, p) for h, p in zip(hyps, pairs) if p.acts]
            a_f1 = act_f1([rec(h) for h, _ in labelled],
                          [frozenset((a.act, a.slot) for a in p.acts) for _, p in labelled])
    result = {
        "bleu": corpus_bleu([detokenise(h) for h in hyps], [detokenise(r) for r in refs]),
        "entity_f1": entity_f1(hyps, refs, lexicon),
        "entity_f1_uncopyable": entity_f1_uncopyable(hyps, refs, sources, lexicon),
        "success_f1": dialogue_success_f1(pairs, raw),
        "act_f1": a_f1,
        "ppl": perplexity(nll, n_tok),
        "distinct_1": distinct_n(hyps, 1),
        "distinct_2": distinct_n(hyps, 2),
        "n_test": len(pairs),
        "n_dialogues": len(test_dialogues),
    }
    if score is not None:
        result.update(score(hyps, pairs))
    if samples:
        result["samples"] = [{"context": detokenise(p.context), "source": " ".join(s),
                              "acts": " ".join(p.act_tokens()), "generated": detokenise(h), "reference": detokenise(r)}
                             for p, s, h, r in list(zip(pairs, sources, hyps, refs))[:samples]]
    return result


def dialogue_success_f1(pairs: Sequence[Pair], generated: Sequence[Sequence[str]]) -> float | None:
    """:func:`~mdlib.metrics.success_f1` of generated responses, grouped by dialogue.

    A response informs a slot when, delexicalised with its turn's ``inform`` acts
    (:func:`~mdlib.data.context.delexicalise_acts`), it holds that slot's placeholder:
    with context input the model writes the placeholder itself; with acts input it
    writes the value the acts gave it. The reference side is the reference response,
    delexicalised the same way. ``None`` without act annotations.

    Args:
        pairs: the test pairs (any input).
        generated: the model's tokens per pair, before :meth:`~mdlib.data.pairs.Pair.lexicalise`.
    """
    from mdlib.data.context import delexicalise_acts

    pred: dict[str, set] = {}
    gold: dict[str, set] = {}
    for p, h in zip(pairs, generated):
        slots = {a.slot for a in p.acts if a.act == "inform" and a.slot}
        pred.setdefault(p.dialogue_id, set()).update(informed_slots(delexicalise_acts(h, p.acts, slots)[0]))
        gold.setdefault(p.dialogue_id, set()).update(informed_slots(delexicalise_acts(p.reference(), p.acts, slots)[0]))
    return success_f1([pred[d] for d in gold], [gold[d] for d in gold])


# ----------------------------------------------------------------------------- pretraining
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


def unseen_as_unk(model: Seq2Seq, vocab: Vocab, pairs: Sequence[Pair], profile: Profile) -> int:
    """Give every word the pairs never contain the input embedding of ``<unk>``.

    After pretraining, the words that only the adaptation pools contain
    (:func:`protocol_vocab`) still hold their random initial embeddings. Copying the
    ``<unk>`` row into them makes the pretrained model read a new word exactly as a
    source-only vocabulary would (as ``<unk>``, which the copy mechanism can still copy),
    while fine-tuning can now give it an embedding and an output row of its own.

    Returns:
        How many embedding rows were reset.
    """
    seen = set(vocab.encode(SPECIALS))
    for p in pairs:
        seen.update(vocab.encode(p.source(profile.use_acts)))
        seen.update(vocab.encode(p.response))
    unseen = torch.tensor(sorted(set(range(len(vocab))) - seen), dtype=torch.long)
    if len(unseen):
        with torch.no_grad():
            weight = model.embed.weight
            weight[unseen.to(weight.device)] = weight[vocab.unk_id].clone()
    return len(unseen)


def new_model(vocab: Vocab, profile: Profile, seed: int, device=None) -> Seq2Seq:
    """A freshly initialised generator (initialisation seeded by ``seed``)."""
    torch.manual_seed(seed)
    return build_model(len(vocab), emb=profile.emb, hidden=profile.hidden, copy=profile.copy, device=device)


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


# ----------------------------------------------------------------------------- baselines
def run_baselines(profile: Profile | str = "quick", *, seeds: Sequence[int] | None = None,
                  k_list: Sequence[int] | None = None, targets: Sequence[str] | None = None,
                  sources: Sequence[str] = SOURCES, data: Data | None = None, progress: bool = False,
                  device=None) -> list[dict]:
    """Scratch, zero-shot and pretrain+fine-tune on every target, k and seed.

    One pretrained model per seed; the k-shot samples are nested over k for a seed
    (:func:`mdlib.data.splits.kshot`). ``zero_shot`` does not use target data: it is
    evaluated once per (target, seed) and repeated at every k so it plots as a line.

    Returns:
        One row per (method, target, k, seed) with the metrics of :func:`evaluate`.
    """
    profile = get_profile(profile)
    seeds = list(profile.seeds if seeds is None else seeds)
    k_list = list(profile.k_list if k_list is None else k_list)
    targets = list(profile.targets if targets is None else targets)
    rows: list[dict] = []
    total = len(seeds) * len(targets) * (1 + 2 * sum(1 for k in k_list if k > 0))
    bar = tqdm(total=total, desc="baselines", disable=not progress)
    for seed in seeds:
        model, vocab, _ = pretrain(profile, seed, sources=sources, data=data, device=device)
        base = {k: v.detach() for k, v in model.named_parameters()}
        for target in targets:
            test = split_of(data, target, "test")[: profile.n_test]
            ref = ActRecogniser(split_of(data, target, "train")[:200], lexicon_for(test))
            zero = evaluate(model, base, test, vocab, profile, act_reference=ref, device=device)
            bar.update(1)
            for k in k_list:
                rows.append(dict(zero, method="zero_shot", target=target, k=k, seed=seed))
                if k == 0:
                    continue
                shots = sample_kshot(data, target, k, seed)
                ft = adapt(model, base, shots, profile, seed, vocab=vocab, device=device)
                rows.append(dict(evaluate(model, ft, test, vocab, profile, act_reference=ref, device=device),
                                 method="pretrain_ft", target=target, k=k, seed=seed))
                bar.update(1)
                fresh = new_model(vocab, profile, seed, device)
                sc = adapt(fresh, None, shots, profile, seed, vocab=vocab, lr=profile.scratch_lr,
                           steps=profile.scratch_steps, device=device)
                rows.append(dict(evaluate(fresh, sc, test, vocab, profile, act_reference=ref, device=device),
                                 method="scratch", target=target, k=k, seed=seed))
                bar.update(1)
    bar.close()
    return rows
