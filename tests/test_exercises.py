"""The fill-in exercises: every reference passes its check, each check rejects plausible
wrong answers with the right sentence, the solution markers are parsed strictly, and
``python -m mdlib exercises`` writes student notebooks that stop at their first exercise."""

from __future__ import annotations

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from mdlib.cli import main
from mdlib.errors import MdlibError
from mdlib.exercises import EXERCISES, solution_blocks, student_version
from mdlib.paths import NOTEBOOKS_DIR


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_every_reference_passes_its_check(exercise, capsys):
    _, check, reference = EXERCISES[exercise]
    check(reference)
    assert capsys.readouterr().out.strip() == f"Exercise {exercise}: correct"


# --------------------------------------------------------------------------- wrong answers, as students write them

def _sine_loss(model, params, x, y):
    return F.mse_loss(functional_call(model, params, (x,)), y)


def _objective(first_order=False, on_support=False, total=False):
    def objective(model, xs, ys, xq, yq, lr, steps=1):
        theta = dict(model.named_parameters())
        meta_loss = 0.0
        for i in range(len(xs)):
            fast = theta
            for _ in range(steps):
                grads = torch.autograd.grad(_sine_loss(model, fast, xs[i], ys[i]), list(fast.values()),
                                            create_graph=not first_order)
                fast = {n: p - lr * g for (n, p), g in zip(fast.items(), grads)}
            x, y = (xs[i], ys[i]) if on_support else (xq[i], yq[i])
            meta_loss = meta_loss + _sine_loss(model, fast, x, y)
        return meta_loss if total else meta_loss / len(xs)
    return objective


def test_the_notebooks_objective_written_by_hand_passes(capsys):
    from mdlib.exercises import check_bilevel_objective

    check_bilevel_objective(_objective())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_objective(first_order=True), "misses the second-order term"),
    (_objective(on_support=True), "computed on the support points"),
    (_objective(total=True), "summed the tasks' query losses"),
])
def test_bilevel_check_rejects(wrong, words):
    from mdlib.exercises import check_bilevel_objective

    with pytest.raises(AssertionError, match="^Exercise 0.1: .*" + words):
        check_bilevel_objective(wrong)


def _maml(create_graph=True, average=True, detach_adapted=False):
    def meta_gradient(loss_fn, params, tasks, inner_lr, inner_steps):
        total = None
        for support, query in tasks:
            fast = dict(params)
            for _ in range(inner_steps):
                grads = torch.autograd.grad(loss_fn(fast, support), list(fast.values()), create_graph=create_graph)
                fast = {n: p - inner_lr * g for (n, p), g in zip(fast.items(), grads)}
            if detach_adapted:  # the stop-gradient in the wrong place: theta' cut off from theta
                fast = {n: p.detach().requires_grad_() for n, p in fast.items()}
                grads = dict(zip(fast, torch.autograd.grad(loss_fn(fast, query), list(fast.values()))))
            else:
                grads = dict(zip(params, torch.autograd.grad(loss_fn(fast, query), list(params.values()))))
            total = grads if total is None else {n: total[n] + grads[n] for n in grads}
        return {n: g / len(tasks) for n, g in total.items()} if average else total
    return meta_gradient


def test_maml_written_by_hand_passes(capsys):
    from mdlib.exercises import check_maml_meta_gradient

    check_maml_meta_gradient(_maml())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_maml(create_graph=False), "first-order .* misses the second-order term"),
    (_maml(detach_adapted=True), "first-order .* misses the second-order term"),
    (_maml(average=False), "summed the tasks' gradients"),
])
def test_maml_check_rejects(wrong, words):
    from mdlib.exercises import check_maml_meta_gradient

    with pytest.raises(AssertionError, match="^Exercise 3.1: .*" + words):
        check_maml_meta_gradient(wrong)


def _reptile(sign=1.0, restart=True):
    def update(loss_fn, params, batches, inner_lr, inner_steps, outer_lr):
        theta = {n: p.detach() for n, p in params.items()}
        moves, fast = [], theta
        for batch in batches:
            fast = {n: p.clone().requires_grad_() for n, p in (theta if restart else fast).items()}
            for _ in range(inner_steps):
                grads = torch.autograd.grad(loss_fn(fast, batch), list(fast.values()))
                fast = {n: (p - inner_lr * g).detach().requires_grad_() for (n, p), g in zip(fast.items(), grads)}
            moves.append({n: fast[n].detach() - theta[n] for n in theta})
        return {n: theta[n] + sign * outer_lr * sum(m[n] for m in moves) / len(moves) for n in theta}
    return update


