"""The persona task family: personas, phrasing pools and recogniser, splits, metrics, CLI."""

from __future__ import annotations

import itertools
import json

import pytest

from mdlib.cli import main
from mdlib.data.acts import Act
from mdlib.data.corpus import parse_lines, save_corpus
from mdlib.data.personas import (DEFAULT_SPLITS, FRAME_NOISE, PAIR_SETTINGS, PersonaSplits, blind_outputs,
                                 get_held_out, held_out_personas, make_persona, oracle_accuracy,
                                 persona_dialogue, persona_kshot, persona_lexicon, persona_pairs,
                                 persona_profile, persona_seed, phrasing_prior, score_outputs)
from mdlib.data.phrasings import KEYS, act_key, NOUNS, PATTERNS, POOL_SIZE, POOLS, REGISTERS, THINGS, fill, recognise
from mdlib.data.splits import check_no_leakage
from mdlib.errors import MdlibError
from mdlib.metrics import persona_accuracy, slot_error_rate

SPLITS = DEFAULT_SPLITS
ALL_NAMES = [n for role in ("train", "valid", "test") for n in SPLITS.names(role)]


def _sys_turns(dialogues):
    return [t for d in dialogues for t in d["turns"] if t["speaker"] == "system"]


# ------------------------------------------------------------------------------ personas
def test_personas_are_deterministic_per_seed():
    make_persona.cache_clear()
    a = make_persona(7)
    make_persona.cache_clear()
    assert make_persona(7) == a and make_persona(7) is not a
    d1 = persona_dialogue(a, 5)
    d2 = persona_dialogue(make_persona(7), 5)
    assert json.dumps(d1) == json.dumps(d2)
    assert d1["id"] == "persona-7-d00005" and d1["domain"] == "persona-7"
    assert d1["meta"]["persona"] == "persona-7" and d1["meta"]["source_domain"] == "weather"
    # another persona says the same kind of dialogue in other words
    assert json.dumps(persona_dialogue(make_persona(8), 5)) != json.dumps(d1)


def test_personas_pairwise_different_across_all_splits():
    tables = {n: make_persona(persona_seed(n)).frames for n in ALL_NAMES}
    for a, b in itertools.combinations(ALL_NAMES, 2):
        assert tables[a] != tables[b], (a, b)
    assert len(SPLITS.names("train")) >= 48 and len(SPLITS.names("valid")) >= 8
    assert len(SPLITS.names("test")) >= 16


def test_no_persona_seed_in_two_splits():
    seeds = {r: set(SPLITS.seeds(r)) for r in ("train", "valid", "test")}
    for a, b in itertools.combinations(seeds, 2):
        assert not seeds[a] & seeds[b], (a, b)
    small = PersonaSplits(n_train=1000, n_valid=1000, n_test=3)
    assert not set(small.seeds("train")) & set(small.seeds("valid"))
    assert held_out_personas() == SPLITS.names("test")


def test_most_choices_follow_the_factors():
    """Every pool has the same layout, so the factors' frame is the same index everywhere;
    about 1 - FRAME_NOISE * 5/6 of all keys use it."""
    personas = [make_persona(s) for s in range(3000)]
    share = sum(i == p.cell for p in personas for _, i in p.frames) / (len(personas) * len(KEYS))
    assert abs(share - (1 - FRAME_NOISE * (POOL_SIZE - 1) / POOL_SIZE)) < 0.02
    # and every frame of a pool is about equally likely over personas (blind = 1/pool):
    # shares within 0.03 of 1/6 (the standard error of one share is 0.007)
    for key in ("request:loc", "inform:price", "goodbye"):
        shares = [sum(p.table[key] == i for p in personas) / len(personas) for i in range(POOL_SIZE)]
        assert max(abs(s - 1 / POOL_SIZE) for s in shares) < 0.03, (key, shares)


def test_dialogues_share_acts_with_the_simulator_and_record_phrasings():
    d = SPLITS.dialogues("persona-2003", "pool")[0]
    turns = _sys_turns([d])
    assert all(list(t["phrasing"]) == [act_key(Act.from_dict(a)) for a in t["acts"]] for t in turns)
    table = make_persona(2003).table
    assert all(table[k] == i for t in turns for k, i in t["phrasing"].items())
    # the corpus format holds them (validated on write and read)
    recs = parse_lines([json.dumps(r) for r in SPLITS.dialogues("persona-2003", "test")])
    assert recs[0]["meta"]["part"] == "test" and "phrasing" in recs[0]["turns"][0]


# ------------------------------------------------------------------------------ recogniser
def test_pools_have_six_distinct_frames_none_inside_another():
    for name, pats in PATTERNS.items():
        assert len(POOLS[name]) >= 6 and len(set(pats)) == len(pats), name
        for a, b in itertools.permutations(pats, 2):
            assert a not in b, (name, a, b)


