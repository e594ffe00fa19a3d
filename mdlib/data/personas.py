"""The persona task family: many tasks that only their dialogues tell apart.

A **system persona** is a way the system talks, fixed by a persona seed. For every system
(act, slot) it always uses one frame of that key's pool of six (:mod:`mdlib.data.phrasings`),
and it has persona-wide traits: an opener ("Sure." / "Right." / none ...), a closer after
turns that ask the user something, short or long frames, and a lexical register (spot /
place / restaurant). Two personas share acts, domains and values; only the words differ,
and the persona is never an input of the generator, so a model can tell a persona only
from its support dialogues.

Most choices follow from four persona-wide factors, drawn uniformly from the seed:

* verbosity (short, long) and word order (fronted, plain, embedded) pick the frame
  ``3 * verbosity + order`` in every pool;
* politeness (curt, neutral, polite) picks the opener and the closer;
* lexical register (casual, neutral, formal) picks the nouns and thing words.

The documented per-key randomness: with probability :data:`FRAME_NOISE` a key's frame is
drawn uniformly from its pool instead. So a few turns reveal how the persona phrases keys
it has not shown yet (a share ``1 - FRAME_NOISE * 5/6`` of the keys follow the factors),
but not all of them; and since every factor and the noise are uniform, every frame of a
pool is equally likely over personas, so a persona-blind output scores about 1/6 in
persona accuracy.

Dialogues: the simulator's act-level dialogues (:func:`mdlib.data.generator.generate_dialogue`)
in the source domains, whose system turns the persona says again; dialogue ``d`` of persona
``p`` depends only on ``(p, d, spec)``. Splits, metrics and the oracle ceiling are in
docs/personas.md; ``python -m mdlib data --protocol personas --list`` names the held-out
personas, ``--stats`` prints the numbers quoted there.
"""

from __future__ import annotations

import copy
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from mdlib.data.acts import Act
from mdlib.data.complexity import get_complexity
from mdlib.data.domains import SOURCES, Database, get_domain
from mdlib.data.generator import DB_SEED, generate_dialogue
from mdlib.data.pairs import Pair, extract_pairs
from mdlib.data.phrasings import KEYS, N_ORDERS, POOL_SIZE, REGISTERS, VERBOSITY, WORD_ORDERS, act_key, fill
from mdlib.errors import MdlibError

#: Probability that a key's frame ignores the persona's factors (drawn uniformly instead).
FRAME_NOISE = 0.25
POLITENESS = ("curt", "neutral", "polite")
#: Openers said before every turn but the greeting, per politeness.
OPENERS: dict[str, tuple[str, ...]] = {"curt": ("", "Right."), "neutral": ("Sure.", "Okay."),
                                       "polite": ("Certainly.", "Of course.")}
#: Closers said after a turn whose last act asks the user something, per politeness.
CLOSERS: dict[str, tuple[str, ...]] = {"curt": ("",), "neutral": ("", "Thanks."),
                                       "polite": ("Thank you.", "Thanks a lot.")}
ASKING = ("request", "explicit_confirm", "request_more")
#: Seeds of meta-training personas start at 0, validation personas at 1000, test at 2000.
SEED_BASES = {"train": 0, "valid": 1000, "test": 2000}
#: Dialogue seeds of a persona: its pool (support dialogues) from 0, its validation
#: dialogues from 100000, its test dialogues from 200000, so a larger pool never changes
#: the test dialogues.
DIALOGUE_BASES = {"pool": 0, "valid": 100_000, "test": 200_000}
#: The generator's input for this family: the turn's acts with values, no context (earlier
#: system turns would show the persona's words: the persona is never an input).
PAIR_SETTINGS = {"context_turns": 0, "input": "acts"}
_NAME = re.compile(r"persona-(\d+)")


