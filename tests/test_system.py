"""The end-to-end system: a full simulated text dialogue, and the chat through a pipe."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from mdlib.errors import MdlibError
from mdlib.paths import ROOT
from mdlib.system.chat import chat_loop
from mdlib.system.pipeline import DialogueSystem, TemplateGenerator, simulate


def test_one_full_simulated_dialogue_end_to_end():
    system = DialogueSystem("movie", TemplateGenerator("movie"))
    res = simulate(system, n=1, seed=3, complexity="clean", transcripts=1)
    assert res["n_dialogues"] == 1 and res["success"] == 1.0
    assert 1 <= res["turns"] <= 30
    assert res["parser_act_f1"] > 0.9 and res["parser_slot_f1"] > 0.9
    # the template generator realises exactly the reference's acts: entities agree
    assert res["entity_f1"] == pytest.approx(1.0)
    text = res["transcripts"][0]
    assert text.startswith("SYS: ") and "USR: " in text and text.rstrip().endswith("user turns")
    # the database answer satisfies what the user asked for: the simulated user checks it
    assert "-> success" in text


def test_system_needs_an_explicit_generator_and_rejects_bad_input():
    with pytest.raises(MdlibError, match="needs a generator"):
        DialogueSystem("movie", None)
    s = DialogueSystem("movie", TemplateGenerator("movie"))
    s.reset()
    with pytest.raises(MdlibError, match="empty"):
        s.respond("   ")
    with pytest.raises(MdlibError, match="too long"):
        s.respond("x" * 10_000)
    reply = s.respond("I want a comedy")
    assert reply and s.history[-1].system_acts


def test_neural_generator_speaks_through_the_pipeline():
    torch = pytest.importorskip("torch")
    from mdlib.data.text import Vocab
    from mdlib.models.seq2seq import build_model
    from mdlib.system.pipeline import NeuralGenerator

    torch.manual_seed(0)
    vocab = Vocab.build([["what", "genre", "?", "request", "genre"]])
    gen = NeuralGenerator(build_model(len(vocab), emb=8, hidden=8), None, vocab, max_len=5)
    s = DialogueSystem("movie", gen)
    s.reset()
    out = s.respond("hi")
    assert isinstance(out, str) and len(out.split()) <= 5


def test_the_system_takes_a_generator_trained_on_acts_only(tmp_path):
    """The profile's default input is context, but the system realises the manager's acts:
    a checkpoint trained on acts (or saved before inputs were recorded) loads, one trained
    on context is refused in one line, by the chat's loader and by the simulation's."""
    from mdlib.checkpoint import save_checkpoint
    from mdlib.data.text import Vocab
    from mdlib.models.seq2seq import build_model
    from mdlib.system.parts import load_generator
    from mdlib.system.pipeline import NeuralGenerator

    vocab = Vocab.build([["what", "genre", "?"]])
    model = build_model(len(vocab), emb=8, hidden=8)
    for name, config in [("acts", {"inputs": {"input": "acts", "context_turns": 1}}), ("old", {})]:
        ck = save_checkpoint(tmp_path / f"{name}.pt", model, vocab, config)
        assert NeuralGenerator.from_checkpoint(ck).use_acts
        assert load_generator(ck, "movie").use_acts
    assert NeuralGenerator.from_checkpoint(tmp_path / "acts.pt").context_turns == 1
    ck = save_checkpoint(tmp_path / "ctx.pt", model, vocab, {"inputs": {"input": "context"}})
    with pytest.raises(MdlibError, match="input 'context'; the end-to-end system's generator reads the turn's acts"):
        NeuralGenerator.from_checkpoint(ck)
    with pytest.raises(MdlibError, match="trained without the system acts as input.*--input acts"):
        load_generator(ck, "movie")


def test_neural_generator_decodes_with_its_own_parameters_every_turn():
    torch = pytest.importorskip("torch")
    from mdlib.data.acts import Act
    from mdlib.data.text import Vocab
    from mdlib.models.decoding import greedy
    from mdlib.models.batching import collate
    from mdlib.data.pairs import Pair
    from mdlib.models.seq2seq import build_model
    from mdlib.system.pipeline import NeuralGenerator

    torch.manual_seed(0)
    words = ["what", "genre", "?", "request", "comedy", "drama", "years", "country"]
    vocab = Vocab.build([words])
    model = build_model(len(vocab), emb=8, hidden=8)
    own = {k: v.detach().clone() for k, v in model.named_parameters()}
    other = {k: torch.randn_like(v) for k, v in own.items()}
    acts = [Act("request", "genre")]

    def reference(params):  # decoding through a fresh copy of the model with ``params``
        batch = collate([Pair(context=(), response=(), acts=tuple(acts))], vocab, use_acts=True, max_src=80)
        return " ".join(greedy(model, batch, vocab, params=params, max_len=6)[0])

    assert reference(other) != reference(own)  # so the checks below can fail
    gen = NeuralGenerator(model, other, vocab, context_turns=0, max_len=6)
    first = gen([], acts)
    assert first.split() == reference(other).split()
    assert all(torch.equal(p, own[k]) for k, p in model.named_parameters())  # the model itself untouched
    # the values are read at every turn: changed parameters change what it says
    for k in other:
        gen.params[k].copy_(own[k])
    assert gen([], acts).split() == reference(own).split()


def test_chat_loop_keeps_going_after_bad_lines():
    system = DialogueSystem("movie", TemplateGenerator("movie"))
    stdin = io.BytesIO(b"hi\n\n\xff\xfe\n" + b"a" * 600 + b"\nI want a comedy\n")
    out, err = io.StringIO(), io.StringIO()
    assert chat_loop(system, stdin, out, err) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert "empty" in lines[1] and "not UTF-8" in lines[2] and "600 characters" in lines[3]
    assert "Comedy" in lines[4]


def test_chat_with_piped_input_subprocess():
    data = b"hi\nI want a comedy\n\xff\xfe\xfd\n\nbye\n"
    proc = subprocess.run([sys.executable, "-m", "mdlib", "chat", "--domain", "movie", "--templates"],
                          input=data, capture_output=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 5, lines
    assert "Comedy" in lines[1] and "not UTF-8" in lines[2] and "empty" in lines[3]
    assert "Traceback" not in proc.stderr.decode()


def test_chat_missing_checkpoint_says_how_to_make_one():
    proc = subprocess.run([sys.executable, "-m", "mdlib", "chat", "--checkpoint", "no/such/run"],
                          input=b"hi\n", capture_output=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip()
    assert err.startswith("error:") and "python -m mdlib train" in err and len(err.splitlines()) == 1
