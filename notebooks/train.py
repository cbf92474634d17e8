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
# # Train a binary or soft-masked MDLM
#
# Trains with `smkit.train` and writes into the output folder: the final checkpoint (`model/`), the metrics
# history (`metrics.csv`) and plots as HTML (`plotly.min.js` beside them): loss, the validation bound
# (binary and SM inputs) and the three SM scalars (scale, steepness, centre) over training.
#
# `smkit run notebooks/train.ipynb -p steps 200 -p soft_mask true` (the budget is updates, or forward passes
# with `-p steps none -p forward_budget 400`: an SM update costs 2 passes, a binary one 1).

# %% tags=["parameters"]
from typing import Optional

corpus: str = "shakespeare"  # built-in corpus (shakespeare, python), a local text file or folder
tokenizer: str = "bpe"  # bpe or char
vocab_size: int = 1024  # BPE vocabulary size including [MASK]
seq_len: int = 128  # tokens per training block
hidden_size: int = 256  # model width
num_layers: int = 4  # transformer layers
num_heads: int = 4  # attention heads
intermediate_size: int = 1024  # MLP width
batch_size: int = 32  # blocks per update
steps: Optional[int] = 200  # updates (iso-update); None when forward_budget is set
forward_budget: Optional[int] = None  # forward passes to spend (iso-compute)
soft_mask: bool = True  # two-pass soft-masked training; False for binary MDLM
p_sm: float = 0.8  # probability that an update uses the two-pass SM estimate
k: int = 3  # top-k candidates mixed into a soft-masked input
lr: float = 3e-4  # backbone learning rate
sm_lr: float = 1e-2  # learning rate of the three SM scalars
warmup_steps: int = 20  # linear warmup updates
eval_every: int = 50  # updates between validation bounds (0 only at the end)
eval_blocks: int = 64  # validation blocks per evaluation
seed: int = 0  # fixes the run on a given machine
out_dir: Optional[str] = None  # output folder; None: the `smkit run` folder, else runs/train_notebook

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
from smkit import TrainConfig
from smkit.notebooks import ParameterError, bool_parameter, check_parameter, output_dir

check_parameter(isinstance(corpus, str) and corpus != "", "corpus", corpus, "a built-in corpus name or a local path")
check_parameter((steps is None) != (forward_budget is None), "steps", steps,
                f"set exactly one of steps and forward_budget (forward_budget={forward_budget!r})")
soft_mask = bool_parameter(soft_mask, "soft_mask")  # papermill's own -p passes true/false as text
out = output_dir(out_dir, "runs/train_notebook")
try:  # every TrainConfig field is checked too; its message names the field
    config = TrainConfig(corpus=corpus, tokenizer=tokenizer, vocab_size=vocab_size, seq_len=seq_len,
                         hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                         intermediate_size=intermediate_size, batch_size=batch_size, steps=steps,
                         forward_budget=forward_budget, soft_mask=soft_mask, p_sm=p_sm, sm={"k": k}, lr=lr, sm_lr=sm_lr,
                         warmup_steps=warmup_steps, eval_every=eval_every, eval_blocks=eval_blocks, seed=seed,
                         out_dir=str(out), log_every=1 if (steps or forward_budget) <= 100 else 10).validate()
except (ValueError, TypeError) as err:
    raise ParameterError(f"parameter {err}") from None

# %%
import smkit

result = smkit.train(config)
history = result.history
last = history.iloc[-1]
print(f"{int(last.step)} updates, {int(last.forward_passes)} forward passes; final loss {last.loss:.4f}; "
      f"validation bound {last.val_bound:.4f} (binary inputs), {last.val_bound_sm:.4f} (SM inputs)")
print(f"checkpoint: {result.out_dir / 'model'}; metrics: {result.out_dir / 'metrics.csv'}")
history.tail(5)

# %% [markdown]
# ## Loss, validation bound and the SM scalars over training

# %%
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

pio.renderers.default = "plotly_mimetype+notebook"
val = history.dropna(subset=["val_bound"])
fig = make_subplots(rows=1, cols=2, subplot_titles=["training loss", "validation bound (nats/token)"])
fig.add_trace(go.Scatter(x=history.step, y=history.loss, name="loss", mode="lines"), 1, 1)
fig.add_trace(go.Scatter(x=val.step, y=val.val_bound, name="binary inputs", mode="lines+markers"), 1, 2)
fig.add_trace(go.Scatter(x=val.step, y=val.val_bound_sm, name="SM inputs", mode="lines+markers"), 1, 2)
fig.update_layout(height=320, xaxis_title="update", xaxis2_title="update")
scalars = make_subplots(rows=1, cols=3, subplot_titles=["scale", "steepness", "centre"])
for i, col in enumerate(("scale", "steepness", "centre"), start=1):
    scalars.add_trace(go.Scatter(x=history.step, y=history[col], name=col, mode="lines"), 1, i)
scalars.update_layout(height=300, showlegend=False)
for f, name in ((fig, "train_loss"), (scalars, "train_sm_scalars")):
    f.write_html(out / f"{name}.html", include_plotlyjs="directory")
    f.show()