@dataclass(frozen=True, eq=True)
class Persona:
    """One system persona (build it with :func:`make_persona`).

    Attributes:
        seed: the persona seed.
        verbosity, order, politeness, register: the factors (indices into
            :data:`~mdlib.data.phrasings.VERBOSITY`, ``WORD_ORDERS``, :data:`POLITENESS`,
            ``REGISTERS``).
        opener, closer: persona-wide sentences ("" = none).
        frames: ``(key, frame index)`` for every key of :data:`~mdlib.data.phrasings.KEYS`.
    """

    seed: int
    verbosity: int
    order: int
    politeness: int
    register: int
    opener: str
    closer: str
    frames: tuple[tuple[str, int], ...]

    @property
    def name(self) -> str:
        return f"persona-{self.seed}"

    @property
    def cell(self) -> int:
        """The frame index the factors pick (``3 * verbosity + order``)."""
        return self.verbosity * N_ORDERS + self.order

    @property
    def table(self) -> dict[str, int]:
        """``{key: frame index}``: the persona's phrasing table."""
        return dict(self.frames)

    def describe(self) -> str:
        """One line: the factors and traits."""
        return (f"{self.name}: {VERBOSITY[self.verbosity]}, {WORD_ORDERS[self.order]}, "
                f"{POLITENESS[self.politeness]}, {REGISTERS[self.register]}; opener {self.opener or '-'}, "
                f"closer {self.closer or '-'}; {sum(i == self.cell for _, i in self.frames)}/{len(self.frames)} "
                f"keys follow the factors")

    def realise(self, domain: str, acts: Sequence[Act]) -> tuple[str, dict[str, int]]:
        """Say one system turn.

        Returns:
            ``(text, {key: frame index})`` for the turn's acts.
        """
        table = self.table
        used: dict[str, int] = {}
        parts = []
        for a in acts:
            key = act_key(a)
            used[key] = table[key]
            parts.append(fill(key, table[key], a, self.register, domain))
        if self.opener and acts and acts[0].act != "greet":
            parts.insert(0, self.opener)
        if self.closer and acts and acts[-1].act in ASKING:
            parts.append(self.closer)
        return " ".join(parts), used


@lru_cache(maxsize=None)
def make_persona(seed: int) -> Persona:
    """The persona of ``seed`` (deterministic: the same seed, the same persona)."""
    rng = random.Random(f"persona/{seed}")
    verbosity, order = rng.randrange(len(VERBOSITY)), rng.randrange(N_ORDERS)
    politeness, register = rng.randrange(len(POLITENESS)), rng.randrange(len(REGISTERS))
    opener = rng.choice(OPENERS[POLITENESS[politeness]])
    closer = rng.choice(CLOSERS[POLITENESS[politeness]])
    cell = verbosity * N_ORDERS + order
    frames = []
    for key in KEYS:
        # Per-key randomness: two draws per key whatever the outcome, so the frames of the
        # other keys do not depend on which keys were noisy.
        noisy, draw = rng.random() < FRAME_NOISE, rng.randrange(POOL_SIZE)
        frames.append((key, draw if noisy else cell))
    return Persona(seed, verbosity, order, politeness, register, opener, closer, tuple(frames))


def persona_seed(name: str) -> int:
    """``"persona-17" -> 17``.

    Raises:
        MdlibError: for a name not of the form ``persona-N``.
    """
    m = _NAME.fullmatch(str(name))
    if not m:
        raise MdlibError(f"unknown persona {name!r}: expected a name like 'persona-2000' "
                         f"(list them with `python -m mdlib data --protocol personas --list`)")
    return int(m.group(1))


@lru_cache(maxsize=None)
def _database(domain: str) -> Database:
    return Database(domain, DB_SEED)


