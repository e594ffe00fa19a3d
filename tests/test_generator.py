"""The generator, the simulator parts and the domains (mdlib.data.{domains,simulator,generator})."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdlib.data.acts import SYSTEM_ACTS, USER_ACTS, Act
from mdlib.data.complexity import PRESETS, Complexity, get_complexity
from mdlib.data.corpus import dumps, validate_record
from mdlib.data.domains import DOMAINS, SOURCES, TARGETS, Database, get_domain
from mdlib.data.generator import generate
from mdlib.data.simulator import AsrChannel, BeliefTracker, ThresholdPolicy, UserSimulator
from mdlib.data.templates import realise
from mdlib.errors import MdlibError

CLEAN, MIX = PRESETS["clean"], PRESETS["mix"]


def _jsonl(records):
    return "".join(dumps(r) + "\n" for r in records)


def _user_texts(records):
    return [t["text"] for r in records for t in r["turns"] if t["speaker"] == "user"]


def _user_acts(records):
    return [[Act.from_dict(a) for a in t["acts"]] for r in records for t in r["turns"] if t["speaker"] == "user"]


# ------------------------------------------------------------------ domains
def test_domains_match_design():
    sizes = {n: d.db_size for n, d in DOMAINS.items()}
    assert sizes == {"restaurant": 100, "restaurant_style": 100, "rest_pitt": 150, "bus": 150,
                     "weather": 40, "movie": 200}
    assert set(SOURCES) | set(TARGETS) == set(DOMAINS) and not set(SOURCES) & set(TARGETS)
    counts = {n: [len(s.values) for s in d.usr_slots + d.sys_slots] for n, d in DOMAINS.items()}
    assert counts["restaurant"] == [10, 12, 2, 3, 3]
    assert counts["rest_pitt"] == [12, 10, 4, 3, 3]
    assert counts["bus"] == [12, 12, 29, 6, 12]
    assert counts["weather"] == [10, 6, 10, 6]
    assert counts["movie"] == [14, 6, 9, 5, 5, 26]
    # rest_pitt: new values for the same slots
    r, p = DOMAINS["restaurant"], DOMAINS["rest_pitt"]
    assert r.usr_slot_names == p.usr_slot_names
    assert not set(r.slot("loc").values) & set(p.slot("loc").values)


def test_unknown_domain_names_the_known_ones():
    with pytest.raises(MdlibError, match="known domains: restaurant"):
        get_domain("moovie")


def test_database_is_deterministic_and_complete():
    for d in DOMAINS.values():
        db = Database(d)
        assert len(db.rows) == d.db_size
        assert db.rows == Database(d.name).rows
        assert all(set(r) == set(d.slot_names) for r in db.rows)
    assert Database("movie", 0).rows != Database("movie", 1).rows


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(DOMAINS)), st.data())
def test_query_returns_exactly_the_matching_rows(name, data):
    d = DOMAINS[name]
    db = Database(d)
    cons = {s.name: data.draw(st.one_of(st.none(), st.sampled_from(s.values))) for s in d.usr_slots}
    got = db.query(cons)
    want = [r for r in db.rows if all(v is None or r[k] == v for k, v in cons.items())]
    assert got == want


def test_value_index_zero_is_a_real_value_not_dont_care():
    for d in DOMAINS.values():
        db = Database(d)
        s = d.usr_slots[0]
        rows = db.query({s.name: s.values[0]})
        assert rows and all(r[s.name] == s.values[0] for r in rows)
        assert len(rows) < len(db.rows)
    # goals of the clean spec never leave a slot unconstrained, and do use index-0 values
    recs = generate(["restaurant"], "clean", 300, 0)
    goals = [g for r in recs for g in r["meta"]["goals"]]
    assert all(v is not None for g in goals for v in g["constraints"].values())
    assert any(g["constraints"]["loc"] == "Pittsburgh" for g in goals)


# ------------------------------------------------------------------ determinism
def test_same_seed_same_bytes_other_seed_differs():
    a = _jsonl(generate(["movie", "bus"], "mix", 40, seed=3))
    b = _jsonl(generate(["movie", "bus"], "mix", 40, seed=3))
    c = _jsonl(generate(["movie", "bus"], "mix", 40, seed=4))
    assert a == b and a != c


def test_generation_ignores_global_random_state_and_hash_seed():
    random.seed(123)
    a = _jsonl(generate("weather", "mix", 20, 0))
    random.seed(999)
    b = _jsonl(generate("weather", "mix", 20, 0))
    assert a == b
    code = ("import sys; from mdlib.data.generator import generate; from mdlib.data.corpus import dumps;"
            "sys.stdout.write(''.join(dumps(r) + '\\n' for r in generate('weather', 'mix', 20, 0)))")
    env = dict(os.environ, PYTHONHASHSEED="7")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout == a


def test_longer_run_extends_shorter_one():
    short = generate("bus", "mix", 5, 1)
    long = generate("bus", "mix", 12, 1)
    assert long[:5] == short


def test_generate_rejects_bad_arguments():
    with pytest.raises(MdlibError, match="unknown domain"):
        generate(["bus", "nope"], "mix", 2, 0)
    with pytest.raises(MdlibError, match="n must be"):
        generate("bus", "mix", 0, 0)
    with pytest.raises(MdlibError, match="unknown complexity spec"):
        generate("bus", "noisy", 2, 0)


# ------------------------------------------------------------------ records and kb
@pytest.fixture(scope="module")
def mix_corpus():
    return generate(sorted(DOMAINS), "mix", 250, seed=0)


def test_records_are_valid_and_well_formed(mix_corpus):
    for r in mix_corpus:
        assert validate_record(r) == []
        assert r["turns"][0]["speaker"] == "system"
        speakers = [t["speaker"] for t in r["turns"]]
        assert all(a != b for a, b in zip(speakers, speakers[1:])), "speakers alternate"
        for t in r["turns"]:
            names = USER_ACTS if t["speaker"] == "user" else SYSTEM_ACTS
            assert all(a["act"] in names for a in t["acts"])
            assert ("state" in t) == (t["speaker"] == "system")
        assert r["meta"]["hit_turn_cap"] is False


def test_every_kb_result_satisfies_its_constraints(mix_corpus):
    n_queries = 0
    for r in mix_corpus:
        db = Database(r["domain"])
        for t in r["turns"]:
            acts = [a["act"] for a in t["acts"]]
            assert ("kb" in t) == ("query" in acts), "every system turn after a query records kb"
            if "kb" not in t:
                continue
            n_queries += 1
            kb = t["kb"]
            cons = kb["constraints"]
            assert set(cons) == set(get_domain(r["domain"]).usr_slot_names)
            assert kb["count"] == len(db.query(cons)) >= len(kb["results"])
            for row in kb["results"]:
                assert all(v is None or row[k] == v for k, v in cons.items())
            informs = [a for a in t["acts"] if a["act"] == "inform"]
            if kb["results"]:
                assert all(kb["results"][0][a["slot"]] == a["value"] for a in informs)
            else:
                assert "no_result" in acts and not informs
    assert n_queries > len(mix_corpus)


def test_threshold_policy_succeeds_on_clean_spec():
    for name in DOMAINS:
        recs = generate(name, "clean", 150, 0)
        rate = sum(r["meta"]["success"] for r in recs) / len(recs)
        assert rate >= 0.99, (name, rate)


def test_mix_spec_is_harder_than_clean(mix_corpus):
    clean = generate(sorted(DOMAINS), "clean", 250, 0)
    def mean_len(rs):
        return sum(len(r["turns"]) for r in rs) / len(rs)
    assert mean_len(mix_corpus) > mean_len(clean) + 3
    assert sum(r["meta"]["success"] for r in mix_corpus) < len(mix_corpus)


# ------------------------------------------------------------------ knobs
def _gen(domain="restaurant", n=150, **knobs):
    return generate(domain, CLEAN.replace(**knobs), n, 0)


def test_knob_asr_noise():
    clean = generate("restaurant", "clean", 100, 0)
    noisy = _gen(asr_acc=0.7, asr_std=0.15, n=100)
    confs = [t["asr_conf"] for r in clean for t in r["turns"] if t["speaker"] == "user"]
    assert set(confs) == {1.0}
    assert not any("asr_acts" in t for r in clean for t in r["turns"])
    assert sum(r["meta"]["asr_errors"] for r in noisy) > 20
    assert any("asr_acts" in t for r in noisy for t in r["turns"])


def test_knob_yn_question():
    off = _user_acts(_gen())
    on = _user_acts(_gen(yn_question=1.0))
    assert not any(a.act == "yn_question" for t in off for a in t)
    assert not any(a.act == "request" and a.slot in DOMAINS["restaurant"].sys_slot_names for t in on for a in t)
    assert any(a.act == "yn_question" for t in on for a in t)


def test_knob_reject_style():
    def replies_to_wrong_confirms(recs):
        out = []
        for r in recs:
            goal = r["meta"]["goals"][0]["constraints"]
            for sys_t, usr_t in zip(r["turns"], r["turns"][1:]):
                if usr_t["speaker"] != "user" or len(r["meta"]["goals"]) > 1:
                    continue
                for a in sys_t["acts"]:
                    if a["act"] == "explicit_confirm" and a.get("value") != goal[a["slot"]]:
                        out.append((a["slot"], [Act.from_dict(x) for x in usr_t["acts"]]))
        return out
    noisy = dict(asr_acc=0.6, asr_std=0.2, n=200)
    plain = replies_to_wrong_confirms(_gen(reject_style=(("reject", 1.0),), **noisy))
    plus = replies_to_wrong_confirms(_gen(reject_style=(("reject+inform", 1.0),), **noisy))
    assert len(plain) > 5 and len(plus) > 5
    assert all(acts == [Act("disconfirm")] for _, acts in plain)
    assert all(acts[0] == Act("disconfirm") and acts[1].act == "inform" and acts[1].slot == slot
               for slot, acts in plus)


def test_knob_multi_slot():
    def max_informs(recs):
        return max(sum(a.act == "inform" for a in t) for t in _user_acts(recs))
    assert max_informs(_gen(domain="movie")) == 1
    assert max_informs(_gen(domain="movie", multi_slot=((2, 1.0),))) == 2


def test_knob_dont_care():
    off = _user_acts(_gen())
    on = _user_acts(_gen(dont_care=0.5))
    assert not any(a.dont_care for t in off for a in t)
    assert any(a.dont_care for t in on for a in t)
    texts = " ".join(_user_texts(_gen(dont_care=0.5)))
    assert "don't care" in texts or "is fine" in texts or "doesn't matter" in texts


def test_knob_multi_goal():
    one = _gen()
    two = _gen(multi_goal=((2, 1.0),))
    assert all(len(r["meta"]["goals"]) == 1 for r in one)
    assert all(len(r["meta"]["goals"]) == 2 for r in two)
    assert not any(a.act == "new_search" for t in _user_acts(one) for a in t)
    assert sum(a.act == "new_search" for t in _user_acts(two) for a in t) == len(two)


@pytest.mark.parametrize("knob, marker", [
    ("hesitation", lambda text: text.split(",")[0] in ("hmm", "uhm")),
    ("self_restart", lambda text: " - " in text),
    ("self_correct", lambda text: "oh sorry" in text),
])
def test_disfluency_knobs_appear_only_when_on(knob, marker):
    off = _user_texts(_gen())
    on = _user_texts(_gen(**{knob: 0.5}))
    assert not any(marker(t) for t in off)
    assert sum(marker(t) for t in on) > 20


def test_knob_patience_and_turn_cap():
    impatient = _gen(asr_acc=0.6, asr_std=0.2, patience=3)
    assert any(r["meta"]["gave_up"] for r in impatient)
    assert all(sum(t["speaker"] == "user" for t in r["turns"]) <= 4 for r in impatient)
    capped = _gen(max_turns=6)
    assert all(len(r["turns"]) <= 6 for r in capped)
    assert all(r["meta"]["hit_turn_cap"] and not r["meta"]["success"] for r in capped)


def test_complexity_presets_and_validation():
    assert get_complexity("mix").asr_acc == 0.7 and dict(MIX.multi_goal) == {1: 0.6, 2: 0.4}
    assert dict(MIX.multi_slot) == {1: 0.7, 2: 0.3} and MIX.dont_care == 0.1
    assert (MIX.hesitation, MIX.self_restart, MIX.self_correct, MIX.yn_question) == (0.4, 0.1, 0.2, 0.4)
    assert CLEAN.asr_acc == 1.0 and CLEAN.hesitation == 0 and CLEAN.dont_care == 0
    with pytest.raises(MdlibError, match="yn_question"):
        Complexity(yn_question=1.5)
    with pytest.raises(MdlibError, match="multi_goal"):
        Complexity(multi_goal=((1, 0.5),))
    with pytest.raises(MdlibError, match="unknown complexity"):
        get_complexity("hard")


# ------------------------------------------------------------------ parts
def test_threshold_policy_thresholds():
    d = DOMAINS["weather"]
    pol, belief = ThresholdPolicy(d, Database(d)), BeliefTracker(d)
    assert pol.reset() == [Act("greet")]
    for conf, act in [(0.0, "request"), (0.1, "request"), (0.5, "explicit_confirm"), (0.8, "implicit_confirm")]:
        belief.slots["loc"] = {"value": "Boston", "conf": conf}
        assert pol.act(belief, [])[0].act == act, conf
    row = Database(d).rows[0]
    belief.slots = {s: {"value": row[s], "conf": 1.0} for s in d.usr_slot_names}
    out = pol.act(belief, [Act("request", "temperature")])
    assert [a.act for a in out] == ["query", "inform", "request_more"]
    assert pol.last_query["results"][0]["temperature"] == out[1].value
    assert pol.act(belief, [Act("goodbye")]) == [Act("goodbye")]


def test_belief_tracker_updates():
    d = DOMAINS["restaurant"]
    b = BeliefTracker(d)
    b.update([Act("inform", "loc", "Boston")], 0.7, [])
    assert b.slots["loc"] == {"value": "Boston", "conf": 0.7}
    b.update([Act("inform", "loc", "Boston")], 0.5, [])
    assert b.slots["loc"]["conf"] == pytest.approx(0.85)
    b.update([Act("disconfirm")], 0.9, [Act("explicit_confirm", "loc", "Boston")])
    assert b.slots["loc"] == {"value": None, "conf": 0.0}
    b.update([Act("inform", "food_pref", "Thai")], 0.8, [])
    b.update([], 0.8, [Act("implicit_confirm", "food_pref", "Thai")])
    assert b.slots["food_pref"]["conf"] >= 0.95
    b.update([Act("new_search")], 1.0, [])
    assert all(v == {"value": None, "conf": 0.0} for v in b.slots.values())


def test_asr_channel_clean_is_identity_and_noisy_corrupts():
    d = DOMAINS["bus"]
    acts = [Act("inform", "from_loc", "CMU"), Act("confirm")]
    rng = random.Random(0)
    assert AsrChannel(CLEAN, d)(acts, rng) == (acts, 1.0)
    noisy = AsrChannel(CLEAN.replace(asr_acc=0.3, asr_std=0.0), d)
    outs = [noisy(acts, rng)[0] for _ in range(300)]
    assert any(o != acts for o in outs)
    assert any(len(o) == 1 for o in outs), "some informs are dropped"
    assert any(o and o[0].act == "inform" and o[0].value != "CMU" for o in outs), "some are swapped"


def test_user_judges_answers_against_its_goal():
    d = DOMAINS["weather"]
    db = Database(d)
    for wrong in (False, True):
        user = UserSimulator(d, db, CLEAN, random.Random(5))
        user.reset()
        goal = user.goals[0]
        acts = [Act("request_more")]
        for _ in range(10):
            reply = user.step(acts)
            if user.done:
                break
            req = [a.slot for a in reply if a.act in ("request", "yn_question")]
            infs = [a for a in reply if a.act == "inform"]
            if req:
                truth = db.query(goal["constraints"])[0][req[0]]
                value = next(v for v in d.slot(req[0]).values if v != truth) if wrong else truth
                acts = [Act("query"), Act("inform", req[0], value), Act("request_more")]
            else:
                acts = [Act("request_more")] if infs or not req else acts
        assert user.done
        # a wrong value can still be right if another matching row has it; weather rows rarely collide
        assert user.success is (not wrong) or len(db.query(goal["constraints"])) > 1


def test_realise_styles_and_values():
    rng = random.Random(0)
    acts = [Act("greet")]
    default = {realise("restaurant", "system", acts, rng) for _ in range(30)}
    style = {realise("restaurant_style", "system", acts, rng) for _ in range(30)}
    assert default and style and not default & style
    req_default = {realise("restaurant", "system", [Act("request", "loc")], rng) for _ in range(30)}
    req_style = {realise("restaurant_style", "system", [Act("request", "loc")], rng) for _ in range(30)}
    assert not req_default & req_style and len(req_default) >= 2
    text = realise("rest_pitt", "user", [Act("inform", "loc", "Squirrel Hill")], rng)
    assert "Squirrel Hill" in text
    phrasings = {realise("bus", "user", [Act("inform", "to_loc", "CMU")], rng) for _ in range(40)}
    assert len(phrasings) >= 3
