"""The input parser: user text to dialogue acts and slot values, with a confidence.

Two parsers with one interface, ``parser.parse(text, last_system_acts) -> Parse``:

* :class:`LexiconParser`, the baseline: the domain's value lists and hand-written keyword
  rules ("from X" is a departure, "how long ... wait" asks for the arrival time,
  "don't care about the genre" is a don't-care inform, "oh sorry, I mean Y" corrects).
* :class:`LearnedParser` around :class:`ParserNet`, a small functional network:
  hashed word embeddings and two convolutions (a 5-token window); a multi-label *act classifier*; a
  *slot tagger* that classifies every value mention found in the text (the value is
  *copied* from the utterance, the network decides its role: not meant / inform /
  yes-no question); and a *slot head* that decides, per slot of the domain, whether the
  user requests it or does not care about it. Slots are represented by the embeddings
  of the words of their names, so one network serves every domain, and a new domain's
  slots ("genre") are learned by adapting on a few target dialogues through
  :func:`mdlib.meta.inner.inner_loop` (plain fine-tuning or a meta-learner's
  :meth:`~mdlib.meta.learners.MetaLearner.adapt`).

Metrics (:func:`parser_scores`): act F1 (micro, over the act names of each user turn)
and slot F1 (micro, over the ``(act, slot, value)`` triples of slot-carrying acts).
Notebook 07 uses both parsers.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call

from mdlib.data.acts import USER_ACTS, Act
from mdlib.data.domains import Domain, get_domain
from mdlib.data.text import tokenise
from mdlib.errors import MdlibError

Params = dict[str, torch.Tensor]

#: Acts without a slot that the act classifier decides on its own.
PLAIN_ACTS = ("greet", "confirm", "disconfirm", "new_search", "satisfy", "more_request", "goodbye")
#: Roles of a value mention (the slot tagger's classes).
ROLES = ("none", "inform", "yn_question")


@dataclass
class Parse:
    """The parser's reading of one user turn.

    Attributes:
        acts: the dialogue acts (an ``inform`` with ``value=None`` is "don't care").
        confidence: in [0, 1]; the belief tracker weighs the acts with it.
    """

    acts: list[Act]
    confidence: float

    def __str__(self) -> str:
        return f"{', '.join(map(str, self.acts)) or '(nothing understood)'} [conf {self.confidence:.2f}]"


# --------------------------------------------------------------------------- value mentions


@dataclass(frozen=True)
class Mention:
    """A slot value found in the tokens: ``tokens[start:end]`` is ``value`` of ``slot``."""

    start: int
    end: int
    slot: str
    value: str


def _value_index(domain: Domain) -> list[tuple[list[str], str, str]]:
    """``(value tokens, slot, value)`` for every slot value, longest first."""
    out = []
    for s in domain.usr_slots + domain.sys_slots:
        for v in s.values:
            vt = tokenise(v)
            if vt:
                out.append((vt, s.name, v))
    out.sort(key=lambda c: -len(c[0]))
    return out


def find_mentions(tokens: Sequence[str], domain: Domain) -> list[Mention]:
    """Every slot value in ``tokens`` (longest match; one mention per slot that has the value).

    A value shared by several slots (bus ``from_loc`` / ``to_loc``, numbers) gives one
    mention per slot at the same span; deciding between them is the parser's job.
    """
    index = _value_index(domain)
    out: list[Mention] = []
    i = 0
    while i < len(tokens):
        hit = None
        for vt, slot, value in index:
            if hit is not None and len(vt) < hit:
                break
            if tokens[i:i + len(vt)] == vt:
                hit = len(vt)
                out.append(Mention(i, i + len(vt), slot, value))
        i += hit or 1
    return out


# --------------------------------------------------------------------------- lexicon baseline

_REQUEST_RULES: dict[str, tuple[str, ...]] = {
    # sys slot -> regular expressions (on the normalised text), first match wins in this order
    "arrive_in": (r"\barriv", r"\bwait\b", r"\bnext bus\b", r"\bcome in\b", r"\bhere in\b"),
    "duration": (r"\bhow long\b", r"\bride\b", r"\btrip\b", r"\btake\b"),
    "temperature": (r"\btemperature\b", r"\bwarm\b", r"\bdegrees?\b", r"\bcold\b", r"\bhot\b"),
    "weather_type": (r"\bweather\b", r"\brain\b", r"\bshine\b", r"\bforecast\b"),
    "open": (r"\bopen\b", r"\bhours\b", r"\bclosed\b"),
    "price": (r"\bprice\b", r"\bexpensive\b", r"\bcost", r"\bcheap\b"),
    "parking": (r"\bpark",),
    "rating": (r"\brat(ing|e|ed)\b",),
    "company": (r"\bcompany\b", r"\bproduc", r"\bstudio\b"),
    "director": (r"\bdirect", r"\bwho made\b"),
}
_SLOT_WORDS: dict[str, tuple[str, ...]] = {
    "loc": ("location", "city", "place", "area", "neighbourhood", "neighborhood", "where"),
    "food_pref": ("food", "cuisine", "dishes", "cooking"),
    "from_loc": ("departure", "leaving", "start"),
    "to_loc": ("destination", "going"),
    "datetime": ("time", "day", "when"),
    "genre": ("genre", "type of movie", "kind of movie"),
    "years": ("period", "years", "year", "decade"),
    "country": ("country",),
}
_DONT_CARE = r"(don't care|do not care|doesn't matter|does not matter|\bany\b|anything is fine|no preference)"
_YN_START = r"^(is|does|will|did|was|are|do|has|can)\b"
_PLAIN_RULES: dict[str, str] = {
    "greet": r"\b(hi|hello|hey)\b",
    "goodbye": r"\b(bye|goodbye|see you)\b",
    "satisfy": r"\b(thanks|thank you|that's all|that's what i needed)\b",
    "more_request": r"\b(one more|another question)\b",
    "new_search": r"\b(new search|something else)\b",
    "confirm": r"^(yes|yeah|yep|correct|right|sure)\b|\bthat's right\b",
    "disconfirm": r"^(no|nope|wrong)\b|\b(that's wrong|not right|that's not)\b",
}
_FROM_CUES = {"from", "leaving", "departing", "at"}
_TO_CUES = {"to", "going", "destination"}


class LexiconParser:
    """Keyword rules and value lists: the baseline parser.

    Args:
        domain: the domain (its value lists are the lexicon).
    """

    kind = "lexicon"

    def __init__(self, domain: Domain | str):
        self.domain = get_domain(domain)

    def _slot_for(self, m: Mention, tokens: Sequence[str], last: Sequence[Act], options: list[Mention]) -> bool:
        """Whether mention ``m`` (one of ``options`` at the same span) is the slot meant."""
        if len(options) == 1:
            return True
        asked = {a.slot for a in last if a.act in ("request", "explicit_confirm", "implicit_confirm")}
        left = set(tokens[max(0, m.start - 3):m.start])
        if m.slot in ("from_loc", "to_loc"):
            if left & _TO_CUES and not left & _FROM_CUES:
                return m.slot == "to_loc"
            if left & _FROM_CUES:
                return m.slot == "from_loc"
            if asked & {"from_loc", "to_loc"}:
                return m.slot in asked
            return m.slot == "from_loc"
        if m.slot == "datetime":
            return "at" in left or "datetime" in asked or not any(o.slot in self.domain.usr_slot_names
                                                                   for o in options if o is not m)
        # otherwise prefer a user slot; among system slots the keyword rules decide
        return m.slot in self.domain.usr_slot_names

    def parse(self, text: str, last_system_acts: Sequence[Act] = ()) -> Parse:
        """Read ``text``; ``last_system_acts`` (the turn being answered) resolves bare answers."""
        tokens = tokenise(text)
        norm = " ".join(tokens)
        if not tokens:
            return Parse([], 0.0)
        acts: list[Act] = []
        ambiguous = False
        for name, pattern in _PLAIN_RULES.items():
            if re.search(pattern, norm):
                acts.append(Act(name))
        question = norm.endswith("?") or bool(re.match(_YN_START, norm))
        mentions = find_mentions(tokens, self.domain)
        usr = set(self.domain.usr_slot_names)
        sys_slots = set(self.domain.sys_slot_names)
        # keyword rules name the system slot of a question
        asked_sys = None
        if question:
            for slot, patterns in _REQUEST_RULES.items():
                if slot in sys_slots and any(re.search(p, norm) for p in patterns):
                    asked_sys = slot
                    break
        # self-correction: keep only what follows "sorry, I mean"
        cut = -1
        for j in range(len(tokens) - 1):
            if tokens[j] == "mean" and j > 0 and tokens[j - 1] == "i":
                cut = j
        if cut >= 0:
            mentions = [m for m in mentions if m.start > cut or not any(
                o.slot == m.slot and o.start > cut for o in mentions)]
        informs: dict[str, str] = {}
        yn: Act | None = None
        by_span: dict[tuple[int, int], list[Mention]] = {}
        for m in mentions:
            by_span.setdefault((m.start, m.end), []).append(m)
        for span, options in by_span.items():
            if len(options) > 1:
                ambiguous = True
            for m in options:
                if m.slot in usr and not question:
                    if len(m.value) == 1 and not m.value.isdigit():
                        continue
                    if self._slot_for(m, tokens, last_system_acts, options):
                        if m.slot in informs and m.slot in ("from_loc", "to_loc"):
                            continue
                        informs[m.slot] = m.value
                        break
                elif m.slot in sys_slots and question and yn is None:
                    if asked_sys is not None and m.slot != asked_sys:
                        continue
                    if asked_sys is None and (len(m.value) <= 2):
                        continue  # a bare letter or number needs a keyword ("directed by A")
                    yn = Act("yn_question", m.slot, m.value)
        # bus: the same place twice can only be from ... to ...
        acts += [Act("inform", s, v) for s, v in informs.items()]
        if yn is not None:
            acts.append(yn)
        elif asked_sys is not None:
            acts.append(Act("request", asked_sys))
        if re.search(_DONT_CARE, norm):
            for slot, words in _SLOT_WORDS.items():
                if slot in usr and slot not in informs and any(re.search(rf"\b{w}\b", norm) for w in words):
                    acts.append(Act("inform", slot, None))
                    break
            else:
                asked = [a.slot for a in last_system_acts if a.act == "request" and a.slot in usr]
                if asked:
                    acts.append(Act("inform", asked[0], None))
        if not acts:
            return Parse([], 0.2)
        return Parse(_dedupe(acts), 0.6 if ambiguous else 0.9)


def _dedupe(acts: Iterable[Act]) -> list[Act]:
    return list(dict.fromkeys(acts))


# --------------------------------------------------------------------------- the learned parser


def _hash(token: str, buckets: int) -> int:
    return 1 + zlib.crc32(token.encode("utf-8")) % (buckets - 1)  # 0 is padding


def _slot_words(slot: str) -> list[str]:
    return [w for w in slot.split("_") if w] or [slot]


@dataclass
class Example:
    """One user turn, featurised (labels present when built from a corpus).

    Attributes:
        tokens: the tokens, each mention span replaced by ``<val>``.
        positions: per mention, its index in ``tokens``.
        mentions: the value mentions (candidates for the slot tagger).
        slots: the slots of the domain (usr then sys) for the slot head.
        usr_mask: per slot, whether it is a user slot.
        sys_said: per slot, whether the last system turn named it (request / confirm).
        act_labels, role_labels, request_labels, dontcare_labels: the targets (or None).
    """

    tokens: list[str]
    positions: list[int]
    mentions: list[Mention]
    slots: list[str]
    usr_mask: list[bool]
    sys_said: list[bool]
    act_labels: list[float] | None = None
    role_labels: list[int] | None = None
    request_labels: list[float] | None = None
    dontcare_labels: list[float] | None = None
    gold: list[Act] | None = None


def featurise(text: str, domain: Domain, last_system_acts: Sequence[Act] = (),
              gold: Sequence[Act] | None = None) -> Example:
    """Turn one user utterance into an :class:`Example` (with labels when ``gold`` is given)."""
    raw = tokenise(text)
    mentions = find_mentions(raw, domain)
    starts = {}
    for m in mentions:
        starts.setdefault(m.start, m.end)
    tokens: list[str] = []
    pos_of: dict[int, int] = {}
    i = 0
    while i < len(raw):
        if i in starts:
            pos_of[i] = len(tokens)
            tokens.append("<val>")
            i = starts[i]
        else:
            tokens.append(raw[i])
            i += 1
    tokens = tokens or ["<empty>"]
    slots = list(domain.usr_slot_names + domain.sys_slot_names)
    said = {a.slot for a in last_system_acts if a.slot is not None}
    ex = Example(tokens=tokens, positions=[pos_of[m.start] for m in mentions], mentions=mentions,
                 slots=slots, usr_mask=[s in domain.usr_slot_names for s in slots],
                 sys_said=[s in said for s in slots])
    if gold is not None:
        gold = list(gold)
        names = {a.act for a in gold}
        ex.gold = gold
        ex.act_labels = [1.0 if a in names else 0.0 for a in USER_ACTS]
        roles = []
        for m in mentions:
            if Act("inform", m.slot, m.value) in gold:
                roles.append(1)
            elif Act("yn_question", m.slot, m.value) in gold:
                roles.append(2)
            else:
                roles.append(0)
        ex.role_labels = roles
        ex.request_labels = [1.0 if Act("request", s) in gold else 0.0 for s in slots]
        ex.dontcare_labels = [1.0 if Act("inform", s, None) in gold else 0.0 for s in slots]
    return ex


@dataclass
class ParserBatch:
    """Collated examples.

    Attributes:
        tokens: LongTensor (batch, len) hashed token ids, 0 = padding.
        lengths: LongTensor (batch,).
        slot_words: LongTensor (n_slot_names, max_words) hashed ids of the slots' name words.
        men_row, men_pos, men_slot: LongTensor (n_mentions,) example index, token position,
            slot-name index of each mention.
        sl_row, sl_slot: LongTensor (n_slot_items,) example index and slot-name index.
        sl_feats: FloatTensor (n_slot_items, 2) [is user slot, named by the last system turn].
        acts, roles, requests, dontcares: targets (or None without labels).
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    slot_words: torch.Tensor
    men_row: torch.Tensor
    men_pos: torch.Tensor
    men_slot: torch.Tensor
    sl_row: torch.Tensor
    sl_slot: torch.Tensor
    sl_feats: torch.Tensor
    acts: torch.Tensor | None = None
    roles: torch.Tensor | None = None
    requests: torch.Tensor | None = None
    dontcares: torch.Tensor | None = None
    examples: list[Example] = field(default_factory=list)

    def to(self, device) -> "ParserBatch":
        """The batch on ``device``."""
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return ParserBatch(**moved)


