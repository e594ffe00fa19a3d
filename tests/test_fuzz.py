"""Property-based tests: every reader of outside input returns data or raises MdlibError.

Arbitrary bytes and arbitrary JSON go to the corpus loader, the SimDial importer, the
checkpoint, learner, run-manifest and policy readers and the chat loop; so do valid
inputs with one field replaced by an arbitrary value, which reach the checks deep
inside. Any other exception (a traceback on the command line) fails the test. The
budget (``max_examples``) keeps the whole file well under a minute.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdlib.data.corpus import load_corpus, load_simdial, parse_lines
from mdlib.data.generator import generate
from mdlib.errors import MdlibError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
#: Values a torch file may hold under ``weights_only``: JSON-like data and small tensors.
TENSORS = st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype),
                    st.lists(st.integers(0, 3), max_size=3), st.sampled_from([torch.float32, torch.int64, torch.bool]))
TORCH_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | TENSORS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


def _paths(value, prefix=()):
    """Every path (tuple of keys/indices) into a JSON-like value."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _replace(value, path, new):
    if not path:
        return new
    value = copy.deepcopy(value)
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


@st.composite
def mutated(draw, base, values=JSON):
    """``base`` with the value at one of its paths replaced by an arbitrary one."""
    paths = list(_paths(base))
    path = draw(st.sampled_from(paths))
    return _replace(base, path, draw(values))


def _write(data: bytes) -> Path:
    f = tempfile.NamedTemporaryFile(delete=False, suffix=".bin")
    f.write(data)
    f.close()
    return Path(f.name)


def _data_or_mdlib_error(fn, *args):
    try:
        return fn(*args)
    except MdlibError:
        return None


RECORD = generate(["bus"], "mix", 1, seed=0)[0]
SIMDIAL = {"dialogs": [[{"speaker": "SYS", "utt": "hello", "actions": [{"act": "greet", "parameters": []}],
                         "domain": "bus"},
                        {"speaker": "USR", "utt": "a bus to town", "conf": 0.9,
                         "actions": [{"act": "inform", "parameters": [["to", "town"]]}]}]],
           "meta": {"name": "bus"}}


# ------------------------------------------------------------------ corpus loader
@FUZZ
@given(st.binary(max_size=300))
def test_corpus_loader_arbitrary_bytes(data):
    path = _write(data)
    try:
        _data_or_mdlib_error(load_corpus, path)
    finally:
        path.unlink()


@FUZZ
@given(st.lists(JSON, min_size=1, max_size=3))
def test_corpus_loader_arbitrary_json_lines(values):
    _data_or_mdlib_error(parse_lines, [json.dumps(v) for v in values], "fuzz")


@FUZZ
@given(mutated(RECORD))
def test_corpus_loader_mutated_record(rec):
    records = _data_or_mdlib_error(parse_lines, [json.dumps(rec)], "fuzz")
    if records:  # what loads also writes back
        from mdlib.data.corpus import dumps

        _data_or_mdlib_error(dumps, records[0])


# ------------------------------------------------------------------ SimDial importer
@FUZZ
@given(st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode()),
                 mutated(SIMDIAL).map(lambda v: json.dumps(v).encode())))
def test_simdial_importer(data):
    path = _write(data)
    try:
        _data_or_mdlib_error(load_simdial, path)
    finally:
        path.unlink()


# ------------------------------------------------------------------ checkpoints, learners, manifests
@pytest.fixture(scope="module")
def checkpoint_blob(tmp_path_factory):
    from mdlib.checkpoint import save_checkpoint
    from mdlib.data.text import Vocab
    from mdlib.models.seq2seq import ModelConfig, Seq2Seq

    vocab = Vocab(list(Vocab.build([["hi", "there"]]).itos))
    model = Seq2Seq(ModelConfig(vocab_size=len(vocab), emb=4, hidden=4))
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "ck.pt", model, vocab, {"method": "pretrain"})
    return path.read_bytes(), torch.load(path, weights_only=True)


def _torch_file(blob) -> Path:
    buf = io.BytesIO()
    torch.save(blob, buf)
    return _write(buf.getvalue())


def _fuzz_checkpoint(data: bytes):
    from mdlib.checkpoint import load_checkpoint

    path = _write(data)
    try:
        _data_or_mdlib_error(load_checkpoint, path)
    finally:
        path.unlink()


