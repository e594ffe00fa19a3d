"""How every exercise check works: run the student's function and the reference on the
same small random problems (float64), and when they differ, say why in one sentence.

A check is a list of *cases* (small problems built from a seed, fresh for every call so
that a function that modifies its inputs cannot spoil the comparison), the student's
output and the reference's output per case as ``{name: Tensor}``, and a list of
*mistakes*: a sentence and the output that the mistake produces (the reference with the
mistake put in). When the student's output differs from the reference, the first mistake
whose output it matches gives the message; otherwise the message says where the largest
difference is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

Outputs = dict[str, torch.Tensor]

#: Tolerances of the comparison: float64 problems, so only summation order separates a
#: right answer from the reference; a float32 slip (1e-7 relative) still passes.
RTOL, ATOL = 1e-5, 1e-8


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer: ``message`` (one sentence) and ``output(case) -> Outputs``."""

    message: str
    output: Callable[[Any], Outputs]


class ExerciseFailed(AssertionError):
    """The student's function gives a wrong answer; the message is one sentence."""


def fail(exercise: str, sentence: str) -> None:
    raise ExerciseFailed(f"Exercise {exercise}: {sentence}")


def as_tensor(value: Any, what: str, exercise: str, shape: Sequence[int] | None = None) -> torch.Tensor:
    """``value`` as a float64 tensor, or a one-sentence failure naming ``what`` was expected."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(float(value))
    if not isinstance(value, torch.Tensor):
        fail(exercise, f"{what} should be a tensor, but your function returned a {type(value).__name__}.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(exercise, f"{what} should have shape {tuple(shape)}, but yours has shape {tuple(value.shape)}.")
    return value


def as_dict(value: Any, like: Mapping[str, torch.Tensor], what: str, exercise: str) -> dict[str, torch.Tensor]:
    """``value`` as ``{name: tensor}`` with the names and shapes of ``like``, or a one-sentence failure."""
    if not isinstance(value, Mapping):
        fail(exercise, f"{what} should be a dict name -> tensor (like params), but your function returned "
                       f"a {type(value).__name__}.")
    missing = [n for n in like if n not in value]
    if missing:
        fail(exercise, f"{what} has no entry for {missing[0]!r}; return one tensor for every name of params.")
    return {n: as_tensor(value[n], f"{what}[{n!r}]", exercise, like[n].shape) for n in like}


def gradients(output: torch.Tensor, wrt: Mapping[str, torch.Tensor], prefix: str = "d/d ") -> Outputs:
    """``{prefix + name: d output / d wrt[name]}`` (zeros where ``output`` does not depend on it)."""
    if not output.requires_grad:
        return {prefix + n: torch.zeros_like(t) for n, t in wrt.items()}
    grads = torch.autograd.grad(output, list(wrt.values()), allow_unused=True, retain_graph=True)
    return {prefix + n: (torch.zeros_like(t) if g is None else g) for (n, t), g in zip(wrt.items(), grads)}


def difference(got: Outputs, want: Outputs) -> tuple[bool, float, str]:
    """``(close, largest absolute difference, where)`` between two outputs with the same names."""
    close, worst, where = True, 0.0, ""
    for n, w in want.items():
        g = got[n].detach().to(torch.float64)
        w = w.detach().to(torch.float64)
        if not bool(torch.isfinite(g).all()):
            return False, float("inf"), n
        gap = (g - w).abs()
        if bool((gap > ATOL + RTOL * w.abs()).any()):
            close = False
        if gap.numel() and float(gap.max()) >= worst:
            worst, where = float(gap.max()), n
    return close, worst, where


def run_check(exercise: str, what: str, cases: Sequence[Any], student: Callable[[Any], Outputs],
              reference: Callable[[Any], Outputs], mistakes: Sequence[Mistake]) -> None:
    """Compare ``student(case)`` with ``reference(case)`` on every case; print the verdict.

    Args:
        exercise: the id (``"3.1"``).
        what: what the function computes, for the catch-all message ("the meta-gradient").
        cases: arguments from which each callable builds its own fresh problem.
        student, reference: ``case -> Outputs`` (the same names).
        mistakes: tried in order when the student's output differs from the reference.

    Raises:
        ExerciseFailed (an AssertionError): one sentence saying what is wrong.
    """
    for k, case in enumerate(cases, start=1):
        got, want = student(case), reference(case)
        close, worst, where = difference(got, want)
        if close:
            continue
        for mistake in mistakes:
            if difference(got, mistake.output(case))[0]:
                fail(exercise, mistake.message)
        fail(exercise, f"your function's output ({what}) differs from the reference on random problem {k} of "
                       f"{len(cases)} (largest "
                       f"difference {worst:.3g} in {where}) and matches none of the usual mistakes, so compare "
                       "your code with the equation line by line.")
    print(f"Exercise {exercise}: correct")