def persona_dialogue(persona: Persona, dialogue_seed: int, spec: str = "mix") -> dict:
    """Dialogue ``dialogue_seed`` of ``persona`` in the corpus format.

    The source domain cycles bus, restaurant, weather with the dialogue seed; the act-level
    dialogue comes from the simulator with ``Random(f"persona/{seed}/{spec}/{dialogue_seed}")``;
    every system turn is said by the persona and records ``"phrasing": {key: frame index}``.

    Returns:
        ``{"id": "persona-17-d00003", "domain": "persona-17", "turns", "meta"}``; ``meta`` adds
        ``persona, persona_seed, source_domain, dialogue_seed`` to the simulator's fields
        (and :meth:`PersonaSplits.dialogues` adds ``part``: pool, valid or test).
    """
    domain = SOURCES[dialogue_seed % len(SOURCES)]
    rng = random.Random(f"persona/{persona.seed}/{spec}/{dialogue_seed}")
    rec = generate_dialogue(get_domain(domain), _database(domain), get_complexity(spec), rng,
                            f"{persona.name}-d{dialogue_seed:05d}")
    for turn in rec["turns"]:
        if turn["speaker"] == "system":
            turn["text"], turn["phrasing"] = persona.realise(domain, [Act.from_dict(a) for a in turn["acts"]])
    rec["domain"] = persona.name
    rec["meta"].update(persona=persona.name, persona_seed=persona.seed, source_domain=domain,
                       dialogue_seed=dialogue_seed)
    return rec


# ---------------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class PersonaSplits:
    """Disjoint persona seeds and each persona's dialogues.

    Attributes:
        n_train, n_valid, n_test: personas for meta-training, validation (step sizes, early
            stopping) and test; seeds ``SEED_BASES[role] + i`` (at most 1000 per role).
        pool: support dialogues per persona (k-shot samples and episodes come from here).
        valid_dialogues: held-out dialogues per meta-training persona (pretraining's early
            stopping).
        test_dialogues: evaluation dialogues per validation and test persona.
        spec: the simulator's complexity preset.
    """

    n_train: int = 64
    n_valid: int = 8
    n_test: int = 16
    pool: int = 12
    valid_dialogues: int = 2
    test_dialogues: int = 10
    spec: str = "mix"

    def __post_init__(self):
        for field in ("n_train", "n_valid", "n_test", "pool", "valid_dialogues", "test_dialogues"):
            value = getattr(self, field)
            if not isinstance(value, int) or not 1 <= value <= 1000:
                raise MdlibError(f"PersonaSplits: {field} must be a whole number in 1..1000, got {value!r}")
        get_complexity(self.spec)

    def seeds(self, role: str) -> range:
        """Persona seeds of ``role`` ("train", "valid" or "test")."""
        if role not in SEED_BASES:
            raise MdlibError(f"unknown persona role {role!r}; expected train, valid or test")
        n = {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}[role]
        return range(SEED_BASES[role], SEED_BASES[role] + n)

    def names(self, role: str) -> list[str]:
        """Persona names of ``role``."""
        return [make_persona(s).name for s in self.seeds(role)]

    def role_of(self, name: str) -> str:
        """``"train"``, ``"valid"`` or ``"test"``.

        Raises:
            MdlibError: for a malformed name or a persona in no split.
        """
        seed = persona_seed(name)
        for role in SEED_BASES:
            if seed in self.seeds(role):
                return role
        raise MdlibError(f"unknown persona {name!r}: in no split (meta-training "
                         f"{_span(self.seeds('train'))}, validation {_span(self.seeds('valid'))}, "
                         f"test {_span(self.seeds('test'))})")

    def dialogues(self, name: str, part: str) -> list[dict]:
        """The ``part`` ("pool", "valid" or "test") dialogues of persona ``name``."""
        role = self.role_of(name)
        n = {"pool": self.pool, "valid": self.valid_dialogues, "test": self.test_dialogues}.get(part)
        allowed = ("pool", "valid") if role == "train" else ("pool", "test")
        if part not in allowed:
            raise MdlibError(f"{name} is a {_ROLE_WORDS[role]} persona: its dialogues are "
                             f"{' and '.join(allowed)}, not {part!r}")
        return _dialogues(persona_seed(name), part, n, self.spec)

    def tasks(self, role: str = "train") -> dict[str, list[dict]]:
        """``{persona: its pool}`` for the personas of ``role``: the meta-training tasks of
        :class:`mdlib.data.splits.EpisodeSampler` (support and query drawn from the pool)."""
        return {name: self.dialogues(name, "pool") for name in self.names(role)}

    def data(self, test: bool = True) -> dict[str, dict[str, list[dict]]]:
        """The layout :mod:`mdlib.evaluation` reads (``data=``): ``{"train": {persona: pool}
        for every persona, "valid": {meta-training persona: its valid dialogues},
        "test": {validation or test persona: its test dialogues}}`` (``test=False``: an
        empty ``"test"``, no test dialogue generated)."""
        out: dict[str, dict[str, list[dict]]] = {"train": {}, "valid": {}, "test": {}}
        for role in SEED_BASES:
            for name in self.names(role):
                out["train"][name] = self.dialogues(name, "pool")
                if role == "train":
                    out["valid"][name] = self.dialogues(name, "valid")
                elif test:
                    out["test"][name] = self.dialogues(name, "test")
        return out


