"""Exact-answer tasks: generators, exact checkers, parameters, the train/test split, training on a task corpus,
evaluation with Wilson intervals, and the task a model was trained on."""
import math

import pytest
import torch

import smkit
from smkit import tasks
from smkit.cli import main as cli_main
from smkit.core.config import ConfigError
from smkit.tasks import MASK, Example, TaskError
from smkit.tasks.base import template
from smkit.tasks.training import TaskBatches
from smkit.training.train import TrainConfig, Trainer
from smkit.training.update import step_generator

SMALL = [("sudoku", {"givens": 30}), ("sort", {"length": 5, "digits": 2}), ("sort", {"length": 4}),
         ("add", {"digits": 3}), ("dyck", {"length": 12, "given": 0.5}),
         ("dyck", {"length": 10, "given": 3, "types": 2})]
IDS = [f"{name}-{'-'.join(f'{k}{v}' for k, v in p.items())}" for name, p in SMALL]


def _fill(example: Example, chars) -> str:
    """The puzzle with its markers replaced, in order, by `chars`."""
    chars = iter(chars)
    return "".join(next(chars) if c is None else c for c in template(example.puzzle))


def _cells(example: Example) -> list[int]:
    return [i for i, given in enumerate(example.fixed) if not given]


# ---------------------------------------------------------------- registry and parameters

def test_registry_names_and_unknown_task():
    assert {"sudoku", "sort", "add", "dyck"} <= set(tasks.TASKS)
    assert tasks.get("sudoku", givens=40).params == {"givens": 40}
    assert tasks.get("dyck").params == {"length": 16, "given": 0.5, "types": 4}
    with pytest.raises(TaskError, match=r"task='chess'.*sudoku.*sort.*add.*dyck"):
        tasks.get("chess")
    with pytest.raises(TaskError, match=r"no parameter\(s\) \['size'\]; allowed: givens \(default 35\)"):
        tasks.get("sudoku", size=4)


@pytest.mark.parametrize("name,params,field", [
    ("sudoku", {"givens": 16}, "givens"), ("sudoku", {"givens": 81}, "givens"), ("sudoku", {"givens": "35"}, "givens"),
    ("sudoku", {"givens": 35.0}, "givens"), ("sort", {"length": 1}, "length"), ("sort", {"digits": 0}, "digits"),
    ("sort", {"digits": True}, "digits"), ("add", {"digits": 0}, "digits"), ("add", {"digits": 31}, "digits"),
    ("dyck", {"length": 7}, "length"), ("dyck", {"length": 0}, "length"), ("dyck", {"given": 1.0}, "given"),
    ("dyck", {"length": 4, "given": 4}, "given"), ("dyck", {"given": -1}, "given"),
    ("dyck", {"given": "half"}, "given"),
    ("dyck", {"types": 5}, "types")])
def test_bad_parameters_name_the_parameter(name, params, field):
    with pytest.raises(TaskError, match=rf"{field}="):
        tasks.get(name, **params)


def test_generate_arguments_are_checked():
    task = tasks.get("add", digits=2)
    for kwargs, field in [({"n": -1}, "n="), ({"n": 2, "seed": -3}, "seed="), ({"n": 2, "split": "dev"}, "split=")]:
        with pytest.raises(TaskError, match=field):
            task.generate(**kwargs)


# ---------------------------------------------------------------- generators

@pytest.mark.parametrize("name,params", SMALL, ids=IDS)
def test_generator_is_deterministic_fixed_length_and_valid(name, params):
    task = tasks.get(name, **params)
    examples = task.generate(40, seed=3)
    assert examples == task.generate(40, seed=3)
    assert tasks.get(name, **params).generate(10, seed=3) == examples[:10]   # example i does not depend on n
    assert tasks.get(name, **params).generate(10, seed=3, split="train") != examples[:10]
    task.generate(40, seed=3).clear()                              # a caller's list is its own: the cache
    assert task.generate(40, seed=3) == examples                   # keeps its copy
    assert examples != task.generate(40, seed=4)
    assert len({e.puzzle for e in examples}) > 30                  # varied, not one puzzle
    for e in examples:
        assert len(e.answer) == task.length and e.masked == task.masked >= 1
        assert e.puzzle.replace(MASK, "") != e.puzzle
        cells = template(e.puzzle)
        assert len(cells) == len(e.answer)                         # each marker stands for exactly one character
        assert all(c is None or c == a for c, a in zip(cells, e.answer))
        assert _fill(e, [e.answer[i] for i in _cells(e)]) == e.answer
        assert set(e.answer) <= set(task.ALPHABET)
        assert task.check(e, e.answer)


