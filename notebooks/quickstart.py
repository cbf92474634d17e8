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
# # smkit quickstart: binary vs soft-masked decoding at a low budget
#
# Loads the shipped model, decodes the same prompt twice with the same seed and number of steps (forward
# passes): once with binary masks, once feeding still-masked positions a soft-masked input (SM), and shows
# the texts side by side plus what happened at every step (lambda fed back, entropy, how fast tokens were
# revealed). Run it headless with `smkit run notebooks/quickstart.ipynb -p steps 16`; the HTML export keeps
# the plotly figures interactive without a kernel.
#
# Needs `pip install "smkit[notebooks]"`.

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "python-sm"  # a text model: shipped name (smkit.PRETRAINED) or checkpoint folder
prompt: Optional[str] = None  # text kept fixed as a prefix; None: one that suits the model's corpus
length: int = 96  # tokens per sample, prompt included (at most the model's seq_len)
steps: int = 12  # denoising steps, i.e. the forward-pass budget (low: several tokens per step)
strategy: str = "confidence"  # unmasking rule, one of smkit.STRATEGIES
num_samples: int = 2  # samples decoded per setting
seed: int = 0  # the same seed for both decodes
live_widget: bool = True  # also show the live compare widget (only in an interactive kernel)
solver: Optional[str] = "sudoku-sm"  # an SM task model decoded with SM on and off on the same puzzles (None: skip)
puzzles: int = 8  # held-out puzzles it decodes
givens: int = 50  # their difficulty (given cells of 81; at 72 the shipped solvers solve nearly every puzzle either way)
out_dir: Optional[str] = None  # where texts go; None: the `smkit run` folder, else runs/quickstart

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import os
import smkit
from smkit.notebooks import bool_parameter, check_parameter, output_dir

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(prompt is None or isinstance(prompt, str), "prompt", prompt, "must be text or None")
check_parameter(isinstance(length, int) and length >= 2, "length", length, "must be an integer >= 2")
check_parameter(isinstance(steps, int) and steps >= 1, "steps", steps, "must be an integer >= 1")
check_parameter(strategy in smkit.STRATEGIES, "strategy", strategy, f"choose one of {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "must be an integer >= 1")
check_parameter(isinstance(seed, int), "seed", seed, "must be an integer")
check_parameter(solver is None or isinstance(solver, str), "solver", solver, "a task model name or folder, or None")
check_parameter(isinstance(puzzles, int) and puzzles >= 1, "puzzles", puzzles, "must be an integer >= 1")
check_parameter(isinstance(givens, int) and 17 <= givens <= 80, "givens", givens, "an integer in 17..80")
out = output_dir(out_dir, "runs/quickstart")
live_widget = bool_parameter(live_widget, "live_widget")  # papermill's own -p passes true/false as text
interactive = live_widget and "SMKIT_RUN_DIR" not in os.environ  # headless runs get static figures only

# %%
import html
import json

from IPython.display import HTML, display

m = smkit.load_pretrained(model)
check_parameter(length <= m.config.seq_len, "length", length, f"must be at most the model's seq_len={m.config.seq_len}")
PROMPTS = {"python": "import os\n\n\ndef ", "shakespeare": "ROMEO.\n"}  # a start that suits each built-in corpus
if prompt is None:
    prompt = PROMPTS.get((getattr(m, "train_config", None) or {}).get("corpus"), "")
w = m.soft_mask.values()
print(f"model {model or 'default'}: k={w['k']} scale={w['scale']:.3f} steepness={w['steepness']:.2f} "
      f"centre={w['centre']:.3f}")

# %% [markdown]
# ## Decode: same prompt, same seed, same budget

# %%
runs = {}
for name, soft in (("binary", False), ("soft-masked", True)):
    runs[name] = smkit.generate(m, prompt=prompt, num_samples=num_samples, length=length, steps=steps,
                                strategy=strategy, soft_mask=soft, seed=seed, trace=True)
    print(f"{name}: {runs[name].nfe} forward passes")

with open(out / "quickstart_texts.jsonl", "w", encoding="utf-8") as f:
    for name, g in runs.items():
        for i, text in enumerate(g.texts):
            f.write(json.dumps({"decoding": name, "sample": i, "text": text, "nfe": g.nfe}) + "\n")

# %%
rows = "".join(
    "<tr>" + "".join(f"<td style='vertical-align:top;text-align:left'><pre style='white-space:pre-wrap'>"
                     f"{html.escape(g.texts[i])}</pre></td>" for g in runs.values()) + "</tr>"
    for i in range(num_samples))
display(HTML(f"<table><tr>{''.join(f'<th>{n} ({g.nfe} passes)</th>' for n, g in runs.items())}</tr>{rows}</table>"))

# %% [markdown]
# ## Where the two decodes part
# Same seed, same steps: any difference comes from what SM fed back at still-masked positions.

# %%
binary_run, sm_run = runs["binary"], runs["soft-masked"]
changed = [i for i in range(num_samples) if binary_run.tokens[i].tolist() != sm_run.tokens[i].tolist()]
first = sm_run.trace[0]
open_lam = float(first.lam[first.masked].mean()) if first.masked.any() else 0.0
print(f"SM changed {len(changed)} of {num_samples} samples; mean lambda fed back after the first pass: {open_lam:.3f}")
if changed:
    i = changed[0]
    pos = next(p for p, (a, b) in enumerate(zip(binary_run.tokens[i].tolist(), sm_run.tokens[i].tolist())) if a != b)
    tok = m.tokenizer
    step_lam = sm_run.trace.lam[:, i, pos]
    peak = int(step_lam.argmax())
    top = float(step_lam.max())
    fed = (f"is fed a mixture up to lambda = {top:.3g} (step {peak}) before it is revealed" if top >= 1e-3 else
           f"stays grey: the gate stayed shut there (largest lambda {top:.2g})")
    print(f"Look at sample {i}, token {pos}: binary wrote {tok.decode([binary_run.tokens[i, pos].item()])!r}, SM wrote "
          f"{tok.decode([sm_run.tokens[i, pos].item()])!r}. On the SM lambda heatmap below, column {pos} {fed}.")
else:
    w = m.soft_mask.values()
    print(f"No sample changed: this model's gate is nearly shut (scale = {w['scale']:.4f}), so SM inputs are almost "
          f"pure [MASK] embeddings at this model's entropies: see the sudoku solver below, where the gate is open.")

# %% [markdown]
# ## What happened at each step
# Lambda is the weight of the soft-masked mixture fed back at still-masked positions (0 for binary decoding);
# entropy is the model's uncertainty at the positions it predicted.

# %%
import plotly.io as pio
from smkit.widgets import figures, sample_view

pio.renderers.default = "plotly_mimetype+notebook"  # the HTML export carries plotly.js: interactive offline
views = [sample_view(g.trace, 0, model=m) for g in runs.values()]
last = min(v.num_steps for v in views) - 1
figures.progress_figure(views, list(runs), last).show()
figures.heatmaps_figure(views, last, field="lam", titles=[f"{n}: lambda fed back" for n in runs]).show()
figures.heatmaps_figure(views, last, field="entropy", titles=[f"{n}: entropy H" for n in runs]).show()
figures.lambda_figure(views[1], last, -1).show()

# %% [markdown]
# ## Where SM acts: a sudoku solver
# A text model this small predicts masked tokens at high entropy, where its learned gate stays nearly shut.
# A solver is confident, so its gate opens: the same held-out puzzles, decoded one cell per step with SM on
# and off (same seed). Cells where the two answers differ are in brackets; `valid` is the exact check.

# %%
if solver is not None:
    from smkit import tasks
    sm_solver = smkit.load_pretrained(solver)
    task = tasks.get(tasks.for_model(sm_solver).NAME, givens=givens)
    shown = {}
    for name, soft in (("SM off", False), ("SM on", True)):
        shown[name] = tasks.evaluate(sm_solver, task, n=puzzles, strategy="confidence", soft_mask=soft, seed=seed)
    on, off = shown["SM on"], shown["SM off"]
    differ = [i for i in range(puzzles) if on.texts[i] != off.texts[i]]
    w = sm_solver.soft_mask.values()
    print(f"{solver}: scale={w['scale']:.3f} centre={w['centre']:.2f}; SM changed {len(differ)} of {puzzles} answers; "
          f"solved: SM off {sum(off.correct)}, SM on {sum(on.correct)}")
    if differ:
        i = differ[0]
        cells = [j for j, c in enumerate(off.answers[i]) if c != "\n"]  # the 81 cell positions of the text
        given = off.puzzles[i].replace("[MASK]", ".").replace("\n", "")

        def row(text, other, r):
            return "".join(f"[{text[j]}]" if text[j] != other[j] else f" {text[j]} "
                           for j in cells[9 * r:9 * r + 9]).replace("\n", "⏎")
        print(f"puzzle {i} ('.' to fill)   SM off (valid: {off.correct[i]})          SM on (valid: {on.correct[i]})")
        for r in range(9):
            print(f"{given[9 * r:9 * r + 9]:<20}{row(off.texts[i], on.texts[i], r):<30}{row(on.texts[i], off.texts[i], r)}")

# %% [markdown]
# ## Scrub the steps (interactive kernels only)

# %%
if interactive:
    from smkit.widgets import compare
    display(compare(runs["binary"].trace, runs["soft-masked"].trace, model=m, names=tuple(runs)))
print(f"texts written to {out / 'quickstart_texts.jsonl'}")
