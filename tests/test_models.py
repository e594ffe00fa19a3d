"""The generator (mdlib.models): shapes, masking, copy, functional use, decoding."""

import pytest
import torch

from mdlib.data.acts import Act
from mdlib.data.pairs import Pair
from mdlib.data.text import Vocab, tokenise
from mdlib.models import beam_search, build_model, collate, greedy
from mdlib.training import train


def _pair(ctx, resp, acts=(), domain="restaurant"):
    return Pair(context=tuple(tokenise(ctx)), response=tuple(tokenise(resp)), acts=tuple(acts), domain=domain)


PAIRS = [
    _pair("<usr> i want thai food", "thai food , in which city ?",
          [Act("implicit_confirm", "food_pref", "thai"), Act("request", "loc")]),
    _pair("<usr> boston please", "okay , boston .", [Act("implicit_confirm", "loc", "boston")]),
    _pair("<usr> is it cheap ?", "it is cheap . anything else ?", [Act("inform", "price", "cheap")]),
    _pair("<usr> bye", "goodbye !", [Act("goodbye")]),
]
VOCAB = Vocab.build([p.source() + list(p.response) for p in PAIRS])


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return build_model(len(VOCAB), emb=16, hidden=32)


def test_shapes_and_parameter_budget(model):
    batch = collate(PAIRS, VOCAB)
    B, S = batch.src.shape
    enc, h0 = model.encode(batch.src, batch.src_mask)
    assert enc.shape == (B, S, 32) and h0.shape == (1, B, 32)
    logp, h, attn = model.decode(batch.tgt_in, h0, enc, batch.src_mask, batch.src_ext, batch.n_oov)
    assert logp.shape == (B, batch.tgt_in.shape[1], len(VOCAB) + batch.n_oov)
    assert attn.shape == (B, batch.tgt_in.shape[1], S)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(B, batch.tgt_in.shape[1]), atol=1e-4)
    assert float(attn.detach()[~batch.src_mask.unsqueeze(1).expand_as(attn)].abs().max()) < 1e-6
    loss = model(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    default = build_model(1000)
    assert default.n_parameters() < 1_000_000


def test_padding_does_not_change_loss(model):
    alone = model(collate(PAIRS[3:], VOCAB))
    nll = model(collate(PAIRS, VOCAB), reduction="none")
    # the short example in a padded batch has the same per-token NLL as alone
    n = len(PAIRS[3].response) + 1
    assert torch.allclose(nll[3, :n].sum() / n, alone, atol=1e-5)
    assert float(nll.detach()[3, n:].abs().sum()) == 0.0


def test_functional_call_grads_equal_module_grads(model):
    batch = collate(PAIRS, VOCAB)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    loss_f = torch.func.functional_call(model, params, (batch,))
    grads_f = torch.autograd.grad(loss_f, list(params.values()), allow_unused=True)
    model.zero_grad()
    loss_m = model(batch)
    loss_m.backward()
    assert torch.allclose(loss_f, loss_m)
    for (name, p), g in zip(model.named_parameters(), grads_f):
        ref = p.grad if p.grad is not None else torch.zeros_like(p)
        got = g if g is not None else torch.zeros_like(p)
        assert torch.allclose(got, ref, atol=1e-6), name
    # a functional step leaves the module's own weights untouched
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = {k: params[k] - 0.1 * (g if g is not None else 0) for k, g in zip(params, grads_f)}
    assert torch.func.functional_call(model, new, (batch,)) < loss_f
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_second_order_gradient_exists(model):
    batch = collate(PAIRS, VOCAB)
    params = dict(model.named_parameters())
    with model.second_order(batch.src.device):
        loss = torch.func.functional_call(model, params, (batch,))
        g = torch.autograd.grad(loss, [params["out.weight"]], create_graph=True)[0]
    (g ** 2).sum().backward()
    assert model.embed.weight.grad is not None and float(model.embed.weight.grad.abs().sum()) > 0


def test_tiny_model_overfits_and_copies_unseen_values(model):
    result = train(model, PAIRS, VOCAB, epochs=150, batch_size=4, lr=1e-2, patience=1000)
    assert result.curve[-1]["train_loss"] < 0.1 < result.curve[0]["train_loss"]
    out = greedy(model, collate(PAIRS, VOCAB), VOCAB)
    assert out == [list(p.response) for p in PAIRS]
    # a value the vocabulary has never seen ("zurich") is copied from the acts
    new = _pair("<usr> zurich please", "okay , zurich .", [Act("implicit_confirm", "loc", "zurich")])
    assert "zurich" not in VOCAB
    batch = collate([new], VOCAB)
    assert batch.oovs == [["zurich"]] and int(batch.tgt_out[0, 2]) == len(VOCAB)
    assert "zurich" in greedy(model, batch, VOCAB)[0]


def test_beam_width_one_equals_greedy(model):
    train(model, PAIRS, VOCAB, epochs=20, batch_size=4, lr=1e-2)
    batch = collate(PAIRS, VOCAB)
    assert beam_search(model, batch, VOCAB, width=1) == greedy(model, batch, VOCAB)
    wide = beam_search(model, batch, VOCAB, width=3, max_len=10)
    assert len(wide) == len(PAIRS) and all(len(h) <= 10 for h in wide)


def test_decoding_with_params_dict(model):
    batch = collate(PAIRS, VOCAB)
    same = {k: v.detach().clone() for k, v in model.named_parameters()}
    assert greedy(model, batch, VOCAB, params=same, max_len=5) == greedy(model, batch, VOCAB, max_len=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zeros = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    greedy(model, batch, VOCAB, params=zeros, max_len=5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