_ROLE_WORDS = {"train": "meta-training", "valid": "validation", "test": "test"}


def _span(seeds: range) -> str:
    return f"persona-{seeds.start}..persona-{seeds.stop - 1}"


@lru_cache(maxsize=4096)
def _dialogues_cached(seed: int, part: str, n: int, spec: str) -> tuple[dict, ...]:
    persona = make_persona(seed)
    out = tuple(persona_dialogue(persona, DIALOGUE_BASES[part] + i, spec) for i in range(n))
    for rec in out:
        rec["meta"]["part"] = part
    return out


def _dialogues(seed: int, part: str, n: int, spec: str) -> list[dict]:
    # Fresh dicts per call (callers may modify them), generated once.
    return copy.deepcopy(list(_dialogues_cached(seed, part, n, spec)))


DEFAULT_SPLITS = PersonaSplits()
#: The splits ``train --protocol personas`` uses per profile (default: :data:`DEFAULT_SPLITS`).
#: The smoke profile (tests) uses few, short personas; its held-out personas are the first
#: ones of the default list (seeds start at SEED_BASES["test"] in every split).
PROFILE_SPLITS = {"smoke": PersonaSplits(n_train=8, n_valid=2, n_test=4, pool=4, valid_dialogues=2,
                                         test_dialogues=3)}


def splits_for_profile(name: str) -> PersonaSplits:
    """The persona splits of the profile called ``name`` (:data:`PROFILE_SPLITS`)."""
    return PROFILE_SPLITS.get(name, DEFAULT_SPLITS)


def splits_from_dict(fields: Mapping) -> PersonaSplits:
    """The :class:`PersonaSplits` a run recorded (``dataclasses.asdict`` of it).

    Raises:
        MdlibError: not a dict of PersonaSplits fields.
    """
    import dataclasses

    known = {f.name for f in dataclasses.fields(PersonaSplits)}
    if not isinstance(fields, Mapping) or set(fields) != known:
        raise MdlibError(f"persona splits: expected the fields {', '.join(sorted(known))}, got {fields!r:.80}")
    return PersonaSplits(**fields)


def training_data(splits: PersonaSplits) -> dict[str, dict[str, list[dict]]]:
    """What ``train --protocol personas`` may read: :meth:`PersonaSplits.data` without its
    ``"test"`` part, so no test dialogue of any persona reaches training.

    ``"train"`` still holds the pools of the validation and test personas: like the target
    pools of the domain protocol they only add words to the vocabulary
    (:func:`mdlib.evaluation.protocol_vocab`); training reads the meta-training personas only.
    """
    return splits.data(test=False)


def held_out_personas(splits: PersonaSplits = DEFAULT_SPLITS) -> list[str]:
    """The test personas: the targets of ``adapt --protocol personas --target persona-N``."""
    return splits.names("test")


def get_held_out(name: str, splits: PersonaSplits = DEFAULT_SPLITS, roles: Iterable[str] = ("test",)) -> Persona:
    """The persona ``name``, refused unless it is held out (a test persona, or one of ``roles``).

    Raises:
        MdlibError: a malformed or unknown name, or a persona of another split.
    """
    role = splits.role_of(name)
    roles = tuple(roles)
    if role not in roles:
        wanted = " or ".join(_ROLE_WORDS[r] for r in roles)
        raise MdlibError(f"{name} is a {_ROLE_WORDS[role]} persona, not a {wanted} one; held-out "
                         f"personas: {_span(splits.seeds('test'))} "
                         f"(`python -m mdlib data --protocol personas --list`)")
    return make_persona(persona_seed(name))


