"""The learned parser: features, :class:`ParserNet` and :class:`LearnedParser`.

:class:`ParserNet` is a small functional network: hashed word embeddings and two
convolutions (a 5-token window); a multi-label *act classifier*; a *slot tagger* that
classifies every value mention found in the text (the value is *copied* from the
utterance, the network decides its role: not meant / inform / yes-no question); and a
*slot head* that decides, per slot of the domain, whether the user requests it or does
not care about it. Slots are represented by the embeddings of the words of their names,
so one network serves every domain, and a new domain's slots ("genre") are learned by
adapting on a few target dialogues (:mod:`mdlib.system.parser.training`). Notebook 07
trains it.
"""

from __future__ import annotations

import math
import random
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
from mdlib.system.parser.rules import Mention, Parse, _dedupe, find_mentions

Params = dict[str, torch.Tensor]

#: Acts without a slot that the act classifier decides on its own.
PLAIN_ACTS = ("greet", "confirm", "disconfirm", "new_search", "satisfy", "more_request", "goodbye")
#: Roles of a value mention (the slot tagger's classes).
ROLES = ("none", "inform", "yn_question")



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