def test_texts_look_as_documented():
    sudoku = tasks.get("sudoku", givens=35).generate(1, 0)[0]
    rows = sudoku.answer.split("\n")
    assert len(sudoku.answer) == 89 and len(rows) == 9 and all(len(r) == 9 and r.isdigit() for r in rows)
    assert sudoku.puzzle.count(MASK) == 81 - 35 and sudoku.puzzle.count("\n") == 8
    add = tasks.get("add", digits=4).generate(5, 0)
    for e in add:
        a, b, s = int(e.answer[:4]), int(e.answer[5:9]), int(e.answer[10:])
        assert e.answer == f"{a:04d}+{b:04d}={s:05d}" and a + b == s
        assert e.puzzle == e.answer[:10] + MASK * 5
    sort = tasks.get("sort", length=4).generate(5, 0)
    for e in sort:
        given, answer = e.answer.split(">")
        assert answer == " ".join(sorted(given.split(" "))) and e.puzzle == given + ">" + " ".join([MASK] * 4)


def test_sudoku_grids_vary_beyond_one_grid_and_its_relabelling():
    grids = [e.answer for e in tasks.get("sudoku", givens=80).generate(30, 1)]
    assert len(set(grids)) == 30
    # relabelling digits or permuting rows of one base grid keeps its row-pattern of first-row positions; real
    # generation does not: the pairs (first row, second row) as a permutation have many different cycle types
    def cycle_type(grid):
        r0, r1 = grid[:9], grid[10:19]
        perm, seen, lengths = {r0[i]: r1[i] for i in range(9)}, set(), []
        for d in r0:
            n = 0
            while d not in seen:
                seen.add(d)
                d, n = perm[d], n + 1
            if n:
                lengths.append(n)
        return tuple(sorted(lengths))
    assert len({cycle_type(g) for g in grids}) >= 3


def test_dyck_answers_are_balanced_and_use_only_their_types():
    from smkit.tasks.dyck import is_balanced
    task = tasks.get("dyck", length=20, given=5, types=2)
    examples = task.generate(50, 0)
    assert all(is_balanced(e.answer, ("()", "[]")) for e in examples)
    assert set("".join(e.answer for e in examples)) == set("()[]")
    assert all(sum(e.fixed) == 5 for e in examples)


# ---------------------------------------------------------------- checkers

@pytest.mark.parametrize("name,params", SMALL, ids=IDS)
def test_checker_rejects_every_single_character_corruption(name, params):
    task = tasks.get(name, **params)
    for e in task.generate(3, seed=5):
        text = e.answer
        for i in _cells(e):
            for c in task.ALPHABET + "x":
                if c != text[i]:
                    assert not task.check(e, text[:i] + c + text[i + 1:]), (e.puzzle, i, c)
        assert not task.check(e, text[:-1]) and not task.check(e, text + text[-1])
        assert not task.check(e, _fill(e, [MASK] * e.masked))          # the puzzle itself
        assert not task.check(e, None)


@pytest.mark.parametrize("name,params", SMALL, ids=IDS)
def test_checker_rejects_changed_givens(name, params):
    task = tasks.get(name, **params)
    e = task.generate(1, seed=6)[0]
    given = [i for i, f in enumerate(e.fixed) if f]
    for i in given:
        for c in task.ALPHABET:
            if c != e.answer[i]:
                assert not task.check(e, e.answer[:i] + c + e.answer[i + 1:])
    # a sort/add answer of another puzzle, or a different valid sudoku / dyck text, does not fit these givens
    other = task.generate(1, seed=7)[0]
    assert other.answer != e.answer and not task.check(e, other.answer)


