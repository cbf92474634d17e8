# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exact-answer tasks: decoding order, parallel decoding and soft-masking, with intervals
#
# A puzzle is right or wrong, so a decoding setting gets a solved share with a binomial (Wilson 95%) interval
# instead of a noisy text metric. This notebook decodes held-out puzzles of a task (never in any training
# stream) with each model, unmasking rule and number of cells revealed per step, and plots accuracy against
# that budget. Models: shipped names (`sudoku-binary`, `sudoku-sm`), checkpoint folders, or none: then it
# trains a small one first (`train_steps`). Headless: `smkit run notebooks/tasks.ipynb -p n 1000`.

# %% tags=["parameters"]
task: str = "sudoku"  # one of smkit.tasks.TASKS
task_params: dict = {"givens": 50}  # the task's parameters (sudoku: givens 17..80; 50 leaves 31 cells, where the shipped solvers' order matters: docs/results/solver/)
models: list = ["sudoku-binary", "sudoku-sm"]  # shipped names or checkpoint folders; empty: train one here (train_steps)
train_steps: int = 300  # updates of a small binary model trained here first when models is empty
cells_per_step: list = [1, 2, 4, 8]  # cells revealed per step (the budget: masked cells / steps)
strategies: list = ["random", "confidence", "margin", "entropy"]  # unmasking rules (smkit.STRATEGIES)
n: int = 128  # held-out puzzles per point (one forward pass per step: 31 per puzzle at 50 givens, 1 cell per step)
seed: int = 0  # decode seed (the puzzles drawn depend on it too)
out_dir: str = ""  # where the CSV and figure go; "": the `smkit run` folder, else runs/tasks

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import smkit
from smkit import tasks
from smkit.notebooks import check_parameter, output_dir

check_parameter(task in tasks.TASKS, "task", task, f"choose one of {tasks.TASKS}")
check_parameter(isinstance(task_params, dict), "task_params", task_params, "a dict of the task's parameters")
the_task = tasks.get(task, **task_params)  # bad task parameters fail here, naming what is allowed
check_parameter(isinstance(models, list), "models", models, "a list of shipped names or checkpoint folders")
check_parameter(isinstance(train_steps, int) and train_steps >= 1, "train_steps", train_steps, "an integer >= 1")
check_parameter(isinstance(cells_per_step, list) and cells_per_step and
                all(isinstance(c, int) and c >= 1 for c in cells_per_step), "cells_per_step", cells_per_step,
                "a list of integers >= 1")
check_parameter(isinstance(strategies, list) and strategies and all(s in smkit.STRATEGIES for s in strategies),
                "strategies", strategies, f"a list drawn from {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(n, int) and n >= 1, "n", n, "an integer >= 1")
check_parameter(isinstance(seed, int), "seed", seed, "an integer")
out = output_dir(out_dir or None, "runs/tasks")
print(the_task, "|", the_task.masked, "cells to fill of", the_task.length, "characters")

# %% [markdown]
# ## The models

# %%
loaded = {}
for name in models:
    m = smkit.load_pretrained(name)
    tasks.for_model(m)  # a model trained on text fails here with a clear message
    loaded[str(name)] = m
if not loaded:
    r = smkit.train(corpus=f"task:{task}", task_params=task_params, hidden_size=64, num_layers=2, num_heads=2,
                    intermediate_size=256, batch_size=32, steps=train_steps, lr=2e-3, warmup_steps=20,
                    soft_mask=False, eval_every=0, eval_blocks=32, checkpoint_every=0, out_dir=str(out / "model"))
    loaded["trained-here"] = r.model
for name, m in loaded.items():
    w = m.soft_mask.values()
    print(f"{name}: trained on {tasks.for_model(m)}, SM training {m.train_config.get('soft_mask')}, "
          f"scale={w['scale']:.3f} centre={w['centre']:.2f} steepness={w['steepness']:.2f}")

# %% [markdown]
# ## Accuracy against cells revealed per step
# Each model is decoded as it was trained (SM models with SM inputs, binary ones with plain masks). `random`
# reveals cells in a random order; `confidence`, `margin` and `entropy` reveal the cells the model is surest
# of first. An adaptive order far above random is the order effect (Kim et al., ICML 2025).

# %%
frame = tasks.sweep(loaded, the_task, n=n, cells_per_step=cells_per_step, strategies=strategies, seed=seed)
view = frame.assign(solved=lambda d: d.apply(lambda r: f"{r.accuracy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]",
                                                axis=1))
print(view.pivot_table(index=["model", "strategy"], columns="cells_per_step", values="solved", aggfunc="first")
      .to_string())

# %%
import plotly.io as pio

pio.renderers.default = "plotly_mimetype+notebook"
title = f"{task} {task_params}: puzzles solved, n = {n} per point"
csv_path, html_path = tasks.write_sweep(frame, out, title)  # the page carries plotly.js: it draws offline
tasks.sweep_figure(frame, title).show()

# %% [markdown]
# ## One puzzle, decoded
# The first held-out puzzle, the first model's answer (confidence order, one cell per step), and whether it
# is valid. The answer is laid out as the puzzle: a cell the model filled with a space or a newline shows as
# \u2423 or \u21b5 instead of breaking the grid.

# %%
first = next(iter(loaded.values()))
res = tasks.evaluate(first, the_task, n=1, strategy="confidence", seed=seed)
print("puzzle:\n" + res.puzzles[0].replace("[MASK]", "."))
print("\nanswer:\n" + tasks.shown_answer(res.puzzles[0], res.texts[0]))  # a newline written into a cell shows as \u21b5
print("\nvalid:", res.correct[0])
print(f"\nwritten: {csv_path}, {html_path}")
