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
# # Workshop 5: a sudoku solver, unmasking orders and soft-masking on a grid
#
# **What you will learn**
# - a sudoku is an infilling problem: the givens are kept, the blanks are `[MASK]`, and an answer is right or
#   wrong, so every setting gets a solved share with an honest interval;
# - to train a tiny solver in a few minutes on a laptop CPU;
# - that the *order* in which cells are revealed can matter a great deal (Kim, Shah, Kontonis, Kakade and Chen,
#   ICML 2025, "Train for the Worst, Plan for the Best"), and how to write your own unmasking rule;
# - why revealing several cells per step can put two equal digits in one row: parallel decoding;
# - what soft-masking (notebook 03; arXiv 2510.17206) feeds back on a grid, step by step.
#
# Needs `pip install "smkit[notebooks]"`. Training takes a few minutes on a 2-core laptop (the notebook prints
# the time); each evaluation of `n` puzzles takes seconds to a minute. Here a **token is one character** of the
# grid's text: a digit, a line break, or `[MASK]` for a blank. Lines that start with `verdict:` are computed from
# the numbers measured above them, with their uncertainty: they hold for whichever solvers are loaded.

# %% tags=["parameters"]
from typing import Optional

train_givens: int = 60  # given cells of the training puzzles for the solver trained here (17..80)
givens: int = 74  # given cells of the puzzles it is tested on (17..80): more givens, easier puzzles
judge_givens: Optional[int] = 50  # given cells of the puzzles for the order study and SM (17..80; 50 leaves 31 blanks); None: the puzzles those solvers were trained on
train_steps: int = 1000  # updates of the solver trained here (the slow cell; timings in notebooks/README.md)
hidden_size: int = 128  # its width
num_layers: int = 2  # its transformer layers
batch_size: int = 32  # puzzles per update
lr: float = 3e-3  # peak learning rate
n_trained: int = 256  # held-out puzzles per evaluation of the solver trained here
binary_model: Optional[str] = "sudoku-binary"  # a trained binary solver for the order study and the exercise; None: the one trained here
sm_model: Optional[str] = "sudoku-sm"  # a solver trained with SM (its twin); None: skip the SM sections
n: int = 256  # held-out puzzles per evaluation of those solvers (more: narrower intervals, slower: one pass per blank)
cells_per_step: list = [1, 4]  # budgets for SM on vs off: cells revealed per forward pass
seed: int = 0  # fixes training, the puzzles drawn and the decoding
out_dir: Optional[str] = None  # the trained solver goes here; None: the `smkit run` folder, else runs/workshop5
live_widget: bool = False  # True: also show the board explorer (interactive kernels; its widget state makes a saved notebook large)

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import os

import smkit
from smkit import tasks
from smkit.notebooks import bool_parameter, check_parameter, output_dir

for name, value in (("train_givens", train_givens), ("givens", givens)):
    check_parameter(isinstance(value, int) and 17 <= value <= 80, name, value, "an integer in [17, 80]")
check_parameter(judge_givens is None or (isinstance(judge_givens, int) and 17 <= judge_givens <= 80), "judge_givens",
                judge_givens, "None or an integer in [17, 80]")
check_parameter(isinstance(train_steps, int) and train_steps >= 1, "train_steps", train_steps, "an integer >= 1")
check_parameter(isinstance(hidden_size, int) and hidden_size >= 8 and hidden_size % 4 == 0, "hidden_size",
                hidden_size, "a multiple of 4, >= 8 (4 attention heads)")
check_parameter(isinstance(num_layers, int) and num_layers >= 1, "num_layers", num_layers, "an integer >= 1")
check_parameter(isinstance(batch_size, int) and batch_size >= 1, "batch_size", batch_size, "an integer >= 1")
check_parameter(isinstance(lr, (int, float)) and 0 < lr < 1, "lr", lr, "a number in (0, 1)")
for name, value in (("n_trained", n_trained), ("n", n)):
    check_parameter(isinstance(value, int) and value >= 1, name, value, "an integer >= 1")