def test_reptile_written_by_hand_passes(capsys):
    from mdlib.exercises import check_reptile_update

    check_reptile_update(_reptile())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_reptile(sign=-1.0), "moves away from the adapted parameters"),
    (_reptile(restart=False), "every task must start from the same theta"),
])
def test_reptile_check_rejects(wrong, words):
    from mdlib.exercises import check_reptile_update

    with pytest.raises(AssertionError, match="^Exercise 3.2: .*" + words):
        check_reptile_update(wrong)


def _metasgd(detach_lrs=False, create_graph=True, sign=1.0):
    def update(loss_fn, params, lrs, support):
        grads = torch.autograd.grad(loss_fn(params, support), list(params.values()), create_graph=create_graph)
        return {n: params[n] - sign * (lrs[n].detach() if detach_lrs else lrs[n]) * g for n, g in zip(params, grads)}
    return update


def test_metasgd_written_by_hand_passes(capsys):
    from mdlib.exercises import check_metasgd_update

    check_metasgd_update(_metasgd())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_metasgd(detach_lrs=True), "step sizes get no gradient"),
    (_metasgd(create_graph=False), "misses the second-order term"),
    (_metasgd(sign=-1.0), "goes uphill"),
])
def test_metasgd_check_rejects(wrong, words):
    from mdlib.exercises import check_metasgd_update

    with pytest.raises(AssertionError, match="^Exercise 4.1: .*" + words):
        check_metasgd_update(wrong)


def test_metasgd_check_rejects_detached_output():
    from mdlib.exercises import check_metasgd_update

    def detached(loss_fn, params, lrs, support):
        return {n: t.detach() for n, t in _metasgd()(loss_fn, params, lrs, support).items()}

    with pytest.raises(AssertionError, match="^Exercise 4.1: the adapted parameters carry no gradient"):
        check_metasgd_update(detached)


def _lookahead(flip=False, clamp=True):
    def weights(terms_fn, params, val_loss_fn, lr):
        eps = torch.zeros_like(terms_fn(params).detach(), requires_grad=True)
        theta = list(params.values())
        grads = torch.autograd.grad((eps * terms_fn(params)).sum(), theta, create_graph=True)
        stepped = {n: p - lr * g for (n, p), g in zip(params.items(), grads)}
        g = torch.autograd.grad(val_loss_fn(stepped), eps)[0]
        score = g if flip else -g
        score = score.clamp(min=0) if clamp else score
        return score / score.sum()
    return weights


def test_lookahead_written_by_hand_passes(capsys):
    from mdlib.exercises import check_lookahead_weights

    check_lookahead_weights(_lookahead())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_lookahead(flip=True), "whose step would raise the validation loss"),
    (_lookahead(clamp=False), "some weights are negative"),
])
def test_lookahead_check_rejects(wrong, words):
    from mdlib.exercises import check_lookahead_weights

    with pytest.raises(AssertionError, match="^Exercise 5.1: .*" + words):
        check_lookahead_weights(wrong)


@pytest.mark.parametrize("wrong, words", [
    (lambda logp, adv: (logp * adv.detach()).mean(), "sign is flipped"),
    (lambda logp, adv: -(logp * adv).mean(), "advantages are not detached"),
    (lambda logp, adv: -(logp.detach() * adv).mean(), "stop-gradient is in the wrong place"),
    (lambda logp, adv: -(logp * adv.detach()).sum(), "summed over the decisions"),
])
def test_reinforce_check_rejects(wrong, words):
    from mdlib.exercises import check_reinforce_surrogate

    with pytest.raises(AssertionError, match="^Exercise 6.1: .*" + words):
        check_reinforce_surrogate(wrong)


def _metarl(create_graph=True, adapted_query=True, average=True):
    def step(tasks, params, inner_lr, support_episodes, query_episodes, gen):
        losses = []
        for task in tasks:
            support = task.collect(params, support_episodes, gen)
            grads = torch.autograd.grad(task.loss(params, support), list(params.values()), create_graph=create_graph)
            adapted = {n: p - inner_lr * g for (n, p), g in zip(params.items(), grads)}
            query = task.collect(adapted if adapted_query else params, query_episodes, gen)
            losses.append(task.loss(adapted, query))
        objective = sum(losses) / len(losses) if average else sum(losses)
        return dict(zip(params, torch.autograd.grad(objective, list(params.values()))))
    return step


def test_metarl_written_by_hand_passes(capsys):
    from mdlib.exercises import check_metarl_step

    check_metarl_step(_metarl())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_metarl(create_graph=False), "first-order gradient"),
    (_metarl(adapted_query=False), "played by the initial policy"),
    (_metarl(average=False), "summed the tasks' query losses"),
])
def test_metarl_check_rejects(wrong, words):
    from mdlib.exercises import check_metarl_step

    with pytest.raises(AssertionError, match="^Exercise 6.2: .*" + words):
        check_metarl_step(wrong)


