"""The generator contract (mdlib.models.contract): a second generator, registered here,
goes through decoding, checkpoints, ANIL and evaluation without any GRU code running."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pytest
import torch
from torch import nn

from mdlib.checkpoint import _digest, load_checkpoint, save_checkpoint, save_run
from mdlib.data.generator import generate
from mdlib.data.pairs import Pair
from mdlib.data.text import Vocab
from mdlib.errors import MdlibError
from mdlib.evaluation import adapt, build_vocab, evaluate, pairs_of, unseen_as_unk
from mdlib.meta.learners import make_learner
from mdlib.meta.metatrain import meta_train
from mdlib.models import GENERATORS, beam_search, collate, greedy, make_generator, register_generator
from mdlib.models.seq2seq import Seq2Seq
from mdlib.profiles import get_profile


@dataclass(frozen=True)
class BowConfig:
    vocab_size: int
    emb: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


class BagOfWords(nn.Module):
    """The mean source embedding plus the previous token's embedding -> the next token
    (no recurrence, no attention, no copying)."""

    def __init__(self, config: BowConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.emb, padding_idx=0)
        self.prev = nn.Embedding(config.vocab_size, config.emb)
        self.proj = nn.Linear(config.emb, config.vocab_size)

    @classmethod
    def config_from_dict(cls, fields, where="config.model"):
        if set(fields) != {"vocab_size", "emb"} or not all(isinstance(v, int) and v > 0 for v in fields.values()):
            raise MdlibError(f"{where}: expected positive whole vocab_size and emb, got {fields!r:.60}")
        return BowConfig(**fields)

    def _logp(self, bag, tokens, n_oov):  # bag (B, E), tokens (B, T) -> (B, T, V + n_oov)
        tokens = tokens.masked_fill(tokens >= self.config.vocab_size, 1)  # copied words read as <unk>
        logp = torch.log_softmax(self.proj(torch.tanh(bag.unsqueeze(1) + self.prev(tokens))), dim=-1)
        return torch.cat([logp, logp.new_full((*logp.shape[:2], n_oov), -1e9)], dim=-1)

    def _bag(self, batch):
        m = batch.src_mask.unsqueeze(-1).float()
        return (self.embed(batch.src) * m).sum(1) / m.sum(1).clamp(min=1)

    def forward(self, batch, reduction="mean"):
        logp = self._logp(self._bag(batch), batch.tgt_in, batch.n_oov)
        nll = -logp.gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2) * batch.tgt_mask
        if reduction == "none":
            return nll
        return nll.sum() if reduction == "sum" else nll.sum() / batch.tgt_mask.sum().clamp(min=1)

    def start(self, batch):
        return self._bag(batch), batch.n_oov

    def step(self, tokens, state):
        bag, n_oov = state
        return self._logp(bag, tokens, n_oov)[:, -1], state

    @staticmethod
    def select(state, rows):
        return state[0][rows], state[1]

    def head_names(self):
        return ["proj.weight", "proj.bias"]

    @torch.no_grad()
    def read_as_unk(self, ids, unk_id):
        self.embed.weight[ids] = self.embed.weight[unk_id].clone()


@pytest.fixture(autouse=True)
def bow(monkeypatch):
    """Register the bag-of-words generator and make any use of the GRU fail."""
    register_generator("bow")(BagOfWords)

    def no_gru(*a, **k):
        raise AssertionError("GRU code ran")

    for name in ("__init__", "encode", "decode", "forward", "start", "step"):
        monkeypatch.setattr(Seq2Seq, name, no_gru)
    yield
    GENERATORS.pop("bow")


PAIRS = [Pair(context=("<usr>", "hi", w), response=("hello", "there"), acts=()) for w in ("a", "b", "c")]
VOCAB = Vocab.build([list(p.context) + list(p.response) for p in PAIRS])


def _trained(steps: int = 150) -> BagOfWords:
    torch.manual_seed(0)
    model = make_generator({"generator": "bow", "vocab_size": len(VOCAB), "emb": 8})
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = collate(PAIRS, VOCAB, use_acts=False)
    for _ in range(steps):
        opt.zero_grad()
        model(batch).backward()
        opt.step()
    return model


def test_decoding_goes_through_the_contract():
    model = _trained()
    batch = collate(PAIRS, VOCAB, use_acts=False)
    assert greedy(model, batch, VOCAB) == [["hello", "there"]] * 3
    assert beam_search(model, batch, VOCAB, width=1) == greedy(model, batch, VOCAB)
    assert beam_search(model, batch, VOCAB, width=3) == [["hello", "there"]] * 3
    # decoding with other parameters binds a copy; the model keeps its own
    zeros = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    assert greedy(model, batch, VOCAB, params=zeros, max_len=3) != greedy(model, batch, VOCAB)


def test_checkpoint_records_the_generator_and_rebuilds_it(tmp_path):
    model = _trained(5)
    path = save_checkpoint(tmp_path / "bow.pt", model, VOCAB, {"method": "pretrain"})
    blob = torch.load(path, weights_only=True)
    assert blob["config"]["model"] == {"generator": "bow", "vocab_size": len(VOCAB), "emb": 8}
    loaded, vocab, config, _ = load_checkpoint(path)
    assert type(loaded) is BagOfWords and vocab == VOCAB and config["method"] == "pretrain"
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    run = save_run(tmp_path / "run", model, VOCAB, {"method": "pretrain"}, [])
    assert type(load_checkpoint(run)[0]) is BagOfWords


def test_unknown_generator_is_one_line(tmp_path):
    with pytest.raises(MdlibError, match=r"unknown generator 'nope'; registered: bow, gru$"):
        make_generator({"generator": "nope", "vocab_size": 9})
    blob = torch.load(save_checkpoint(tmp_path / "bow.pt", _trained(1), VOCAB, {}), weights_only=True)
    blob["config"]["model"]["generator"] = "nope"
    blob["sha256"] = _digest(blob["state_dict"], blob["vocab"], blob["config"], blob["extra"])
    torch.save(blob, tmp_path / "nope.pt")
    with pytest.raises(MdlibError) as err:
        load_checkpoint(tmp_path / "nope.pt")
    assert "nope.pt: config.model.generator: unknown generator 'nope'" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_class_that_misses_the_contract_is_refused():
    class Half(nn.Module):
        def forward(self, batch):
            return batch

    with pytest.raises(MdlibError, match="Half lacks config_from_dict, start, step, select"):
        register_generator("half")(Half)
    assert "half" not in GENERATORS
    with pytest.raises(MdlibError, match="'bow' is already BagOfWords"):
        register_generator("bow")(type("Other", (BagOfWords,), {}))


def test_anil_adapts_the_head_the_generator_names():
    prof = get_profile("smoke").replace(meta_batch=2, meta_steps=2)
    tasks = {d: generate([d], "clean", 6, seed=1) for d in ("bus", "weather")}
    vocab = build_vocab([p for ds in tasks.values() for p in pairs_of(ds, prof)], prof)
    model = make_generator({"generator": "bow", "vocab_size": len(vocab), "emb": 8})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    learner, hist = meta_train("anil", model, tasks, vocab, prof, seed=0, targets=["movie"])
    assert learner.trainable == ["proj.weight", "proj.bias"]
    assert len(hist.steps) == 2
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    with pytest.raises(MdlibError, match="anil: name the head parameters"):
        make_learner("anil", dict(model.named_parameters()), 1, 0.1)


def test_adaptation_and_evaluation_take_any_generator():
    prof = get_profile("smoke")
    dialogues = generate(["movie"], "clean", 5, seed=3)
    pairs = pairs_of(dialogues, prof)
    vocab = Vocab(list(build_vocab(pairs, prof).itos) + ["never_seen"])
    torch.manual_seed(0)
    model = make_generator({"generator": "bow", "vocab_size": len(vocab), "emb": 8})
    assert unseen_as_unk(model, vocab, pairs, prof) == 1
    assert torch.equal(model.embed.weight[len(vocab) - 1], model.embed.weight[vocab.unk_id])
    params = adapt(model, None, dialogues[:2], prof, 0, vocab=vocab, lr=0.5, steps=3)
    before = evaluate(model, None, dialogues[2:], vocab, prof)
    after = evaluate(model, params, dialogues[2:], vocab, prof)
    assert after["ppl"] < before["ppl"] and after["n_test"] > 0