def _rectangles(grid_rows):
    """Cells ((r1, c1), (r1, c2), (r2, c1), (r2, c2)) with a b / b a, within one band and two stacks: swapping a
    and b there gives another valid grid."""
    for r1 in range(9):
        for r2 in range(r1 + 1, (r1 // 3 + 1) * 3):
            for c1 in range(9):
                for c2 in range(c1 + 1, 9):
                    if c1 // 3 != c2 // 3 and grid_rows[r1][c1] == grid_rows[r2][c2] and \
                            grid_rows[r1][c2] == grid_rows[r2][c1]:
                        yield (r1, c1), (r1, c2), (r2, c1), (r2, c2)


def test_sudoku_accepts_another_valid_completion():
    task = tasks.get("sudoku", givens=17)
    for e in task.generate(20, seed=0):
        rows = e.answer.split("\n")
        free = set(_cells(e))
        for cells in _rectangles(rows):
            if all(r * 10 + c in free for r, c in cells):
                text = list(e.answer)
                for r, c in cells:
                    a, b = rows[cells[0][0]][cells[0][1]], rows[cells[0][0]][cells[1][1]]
                    text[r * 10 + c] = b if e.answer[r * 10 + c] == a else a
                alternative = "".join(text)
                assert alternative != e.answer and task.check(e, alternative)
                return
    pytest.fail("no puzzle with a free swappable rectangle among 20 (17 givens): the generator changed")


def test_dyck_accepts_any_balanced_completion():
    task = tasks.get("dyck", length=12, given=0.5)
    found = 0
    for e in task.generate(20, seed=0):
        free = set(_cells(e))
        for i in range(len(e.answer) - 1):
            if {i, i + 1} <= free and e.answer[i:i + 2] in ("()", "[]", "{}", "<>"):
                swap = "[]" if e.answer[i:i + 2] != "[]" else "<>"
                alternative = e.answer[:i] + swap + e.answer[i + 2:]
                assert task.check(e, alternative)
                found += 1
                break
    assert found >= 3
    two = tasks.get("dyck", length=8, given=0, types=2)
    e = Example(MASK * 8, "()()[][]")
    assert two.check(e, "()()[][]") and two.check(e, "([()])[]") and not two.check(e, "{}()()()")


# ---------------------------------------------------------------- Wilson interval

@pytest.mark.parametrize("k,n,low,high", [(0, 10, 0.0, 0.277533), (10, 10, 0.722467, 1.0), (5, 10, 0.236593, 0.763407),
                                          (50, 100, 0.403832, 0.596168), (1, 20, 0.008881, 0.236131)])
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = tasks.wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-6) and hi == pytest.approx(high, abs=1e-6)


def test_wilson_interval_bad_counts():
    with pytest.raises(TaskError, match="n=0"):
        tasks.wilson_interval(0, 0)
    with pytest.raises(TaskError, match="successes=11"):
        tasks.wilson_interval(11, 10)


# ---------------------------------------------------------------- the split: training never sees an evaluation puzzle

def test_training_stream_and_evaluation_puzzles_are_disjoint(tmp_path):
    # add with 1 digit has only 100 puzzles: seeds alone could not keep the two apart, the puzzle split does
    task = tasks.get("add", digits=1)
    cfg = TrainConfig(corpus="task:add", task_params={"digits": 1}, out_dir=str(tmp_path), batch_size=16)
    batches = TaskBatches(task, condition=True)
    trained = {e.puzzle for step in range(30) for e in batches.examples(step_generator(cfg.seed, step), 16)}
    evaluated = {e.puzzle for seed in range(4) for e in task.generate(20, seed)}
    assert len(trained) > 60 and len(evaluated) >= 8
    assert not trained & evaluated
    assert {tasks.split_of(p) for p in trained} == {"train"} and {tasks.split_of(p) for p in evaluated} == {"test"}
    every = {e.puzzle for e in task.generate(600, 0, split="train")} | {e.puzzle for e in task.generate(100, 0)}
    assert len(every) == 100   # together they cover the whole space


def test_a_task_too_small_to_split_says_so():
    only = tasks.split_of(MASK * 2)        # dyck of length 2 with nothing given has one puzzle, in one split
    other = "test" if only == "train" else "train"
    task = tasks.get("dyck", length=2, given=0, types=1)
    assert [e.puzzle for e in task.generate(3, 0, split=only)] == [MASK * 2] * 3
    with pytest.raises(TaskError, match="too few distinct puzzles"):
        task.generate(5, 0, split=other)


# ---------------------------------------------------------------- training on a task corpus

def test_train_config_for_a_task(tmp_path):
    cfg = TrainConfig(corpus="task:sudoku", task_params={"givens": 35}, out_dir=str(tmp_path)).validate()
    assert cfg.seq_len == 89
    with pytest.raises(ConfigError, match="givens=5"):
        TrainConfig(corpus="task:sudoku", task_params={"givens": 5}).validate()
    with pytest.raises(ConfigError, match=r"unknown task 'chess'.*task:sudoku"):
        TrainConfig(corpus="task:chess").validate()
    with pytest.raises(ConfigError, match="task_params=.*only for a task corpus"):
        TrainConfig(corpus="shakespeare", task_params={"givens": 35}).validate()
    with pytest.raises(ConfigError, match="streaming=True"):
        TrainConfig(corpus="task:add", streaming=True).validate()


@pytest.mark.parametrize("condition", [True, False])
def test_conditional_training_never_masks_the_givens(tmp_path, condition):
    cfg = TrainConfig(corpus="task:sort", task_params={"length": 4}, task_condition=condition, hidden_size=16,
                      num_layers=1, num_heads=2, intermediate_size=32, batch_size=32, steps=1, eval_blocks=4,
                      progress=False, out_dir=str(tmp_path))
    trainer = Trainer(cfg)
    assert trainer.model.tokenizer.get_vocab() == tasks.get("sort", length=4).tokenizer().get_vocab()
    gen = step_generator(cfg.seed, 0)
    batch, fixed = trainer.batches.take(gen, 32, slice(0, 32))
    givens = torch.tensor([[c is not None for c in template(e.puzzle)]
                           for e in trainer.batches.examples(step_generator(cfg.seed, 0), 32)])
    x_t, masked, _ = trainer._noise(batch, gen, slice(0, 32), fixed)
    assert masked.any()
    if condition:
        assert torch.equal(fixed, givens) and not (masked & fixed).any()
        assert (trainer.val_fixed.sum(-1) == 15 - 4).all()
    else:
        assert fixed is None and trainer.val_fixed is None and (masked & givens).any()


def test_cli_trains_on_a_task_with_task_params(tmp_path, capsys):
    code = cli_main(["train", "--corpus", "task:add", "--task-param", "digits=2", "--steps", "2", "--hidden-size",
                     "16", "--num-layers", "1", "--num-heads", "2", "--intermediate-size", "32", "--batch-size", "4",
                     "--eval-blocks", "4", "--progress", "false", "--out-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    loaded = smkit.load_pretrained(tmp_path / "model")
    assert tasks.for_model(loaded) == tasks.get("add", digits=2) and loaded.config.seq_len == 9
    bad = ["train", "--corpus", "task:add", "--task-param", "digits=0", "--out-dir", str(tmp_path / "x")]
    assert cli_main(bad) == 2
    assert "digits=0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["train", "--corpus", "task:add", "--task-param", "digits"])
    assert "KEY=VALUE" in capsys.readouterr().err


def test_task_run_resumes_exactly(tmp_path):
    kw = dict(corpus="task:dyck", task_params={"length": 8, "given": 2}, hidden_size=16, num_layers=1, num_heads=2,
              intermediate_size=32, batch_size=8, warmup_steps=2, eval_every=0, eval_blocks=4, log_every=1,
              checkpoint_every=0, progress=False, soft_mask=True, p_sm=0.5)
    full = smkit.train(**kw, steps=4, out_dir=str(tmp_path / "full"))
    smkit.train(**kw, steps=2, out_dir=str(tmp_path / "cut"))
    resumed = smkit.train(**kw, steps=4, resume=True, out_dir=str(tmp_path / "cut"))
    assert list(resumed.history.loss) == pytest.approx(list(full.history.loss), abs=1e-6)
    with pytest.raises(ConfigError, match="task_params=.*differs from the checkpoint"):
        smkit.train(**{**kw, "task_params": {"length": 8, "given": 3}}, steps=5, resume=True,
                    out_dir=str(tmp_path / "cut"))


def test_dry_run_trains_on_the_task_itself():
    from smkit.training.dry_run import dry_run
    report = dry_run(TrainConfig(corpus="task:add", task_params={"digits": 2}, hidden_size=16, num_layers=1,
                                 num_heads=2, intermediate_size=32))
    assert report.sample_vocab == len(tasks.get("add").tokenizer()) and report.updates == 2
    assert not report.notes


def test_parse_param_reads_numbers_and_flags():
    assert tasks.parse_param("givens=35") == ("givens", 35)
    assert tasks.parse_param("given=0.25") == ("given", 0.25)
    assert tasks.parse_param(" flag = true") == ("flag", True)
    assert tasks.parse_param("name=abc") == ("name", "abc")


# ---------------------------------------------------------------- a tiny task model

@pytest.fixture(scope="module")
def sort_model(tmp_path_factory):
    """A 2-layer, 32-wide denoiser trained for 300 updates on sorting 3 digits (about 5-10 s on a busy CPU)."""
    out = tmp_path_factory.mktemp("sort-model")
    r = smkit.train(corpus="task:sort", task_params={"length": 3}, hidden_size=32, num_layers=2, num_heads=2,
                    intermediate_size=64, batch_size=32, steps=300, lr=1e-2, warmup_steps=10, soft_mask=False,
                    eval_every=0, eval_blocks=32, log_every=50, checkpoint_every=0, progress=False, out_dir=str(out))
    return r


def test_trained_model_beats_the_untrained_baseline(sort_model):
    task = tasks.get("sort", length=3)
    trained = tasks.evaluate(sort_model.model, task, n=64, soft_mask=False, seed=0)
    torch.manual_seed(0)
    untrained = smkit.DiffusionLM(sort_model.model.config, tokenizer=task.tokenizer())
    baseline = tasks.evaluate(untrained, task, n=64, soft_mask=False, seed=0)
    # chance per cell is 1/10 (a digit); the trained model must clearly beat it and the untrained model
    assert trained.cell_accuracy > 0.3 > baseline.cell_accuracy
    assert trained.accuracy > baseline.accuracy
    assert trained.n == 64 and len(trained.correct) == 64 and len(trained.texts) == 64
    assert trained.accuracy == sum(trained.correct) / 64
    assert (trained.ci_low, trained.ci_high) == tasks.wilson_interval(sum(trained.correct), 64)
    assert trained.nfe == 3.0 and trained.steps == task.masked == 3
    assert all(ok == task.check(e, t) for ok, e, t in
               zip(trained.correct, task.generate(64, 0), trained.texts))
    assert trained.puzzles == [e.puzzle for e in task.generate(64, 0)]
    d = trained.to_dict()
    assert {"accuracy", "ci_low", "ci_high", "nfe", "n", "correct", "texts", "cell_accuracy"} <= set(d)
    assert math.isfinite(sort_model.history.val_bound.iloc[-1])


def test_evaluate_is_batch_invariant_and_keeps_the_givens(sort_model):
    m = sort_model.model
    a = tasks.evaluate(m, n=10, steps=2, strategy="margin", soft_mask=True, seed=4, batch_size=10)
    b = tasks.evaluate(m, n=10, steps=2, strategy="margin", soft_mask=True, seed=4, batch_size=3)
    assert a.texts == b.texts and a.correct == b.correct
    assert a.nfe == 2.0 and b.nfe == 2.0
    for puzzle, text in zip(a.puzzles, a.texts):
        assert len(text) == len(template(puzzle))
        assert all(c is None or c == t for c, t in zip(template(puzzle), text))
    c = tasks.evaluate(m, n=10, steps=2, strategy="margin", soft_mask=True, seed=5, batch_size=10)
    assert c.puzzles != a.puzzles


def test_evaluate_rejects_bad_settings(sort_model, tiny_model):
    m = sort_model.model
    with pytest.raises(TaskError, match="infill"):
        tasks.evaluate(m, n=2, infill="x")
    with pytest.raises(TaskError, match="steps=0"):
        tasks.evaluate(m, n=2, steps=0)
    with pytest.raises(TaskError, match="n=0"):
        tasks.evaluate(m, n=0)
    with pytest.raises(TaskError, match="not the character tokenizer"):
        tasks.evaluate(tiny_model, tasks.get("sort", length=3), n=2)
    with pytest.raises(TaskError, match="not the character tokenizer"):
        tasks.evaluate(m, tasks.get("add", digits=1), n=2)


def test_per_sample_infill_templates(sort_model):
    m = sort_model.model
    puzzles = [e.puzzle for e in tasks.get("sort", length=3).generate(3, 0)]
    g = smkit.generate(m, infill=puzzles, num_samples=3, length=11, steps=3, seed=1, trace=False)
    for i, p in enumerate(puzzles):
        alone = smkit.generate(m, infill=p, num_samples=1, length=11, steps=3, seed=1, first_sample=i, trace=False)
        assert g.texts[i] == alone.texts[0] and g.texts[i][:6] == p[:6]
    ids = m.tokenizer(puzzles, add_special_tokens=False)["input_ids"]   # the same templates as token ids
    for given in (ids, torch.tensor(ids)):
        assert smkit.generate(m, infill=given, num_samples=3, length=11, steps=3, seed=1, trace=False).texts == g.texts
    with pytest.raises(ValueError, match="infill=.*3 templates for num_samples=2"):
        smkit.generate(m, infill=puzzles, num_samples=2, length=11, steps=3)
    with pytest.raises(ValueError, match="same number of tokens"):
        smkit.generate(m, infill=[puzzles[0], puzzles[1][:-len(MASK)]], num_samples=2, length=11, steps=3)


def test_for_model_round_trips(sort_model, tmp_path, tiny_model):
    task = tasks.get("sort", length=3)
    assert tasks.for_model(sort_model.model) == task
    loaded = smkit.load_pretrained(sort_model.out_dir / "model")
    assert tasks.for_model(loaded) == task and tasks.for_model(sort_model.out_dir / "model") == task
    loaded.save_pretrained(tmp_path / "again")
    again = smkit.load_pretrained(tmp_path / "again")
    assert tasks.for_model(again) == task and tasks.for_model(again).params == {"length": 3, "digits": 1}
    a = tasks.evaluate(loaded, n=8, soft_mask=False, seed=2)
    b = tasks.evaluate(sort_model.model, n=8, soft_mask=False, seed=2)
    assert a.texts == b.texts
    with pytest.raises(TaskError, match="no training record"):
        tasks.for_model(tiny_model)
    tiny_model.train_config = {"corpus": "shakespeare"}
    with pytest.raises(TaskError, match="trained on corpus='shakespeare', not on a task"):
        tasks.for_model(tiny_model)


def test_sweep_gives_one_row_per_point_matching_evaluate(sort_model):
    m = sort_model.model
    frame = tasks.sweep({"sorter": m, "sorter-sm": (m, True)}, n=12, cells_per_step=(1, 3),
                        strategies=("random", "margin"), seed=2)
    assert len(frame) == 2 * 2 * 2
    assert set(frame.steps) == {3, 1}  # 3 cells to fill: 1 per step -> 3 steps, 3 per step -> 1 step
    assert not frame[frame.model == "sorter"].soft_mask.any() and frame[frame.model == "sorter-sm"].soft_mask.all()
    row = frame[(frame.model == "sorter") & (frame.strategy == "margin") & (frame.cells_per_step == 1)].iloc[0]
    direct = tasks.evaluate(m, n=12, steps=3, strategy="margin", soft_mask=False, seed=2)
    assert (row.accuracy, row.ci_low, row.ci_high, row.nfe) == (direct.accuracy, direct.ci_low, direct.ci_high,
                                                                direct.nfe)
    assert row.correct == "".join("1" if c else "0" for c in direct.correct)
    fig = tasks.sweep_figure(frame)
    assert len(fig.data) == 2 * 2 and list(fig.data[0].x) == [1, 3]
    with pytest.raises(TaskError, match="cells_per_step"):
        tasks.sweep({"m": m}, n=2, cells_per_step=(0,))