def test_a_wrong_answer_no_mistake_explains_gets_the_catch_all_sentence():
    from mdlib.exercises import check_reinforce_surrogate

    with pytest.raises(AssertionError, match=r"^Exercise 6.1: .*largest difference .* line by line\.$"):
        check_reinforce_surrogate(lambda logp, adv: -(logp * adv.detach()).mean() + 0.1)


def test_the_bandit_replay_replays_and_keeps_a_second_order_term():
    from mdlib.exercises import ReplayBandit

    params = {"logits": torch.zeros(2, dtype=torch.float64)}
    first, again = (ReplayBandit([0.3, 0.7], seed=1).collect(params, 6, None) for _ in range(2))
    assert first.actions.tolist() == again.actions.tolist() and first.rewards.tolist() == again.rewards.tolist()
    assert first.advantages.tolist() == pytest.approx((first.rewards - 0.5).tolist())


# --------------------------------------------------------------------------- markers

def _nb(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t")]
                                    + [nbformat.v4.new_code_cell(s) for s in sources])


def test_student_version_replaces_blocks_and_clears_later_outputs():
    nb = _nb("x = 1", "def f(a):\n    # BEGIN SOLUTION 9.1: add one\n    b = a + 1\n    return b\n    # END SOLUTION\n",
             "f(1)")
    for cell in nb.cells[1:]:
        cell.outputs = [nbformat.v4.new_output("stream", text="old")]
        cell.execution_count = 3
    student, blocks = student_version(nb, "t.ipynb")
    assert [(b.id, b.title, b.cell, b.begin_line, b.end_line) for b in blocks] == [("9.1", "add one", 3, 2, 5)]
    assert student.cells[2].source == ('def f(a):\n    raise NotImplementedError('
                                       '"Exercise 9.1: add one (write your code here)")')
    assert student.cells[1].outputs and not student.cells[2].outputs and not student.cells[3].outputs
    assert student.cells[3].execution_count is None
    assert "9.1" in student.cells[0].source and nb.cells[2].source.count("SOLUTION") == 2  # the original is untouched


@pytest.mark.parametrize("sources, words", [
    (("# BEGIN SOLUTION 1.1: a\nx = 1\n",), "cell 2, line 1: BEGIN SOLUTION 1.1 is never closed"),
    (("# BEGIN SOLUTION 1.1: a\n# BEGIN SOLUTION 1.2: b\n# END SOLUTION\n# END SOLUTION",),
     "cell 2, line 2: BEGIN SOLUTION 1.2 inside the block 1.1 opened on line 1; blocks cannot nest"),
    (("x = 1\n# END SOLUTION",), "cell 2, line 2: END SOLUTION without a BEGIN"),
    (("# BEGIN SOLUTION 1.1: a\n# END SOLUTION", "y = 2\n# BEGIN SOLUTION 1.1: b\n# END SOLUTION"),
     "cell 3, line 2: exercise id 1.1 is used twice \\(first in cell 2, line 1\\)"),
    (("# BEGIN SOLUTION one: a\n# END SOLUTION",), "cell 2, line 1: malformed marker"),
])
def test_malformed_markers_are_one_line_errors(sources, words):
    with pytest.raises(MdlibError, match="^t.ipynb: " + words) as info:
        solution_blocks(_nb(*sources), "t.ipynb")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- the command and a student notebook

def test_exercises_refuses_the_notebooks_folder(capsys):
    assert main(["exercises", "--out", str(NOTEBOOKS_DIR / "student")]) == 1
    assert "solution notebooks' folder" in capsys.readouterr().err


def test_exercises_names_a_missing_or_broken_notebook(tmp_path, capsys):
    assert main(["exercises", "--out", str(tmp_path / "out"), str(tmp_path / "nope.ipynb")]) == 1
    assert "nope.ipynb: no such file" in capsys.readouterr().err
    (tmp_path / "bad.ipynb").write_text("{")
    assert main(["exercises", "--out", str(tmp_path / "out"), str(tmp_path / "bad.ipynb")]) == 1
    assert "bad.ipynb: not a readable notebook" in capsys.readouterr().err


def _with_smoke_parameters(nb, path):
    """``nb`` with the smoke profile's values in a cell after its ``parameters`` cell (as papermill injects them;
    papermill's ``parameterize_notebook`` needs notebooks read through papermill, with ``tags`` on every cell)."""
    from mdlib.reproduce import load_profile

    overrides = load_profile("smoke", sorted(NOTEBOOKS_DIR.glob("*.ipynb")))[path.stem]
    if overrides:
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in overrides.items())))
    return nb


#: the notebooks that have fill-in exercises (their first exercise is where the student version stops)
EXERCISE_NOTEBOOKS = sorted({nb for nb, _, _ in EXERCISES.values()})


