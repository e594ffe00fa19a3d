"""The corpus format: validation, file:line:field errors, atomic saving, SimDial import."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mdlib.data.corpus import SCHEMA, load_corpus, load_simdial, save_corpus, validate_record
from mdlib.data.generator import generate
from mdlib.errors import MdlibError


@pytest.fixture(scope="module")
def records():
    return generate(["weather", "movie"], "mix", 10, 0)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_round_trip(tmp_path, records):
    path = save_corpus(records, tmp_path / "c.jsonl")
    assert load_corpus(path) == records
    assert len(path.read_text().splitlines()) == len(records)


def test_plain_text_corpus_without_annotations_is_valid(tmp_path):
    rec = {"id": "p1", "domain": "persona_7", "turns": [{"speaker": "user", "text": "hi"},
                                                        {"speaker": "system", "text": "hello"}]}
    assert validate_record(rec) == []
    assert load_corpus(save_corpus([rec], tmp_path / "p.jsonl")) == [rec]


def test_generated_records_match_the_json_schema(records):
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for rec in records:
        assert list(validator.iter_errors(rec)) == []


@pytest.mark.parametrize("mutate, field, expected", [
    (lambda r: r["turns"][3].update(speaker="bot"), "turns[3].speaker", "expected 'user' or 'system', got 'bot'"),
    (lambda r: r["turns"][2].pop("text"), "turns[2].text", "missing"),
    (lambda r: r["turns"][1].update(text=5), "turns[1].text", "expected a string, got 5"),
    (lambda r: r.pop("id"), "id", "missing"),
    (lambda r: r.update(domain=""), "domain", "expected a non-empty string"),
    (lambda r: r.update(turns=[]), "turns", "expected at least one turn"),
    (lambda r: r["turns"][1].update(acts=[{"slot": "loc"}]), "turns[1].acts[0].act", "missing"),
    (lambda r: r["turns"][1].update(asr_conf=1.5), "turns[1].asr_conf", "expected a number in [0, 1]"),
    (lambda r: r.update(meta=[1]), "meta", "expected an object"),
])
def test_malformed_record_gives_file_line_field(tmp_path, records, mutate, field, expected):
    bad = json.loads(json.dumps(records[1]))
    mutate(bad)
    assert validate_record(bad), "the validator must flag it"
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(bad), "the schema agrees"
    path = _write(tmp_path / "bad.jsonl", [json.dumps(records[0]), json.dumps(bad)])
    with pytest.raises(MdlibError) as err:
        load_corpus(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:2: field '{field}': ")
    assert expected in msg and "\n" not in msg


def test_kb_rows_must_satisfy_constraints(tmp_path, records):
    rec = json.loads(json.dumps(next(r for r in records if any("kb" in t for t in r["turns"]))))
    i, turn = next((i, t) for i, t in enumerate(rec["turns"]) if "kb" in t and t["kb"]["results"])
    slot = next(k for k, v in turn["kb"]["constraints"].items() if v is not None)
    turn["kb"]["results"][0][slot] = "somewhere else"
    errors = validate_record(rec)
    assert errors and errors[0].startswith(f"field 'turns[{i}].kb.results[0].{slot}': row does not satisfy")


def test_invalid_json_repeated_ids_and_empty_files(tmp_path, records):
    path = _write(tmp_path / "a.jsonl", [json.dumps(records[0]), "{not json"])
    with pytest.raises(MdlibError, match=r"a\.jsonl:2: invalid JSON"):
        load_corpus(path)
    path = _write(tmp_path / "b.jsonl", [json.dumps(records[0]), "", json.dumps(records[0])])
    with pytest.raises(MdlibError, match=r"b\.jsonl:3: field 'id': .* repeats line 1"):
        load_corpus(path)
    path = _write(tmp_path / "c.jsonl", ["[1, 2]"])
    with pytest.raises(MdlibError, match=r"c\.jsonl:1: record: expected an object, got a list"):
        load_corpus(path)
    with pytest.raises(MdlibError, match="empty file"):
        load_corpus(_write(tmp_path / "d.jsonl", [""]))
    with pytest.raises(MdlibError, match="no such file"):
        load_corpus(tmp_path / "missing.jsonl")


def test_save_writes_nothing_for_invalid_records(tmp_path, records):
    bad = json.loads(json.dumps(records[:3]))
    bad[2]["turns"][0]["speaker"] = "bot"
    out = tmp_path / "out.jsonl"
    with pytest.raises(MdlibError, match=r"record 3 .*turns\[0\]\.speaker"):
        save_corpus(bad, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    save_corpus(records, out)
    before = out.read_bytes()
    with pytest.raises(MdlibError):
        save_corpus(bad, out)
    assert out.read_bytes() == before, "an existing file is left untouched"


# ------------------------------------------------------------------ SimDial layout
SIMDIAL = {
    "dialogs": [
        [
            {"speaker": "SYS", "utt": "Weather bot is here.", "actions": [{"act": "greet", "parameters": []}],
             "domain": "weather", "state": {"turn": 0}},
            {"speaker": "USR", "utt": "At Boston.", "conf": 0.83,
             "actions": [{"act": "inform", "parameters": [["loc", "Boston"]]}], "domain": "weather"},
            {"speaker": "SYS", "utt": "The weather will be sunny.",
             "actions": [{"act": "inform", "parameters": [{"loc": "Boston"}, {"weather_type": "sunny"}]}],
             "domain": "weather"},
        ],
        [
            {"speaker": "SYS", "utt": "Weather bot is here.", "actions": [{"act": "greet"}], "domain": "weather"},
            {"speaker": "USR", "utt": "Goodbye.", "actions": [{"act": "goodbye", "parameters": []}],
             "domain": "weather", "conf": 1.0},
        ],
    ],
    "meta": {"name": "weather"},
}


def test_simdial_conversion_round_trip(tmp_path):
    src = tmp_path / "weather-MixSpec-2.json"
    src.write_text(json.dumps(SIMDIAL))
    recs = load_simdial(src)
    assert [r["id"] for r in recs] == ["weather-MixSpec-2-00000", "weather-MixSpec-2-00001"]
    first = recs[0]
    assert first["domain"] == "weather"
    assert [t["speaker"] for t in first["turns"]] == ["system", "user", "system"]
    assert [t["text"] for t in first["turns"]] == [t["utt"] for t in SIMDIAL["dialogs"][0]]
    assert first["turns"][1]["acts"] == [{"act": "inform", "slot": "loc", "value": "Boston"}]
    assert first["turns"][1]["asr_conf"] == 0.83
    assert first["turns"][2]["acts"] == [{"act": "inform", "slot": "loc", "value": "Boston"},
                                         {"act": "inform", "slot": "weather_type", "value": "sunny"}]
    assert first["turns"][0]["state"] == {"turn": 0}
    out = save_corpus(recs, tmp_path / "converted.jsonl")
    assert load_corpus(out) == recs


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.pop("dialogs"), "field 'dialogs': missing"),
    (lambda d: d["dialogs"][0][1].pop("utt"), "field 'dialogs[0][1].utt': missing"),
    (lambda d: d["dialogs"][1][0].pop("speaker"), "field 'dialogs[1][0].speaker': missing"),
    (lambda d: d["dialogs"][0][2].update(speaker="KB"), "field 'dialogs[0][2].speaker': expected 'SYS' or 'USR'"),
    (lambda d: d["dialogs"][0][1].update(actions=[{"parameters": []}]), "field 'dialogs[0][1].actions[0].act'"),
    (lambda d: [t.pop("domain") for dd in d["dialogs"] for t in dd] and d.pop("meta"), "field 'dialogs[0][0].domain': missing"),
])
def test_simdial_missing_fields_are_named(tmp_path, mutate, expected):
    data = json.loads(json.dumps(SIMDIAL))
    mutate(data)
    src = tmp_path / "s.json"
    src.write_text(json.dumps(data))
    with pytest.raises(MdlibError) as err:
        load_simdial(src)
    assert str(err.value).startswith(f"{src}: {expected}")


def test_simdial_invalid_json(tmp_path):
    src = tmp_path / "s.json"
    src.write_text('{"dialogs": [\n')
    with pytest.raises(MdlibError, match=r"s\.json:\d+: invalid JSON"):
        load_simdial(src)