@FUZZ
@given(data=st.data())
def test_checkpoint_reader_damaged_bytes(checkpoint_blob, data):
    raw = bytearray(checkpoint_blob[0])
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]  # truncated
    else:
        at = data.draw(st.integers(0, len(raw) - 1))
        patch = data.draw(st.binary(min_size=1, max_size=64))
        raw[at:at + len(patch)] = patch
    _fuzz_checkpoint(bytes(raw))


@FUZZ
@given(data=st.data())
def test_checkpoint_reader_crafted_fields(checkpoint_blob, data):
    from mdlib.checkpoint import load_checkpoint

    blob = checkpoint_blob[1]
    skeleton = {k: (dict(v) if isinstance(v, dict) else v) for k, v in blob.items()}
    path_choices = [(k,) for k in blob] + [("config", "model", k) for k in blob["config"]["model"]] + \
        [("state_dict", k) for k in blob["state_dict"]]
    where = data.draw(st.sampled_from(path_choices))
    crafted = copy.deepcopy(skeleton)
    target = crafted
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = data.draw(TORCH_VALUES)
    path = _torch_file(crafted)
    try:
        _data_or_mdlib_error(load_checkpoint, path)
    finally:
        path.unlink()


@FUZZ
@given(blob=st.one_of(st.binary(max_size=200), TORCH_VALUES.map(lambda v: {
           "format": "mdlib-learner-v1", "method": "maml", "inner_steps": 1, "meta_parameters": v})),
       key=st.sampled_from(["inner_steps", "inner_lr", "trainable", "method", "meta_parameters"]),
       value=TORCH_VALUES)
def test_learner_reader(tmp_path_factory, blob, key, value):
    from mdlib.runs import load_learner

    folder = tmp_path_factory.mktemp("learner")
    if isinstance(blob, bytes):
        (folder / "learner.pt").write_bytes(blob)
    else:
        blob = dict(blob, inner_lr=0.1, trainable=None)
        blob[key] = value
        torch.save(blob, folder / "learner.pt")
    _data_or_mdlib_error(load_learner, folder, "maml")


@FUZZ
@given(manifest=st.one_of(JSON, mutated({"format": "mdlib-run-v1", "method": "pretrain", "profile": "smoke", "seed": 0,
                                "protocol": "domains", "sources": ["bus"], "targets": [], "model": {},
                                "corpus": None, "files": {"checkpoint.pt": "0" * 64}})))
def test_run_manifest_reader(tmp_path_factory, manifest):
    from mdlib.runs import load_run

    folder = tmp_path_factory.mktemp("run")
    (folder / "run.json").write_text(json.dumps(manifest))
    _data_or_mdlib_error(load_run, folder)


# ------------------------------------------------------------------ policy files
POLICY_BLOB = None


def _policy_blob():
    global POLICY_BLOB
    if POLICY_BLOB is None:
        from mdlib.dm.learned import FORMAT
        from mdlib.dm.rl import make_policy

        model = make_policy(4)
        POLICY_BLOB = {"format": FORMAT, "config": {"hidden": 4, "domain": "movie"},
                       "params": {k: v.detach().clone() for k, v in model.named_parameters()}}
    return POLICY_BLOB


@FUZZ
@given(data=st.data())
def test_policy_reader(data):
    from mdlib.dm.learned import load_policy

    if data.draw(st.booleans()):
        path = _write(data.draw(st.binary(max_size=200)))
    else:
        blob = copy.deepcopy(_policy_blob())
        where = data.draw(st.sampled_from([("config",), ("params",), ("config", "hidden")]
                                          + [("params", k) for k in blob["params"]]))
        target = blob
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = data.draw(TORCH_VALUES)
        path = _torch_file(blob)
    try:
        _data_or_mdlib_error(load_policy, path)
    finally:
        path.unlink()


# ------------------------------------------------------------------ chat reader
SYSTEM = None


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
                          st.sampled_from([b"/reset", b"I want a comedy", b"bye", b"\xff\xfe", b"x" * 5000])),
                max_size=6))
def test_chat_reader(lines):
    global SYSTEM
    from mdlib.system.chat import build_system, chat_loop

    if SYSTEM is None:
        SYSTEM = build_system("movie", None, templates=True)
    out, err = io.StringIO(), io.StringIO()
    stdin = io.BytesIO(b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines))
    assert chat_loop(SYSTEM, stdin, out, err) == 0
    assert out.getvalue().count("\n") == len(lines)  # one reply line per input line
