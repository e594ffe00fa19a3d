"""Fill-in exercises: the solution-block convention, student notebooks, and the checks.

The notebooks in ``notebooks/`` are the solutions; ``python -m mdlib exercises --out DIR``
writes the student versions (:mod:`mdlib.exercises.markers`). A student fills in the
function of an exercise and runs its check, which compares it with the reference
implementation on small random problems and says what is wrong in one sentence
(:mod:`mdlib.exercises.checking`). docs/course.md lists every exercise.

=======  ========  ==================================================================
id       notebook  check
=======  ========  ==================================================================
0.1      00        :func:`check_bilevel_objective` ``(model, xs, ys, xq, yq, lr, steps)``
3.1      03        :func:`check_maml_meta_gradient` ``(loss_fn, params, tasks, inner_lr, inner_steps)``
3.2      03        :func:`check_reptile_update` ``(loss_fn, params, batches, inner_lr, inner_steps, outer_lr)``
4.1      04        :func:`check_metasgd_update` ``(loss_fn, params, lrs, support)``
5.1      05        :func:`check_lookahead_weights` ``(terms_fn, params, val_loss_fn, lr)``
6.1      06        :func:`check_reinforce_surrogate` ``(logp, advantages)``
6.2      06        :func:`check_metarl_step` ``(tasks, params, inner_lr, support_episodes, query_episodes, gen)``
=======  ========  ==================================================================
"""

from mdlib.exercises.checking import ExerciseFailed
from mdlib.exercises.markers import Block, solution_blocks, student_notebooks, student_version
from mdlib.exercises.meta import (bilevel_objective, check_bilevel_objective, check_lookahead_weights,
                                  check_maml_meta_gradient, check_metasgd_update, check_reptile_update,
                                  lookahead_weights, maml_meta_gradient, metasgd_update, reptile_update, tiny_loss,
                                  tiny_problem)
from mdlib.exercises.rl import (ReplayBandit, check_metarl_step, check_reinforce_surrogate, metarl_meta_gradient,
                                reinforce_loss)

#: Exercise id -> (notebook, check, reference).
EXERCISES = {
    "0.1": ("00_overview", check_bilevel_objective, bilevel_objective),
    "3.1": ("03_maml_and_reptile", check_maml_meta_gradient, maml_meta_gradient),
    "3.2": ("03_maml_and_reptile", check_reptile_update, reptile_update),
    "4.1": ("04_meta_parameters", check_metasgd_update, metasgd_update),
    "5.1": ("05_meta_training_strategy", check_lookahead_weights, lookahead_weights),
    "6.1": ("06_meta_dialogue_policy", check_reinforce_surrogate, reinforce_loss),
    "6.2": ("06_meta_dialogue_policy", check_metarl_step, metarl_meta_gradient),
}

__all__ = ["EXERCISES", "ExerciseFailed", "Block", "solution_blocks", "student_version", "student_notebooks",
           "bilevel_objective", "check_bilevel_objective", "maml_meta_gradient", "check_maml_meta_gradient",
           "reptile_update", "check_reptile_update", "metasgd_update", "check_metasgd_update",
           "lookahead_weights", "check_lookahead_weights", "reinforce_loss", "check_reinforce_surrogate",
           "metarl_meta_gradient", "check_metarl_step", "ReplayBandit", "tiny_loss", "tiny_problem"]