def collate_examples(examples: Sequence[Example], buckets: int) -> ParserBatch:
    """Pad and stack examples into one :class:`ParserBatch`."""
    if not examples:
        raise MdlibError("collate_examples: no examples")
    T = max(len(e.tokens) for e in examples)
    tokens = torch.zeros(len(examples), T, dtype=torch.long)
    for b, e in enumerate(examples):
        tokens[b, :len(e.tokens)] = torch.tensor([_hash(t, buckets) for t in e.tokens])
    names = sorted({s for e in examples for s in e.slots})
    index = {s: i for i, s in enumerate(names)}
    W = max(len(_slot_words(s)) for s in names)
    slot_words = torch.zeros(len(names), W, dtype=torch.long)
    for s, i in index.items():
        ids = [_hash("slot:" + w, buckets) for w in _slot_words(s)]
        slot_words[i, :len(ids)] = torch.tensor(ids)
    men_row, men_pos, men_slot, sl_row, sl_slot, sl_feats = [], [], [], [], [], []
    for b, e in enumerate(examples):
        for m, p in zip(e.mentions, e.positions):
            men_row.append(b); men_pos.append(p); men_slot.append(index[m.slot])  # noqa: E702
        for s, u, said in zip(e.slots, e.usr_mask, e.sys_said):
            sl_row.append(b); sl_slot.append(index[s]); sl_feats.append([float(u), float(said)])  # noqa: E702
    labelled = examples[0].act_labels is not None

    def lt(x):
        return torch.tensor(x, dtype=torch.long)

    return ParserBatch(
        tokens=tokens, lengths=lt([len(e.tokens) for e in examples]), slot_words=slot_words,
        men_row=lt(men_row), men_pos=lt(men_pos), men_slot=lt(men_slot),
        sl_row=lt(sl_row), sl_slot=lt(sl_slot), sl_feats=torch.tensor(sl_feats, dtype=torch.float).reshape(-1, 2),
        acts=torch.tensor([e.act_labels for e in examples]) if labelled else None,
        roles=lt([r for e in examples for r in e.role_labels]) if labelled else None,
        requests=torch.tensor([r for e in examples for r in e.request_labels]) if labelled else None,
        dontcares=torch.tensor([r for e in examples for r in e.dontcare_labels]) if labelled else None,
        examples=list(examples),
    )