for name, value in (("binary_model", binary_model), ("sm_model", sm_model)):
    check_parameter(value is None or (isinstance(value, str) and value != ""), name, value,
                    "None, a shipped model name or a checkpoint folder")
check_parameter(isinstance(cells_per_step, list) and cells_per_step and
                all(isinstance(c, int) and c >= 1 for c in cells_per_step), "cells_per_step", cells_per_step,
                "a non-empty list of integers >= 1")
check_parameter(isinstance(seed, int) and seed >= 0, "seed", seed, "an integer >= 0")
out = output_dir(out_dir, "runs/workshop5")
live_widget = bool_parameter(live_widget, "live_widget")  # papermill's own -p passes true/false as text
interactive = live_widget and "SMKIT_RUN_DIR" not in os.environ

# %% [markdown]
# ## 1. The task
#
# A puzzle is a text of 9 rows of 9 digits (89 characters with the line breaks). The blanks are `[MASK]`; a
# solver fills them, the givens never change. `task.check` accepts *any* valid completion (the puzzles need not
# have a unique solution). Every puzzle belongs to one split by a hash of its text: training only ever sees
# `train` puzzles, evaluations draw from `test`, so a solver is always scored on puzzles it never saw.

# %%
task = tasks.get("sudoku", givens=givens)
example = task.generate(1, seed=seed)[0]
dots = example.puzzle.replace("[MASK]", ".")
print(f"{task}: {task.masked} blanks to fill, {task.length} characters\n")
for row_p, row_a in zip(dots.split("\n"), example.answer.split("\n")):
    print(f"  {row_p}    {row_a}")
swapped = example.answer[1] + example.answer[0] + example.answer[2:]
print(f"\nthe reference answer is valid: {task.check(example, example.answer)}; "
      f"with its first two digits swapped it is not: {task.check(example, swapped)}")

# %% [markdown]
# ## 2. Train a tiny solver
#
# `smkit.train(corpus="task:sudoku")` draws fresh training puzzles for every update and, by default
# (`task_condition=True`), never masks the givens, so the model only learns to fill blanks. Every blank is a
# training signal, so we train on *harder* puzzles (`train_givens`, more blanks each) than we test on
# (`givens`): a solver that has learned the rules on hard puzzles applies them to easy ones. It is a binary MDLM
# (SM training would double the cost). (`task_condition=False` masks and scores the givens too: the model learns
# whole valid grids; try it under "Try next".)
#
# If k of n puzzles are solved, the share is k/n and its **Wilson 95% interval** is
#
#     ( p + z^2/(2n) -+ z * sqrt(p(1-p)/n + z^2/(4n^2)) ) / (1 + z^2/n),     p = k/n, z = 1.96
#
# a normal interval pulled towards 1/2, so it stays inside [0, 1] and is honest at 0 or n successes.
# **Comparing two settings:** when their two 95% intervals do not overlap, the difference is clear (at a level
# stricter than 95%, in fact); when they overlap, it may still be clear (two intervals can overlap a little while
# the difference is not in doubt), so look at the interval of the *difference*. When both settings decode the same
# puzzles, pair them: only the puzzles one solves and the other does not count, and what the two share (an easy
# puzzle, a hard one) cancels. Every comparison below is such a paired 95% interval of the difference in solved
# share.

# %%
import time

from smkit.evaluation.evidence import Estimate, mean_difference, overlap_sentence, paired_share_difference


def solved_line(label, r):
    return (f"{label:>10}: solved {sum(r.correct):4d}/{r.n} = {r.accuracy:.3f}  Wilson 95% [{r.ci_low:.3f}, "
            f"{r.ci_high:.3f}];  blanks matching the reference: {r.cell_accuracy:.3f}")


