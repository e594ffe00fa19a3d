"""``python -m mdlib simulate``: the end-to-end system against the user who listens.

Example::

    python -m mdlib simulate --domain movie --dialogues 100 --seed 0 --out sim.json
    python -m mdlib simulate --domain movie --dialogues 100 --seed 0 --garble 0.3 --out sim_g03.json

Runs text dialogues of parser + manager + generator against the simulated user of
:mod:`mdlib.system.listener` (``--user acts`` for the act-level user) and writes success
rate, turns, return, BLEU and slot error of the system's turns, each with a 95%
percentile-bootstrap interval over the dialogues (:func:`mdlib.system.simulation.summarise`).
``docs/simulation.md`` explains the user and the metrics. Bad input is one ``error:``
line and exit status 1.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mdlib.commands._common import number
from mdlib.errors import MdlibError


def cmd_simulate(args) -> int:
    from mdlib.data.complexity import get_complexity
    from mdlib.data.domains import get_domain
    from mdlib.report import save_json
    from mdlib.seeding import seed_everything
    from mdlib.system.pipeline import DialogueSystem, TemplateGenerator
    from mdlib.system.simulation import USERS, GarbledGenerator, run_dialogues, scores, summarise

    # every argument is checked before anything is loaded or run
    domain = get_domain(args.domain).name
    n = number("dialogues", args.dialogues, int, 1)
    seed = number("seed", args.seed, int, 0)
    garble = number("garble", args.garble, float, 0.0, 1.0)
    transcripts = number("transcripts", args.transcripts, int, 0)
    complexity = get_complexity(args.complexity)
    if args.user not in USERS:
        raise MdlibError(f"--user: expected one of {', '.join(USERS)}, got {args.user!r}")
    out = Path(args.out)
    if out.is_dir() or out.suffix != ".json":
        raise MdlibError(f"--out {args.out}: expected a .json file name")
    policy = parser = None
    if args.policy:
        from mdlib.dm.learned import load_policy

        policy = load_policy(args.policy)
    if args.parser:
        from mdlib.system.parser import load_parser

        parser = load_parser(args.parser, domain)
    if args.checkpoint:
        from mdlib.system.parts import load_generator

        generator = load_generator(args.checkpoint, domain)
    else:
        generator = TemplateGenerator(domain, seed)
    if garble > 0:
        generator = GarbledGenerator(generator, garble, domain, seed)
    seed_everything(seed, threads=1)
    system = DialogueSystem(domain, generator, parser=parser, policy=policy)
    start = time.time()
    records = run_dialogues(system, n, seed, complexity, user=args.user, progress=not args.no_progress)
    result = {
        "domain": domain, "dialogues": n, "seed": seed, "complexity": complexity.name, "garble": garble,
        "user": args.user,
        "parts": {"generator": args.checkpoint or "templates", "policy": args.policy or "threshold",
                  "parser": args.parser or "keyword"},
        "intervals": "95% percentile bootstrap over dialogues",
        "metrics": summarise(records, domain, seed=seed),
        "scores": {k: v for k, v in scores(records, domain).items()},
        "transcripts": ["\n".join(r.transcript) for r in records[:transcripts]],
        "seconds": round(time.time() - start, 1),
    }
    save_json(result, out)
    m = result["metrics"]
    cells = ", ".join(f"{k} {m[k]['mean']:.3f} [{m[k]['low']:.3f}, {m[k]['high']:.3f}]"
                      for k in ("success", "turns", "return", "bleu", "slot_error"))
    print(f"{domain} ({args.user} user, garble {garble:g}, {n} dialogues): {cells}")
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    """Add the ``simulate`` sub-command."""
    p = subparsers.add_parser(
        "simulate", help="run the end-to-end system against a simulated user who reads its words",
        description="Text dialogues of parser + dialogue manager + generator against the simulated user "
        "who listens (it understands the system's text, asks to repeat what it does not understand and "
        "rejects wrong values). Writes success rate, turns, return, BLEU and slot error of the system's "
        "turns with 95%% percentile-bootstrap intervals over the dialogues.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--domain", default="movie", help="the domain")
    p.add_argument("--dialogues", default="100", help="simulated dialogues (>= 1)")
    p.add_argument("--seed", default="0", help="seed of the users' goals and phrasings (same seed, same users)")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--checkpoint", default=None, metavar="RUN",
                   help="generator: a run folder or checkpoint of `python -m mdlib train` (default: templates)")
    p.add_argument("--policy", default=None, metavar="FILE",
                   help="manager: a policy file R.policy.pt of `python -m mdlib policy --out R.json` "
                   "(default: the threshold policy)")
    p.add_argument("--parser", default=None, metavar="RUN",
                   help="parser: a file or folder of mdlib.system.parser.save_parser (default: keyword parser)")
    p.add_argument("--garble", default="0", help="probability that each generated word is replaced by a "
                   "random word of the domain (a control: the listening user should fail more)")
    p.add_argument("--complexity", default="mix", help="user behaviour: a complexity preset (clean, mix, ...)")
    p.add_argument("--user", default="listener", help="listener (reads the text) or acts (reads the acts)")
    p.add_argument("--transcripts", default="3", help="dialogues written to the JSON as text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)
