"""Meta-learning on ``torch.func``: one inner loop (:mod:`mdlib.meta.inner`), the
meta-learners built on it (:mod:`mdlib.meta.learners`), the task-batched meta-step
(:mod:`mdlib.meta.batched`), the meta-training driver
(:mod:`mdlib.meta.metatrain`) and the sine-wave toy (:mod:`mdlib.meta.sine`)."""

from mdlib.meta.inner import inner_loop, second_order_guard

__all__ = ["inner_loop", "second_order_guard"]