def persona_kshot(name: str, k: int, seed: int, splits: PersonaSplits = DEFAULT_SPLITS,
                  roles: Iterable[str] = ("test", "valid")) -> list[dict]:
    """``k`` support dialogues of a held-out persona, drawn from its pool (never its test
    dialogues); nested over k for a seed, in the order of
    :func:`mdlib.evaluation.sample_kshot` on :meth:`PersonaSplits.data`.

    Raises:
        MdlibError: not a held-out persona, or ``k`` outside ``0..pool``.
    """
    get_held_out(name, splits, roles)
    if not isinstance(k, int) or not 0 <= k <= splits.pool:
        raise MdlibError(f"--k-shot {k}: the support pool of {name} has {splits.pool} dialogues "
                         f"(k must be in 0..{splits.pool})")
    pool = splits.dialogues(name, "pool")
    order = list(range(len(pool)))
    random.Random(f"kshot/{name}/{seed}").shuffle(order)
    return [pool[i] for i in order[:k]]


# ---------------------------------------------------------------------- generator input
def persona_pairs(dialogues: Iterable[Mapping]) -> list[Pair]:
    """Training pairs of the generator for this family: one per system turn, the input the
    turn's acts with values and no context (:data:`PAIR_SETTINGS`); ``Pair.domain`` is the
    persona's name (the task key), never part of the input."""
    return extract_pairs(dialogues, context_turns=PAIR_SETTINGS["context_turns"])


def persona_profile(profile):
    """``profile`` (a :class:`mdlib.profiles.Profile` or its name) with :data:`PAIR_SETTINGS`,
    so that :func:`mdlib.evaluation.pairs_of` and ``collate`` build the family's input."""
    from mdlib.profiles import get_profile

    return get_profile(profile).replace(**PAIR_SETTINGS)


# ------------------------------------------------------------------------------ metrics
def persona_lexicon():
    """Value lexicon of the source domains (for :func:`mdlib.metrics.slot_error_rate`)."""
    from mdlib.metrics import lexicon_from_domains

    return lexicon_from_domains(SOURCES)


def score_outputs(hypotheses: Sequence, pairs: Sequence[Pair]) -> dict:
    """Persona accuracy and slot error rate of generated responses.

    Args:
        hypotheses: one generated response (token list or string) per pair.
        pairs: the pairs they answer (``pair.domain`` names the target persona).

    Returns:
        ``{"persona_acc", "ser", "n_acts"}``.
    """
    from mdlib.metrics import persona_accuracy, slot_error_rate

    acts = [p.acts for p in pairs]
    tables = [make_persona(persona_seed(p.domain)).table for p in pairs]
    return {"persona_acc": persona_accuracy(hypotheses, acts, tables),
            "ser": slot_error_rate(hypotheses, acts, persona_lexicon()),
            "n_acts": sum(len(a) for a in acts)}


def phrasing_prior(names: Iterable[str]) -> dict[str, int]:
    """The most common frame of every key among the named (meta-training) personas."""
    counts = {k: Counter() for k in KEYS}
    for name in names:
        for key, i in make_persona(persona_seed(name)).frames:
            counts[key][i] += 1
    # ties go to the lowest index, so the prior is deterministic
    return {k: min(c, key=lambda i: (-c[i], i)) for k, c in counts.items()}


def _units(dialogues: Iterable[Mapping]) -> list[str]:
    """The act keys of every system turn, in order (one unit per act)."""
    return [key for d in dialogues for t in d["turns"] if t["speaker"] == "system" for key in t["phrasing"]]