start = time.perf_counter()
result = smkit.train(corpus="task:sudoku", task_params={"givens": train_givens}, hidden_size=hidden_size,
                     num_layers=num_layers, num_heads=4, intermediate_size=4 * hidden_size, batch_size=batch_size,
                     steps=train_steps, lr=lr, lr_schedule="cosine", warmup_steps=max(1, train_steps // 20),
                     soft_mask=False, eval_every=train_steps, eval_blocks=64, log_every=max(1, train_steps // 50),
                     checkpoint_every=0, seed=seed, out_dir=str(out / "solver"))
solver = result.model
solver.eval()
print(f"{train_steps} updates in {(time.perf_counter() - start) / 60:.1f} min; validation bound "
      f"{result.history.val_bound.dropna().iloc[-1]:.3f} nats per blank (a uniform guess over 9 digits: 2.197)")
tiny = {strategy: tasks.evaluate(solver, task, n=n_trained, strategy=strategy, soft_mask=False, seed=seed)
        for strategy in ("random", "margin")}
for strategy, r in tiny.items():
    print(solved_line(strategy, r))
if n_trained >= 2:
    print("verdict: " + paired_share_difference(tiny["margin"].correct, tiny["random"].correct, "margin order",
                                                "random order").text)

# %% [markdown]
# "Blanks matching the reference" is a per-cell score: much higher than the solved share, since one wrong digit
# spoils a grid.
#
# ## 3. Does the order matter?
#
# The order effect needs a solver that is sure of some cells and unsure of others, puzzles hard enough that a
# wrong early guess is possible, and many puzzles to measure: `binary_model` (a larger solver, printed below with
# its task) on `n` puzzles with `judge_givens` givens (31 blanks at 50, so 31 forward passes per puzzle), one cell
# per step, three orders: `random`, `confidence` (the cell whose best digit is likeliest first) and `margin` (the
# largest gap between the best and the second-best digit first). The idea to test: revealing a cell the model is
# sure of first gives the next cells more context, while a random order forces guesses at cells that are still
# ambiguous. Kim et al. (ICML 2025) report that an adaptive order (margin) lifts a masked diffusion model from
# under 7% to about 90% of hard puzzles solved. The `verdict:` lines say what this solver shows.

# %%
judge = smkit.load_pretrained(binary_model) if binary_model is not None else solver
judge.eval()
trained_on = tasks.for_model(judge)
check_parameter(trained_on.NAME == "sudoku", "binary_model", binary_model, "a sudoku solver")
judge_task = trained_on if judge_givens is None else tasks.get("sudoku", givens=judge_givens)
print(f"{binary_model or 'the solver trained here'}: trained on {trained_on}; tested on {judge_task}, "
      f"{judge_task.masked} blanks per puzzle")
orders = {}
for strategy in ("random", "confidence", "margin"):
    orders[strategy] = tasks.evaluate(judge, judge_task, n=n, strategy=strategy, soft_mask=False, seed=seed)
    print(solved_line(strategy, orders[strategy]))
if n >= 2:
    for strategy in ("confidence", "margin"):
        print("verdict: " + paired_share_difference(orders[strategy].correct, orders["random"].correct,
                                                    f"{strategy} order", "random order").text)
    a, b = orders["margin"], orders["random"]
    print("verdict: " + overlap_sentence("margin", a.ci_low, a.ci_high, "random", b.ci_low, b.ci_high))
    same = sum(a == b for a, b in zip(orders["confidence"].texts, orders["margin"].texts))
    print("verdict: " + paired_share_difference(orders["confidence"].correct, orders["margin"].correct, "confidence",
                                                "margin").text)
    print(f"verdict: confidence and margin filled {same} of {n} grids identically ({same / n:.0%})"
          + (": where the best digit's probability p1 is near 1, p2 <= 1 - p1 is near 0, so p1 and p1 - p2 rank the "
             "cells the same way and the two rules reveal the same cells" if same >= n / 2 else
             ": the two rules often pick different cells for this solver (p1 far from 1 leaves room for p2)"))

# %% [markdown]
# ## Exercise: write your own unmasking rule
#
# A rule is a small pure function of one step's `StepView` (see `smkit/core/strategies.py`) that returns two bool
# [B, L] tensors: the positions to reveal and the positions to remask (none here). Useful fields:
# `view.top_probs[..., 0]` and `[..., 1]` (p1 and p2, the probabilities of the best and second-best digit),
# `view.entropy` [B, L], `view.candidates` [B, L] (blanks still masked), `view.n_reveal` [B] (how many to
# reveal). `top_n(scores, view.candidates, view.n_reveal)` picks the highest scores. Position p of the text is
# row p // 10, column p % 10 (column 9 is the line break), so `~view.candidates` tells you which cells are
# filled. Invent a score: the model's certainty, the puzzle's structure (a cell whose row, column and box are
# nearly full), or both. The check registers your rule (`smkit.core.strategies.register`), decodes the same `n`
# puzzles with it, and passes when it solves more puzzles than random order (the paired 95% interval of the
# difference lies above 0).

# %% tags=["exercise"]
import torch

from smkit.core.strategies import top_n


def my_rule(view):
    raise NotImplementedError  # your code: return top_n(scores, view.candidates, view.n_reveal), no_remask


# %% tags=["solution"]
import torch

from smkit.core.strategies import top_n


def my_rule(view):
    """The model's certainty, plus a bonus for blanks in nearly full rows, columns and boxes."""
    B, L = view.candidates.shape
    cells = torch.tensor([r * 10 + c for r in range(9) for c in range(9)])
    grid = (~view.candidates[:, cells]).double().view(B, 9, 9)  # 1 where the cell is given or decoded
    boxes = grid.view(B, 3, 3, 3, 3).sum((2, 4))  # [B, box row, box col]
    around = grid.sum(2, keepdim=True) + grid.sum(1, keepdim=True) + boxes.repeat_interleave(3, 1).repeat_interleave(3, 2)
    filled = torch.zeros(B, L, dtype=torch.float64)
    filled[:, cells] = around.view(B, 81) / 24  # share of the 24 neighbours already filled
    scores = view.top_probs[..., 0].double() + 0.2 * filled
    return top_n(scores, view.candidates, view.n_reveal), torch.zeros_like(view.candidates)


# %%
from smkit.exercises import Case, check


def check_unmasking_rule(rule, model, task, n, seed=0, random_result=None, reference=None, name="my-rule"):
    """Register `rule`, decode n held-out puzzles with it (one cell per step) and pass when it solves more puzzles
    than random order on the same puzzles (the paired 95% interval lies above 0). When even `margin` does not
    beat random at this n (a solver trained too briefly, or n too small), no rule can be judged: say so instead of
    failing. A rule that does worse than random gets a hint about the direction of its scores."""
    from smkit.core.strategies import register
    run = lambda strategy, **kw: tasks.evaluate(model, task, n=n, strategy=strategy, soft_mask=False, seed=seed, **kw)  # noqa: E731
    register(name)(rule)  # by default a rule gets p1, p2 and the entropy
    try:  # one puzzle first: an empty exercise says so at once
        tasks.evaluate(model, task, n=1, strategy=name, soft_mask=False, seed=seed)
    except NotImplementedError:
        print("[own rule] not done yet: fill in the exercise cell above, then run this check again")
        return False
    random_result = random_result or run("random")
    reference = reference or run("margin")
    margin_vs_random = paired_share_difference(reference.correct, random_result.correct, "margin", "random")
    if margin_vs_random.sign <= 0:
        print(f"[own rule] cannot judge: even margin does not beat random on {n} puzzles ({margin_vs_random.text}): "
              f"train longer or raise n")
        return False

    def verdict_of_rule():
        mine = run(name)
        v = paired_share_difference(mine.correct, random_result.correct, "your rule", "random order")
        print(f"your rule: {mine.accuracy:.3f} [{mine.ci_low:.3f}, {mine.ci_high:.3f}]; {v.text}")
        return "more than random" if v.sign > 0 else "not more than random" if v.difference > 0 else "not more, at all"

    def compare(got, expected, atol):
        if got == expected:
            return None
        if got == "not more, at all":
            return ("it solves no more puzzles than random order, or FEWER: top_n reveals the HIGHEST scores first, "
                    "so give the cells you are surest of the highest score")
        return "it solves a few more puzzles than random order, but not clearly more (the interval contains 0)"

    return check("own rule", verdict_of_rule, [Case(f"{n} puzzles, one cell per step, against random order", (),
                                                    "more than random")], compare=compare)


check_unmasking_rule(my_rule, judge, judge_task, n, seed, orders["random"], orders["margin"]);

# %% [markdown]
# ## 4. Soft-masking on and off
#
# `sm_model` is `binary_model`'s twin trained with soft-masking (SM, notebook 03). Revealing several cells per
# forward pass (a smaller budget) means deciding them from the same, older information; that is where SM's extra
# input could help. The table: solved shares with Wilson intervals for each decoding, order and budget, on
# `n // 4` puzzles each. **What to look for:** whether SM on vs off changes the `sm` rows, and how much each
# decoding loses from 1 to more cells per step. Read w_s first: a gate that barely opens cannot change much. All
# rows decode the same puzzles, so the `verdict:` lines compare them puzzle by puzzle: SM on vs SM off (the same
# model), and the SM twin vs the binary solver (two models trained alike, except for SM). Two orders: `random`,
# where a solver must often decide a cell it is unsure of (where SM's partial digits have the most to add), and
# `margin`. The shipped pair's report card over 300 to 1000 puzzles per setting is in `docs/results/solver/`
# (`python -m study.solver_eval table ...`).

# %%
import math

shipped = {}
if binary_model is not None:
    shipped["binary"] = (judge, False)
if sm_model is not None:
    twin = smkit.load_pretrained(sm_model)
    twin.eval()
    shipped["sm, SM on"] = (twin, True)
    shipped["sm, SM off"] = (twin, False)
for label, (mdl, _) in shipped.items():
    w = mdl.soft_mask.values()
    print(f"{label}: {tasks.for_model(mdl)}, trained with SM: {(mdl.train_config or {}).get('soft_mask')}, "
          f"w_s={w['scale']:.3g} w_a={w['steepness']:.2f} w_b={w['centre']:.2f} k={w['k']}")
sm_orders = ["random", "margin"]
if shipped:
    frame = tasks.sweep(shipped, judge_task, n=max(1, n // 4), cells_per_step=cells_per_step, strategies=sm_orders,
                        seed=seed)
    frame["solved (95% interval)"] = frame.apply(lambda r: f"{r.accuracy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", axis=1)
    print(frame.pivot_table(index=["model", "strategy"], columns="cells_per_step", values="solved (95% interval)",
                            aggfunc="first").to_string())

    def solved(label, strategy, c):
        row = frame[(frame.model == label) & (frame.strategy == strategy) & (frame.cells_per_step == c)]
        return [ch == "1" for ch in row.correct.iloc[0]]

    if max(1, n // 4) >= 2:
        for strategy in sm_orders:
            print()
            for c in cells_per_step:
                where = f"{strategy}, {c} cell(s)/step: "
                if sm_model is not None:
                    print("verdict: " + where + paired_share_difference(
                        solved("sm, SM on", strategy, c), solved("sm, SM off", strategy, c), "SM on", "SM off").text)
                if sm_model is not None and binary_model is not None:
                    print("verdict: " + where + paired_share_difference(
                        solved("sm, SM on", strategy, c), solved("binary", strategy, c), "the SM twin (SM on)",
                        "the binary solver").text)
            if len(cells_per_step) >= 2:
                lo, hi = min(cells_per_step), max(cells_per_step)
                for label in shipped:
                    print(f"verdict: {strategy}, {label}: " + paired_share_difference(
                        solved(label, strategy, lo), solved(label, strategy, hi), f"{lo} cell(s)/step",
                        f"{hi} cells/step").text)

# %% [markdown]
# ## 5. Watch a decode on the grid
#
# One puzzle decoded by `sm_model` with SM on (by `binary_model` when there is no SM twin), `cells_per_step[-1]`
# cells per step, `margin` order. For each step, three panels: the board (`.` still blank, `*` before a digit
# revealed at this step); the model's best digit at every blank still open; and lambda, the weight of its guesses
# in the blank's next input, in thousandths (`411` = 0.411, `0` = below 0.0005, `-` where the cell is filled):
# lambda never exceeds the gate's w_s (printed above), so compare it with w_s, not with 1.
# **What to look for:** a blank whose lambda is high is fed its guess as a partial digit on the next pass; if
# all lambdas are 0, the gate is shut (w_s printed above) and SM decodes like binary. A useful gate is
# *selective*: high at blanks the model is sure of, low at the others; the `verdict:` line measures that over
# many puzzles.
#
# Which puzzle: the first of the test puzzles whose decode reveals two equal digits in one row, column or box *in
# the same step*, if any does among the `n // 4` decoded here: section 6 is about why that happens.

# %%
from smkit.core.filmstrip import frame_steps, states

def units():
    """The 27 units (9 rows, 9 columns, 9 boxes) as text positions: row r, column c is position 10 r + c."""
    return torch.tensor([[r * 10 + c for c in range(9)] for r in range(9)]
                        + [[r * 10 + c for r in range(9)] for c in range(9)]
                        + [[(3 * br + i) * 10 + 3 * bc + j for i in range(3) for j in range(3)]
                           for br in range(3) for bc in range(3)])


def clashes_made(trace, mask_id):
    """[S, B] counts of pairs of cells in one unit holding the same digit after each step, among the pairs the
    step completed: `inside` (both cells revealed in this step) and `against` (one was already on the board)."""
    unit, pairs = units(), torch.combinations(torch.arange(9), 2)                  # 27 units, 36 pairs in each
    tokens, revealed = trace.tokens[:, :, unit], trace.revealed[:, :, unit]        # [S, B, 27, 9]
    a, b = tokens[..., pairs[:, 0]], tokens[..., pairs[:, 1]]                      # [S, B, 27, 36]
    ra, rb = revealed[..., pairs[:, 0]], revealed[..., pairs[:, 1]]
    same = (a == b) & (a != mask_id)
    return (same & ra & rb).sum((-1, -2)), (same & (ra ^ rb)).sum((-1, -2))


def decode_traced(mdl, soft, puzzles, cells):
    """All `puzzles` in one call (sample i seeded (seed, i), as tasks.evaluate does), with a trace."""
    return smkit.generate(mdl, infill=[p.puzzle for p in puzzles], num_samples=len(puzzles), length=judge_task.length,
                          steps=math.ceil(judge_task.masked / cells), strategy="margin", soft_mask=soft, seed=seed,
                          k_trace=3)


def board_panels(rec, chars, b=0):
    """The three text panels of sample b after one step (a StepRecord)."""
    rows = []
    for r in range(9):
        board, guess, lam = [], [], []
        for c in range(9):
            p = r * 10 + c
            masked = int(rec.tokens[b, p]) == rec.mask_id
            board.append(" ." if masked else ("*" if rec.revealed[b, p] else " ") + chars[int(rec.tokens[b, p])])
            guess.append(" " + chars[int(rec.topk_ids[b, p, 0])] if masked else "  ")
            lam.append(f"{min(999, round(1000 * float(rec.lam[b, p]))):4d}" if masked else "   -")
        rows.append("".join(board) + "   |" + "".join(guess) + "   |" + "".join(lam))
    return "\n".join(rows)


lesson_model, lesson_soft = (twin, True) if sm_model is not None else (judge, False)
cells = cells_per_step[-1]
puzzles = judge_task.generate(max(1, n // 4), seed=seed)
decoded = {c: decode_traced(lesson_model, lesson_soft, puzzles, c) for c in sorted({1, cells})}
mask_id = lesson_model.mask_id
inside, against = clashes_made(decoded[cells].trace, mask_id)
with_inside = (inside.sum(0) > 0).nonzero().flatten().tolist()
shown = with_inside[0] if with_inside else 0
chars = {i: (ch if ch in "123456789" else "?") for ch, i in lesson_model.tokenizer.get_vocab().items()}
trace = decoded[cells].trace
start_board = states(trace, shown)[0]
print(f"puzzle {shown} of the test puzzles ({'the first with two equal digits revealed in one step' if with_inside else 'no decode here revealed two equal digits in one step: puzzle 0'}), "
      f"{math.ceil(judge_task.masked / cells)} steps of {cells} cell(s)\n")
print("before the first step:")
print("\n".join("".join(" ." if int(start_board[r * 10 + c]) == mask_id else " " + chars[int(start_board[r * 10 + c])]
                        for c in range(9)) for r in range(9)))
for step in frame_steps(len(trace))[1:]:
    rec = trace[step - 1]
    print(f"\nafter step {step}: {int(rec.revealed[shown].sum())} revealed, {int(rec.masked[shown].sum())} still blank, "
          f"largest lambda {float(rec.lam[shown].max()):.3f}")
    print(f"{' board':<18}   |{' best guess':<18}   | lambda (thousandths)")
    print(board_panels(rec, chars, shown))
shown_text = decoded[cells].texts[shown]
print("\nsolved:", judge_task.check(puzzles[shown], shown_text))
if lesson_soft:
    first = trace[0]
    open_blanks = first.masked                                     # blanks still open after step 1, all puzzles
    lam, H = first.lam[open_blanks], first.entropy[open_blanks]
    sure = H <= H.median()
    if int(sure.sum()) >= 2 and int((~sure).sum()) >= 2:
        print(f"\nlambda at the {lam.numel()} blanks still open after step 1 ({len(puzzles)} puzzles): 10% / 50% / 90% "
              f"quantiles {lam.quantile(0.1):.3f} / {lam.median():.3f} / {lam.quantile(0.9):.3f}")
        spread = mean_difference(Estimate.of(lam[sure]), Estimate.of(lam[~sure]), "lambda at the surer half of the "
                                 "blanks", "at the less sure half")
        w_s_lesson = lesson_model.soft_mask.values()["scale"]
        selective = spread.sign > 0 and spread.difference > 0.25 * w_s_lesson  # a quarter of the gate's range
        print("verdict: " + spread.text)
        print(f"verdict: that difference is {spread.difference / max(w_s_lesson, 1e-12):.0%} of w_s = {w_s_lesson:.3g}: "
              + ("the gate is selective, open at sure blanks and closing at unsure ones" if selective else
                 "the gate opens about the same at every blank (not selective; a difference below a quarter of w_s)"))

# %% [markdown]
# ## 6. Parallel decoding: two equal digits in one step
#
# With k cells per step, the k cells are chosen from one forward pass and each is *sampled on its own* from its
# own distribution: the model predicts every blank given the board, not given the other cells revealed in the same
# step. If two blanks of one row both lean to 8 (each could be the 8, the board does not say which yet), both can
# draw 8 in the same step, and the grid is lost. Revealed one at a time, the second cell would have seen the first
# 8. Below: the count of such clashes made inside one step, at 1 and at `cells_per_step[-1]` cells per step, over
# the puzzles decoded above; then, on the puzzle shown above, the clash itself, and what the model says about the
# second cell once the first one's digit is on the board.

# %%
def clash_summary(c):
    ins, agn = clashes_made(decoded[c].trace, mask_id)
    ok = [judge_task.check(p, t) for p, t in zip(puzzles, decoded[c].texts)]
    k_in, k_ag = int((ins.sum(0) > 0).sum()), int((agn.sum(0) > 0).sum())
    lo, hi = tasks.wilson_interval(k_in, len(puzzles))
    print(f"{c} cell(s)/step: solved {sum(ok)}/{len(ok)}; puzzles with a clash made inside one step: {k_in} "
          f"[{lo:.3f}, {hi:.3f}]; with a clash against a digit already on the board: {k_ag}")
    return ok, ins.sum(0) > 0


summary = {c: clash_summary(c) for c in decoded}
ok_many, inside_many = summary[cells]
failed = [i for i, good in enumerate(ok_many) if not good]
if cells > 1:
    print(f"verdict: at {cells} cells/step, {sum(bool(inside_many[i]) for i in failed)} of the {len(failed)} unsolved "
          f"puzzles had two equal digits revealed in one step in a row, column or box; at 1 cell/step that cannot "
          f"happen ({int(summary[1][1].sum())} such puzzles measured)")
    if len(puzzles) >= 2:
        print("verdict: " + paired_share_difference(summary[1][0], ok_many, "1 cell/step", f"{cells} cells/step").text)
if with_inside:
    steps_in = inside[:, shown].nonzero().flatten()
    s = int(steps_in[0])
    rec = trace[s]
    tokens_after = rec.tokens[shown]
    for u, unit in enumerate(units().tolist()):
        digits = [int(tokens_after[p]) for p in unit]
        pair = next(((p, q) for i, p in enumerate(unit) for q in unit[i + 1:]
                     if rec.revealed[shown, p] and rec.revealed[shown, q] and int(tokens_after[p]) == int(tokens_after[q])
                     and int(tokens_after[p]) != mask_id), None)
        if pair:
            break
    p, q = pair
    d = int(tokens_after[p])
    kind = "row" if u < 9 else "column" if u < 18 else "box"

    def prob(ids, probs, token):
        ids = ids.tolist()
        return float(probs[ids.index(token)]) if token in ids else 0.0

    p_at_p = prob(rec.topk_ids[shown, p], rec.topk_probs[shown, p], d)
    p_at_q = prob(rec.topk_ids[shown, q], rec.topk_probs[shown, q], d)
    before = states(trace, shown)[s].clone()
    with torch.no_grad():
        alone = lesson_model(before[None])[0, q].exp()[d]
        before[p] = d
        after_first = lesson_model(before[None])[0, q].exp()[d]
    print(f"\nthe clash on puzzle {shown}: step {s + 1} revealed {chars[d]} at row {p // 10 + 1}, column {p % 10 + 1} "
          f"and {chars[d]} at row {q // 10 + 1}, column {q % 10 + 1}: the same {kind}")
    print(f"at that step the model gave {chars[d]} probability {p_at_p:.2f} at the first cell and {p_at_q:.2f} at the "
          f"second (top-3 probabilities of the step's pass); each draw was made alone")
    print(f"verdict: with the first cell's {chars[d]} on the board, the model gives {chars[d]} at the second cell "
          f"probability {float(after_first):.3f} (without it, bare masks as input: {float(alone):.3f}): revealed one "
          f"at a time, the second cell would " + ("rarely" if after_first < 0.5 * alone else "still often")
          + f" have taken {chars[d]}")
else:
    print(f"\nverdict: none of the {len(puzzles)} decodes at {cells} cell(s)/step revealed two equal digits in one "
          f"unit in the same step: this solver's predictions leave no room for it here")

# %% [markdown]
# The same decode as an interactive board (interactive kernels, `live_widget = True`): scrub the steps, hover a
# cell for its candidates, lambda shades the blanks. Clear this cell's output before saving the notebook: the
# widget's state is large.

# %%
if interactive:
    from IPython.display import display
    from smkit.widgets import TraceExplorer
    g = smkit.generate(lesson_model, infill=puzzles[shown].puzzle, length=judge_task.length,
                       steps=math.ceil(judge_task.masked / cells), strategy="margin", soft_mask=lesson_soft,
                       seed=seed)
    display(TraceExplorer(g.trace, model=lesson_model, layout="auto"))

# %% [markdown]
# ## What to take away
# - Exact answers turn "is it better?" into counting, with intervals; two settings on the same puzzles compare
#   puzzle by puzzle.
# - On sudoku the unmasking order can matter: an adaptive order lets sure cells inform unsure ones. How much
#   depends on the solver, and only many puzzles show it: measure it, with intervals.
# - Cells revealed in one step are drawn independently: k cells per step buys speed with clashes the model would
#   have avoided one cell at a time.
# - A rule is a few lines; register it and every tool (`generate`, `tasks.evaluate`, `tasks.sweep`) can use it.
# - SM acts only where lambda is high: read it off the grid before crediting SM with a result.
#
# ## Try next
# - Train the tiny solver with `task_condition=False` in section 2 (the givens masked and scored too) and compare
#   its solved share at the same `train_steps`: is the difference outside the intervals?
# - Set `cells_per_step = [1, 2, 4, 8]`: at how many cells per step does the order stop mattering?
# - Set `judge_givens = 72` (9 blanks) or `60`: on easier puzzles, does the order still matter for these solvers?
#   Does SM?
