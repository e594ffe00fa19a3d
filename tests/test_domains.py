"""A domain is one record (mdlib/data/domains/): a toy domain registered here, and touching
no other module, is generated, parsed by the keyword parser and simulated end to end."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mdlib.data.acts import Act
from mdlib.data.domains import DOMAINS, Domain, Slot, get_domain, register
from mdlib.data.generator import generate
from mdlib.errors import MdlibError
from mdlib.system.parser.rules import LexiconParser
from mdlib.system.pipeline import DialogueSystem, TemplateGenerator
from mdlib.system.simulation import run_dialogues

TOPIC = Slot("topic", ("history", "poetry", "chemistry", "cooking"), noun="topic",
             user_inform=("I want a book about {v}.", "{v}.", "Something on {v}."),
             sys_request=("What topic?", "Which subject are you reading about?"),
             name_words=("topic", "subject"), cues="topic subject about")
BRANCH = Slot("branch", ("Oakland", "Northside", "Hill District"), noun="branch",
              user_inform=("At the {v} branch.", "{v}.", "Near {v}."),
              sys_request=("Which branch?", "Where do you want to borrow it?"),
              name_words=("branch", "where"), cues="branch library where", wh="where")
FLOOR = Slot("floor", ("first floor", "second floor", "basement"), noun="floor",
             user_request=("Which floor is it on?", "Where in the building is it?"),
             user_yn=("Is it on the {v}?", "Is it in the {v}?"),
             sys_inform=("It is on the {v}.", "You find it in the {v}."),
             request_patterns=(r"\bfloor\b", r"\bbuilding\b"), cues="floor building")
TOY = Domain("toy_library", (TOPIC, BRANCH), (FLOOR,), db_size=30,
             greetings=("Welcome to the library helper.",), needs=("I need a book.",))


@pytest.fixture
def toy():
    register(TOY)
    yield get_domain("toy_library")
    DOMAINS.pop("toy_library", None)


def test_a_registered_domain_is_generated_with_its_own_words(toy):
    dialogues = generate(["toy_library"], "clean", 6, seed=0)
    assert [d["domain"] for d in dialogues] == ["toy_library"] * 6
    assert dialogues[0]["turns"][0]["text"] == "Welcome to the library helper."
    text = " ".join(t["text"] for d in dialogues for t in d["turns"])
    assert any(v in text for v in TOPIC.values) and any(v in text for v in FLOOR.values)
    assert sum(d["meta"]["success"] for d in dialogues) >= 5


def test_the_keyword_parser_reads_a_registered_domain(toy):
    parser = LexiconParser(toy)
    found = total = 0
    for d in generate(["toy_library"], "clean", 10, seed=1):
        for prev, turn in zip(d["turns"], d["turns"][1:]):
            if turn["speaker"] != "user":
                continue
            # informs are found by the record's values, requests by its request_patterns
            informs = {(a["act"], a["slot"], a.get("value")) for a in turn["acts"]
                       if (a["act"] == "inform" and a.get("value")) or a["act"] == "request"}
            parsed = parser.parse(turn["text"], [Act.from_dict(a) for a in prev["acts"]])
            got = {(a.act, a.slot, a.value) for a in parsed.acts}
            total += len(informs)
            found += len(informs & got)
    assert total > 0 and found / total > 0.9
    assert any(a["act"] == "request" for d in generate(["toy_library"], "clean", 10, seed=1)
               for t in d["turns"] for a in t["acts"] if t["speaker"] == "user")


def test_a_registered_domain_is_simulated_end_to_end(toy):
    for user in ("acts", "listener"):
        records = run_dialogues(DialogueSystem("toy_library", TemplateGenerator("toy_library", 0)), 20, 0,
                                "clean", user=user)
        assert sum(r.success for r in records) >= 15, user


def test_registering_another_domain_under_a_known_name_fails():
    with pytest.raises(MdlibError, match="registered already"):
        register(replace(TOY, name="bus"))


@pytest.mark.parametrize("broken, field", [
    (replace(TOY, usr_slots=(replace(TOPIC, user_inform=()), BRANCH)), "user_inform"),
    (replace(TOY, sys_slots=(replace(FLOOR, request_patterns=()),)), "request_patterns"),
    (replace(TOY, greetings=()), "greetings"),
])
def test_registering_an_incomplete_domain_names_what_is_missing(broken, field):
    with pytest.raises(MdlibError, match=field):
        register(replace(broken, name="toy_broken"))
    assert "toy_broken" not in DOMAINS


def test_every_domain_of_the_paper_is_complete_and_keeps_its_order():
    assert list(DOMAINS)[:6] == ["restaurant", "restaurant_style", "rest_pitt", "bus", "weather", "movie"]
    for d in list(DOMAINS.values())[:6]:
        assert register(d) is d  # re-registering the same record is a no-op and passes the checks