@pytest.mark.parametrize("key", KEYS)
def test_recogniser_round_trips_every_frame_of_every_pool(key):
    act, _, slot = key.partition(":")
    values = {"inform:arrive_in": "5", "inform:duration": "5", "inform:temperature": "24",
              "inform:weather_type": "sunny", "inform:open": "closed", "inform:price": "cheap",
              "inform:parking": "no parking"}
    acts = [Act(act, slot or None, values.get(key, "Boston" if slot in NOUNS else None))]
    if slot in NOUNS and act != "request":
        acts.append(Act(act, slot, None))          # don't care: "any <noun>"
    if slot == "datetime":
        acts.append(Act(act, slot, "7"))           # bus hours are said "at 7"
    for a, i, register, domain in itertools.product(acts, range(POOL_SIZE), range(len(REGISTERS)), THINGS):
        text = fill(key, i, a, register, domain)
        assert recognise(text, [a]) == {key: frozenset({i})}, (text, a)


def test_recogniser_reads_every_reference_turn():
    for name in SPLITS.names("test") + SPLITS.names("train")[:8]:
        for t in _sys_turns(SPLITS.dialogues(name, "pool")):
            assert recognise(t["text"], t["acts"]) == {k: frozenset({i}) for k, i in t["phrasing"].items()}, t


# ------------------------------------------------------------------------------ metrics
def _test_pairs(names):
    return persona_pairs([d for n in names for d in SPLITS.dialogues(n, "test")])


def test_persona_accuracy_one_on_references_near_chance_when_blind():
    names = SPLITS.names("test")
    pairs = _test_pairs(names)
    own = score_outputs([p.response for p in pairs], pairs)
    assert own["persona_acc"] == 1.0 and own["ser"] == 0.0
    # persona-blind: each turn said by a random other persona (the same acts and values)
    blind = blind_outputs([d for n in names for d in SPLITS.dialogues(n, "test")], SPLITS.names("train"))
    assert [p for _, p in blind] == pairs
    scored = score_outputs([t for t, _ in blind], pairs)
    chance = 1 / min(len(POOLS[k]) for k in POOLS)
    assert abs(scored["persona_acc"] - chance) < 0.05, scored
    assert scored["ser"] == 0.0            # the content is right, only the words differ


def test_persona_accuracy_counts_units_and_refuses_mismatched_lengths():
    acts = [[Act("request", "loc")], [Act("goodbye")]]
    tables = [{"request:loc": 1, "goodbye": 1}] * 2
    assert persona_accuracy(["Which city?", "Goodbye."], acts, tables) == 1.0
    assert persona_accuracy(["Which city?", "Bye now."], acts, tables) == 0.5
    assert persona_accuracy(["Which city? Tell me the city.", "Goodbye."], acts, tables) == 0.5  # two frames
    assert persona_accuracy([], [], []) is None
    with pytest.raises(ValueError):
        persona_accuracy(["x"], acts, tables)


def test_slot_error_rate_zero_on_references_positive_when_a_value_is_dropped():
    lex = persona_lexicon()
    turns = [t for t in _sys_turns(SPLITS.dialogues("persona-2001", "test"))
             if any(a.get("value") for a in t["acts"])]
    assert slot_error_rate([t["text"] for t in turns], [t["acts"] for t in turns], lex) == 0.0
    t = next(t for t in turns if any(a["act"] == "inform" for a in t["acts"]))
    value = next(a["value"] for a in t["acts"] if a["act"] == "inform")
    n_values = sum(a.get("value") is not None for a in t["acts"])
    dropped = t["text"].replace(value, "")
    assert slot_error_rate([dropped], [t["acts"]], lex) == pytest.approx(1 / n_values)
    acts = [Act("inform", "price", "cheap")]
    assert slot_error_rate(["It is expensive."], [acts], lex) == 2.0   # missing + wrong
    assert slot_error_rate(["Goodbye."], [[Act("goodbye")]], lex) is None


def test_oracle_ceiling_between_blind_and_one():
    prior = phrasing_prior(SPLITS.names("train"))
    for guess in ("prior", "factors"):
        scores = []
        for name in SPLITS.names("test"):
            persona = make_persona(persona_seed(name))
            test = SPLITS.dialogues(name, "test")
            curve = [oracle_accuracy(persona, persona_kshot(name, k, 0), test, prior, guess) for k in (0, 1, 3, 12)]
            assert curve == sorted(curve) and curve[-1] <= 1.0, (name, curve)  # more support, never worse
            scores.append(curve[1])
        mean = sum(scores) / len(scores)
        assert 1 / POOL_SIZE + 0.2 < mean < 1.0, (guess, mean)
    with pytest.raises(MdlibError, match="guess must be"):
        oracle_accuracy(persona, [], test, prior, "bayes")


