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
# # A checkpoint of the paper's code: decode it with soft-masking on and off, traced
#
# Opens a model of the soft-masking paper (a Lightning `.ckpt` of its training code, a folder in MDLM's Hugging Face
# layout, or an smkit folder converted from one) without running any code in the file, decodes the same samples
# with SM on and off (the same seed, so the two decodes draw the same randomness), and shows lambda and entropy over
# the steps, the step at which the two decodes part, and the trace explorer. Writes into the output folder both traces,
# the figures as HTML and a standalone comparison page.
#
# The default checkpoint is the tiny random-weight fixture of this repository (tests/fixtures/paper_formats): the
# real 169M checkpoints are several GB. For one of them, with GPT-2's tokenizer files in a local folder:
#
# `smkit run notebooks/paper_checkpoint.ipynb -p checkpoint mdlm_sm.ckpt -p tokenizer tokenizers/gpt2 -p length 1024 -p steps 1024`

# %% tags=["parameters"]
from typing import Optional

checkpoint: Optional[str] = None  # a .ckpt of the paper's code, an MDLM Hugging Face folder or an smkit folder; None: the repository's fixture
tokenizer: Optional[str] = None  # a folder holding tokenizer.json, or vocab.json + merges.txt (GPT-2's for the paper's models); None: ids only
ema: Optional[bool] = None  # None: the EMA weights when the file has them; True: require them; False: the raw weights
length: int = 64  # tokens per sample (at most the model's length, 1024 for the paper's models)
steps: int = 64  # denoising steps (the paper decodes with as many steps as tokens)
strategy: str = "ancestral"  # unmasking rule, one of smkit.STRATEGIES (ancestral: the paper's MDLM sampler)
seed: int = 0  # both decodes use it: SM on and off see the same random draws
num_samples: int = 2  # samples decoded together
out_dir: Optional[str] = None  # output folder; None: the `smkit run` folder, else runs/paper_checkpoint

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
from pathlib import Path

import smkit
from smkit.notebooks import check_parameter, output_dir

FIXTURE = Path(smkit.__file__).resolve().parents[1] / "tests" / "fixtures" / "paper_formats" / "sm.ckpt"
checkpoint = str(FIXTURE) if checkpoint is None else checkpoint
check_parameter(Path(checkpoint).expanduser().exists(), "checkpoint", checkpoint,
                "an existing .ckpt file, MDLM Hugging Face folder or smkit folder")
check_parameter(tokenizer is None or Path(tokenizer).expanduser().is_dir(), "tokenizer", tokenizer,
                "None or a folder holding tokenizer.json (or vocab.json + merges.txt)")
if isinstance(ema, str):  # papermill's -p passes true/false/none as text
    ema = {"true": True, "false": False, "none": None}.get(ema.lower(), ema)
check_parameter(ema in (None, True, False), "ema", ema, "None, True or False")
check_parameter(isinstance(length, int) and length >= 2, "length", length, "must be an integer >= 2")
check_parameter(isinstance(steps, int) and steps >= 1, "steps", steps, "must be an integer >= 1")
check_parameter(strategy in smkit.STRATEGIES, "strategy", strategy, f"choose one of {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(seed, int), "seed", seed, "must be an integer")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "must be >= 1")
out = output_dir(out_dir, "runs/paper_checkpoint")

# %%
m = smkit.load_pretrained(checkpoint, ema=ema, tokenizer=tokenizer)
check_parameter(length <= m.config.seq_len, "length", length, f"must be at most the model's length {m.config.seq_len}")
shape = m.backbone.config
print(f"{type(m.backbone).__name__}: {sum(p.numel() for p in m.backbone.parameters()):,} parameters, "
      f"{shape.hidden_size} wide, {shape.num_layers} blocks, vocabulary {m.config.vocab_size} (mask id {m.mask_id})")
print("source:", {k: v for k, v in (m.source or {}).items() if k != "placeholders"})
for item in (m.source or {}).get("placeholders", []):
    print("not loaded (an object of a class smkit does not run):", item)
print("soft-masking:", m.soft_mask.values())

# %% [markdown]
# ## The same samples with soft-masking on and off
#
# `cache="tokens"`: a step at which no token changed spends no forward pass and reuses the last output, as the
# paper's decoding loop does; the trace marks those steps (`cached`).

# %%
runs = {}
for sm_on in (True, False):
    runs[sm_on] = smkit.generate(m, length=length, steps=steps, strategy=strategy, soft_mask=sm_on, seed=seed,
                                 num_samples=num_samples, cache="tokens", trace=True, progress=True)
    g = runs[sm_on]
    cached = sum(r.cached for r in g.trace)
    print(f"SM {'on ' if sm_on else 'off'}: {g.nfe} forward passes over {len(g.trace)} steps ({cached} served by the "
          f"cache)")
    g.trace.save(out / f"paper_{'sm' if sm_on else 'binary'}.trace")
for i in range(num_samples):
    for sm_on in (True, False):
        text = runs[sm_on].texts[i] if runs[sm_on].texts else runs[sm_on].tokens[i, :24].tolist()
        print(f"--- sample {i}, SM {'on' if sm_on else 'off'}: {text}")

# %% [markdown]
# ## Lambda and entropy over the steps; where the two decodes part

# %%
import plotly.graph_objects as go
import plotly.io as pio
import torch

pio.renderers.default = "plotly_mimetype+notebook"


def per_step(trace, field):
    """Mean of a per-position statistic over the positions masked before each step."""
    out = []
    for r in trace:
        where = r.masked_before
        out.append(float(getattr(r, field)[where].mean()) if bool(where.any()) else float("nan"))
    return out


curves = go.Figure()
for sm_on, dash in ((True, "solid"), (False, "dot")):
    label = "SM on" if sm_on else "SM off"
    curves.add_trace(go.Scatter(y=per_step(runs[sm_on].trace, "entropy"), name=f"entropy, {label}",
                                line={"dash": dash}))
lam = [float(r.lam[r.masked].mean()) if bool(r.masked.any()) else float("nan") for r in runs[True].trace]
curves.add_trace(go.Scatter(y=lam, name="lambda (SM on)", yaxis="y2"))
curves.update_layout(title="mean entropy (nats) at masked positions and mean lambda of the next input",
                     xaxis_title="step", yaxis_title="entropy", yaxis2={"title": "lambda", "overlaying": "y",
                                                                       "side": "right", "range": [0, 1]}, height=360)
curves.write_html(out / "paper_lambda_entropy.html", include_plotlyjs="directory")
curves.show()

on, off = list(runs[True].trace), list(runs[False].trace)
for i in range(num_samples):
    parted = next((r.step for r, s in zip(on, off) if not torch.equal(r.tokens[i], s.tokens[i])), None)
    differ = int((runs[True].tokens[i] != runs[False].tokens[i]).sum())
    print(f"sample {i}: the decodes part at step {parted} (None: never); {differ} of {length} final tokens differ")

# %% [markdown]
# ## The explorer: both decodes on one step axis

# %%
from smkit.widgets import compare

view = compare(runs[True].trace, runs[False].trace, model=m)
view.to_html(out / "paper_compare.html")
print(f"traces, figures and the comparison page in {out}")
view