class ParserNet(nn.Module):
    """Act classifier + slot tagger (value-mention roles) + slot head, for any domain.

    Args:
        buckets: size of the hashed vocabulary (words of every domain share it).
        emb: embedding size.
        hidden: half the width of the convolutional features.

    ``forward(batch)`` returns the summed training loss (a scalar; the model contract of
    mdlib, so :func:`mdlib.meta.inner.inner_loop` adapts it), ``forward(batch,
    predict=True)`` the probabilities ``{"acts": (B, n_acts), "roles": (M, 3), "requests":
    (S,), "dontcares": (S,)}``.
    """

    def __init__(self, buckets: int = 2048, emb: int = 32, hidden: int = 32):
        super().__init__()
        self.buckets = buckets
        self.config = {"buckets": buckets, "emb": emb, "hidden": hidden}
        self.embed = nn.Embedding(buckets, emb, padding_idx=0)
        self.conv1 = nn.Conv1d(emb, hidden * 2, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(hidden * 2, hidden * 2, kernel_size=3, padding=1)
        h2 = 2 * hidden
        self.act_out = nn.Linear(h2, len(USER_ACTS))
        self.role = nn.Sequential(nn.Linear(h2 + emb, hidden), nn.Tanh(), nn.Linear(hidden, len(ROLES)))
        self.slot = nn.Sequential(nn.Linear(h2 + emb + 2, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, batch: ParserBatch, predict: bool = False):
        x = self.embed(batch.tokens)                                     # (B, T, emb)
        mask = (batch.tokens != 0).unsqueeze(-1)
        c = torch.tanh(self.conv1(x.transpose(1, 2)))                    # (B, 2H, T)
        h = torch.tanh(self.conv2(c)).transpose(1, 2) * mask               # (B, T, 2H), window of 5 tokens
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1)            # (B, 2H)
        wmask = (batch.slot_words != 0).unsqueeze(-1).float()
        slot_vec = (self.embed(batch.slot_words) * wmask).sum(1) / wmask.sum(1).clamp(min=1)   # (S_names, emb)
        act_logits = self.act_out(pooled)                                # (B, n_acts)
        if batch.men_row.numel():
            men_h = h[batch.men_row, batch.men_pos]                      # (M, 2H)
            role_logits = self.role(torch.cat([men_h, slot_vec[batch.men_slot]], -1))   # (M, 3)
        else:
            role_logits = h.new_zeros(0, len(ROLES))
        sl_logits = self.slot(torch.cat([pooled[batch.sl_row], slot_vec[batch.sl_slot], batch.sl_feats], -1))
        if predict:
            return {"acts": torch.sigmoid(act_logits), "roles": torch.softmax(role_logits, -1),
                    "requests": torch.sigmoid(sl_logits[:, 0]), "dontcares": torch.sigmoid(sl_logits[:, 1])}
        bce = nn.functional.binary_cross_entropy_with_logits
        loss = bce(act_logits, batch.acts) + bce(sl_logits[:, 0], batch.requests) + bce(sl_logits[:, 1], batch.dontcares)
        if role_logits.shape[0]:
            loss = loss + nn.functional.cross_entropy(role_logits, batch.roles)
        return loss


def annotated_user_turns(dialogues: Iterable[Mapping]) -> Iterator[tuple[Mapping, str, list[Act], list[Act]]]:
    """``(dialogue, user_text, last_system_acts, gold_user_acts)`` for each annotated user turn."""
    for d in dialogues:
        last: list[Act] = []
        for t in d["turns"]:
            acts = [Act.from_dict(a) for a in t.get("acts") or []]
            if t["speaker"] == "system":
                last = acts
            elif t.get("text") and t.get("acts") is not None:
                yield d, t["text"], last, acts


def user_turn_examples(dialogues: Iterable[Mapping], domain: Domain | str | None = None) -> list[Example]:
    """Labelled examples from the user turns of corpus dialogues (turns with ``text`` and ``acts``)."""
    return [featurise(text, get_domain(domain or d["domain"]), last, gold=[a for a in acts if a.act != "kb_return"])
            for d, text, last, acts in annotated_user_turns(dialogues)]


def make_batches(examples: Sequence[Example], batch_size: int, buckets: int, rng: random.Random | None = None,
                 device=None) -> list[ParserBatch]:
    """Shuffle (when ``rng`` is given) and collate ``examples`` into batches."""
    ex = list(examples)
    if rng is not None:
        rng.shuffle(ex)
    batches = [collate_examples(ex[i:i + batch_size], buckets) for i in range(0, len(ex), batch_size)]
    return [b.to(device) for b in batches] if device is not None else batches


def parser_loss_fn(model: ParserNet):
    """``loss_fn(params, batch)`` for :func:`mdlib.meta.inner.inner_loop`."""
    return lambda params, batch: functional_call(model, params, (batch,))


def decode(probs: Mapping[str, torch.Tensor], batch: ParserBatch, threshold: float = 0.5) -> list[Parse]:
    """Turn the network's probabilities into one :class:`Parse` per example."""
    out = []
    m_off = s_off = 0
    acts_p = probs["acts"].detach().cpu()
    roles_p = probs["roles"].detach().cpu()
    req_p, dc_p = probs["requests"].detach().cpu(), probs["dontcares"].detach().cpu()
    for b, e in enumerate(batch.examples):
        acts: list[Act] = []
        certainty: list[float] = []
        for j, name in enumerate(USER_ACTS):
            if name in PLAIN_ACTS:
                p = float(acts_p[b, j])
                certainty.append(max(p, 1 - p))
                if p > threshold:
                    acts.append(Act(name))
        best: dict[tuple[str, str], tuple[float, Mention]] = {}
        for k, m in enumerate(e.mentions):
            r = roles_p[m_off + k]
            role = int(r.argmax())
            certainty.append(float(r.max()))
            if role and (len(m.value) > 1 or m.value.isdigit() or role == 2):
                key = (ROLES[role], m.slot)
                if key not in best or float(r[role]) > best[key][0]:
                    best[key] = (float(r[role]), m)
        m_off += len(e.mentions)
        for (role, slot), (_, m) in sorted(best.items(), key=lambda kv: kv[1][1].start):
            acts.append(Act(role, slot, m.value))
        informed = {a.slot for a in acts if a.act == "inform"}
        for k, s in enumerate(e.slots):
            pr, pd = float(req_p[s_off + k]), float(dc_p[s_off + k])
            if not e.usr_mask[k]:
                certainty.append(max(pr, 1 - pr))
                if pr > threshold and not any(a.act == "yn_question" and a.slot == s for a in acts):
                    acts.append(Act("request", s))
            else:
                certainty.append(max(pd, 1 - pd))
                if pd > threshold and s not in informed:
                    acts.append(Act("inform", s, None))
        s_off += len(e.slots)
        conf = float(math.prod(certainty) ** (1.0 / max(1, len(certainty)))) if acts else 0.2
        out.append(Parse(_dedupe(acts), round(conf, 4)))
    return out


class LearnedParser:
    """A :class:`ParserNet` with its (possibly adapted) parameters, for one domain.

    Args:
        model: the network (its own parameters are not used; ``params`` are).
        params: ``name -> Tensor``.
        domain: the domain whose value lists give the mentions.
    """

    kind = "learned"

    def __init__(self, model: ParserNet, params: Mapping[str, torch.Tensor], domain: Domain | str,
                 threshold: float = 0.5):
        self.model = model
        self.params = {k: v.detach() for k, v in params.items()}
        self.domain = get_domain(domain)
        self.threshold = threshold

    @torch.no_grad()
    def parse_many(self, items: Sequence[tuple[str, Sequence[Act]]]) -> list[Parse]:
        """Parse ``(text, last_system_acts)`` pairs in one forward pass."""
        if not items:
            return []
        batch = collate_examples([featurise(t, self.domain, last) for t, last in items], self.model.buckets)
        device = next(iter(self.params.values())).device
        batch = batch.to(device)
        probs = functional_call(self.model, self.params, (batch,), {"predict": True})
        return decode(probs, batch, self.threshold)

    def parse(self, text: str, last_system_acts: Sequence[Act] = ()) -> Parse:
        """Read one user turn."""
        if not tokenise(text):
            return Parse([], 0.0)
        return self.parse_many([(text, last_system_acts)])[0]


# --------------------------------------------------------------------------- training


def train_parser(examples: Sequence[Example], *, steps: int = 300, batch_size: int = 32, lr: float = 3e-3,
                 seed: int = 0, model: ParserNet | None = None, params: Params | None = None,
                 progress: bool = False) -> tuple[ParserNet, Params]:
    """Supervised training (multi-domain pretraining on the sources) with Adam.

    Returns:
        ``(model, params)`` with ``params`` detached copies of the trained weights.
    """
    from tqdm.auto import tqdm

    if not examples:
        raise MdlibError("train_parser: no user turns to train on")
    torch.manual_seed(seed)
    model = model or ParserNet()
    params = {k: v.detach().clone().requires_grad_(True)
              for k, v in (params or dict(model.named_parameters())).items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    rng = random.Random(seed)
    loss_fn = parser_loss_fn(model)
    batches: list[ParserBatch] = []
    for _ in tqdm(range(steps), desc="parser pretraining", disable=not progress):
        if not batches:
            batches = make_batches(examples, batch_size, model.buckets, rng)
        loss = loss_fn(params, batches.pop())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, {k: v.detach() for k, v in params.items()}


def meta_train_parser(tasks: Mapping[str, Sequence[Example]], learner, *, iterations: int = 200,
                      k_support: int = 16, k_query: int = 16, tasks_per_iter: int = 3, outer_lr: float = 3e-3,
                      seed: int = 0, model: ParserNet | None = None, params: Params | None = None,
                      progress: bool = False) -> tuple[ParserNet, Params]:
    """Meta-train the parser across source tasks with a meta-learner of :mod:`mdlib.meta.learners`.

    Each meta-step samples ``tasks_per_iter`` source tasks and from each disjoint support
    and query turns; the outer loop is :func:`mdlib.meta.metatrain.meta_train_loop`.

    Returns:
        ``(model, params)``; Meta-SGD's learned step sizes stay in ``learner``.
    """
    from mdlib.meta.learners import TaskBatches
    from mdlib.meta.metatrain import meta_train_loop

    names = [t for t, ex in tasks.items() if len(ex) >= k_support + k_query]
    if not names:
        raise MdlibError(f"meta_train_parser: every task needs >= {k_support + k_query} user turns")
    torch.manual_seed(seed)
    model = model or ParserNet()
    params = {k: v.detach().clone().requires_grad_(True)
              for k, v in (params or dict(model.named_parameters())).items()}
    rng = random.Random(seed)

    def sample(step: int) -> list[TaskBatches]:
        out = []
        for t in rng.sample(names, min(tasks_per_iter, len(names))):
            ex = rng.sample(list(tasks[t]), k_support + k_query)
            out.append(TaskBatches(t, [collate_examples(ex[:k_support], model.buckets)],
                                   [collate_examples(ex[k_support:], model.buckets)]))
        return out

    meta_train_loop(learner, parser_loss_fn(model), params, sample, meta_steps=iterations,
                    outer_lr=outer_lr, progress=progress)
    return model, {k: v.detach() for k, v in params.items()}


def adapt_parser(model: ParserNet, params: Params, examples: Sequence[Example], *, steps: int = 20,
                 lr: float | object = 0.05, batch_size: int = 32, learner=None, seed: int = 0) -> Params:
    """Adapt to a target domain on its few user turns through the one inner loop.

    Args:
        learner: a meta-learner (its step sizes and trainable names are used through
            :meth:`~mdlib.meta.learners.MetaLearner.adapt`); ``None``: plain SGD
            fine-tuning with step size ``lr`` via :func:`mdlib.meta.inner.inner_loop`.
    """
    from mdlib.meta.inner import inner_loop

    if not examples or steps == 0:
        return dict(params)
    batches = make_batches(examples, batch_size, model.buckets, random.Random(seed))
    loss_fn = parser_loss_fn(model)
    if learner is not None:
        adapted, _ = learner.adapt(loss_fn, params, batches, steps=steps)
    else:
        adapted, _ = inner_loop(loss_fn, params, batches, steps, lr)
    return {k: v.detach() for k, v in adapted.items()}


# --------------------------------------------------------------------------- metrics


def _f1(tp: int, n_pred: int, n_gold: int) -> float:
    if n_pred == 0 and n_gold == 0:
        return 1.0
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def act_slot_f1(predicted: Sequence[Sequence[Act]], gold: Sequence[Sequence[Act]]) -> dict[str, float]:
    """Micro act F1 (act names per turn) and slot F1 (``(act, slot, value)`` of slot acts)."""
    a_tp = a_p = a_g = s_tp = s_p = s_g = 0
    for pred, ref in zip(predicted, gold):
        pn, gn = {a.act for a in pred}, {a.act for a in ref if a.act != "kb_return"}
        a_tp += len(pn & gn); a_p += len(pn); a_g += len(gn)  # noqa: E702
        ps = {(a.act, a.slot, a.value) for a in pred if a.slot is not None}
        gs = {(a.act, a.slot, a.value) for a in ref if a.slot is not None}
        s_tp += len(ps & gs); s_p += len(ps); s_g += len(gs)  # noqa: E702
    return {"act_f1": _f1(a_tp, a_p, a_g), "slot_f1": _f1(s_tp, s_p, s_g), "turns": len(gold)}


def parser_scores(parser, dialogues: Iterable[Mapping]) -> dict[str, float]:
    """Act F1 and slot F1 of ``parser`` on the user turns of corpus dialogues."""
    items, gold = [], []
    for _, text, last, acts in annotated_user_turns(dialogues):
        items.append((text, last))
        gold.append(acts)
    if isinstance(parser, LearnedParser):
        preds = []
        for i in range(0, len(items), 256):
            preds += parser.parse_many(items[i:i + 256])
    else:
        preds = [parser.parse(t, last) for t, last in items]
    return act_slot_f1([p.acts for p in preds], gold)