# ------------------------------------------------------------------------------ splits and input
def test_kshot_nested_from_the_pool_never_the_test_dialogues():
    name = SPLITS.names("test")[0]
    k9 = persona_kshot(name, 9, seed=3)
    assert persona_kshot(name, 3, seed=3) == k9[:3]
    test_ids = {d["id"] for d in SPLITS.dialogues(name, "test")}
    assert all(d["meta"]["part"] == "pool" and d["id"] not in test_ids for d in k9)
    data = SPLITS.data()
    train_names = SPLITS.names("train")
    assert set(data["valid"]) == set(train_names) and set(data["test"]) == set(SPLITS.names("valid") + SPLITS.names("test"))
    check_no_leakage({n: data["train"][n] + data["valid"][n] for n in train_names},
                     {n: data["train"][n] + data["test"][n] for n in data["test"]})


@pytest.mark.parametrize("call, message", [
    (lambda: get_held_out("persona-3"), "persona-3 is a meta-training persona, not a test one"),
    (lambda: get_held_out("persona-1001"), "persona-1001 is a validation persona, not a test one"),
    (lambda: get_held_out("persona-999"), "unknown persona 'persona-999': in no split"),
    (lambda: get_held_out("movie"), "unknown persona 'movie': expected a name like 'persona-2000'"),
    (lambda: persona_kshot("persona-2000", 13, 0), "--k-shot 13: the support pool of persona-2000 has 12"),
    (lambda: persona_kshot("persona-5", 1, 0), "persona-5 is a meta-training persona"),
    (lambda: PersonaSplits(n_train=0), "PersonaSplits: n_train must be a whole number in 1..1000"),
    (lambda: SPLITS.dialogues("persona-2000", "valid"), "persona-2000 is a test persona"),
    (lambda: recognise("It has a rating of 3.", [Act("inform", "rating", "3")]),
     "persona phrasings: no pool for act inform(rating=3)"),
])
def test_bad_input_one_line_errors(call, message):
    with pytest.raises(MdlibError) as exc:
        call()
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_pairs_are_acts_with_values_never_the_persona():
    d = SPLITS.dialogues("persona-2002", "pool")[:2]
    pairs = persona_pairs(d)
    assert len(pairs) == len(_sys_turns(d))
    for p in pairs:
        src = p.source(use_acts=True)
        assert p.context == () and src[0] == "<sep>" and src[1:] == p.act_tokens()
        assert p.domain == "persona-2002" and not any("persona" in tok for tok in src)
    prof = persona_profile("smoke")
    assert {k: getattr(prof, k) for k in PAIR_SETTINGS} == PAIR_SETTINGS
    from mdlib.evaluation import pairs_of

    assert pairs_of(d, prof) == pairs


# ------------------------------------------------------------------------------ command line
def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_lists_held_out_personas(capsys):
    rc, out, err = _run(["data", "--protocol", "personas", "--list"], capsys)
    assert rc == 0 and err == ""
    listed = [line.split(":")[0].strip() for line in out.splitlines() if line.startswith("  persona-")]
    assert listed == held_out_personas()
    assert "64 meta-training personas" in out and "8 validation personas" in out


def test_cli_stats_and_out(tmp_path, capsys):
    out_file = tmp_path / "personas.jsonl"
    rc, out, err = _run(["data", "--protocol", "personas", "--stats", "--out", str(out_file)], capsys)
    assert rc == 0 and err == ""
    assert "88 distinct phrasing tables" in out and "oracle ceiling" in out
    lines = out_file.read_text().splitlines()
    assert len(lines) == 64 * 14 + 24 * 22
    assert save_corpus(parse_lines(lines[:3]), tmp_path / "again.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["--protocol", "persona"], "error: unknown protocol 'persona'; known protocols: domains, personas"),
    (["--protocol", "personas", "--update-manifest"], "error: --update-manifest is for --protocol domains"),
    (["--stats"], "error: --stats is for --protocol personas"),
])
def test_cli_bad_input(capsys, args, message):
    rc, out, err = _run(["data", *args], capsys)
    assert rc == 1 and out == "" and err.startswith(message) and err.count("\n") == 1


def test_docs_statistics_are_the_commands_output():
    """docs/personas.md quotes `python -m mdlib data --protocol personas --stats`."""
    from mdlib import paths
    from mdlib.data.personas import family_stats

    doc = (paths.ROOT / "docs" / "personas.md").read_text()
    s = family_stats()
    assert f"| share of keys whose frame follows the factors | {s['factor_share']:.3f} |" in doc
    assert f"| distinct phrasing tables | {s['distinct_tables']} |" in doc
    assert f"| {s['blind_acc']:.3f} (1/pool = {s['chance']:.3f}) |" in doc
    assert f"| {s['dialogues']['system_turns_per_dialogue']:.2f} |" in doc
    for k, row in s["oracle"].items():
        assert f"| {k} | {row['seen']:.3f} | {row['prior']:.3f} | {row['factors']:.3f} |" in doc, k