def test_the_notebook_00_command_writes_the_student_version(tmp_path, capsys):
    source = NOTEBOOKS_DIR / "00_overview.ipynb"
    assert main(["exercises", "--out", str(tmp_path), str(source)]) == 0
    assert "00_overview.ipynb" in capsys.readouterr().out
    solution_nb = nbformat.read(source, as_version=4)
    student_nb = nbformat.read(tmp_path / "00_overview.ipynb", as_version=4)
    (block,) = [b for b in solution_blocks(solution_nb) if b.id == "0.1"]
    solution_lines = solution_nb.cells[block.cell - 1].source.splitlines()[block.begin_line - 1: block.end_line]
    student_text = "\n".join(c.source for c in student_nb.cells)
    for line in solution_lines[1:-1]:
        if line.strip() and not line.strip().startswith("#"):
            assert line not in student_text, f"solution line left in the student notebook: {line!r}"
    assert "SOLUTION" not in student_text


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_student_notebook_runs_to_its_first_exercise_and_stops_there(name, tmp_path):
    """The student version executes (smoke parameters) up to its first fill-in exercise and stops in
    that exercise's check cell with the exercise's message, and in no other cell."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    student_nb, blocks = student_version(nbformat.read(path, as_version=4), path.name)
    first = blocks[0]
    student_nb = _with_smoke_parameters(student_nb, path)
    client = NotebookClient(student_nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError"
    assert info.value.evalue == f"Exercise {first.id}: {first.title} (write your code here)"
    failed = [c for c in student_nb.cells if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and EXERCISES[first.id][1].__name__ in failed[0].source


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_student_versions_keep_no_solution_line(path):
    solution_nb = nbformat.read(path, as_version=4)
    student_nb, blocks = student_version(solution_nb, path.name)
    student_text = "\n".join(c.source for c in student_nb.cells)
    for block in blocks:
        lines = solution_nb.cells[block.cell - 1].source.splitlines()[block.begin_line: block.end_line - 1]
        for line in lines:
            if line.strip() and not line.strip().startswith("#"):
                assert line not in student_text, f"{path.name}: exercise {block.id} left {line!r} in the student version"
        assert f"Exercise {block.id}: {block.title} (write your code here)" in student_text
    assert "SOLUTION" not in student_text


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_solution_block_is_followed_by_its_check(path):
    nb = nbformat.read(path, as_version=4)
    for block in solution_blocks(nb, path.name):
        assert block.id in EXERCISES, f"{path.name}: exercise {block.id} has no check in mdlib.exercises.EXERCISES"
        check = EXERCISES[block.id][1].__name__
        later = [c.source for c in nb.cells[block.cell:] if c.cell_type == "code"]
        assert any(check in s for s in later), f"{path.name}: no cell after exercise {block.id} calls {check}"


# every course notebook, named (not globbed: a renamed or lost notebook must fail here, not drop out)
COURSE_NOTEBOOKS = ["00_overview", "01_data_and_preprocessing", "02_baseline_generation", "03_maml_and_reptile",
                    "04_meta_parameters", "05_meta_training_strategy", "06_meta_dialogue_policy",
                    "07_end_to_end_evaluation"]


@pytest.mark.parametrize("name", COURSE_NOTEBOOKS)
def test_course_notebooks_end_with_summary_and_exercises(name):
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("#")]
    assert "Summary" in headings[-2] and "Exercises" in headings[-1], headings[-3:]
    assert not any("add_headline" in c.source for c in nb.cells), "the README cells left the course notebooks"


def _course_times():
    """scripts/course_times.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_times", NOTEBOOKS_DIR.parent / "scripts" / "course_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_course_times_table_has_a_row_per_notebook():
    course_times = _course_times()
    notebooks = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))[:2]
    table = course_times.render(notebooks, {"notebooks": {notebooks[0].stem: {"wall_s": 150.0}}, "jobs": 2})
    rows = table.splitlines()
    assert rows[2].startswith(f"| `{notebooks[0].stem}` |") and rows[2].endswith("| 2.5 min |")
    assert rows[3].endswith("| not in the summary |")


def test_course_times_marks_a_run_time_measured_before_the_notebook_changed():
    course_times = _course_times()
    notebook = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))[0]
    runs = {"notebooks": {notebook.stem: {"wall_s": 30.0}}, "jobs": 2}
    old = course_times.render([notebook], {**runs, "finished": "2000-01-01T00:00:00+0000"})
    new = course_times.render([notebook], {**runs, "finished": "2999-01-01T00:00:00+0000"})
    assert old.splitlines()[2].endswith("| 30 s (measured before the notebook's last change) |")
    assert new.splitlines()[2].endswith("| 30 s |")
