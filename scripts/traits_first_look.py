"""First look: meta-RL against multi-user pretraining on users with hidden traits.

    PYTHONPATH=. MDLIB_THREADS=1 python scripts/traits_first_look.py --seeds 0 1 --users 8

Per seed, four initialisations from :mod:`mdlib.dm.metarl`'s functions (unchanged): scratch,
multi-user pretraining, first-order MAML and Reptile, each (meta-)trained on the meta-train
users of :mod:`mdlib.dm.traits` with the same number of training dialogues; then, for the
first ``--users`` test users, an adaptation curve (policy-gradient fine-tuning with each
user's own dialogues) evaluated on ``--eval`` fixed dialogues. Prints the mean over test
users of the return and success at each budget, per method and seed. A first look, not a
result: step sizes are :class:`mdlib.dm.metarl.PolicyConfig`'s defaults, not tuned on the
validation users.
"""

from __future__ import annotations

import argparse
import time

import torch

from mdlib.dm import metarl
from mdlib.dm.rl import make_policy
from mdlib.dm.traits import user_tasks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--users", type=int, default=8, help="test users (the first N of the split)")
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--budgets", type=int, nargs="+", default=[0, 10, 20, 50])
    p.add_argument("--eval", type=int, default=50, help="evaluation dialogues per user and budget")
    a = p.parse_args()
    c = metarl.PolicyConfig()
    n, k = a.iterations, c.tasks_per_iter
    print(f"every method sees {n * k * 2 * c.inner_episodes} training dialogues of the meta-train users")
    for seed in a.seeds:
        model = make_policy(c.hidden, seed)
        train = user_tasks(model, "train")
        test = user_tasks(model, "test")[:a.users]
        init = model.init_params()
        inits = {"scratch": init}
        for method in ("pretrain", "maml", "reptile"):
            start = time.time()
            gen = torch.Generator().manual_seed(seed)
            if method == "pretrain":  # 2 * inner_episodes per task and step: the same dialogues as the others
                inits[method], _ = metarl.pretrain(train, init, n, k, 2 * c.inner_episodes, c.maml_lr, gen)
            elif method == "maml":
                inits[method], _ = metarl.maml(train, init, n, k, c.inner_episodes, c.query_episodes, c.inner_lr,
                                               c.maml_lr, gen, first_order=True)
            else:
                inits[method], _ = metarl.reptile(train, init, n, k, 2 * c.inner_episodes, c.inner_episodes,
                                                  c.inner_lr, c.reptile_lr, gen)
            print(f"seed {seed}: {method} trained in {time.time() - start:.0f} s", flush=True)
        for method, params in inits.items():
            curves = []
            for i, task in enumerate(test):
                gen = torch.Generator().manual_seed(1000 * seed + i)
                curves.append(metarl.adaptation_curve(task, params, a.budgets, c.adapt_batch, c.inner_lr,
                                                      a.eval, gen))
            cells = []
            for j, b in enumerate(a.budgets):
                ret = sum(cv[j]["return"] for cv in curves) / len(curves)
                suc = sum(cv[j]["success"] for cv in curves) / len(curves)
                cells.append(f"{b:>3}: {ret:+.3f} ({suc:.2f})")
            print(f"seed {seed} {method:<8} return (success) after  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