def oracle_accuracy(persona: Persona, support: Iterable[Mapping], test: Iterable[Mapping],
                    prior: Mapping[str, int], guess: str = "prior") -> float:
    """Persona accuracy of an oracle that knows the support turns exactly.

    For a key seen in ``support`` it uses the persona's frame; for an unseen key it
    guesses: ``"prior"`` the prior's frame (e.g. :func:`phrasing_prior` of the meta-training
    personas), ``"factors"`` the frame index most used in the support (the factors' guess;
    the prior when the support is empty). This is the ceiling of a learner that reads the
    support set: no learner can know a noisy unseen key.

    Returns:
        The share of the test dialogues' (turn, act) units it phrases as the persona does.
    """
    if guess not in ("prior", "factors"):
        raise MdlibError(f"oracle_accuracy: guess must be 'prior' or 'factors', got {guess!r}")
    table = persona.table
    seen = set(_units(support))
    counts = Counter(table[k] for k in seen)
    cell = min(counts, key=lambda i: (-counts[i], i)) if counts else None
    units = _units(test)
    if not units:
        raise MdlibError(f"oracle_accuracy: the test dialogues of {persona.name} have no system acts")

    def predict(key: str) -> int:
        if key in seen:
            return table[key]
        return cell if guess == "factors" and cell is not None else prior[key]

    return sum(predict(k) == table[k] for k in units) / len(units)


def blind_outputs(dialogues: Sequence[Mapping], others: Sequence[str], seed: int = 0) -> list[tuple[str, Pair]]:
    """A persona-blind output: every system turn said again by another persona drawn from
    ``others`` (a different one per turn). Returns ``(text, pair)`` per pair of the dialogues."""
    rng = random.Random(f"blind/{seed}")
    domain_of = {d["id"]: d["meta"]["source_domain"] for d in dialogues}
    out = []
    for p in persona_pairs(dialogues):
        other = make_persona(persona_seed(rng.choice([o for o in others if o != p.domain])))
        domain = domain_of[p.dialogue_id]
        out.append((other.realise(domain, list(p.acts))[0], p))
    return out


def family_stats(splits: PersonaSplits = DEFAULT_SPLITS, ks: Sequence[int] = (1, 3, 9),
                 seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """The numbers ``python -m mdlib data --protocol personas --stats`` prints.

    Returns:
        ``{"personas": {role: n}, "keys", "pool_size", "frame_noise", "dialogues": {...},
        "factor_share", "blind_acc", "chance", "oracle": {k: {"prior", "factors", "seen"}}}``
        with means over the test personas (and ``seeds`` k-shot draws).
    """
    test_names = splits.names("test")
    prior = phrasing_prior(splits.names("train"))
    all_names = [n for r in SEED_BASES for n in splits.names(r)]
    test = {n: splits.dialogues(n, "test") for n in test_names}
    pools = [splits.dialogues(n, "pool") for n in test_names]
    sys_turns = [sum(t["speaker"] == "system" for t in d["turns"]) for p in pools for d in p]
    blind = blind_outputs([d for n in test_names for d in test[n]], splits.names("train"))
    scored = score_outputs([t for t, _ in blind], [p for _, p in blind])
    oracle = {}
    for k in ks:
        rows = {"prior": [], "factors": [], "seen": []}
        for n in test_names:
            persona = make_persona(persona_seed(n))
            units = _units(test[n])
            for s in seeds:
                sup = persona_kshot(n, k, s, splits)
                for g in ("prior", "factors"):
                    rows[g].append(oracle_accuracy(persona, sup, test[n], prior, g))
                seen = set(_units(sup))
                rows["seen"].append(sum(u in seen for u in units) / len(units))
        oracle[k] = {g: sum(v) / len(v) for g, v in rows.items()}
    return {
        "personas": {r: len(splits.seeds(r)) for r in SEED_BASES},
        "keys": len(KEYS), "pool_size": POOL_SIZE, "frame_noise": FRAME_NOISE,
        "dialogues": {"pool": splits.pool, "valid": splits.valid_dialogues, "test": splits.test_dialogues,
                      "system_turns_per_dialogue": sum(sys_turns) / len(sys_turns)},
        "factor_share": sum(i == make_persona(persona_seed(n)).cell for n in all_names
                            for _, i in make_persona(persona_seed(n)).frames) / (len(all_names) * len(KEYS)),
        "distinct_tables": len({make_persona(persona_seed(n)).frames for n in all_names}),
        "blind_acc": scored["persona_acc"], "chance": 1 / POOL_SIZE,
        "oracle": oracle,
    }
