"""``python -m mdlib policy``: train / meta-train a dialogue policy and adapt it to a target.

Example::

    python -m mdlib policy --method maml --target movie --users noisy --episodes 200 --seed 0 --out maml.json

Writes success rate, average turns and average return (each with a 95% interval over
the evaluation dialogues) after 0, 10, 50, 200 ... adaptation dialogues (up to
``--episodes``). A learned method also writes the policy adapted with the most dialogues
next to the JSON (``maml.json`` -> ``maml.policy.pt``, :mod:`mdlib.dm.learned`), for
``python -m mdlib chat --policy maml.policy.pt``. Every argument is checked here, so bad input gives one ``error:`` line
and exit status 1.
"""

from __future__ import annotations

import argparse
import time

from mdlib.commands._common import output_file, number
from mdlib.errors import MdlibError

BUDGETS = (0, 10, 50, 200, 500, 1000)


def cmd_policy(args) -> int:
    from mdlib.data.domains import get_domain
    from mdlib.dm.learned import policy_path, save_policy
    from mdlib.dm.metarl import METHODS, PolicyConfig, run_method
    from mdlib.dm.population import get_population
    from mdlib.report import save_json
    from mdlib.seeding import seed_everything

    if args.method not in METHODS:
        raise MdlibError(f"--method: expected one of {', '.join(METHODS)}, got {args.method!r}")
    get_domain(args.target)
    get_population(args.users)
    episodes = number("episodes", args.episodes, int, 1)
    seed = number("seed", args.seed, int, 0)
    eval_episodes = number("eval-episodes", args.eval_episodes, int, 1)
    iterations = number("iterations", args.iterations, int, 1)
    out = output_file(args.out, suffix=".json")
    budgets = [b for b in BUDGETS if b < episodes] + [episodes]
    seed_everything(seed, threads=1)  # tiny networks: one thread is fastest (and matches notebook 06)
    config = PolicyConfig(iterations=iterations, eval_episodes=eval_episodes)
    start = time.time()
    result = run_method(args.method, args.target, args.users, budgets, seed, config, progress=args.progress,
                        keep_params=args.method != "rule")
    params = result.pop("params", None)
    result["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()}
    result["seconds"] = round(time.time() - start, 1)
    save_json(result, out)
    if params is not None:
        save_policy(policy_path(out), params, {"hidden": config.hidden, "domain": args.target, "users": args.users,
                                               "method": args.method, "seed": seed, "episodes": episodes})
    for p in result["curve"]:
        print(f"{args.method} {args.target}/{args.users} after {p['episodes']:4d} dialogues: "
              f"success {p['success']:.2f} [{p['success_ci'][0]:.2f}, {p['success_ci'][1]:.2f}], "
              f"turns {p['turns']:.1f}, return {p['return']:.2f}")
    print(f"wrote {out}" + (f" and {policy_path(out)}" if params is not None else ""))
    return 0


def register(subparsers) -> None:
    """Add the ``policy`` sub-command."""
    p = subparsers.add_parser(
        "policy", help="train or meta-train a dialogue policy and adapt it to a target domain and users",
        description="Compare dialogue policies against simulated users (notebook 06): the rule-based "
        "threshold policy, REINFORCE from scratch, multi-domain pretraining then fine-tuning, and "
        "meta-RL (first-order MAML or Reptile over policy-gradient inner loops) trained on the source "
        "domains (bus, restaurant, weather) and user populations (clean, mix, impatient, mumbling). "
        "Writes success rate, turns and return with 95% intervals after 0, 10, 50, 200, ... "
        "adaptation dialogues.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--method", default="maml", help="rule, scratch, pretrain, maml or reptile")
    p.add_argument("--target", default="movie", help="target domain")
    p.add_argument("--users", default="noisy", help="target user population: clean, mix, impatient, mumbling, noisy")
    p.add_argument("--episodes", default="200", help="largest number of adaptation dialogues (>= 1)")
    p.add_argument("--seed", default="0", help="seed of training, adaptation and sampling")
    p.add_argument("--eval-episodes", default="100", help="evaluation dialogues per point of the curve")
    p.add_argument("--iterations", default="40", help="(meta-)training iterations on the source tasks")
    p.add_argument("--out", required=True, help="output JSON file (a learned method also writes the adapted "
                   "policy next to it: R.json -> R.policy.pt, for `chat --policy`)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(func=cmd_policy)
