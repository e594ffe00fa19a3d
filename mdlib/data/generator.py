"""The multi-domain corpus generator: simulated user vs. threshold policy, realised as text.

``generate(["bus"], "mix", 1500, seed=0)`` returns dialogues in the corpus format of
docs/data.md. Dialogue ``i`` of a domain depends only on ``(domain, spec, seed, i)``, so
the same seed gives byte-identical files and a longer run extends a shorter one.
Introduced in notebook 01.
"""

from __future__ import annotations

import random
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from mdlib.data.acts import Act
from mdlib.data.complexity import Complexity, get_complexity
from mdlib.data.domains import Database, Domain, get_domain
from mdlib.data.simulator import AsrChannel, UserSimulator
from mdlib.data.belief import BeliefTracker
from mdlib.data.threshold import ThresholdPolicy
from mdlib.data.templates import realise
from mdlib.errors import MdlibError

#: Seed of the database of every generated corpus (the world is fixed; dialogues vary).
DB_SEED = 0


def _dicts(acts: list[Act]) -> list[dict]:
    return [a.to_dict() for a in acts]


def generate_dialogue(domain: Domain, db: Database, complexity: Complexity, rng: random.Random,
                      dialogue_id: str) -> dict:
    """Simulate and realise one dialogue (see :func:`generate`)."""
    user = UserSimulator(domain, db, complexity, rng)
    asr = AsrChannel(complexity, domain)
    belief = BeliefTracker(domain)
    policy = ThresholdPolicy(domain, db)

    sys_acts = policy.reset()
    turns = [{"speaker": "system", "text": realise(domain, "system", sys_acts, rng),
              "acts": _dicts(sys_acts), "state": belief.snapshot()}]
    user_acts = user.reset()
    asr_errors = 0
    hit_cap = False
    while True:
        observed, conf = asr(user_acts, rng)
        turn = {"speaker": "user", "text": realise(domain, "user", user_acts, rng, complexity),
                "acts": _dicts(user_acts), "asr_conf": conf}
        if observed != user_acts:
            turn["asr_acts"] = _dicts(observed)
            asr_errors += 1
        turns.append(turn)
        belief.update(observed, conf, sys_acts)
        sys_acts = policy.act(belief, observed)
        turn = {"speaker": "system", "text": realise(domain, "system", sys_acts, rng),
                "acts": _dicts(sys_acts), "state": belief.snapshot()}
        if policy.last_query is not None:
            q = policy.last_query
            turn["kb"] = {"constraints": dict(q["constraints"]), "results": q["results"], "count": q["count"]}
        turns.append(turn)
        if sys_acts and sys_acts[-1].act == "goodbye":
            user.step(sys_acts)
            break
        if len(turns) + 2 > complexity.max_turns:  # no room for another exchange
            hit_cap = True
            break
        user_acts = user.step(sys_acts)
    if hit_cap and not user.done:
        user.success = False
    return {
        "id": dialogue_id,
        "domain": domain.name,
        "turns": turns,
        "meta": {
            "spec": complexity.name,
            "goals": user.goals,
            "success": bool(user.success and not hit_cap),
            "gave_up": user.gave_up,
            "hit_turn_cap": hit_cap,
            "asr_errors": asr_errors,
        },
    }


def iter_dialogues(domains: str | Iterable[str], spec: str | Complexity = "mix", n: int = 100,
                   seed: int = 0) -> Iterator[dict]:
    """Yield the dialogues of :func:`generate` one at a time (constant memory).

    Arguments are checked before the first dialogue is made, so a bad one raises at the
    call, not at the first ``next()``.

    Raises:
        MdlibError: unknown domain or spec, or ``n < 1``.
    """
    names = [domains] if isinstance(domains, str) else list(domains)
    if not names:
        raise MdlibError("generate: give at least one domain")
    doms = [get_domain(d) for d in names]
    complexity = get_complexity(spec)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MdlibError(f"generate: n must be a whole number >= 1, got {n!r}")

    def dialogues() -> Iterator[dict]:
        for dom in doms:
            db = Database(dom, DB_SEED)
            for i in range(n):
                rng = random.Random(f"{dom.name}/{complexity.name}/{seed}/{i}")
                rec = generate_dialogue(dom, db, complexity, rng, f"{dom.name}-{complexity.name}-{seed}-{i:05d}")
                rec["meta"]["seed"] = seed
                rec["meta"]["index"] = i
                yield rec

    return dialogues()


def generate(domains: str | Iterable[str], spec: str | Complexity = "mix", n: int = 100,
             seed: int = 0, progress: bool = False) -> list[dict]:
    """Generate ``n`` dialogues per domain.

    Args:
        domains: a domain name or several (each gets ``n`` dialogues, in the order given).
        spec: a complexity preset name ("clean", "mix") or a :class:`Complexity`.
        n: dialogues per domain (>= 1).
        seed: the corpus seed; dialogue ``i`` of domain ``d`` uses ``Random(f"{d}/{spec}/{seed}/{i}")``.
        progress: show a tqdm bar.

    Returns:
        Dialogue records (``docs/data.md``): ``{"id", "domain", "turns", "meta"}``; ``meta`` has
        ``spec, seed, index, goals, success, gave_up, hit_turn_cap, asr_errors``. System
        turns that queried the database carry ``kb = {"constraints", "results", "count"}``.
        For large corpora, :func:`iter_dialogues` yields them one at a time instead.

    Raises:
        MdlibError: unknown domain or spec, or ``n < 1``.
    """
    names = [domains] if isinstance(domains, str) else list(domains)
    return list(tqdm(iter_dialogues(names, spec, n, seed), total=n * len(names), disable=not progress,
                     desc="generate"))
