"""Meta-learning on ``torch.func``: one inner loop (:mod:`mdlib.meta.inner`), the base
learner and the registry (:mod:`mdlib.meta.base`), the meta-learners built on them
(:mod:`mdlib.meta.learners`, :mod:`mdlib.meta.schedules`), the task-batched meta-step
(:mod:`mdlib.meta.batched`), the one outer loop (:mod:`mdlib.meta.metatrain`) with
resuming (:mod:`mdlib.meta.progress`) and ``torchrun`` sharding
(:mod:`mdlib.meta.distributed`), and the sine-wave toy (:mod:`mdlib.meta.sine`)."""

from mdlib.meta.inner import inner_loop, second_order_guard

__all__ = ["inner_loop", "second_order_guard"]
