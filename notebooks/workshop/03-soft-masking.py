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
# # Workshop 3: soft-masking on a real model
#
# **What you will learn**
# - why a plain MDLM throws information away at every step, and how soft-masking (SM) keeps some of it;
# - the gate lambda(H): how sure the model must be before its guess is fed back, read off a trained model;
# - what a soft-masked input really is: the mixture of real top-k predictions at a real still-masked position;
# - how to tell whether SM changes a decode, and what to look at when it does not.
#
# Needs `pip install "smkit[notebooks]"`; about a minute on a laptop CPU. The default model, `python-sm`, was
# trained on Python code with SM (k = 1: the mixture holds `[MASK]` and the single most likely token).

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "python-sm"  # shipped model name or checkpoint folder (trained with SM)
prompt: str = "def "  # prefix of every decode ("" for none)
length: int = 128  # tokens per decode, prompt included (at most the model's seq_len)
steps: int = 32  # denoising steps: length / 4 is where the paper finds SM helps most
num_samples: int = 4  # decodes per setting
seed: int = 0  # the same seed for SM on and off
live_widget: bool = True  # also show the step-by-step explorer (only in an interactive kernel)

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import os

import smkit
from smkit.notebooks import check_answer, check_parameter

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(isinstance(prompt, str), "prompt", prompt, "must be text ('' for no prompt)")
check_parameter(isinstance(length, int) and length >= 4, "length", length, "must be an integer >= 4")
check_parameter(isinstance(steps, int) and 2 <= steps <= length, "steps", steps, f"an integer in [2, length={length}]")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "an integer >= 1")
check_parameter(isinstance(seed, int) and seed >= 0, "seed", seed, "must be an integer >= 0")
interactive = live_widget and "SMKIT_RUN_DIR" not in os.environ and "PAPERMILL_OUTPUT_PATH" not in os.environ

# %% [markdown]
# ## 1. The idea
#
# A masked diffusion model decodes in steps. At each step it predicts every masked position, reveals a few, and
# the rest go back in as a bare `[MASK]`: their predictions are thrown away, even a confident one. Soft-masking
# feeds such a position back as a mix of the mask embedding and the embeddings of its top-k predicted tokens:
#
#     input_l = (1 - lambda_l) E[MASK] + lambda_l * sum_i pi_i E[v_i],       lambda_l = w_s * sigmoid(w_a * (-H_l - w_b))
#
# v_1..v_k are the k likeliest tokens, pi their probabilities renormalised over the top k, and H_l the entropy of
# the prediction (nats). lambda is a gate: near w_s where the model is sure (low H), near 0 where it is unsure.
# w_s (the largest lambda), w_a (steepness) and w_b (centre: lambda = w_s / 2 at H = -w_b) are three scalars
# learned in training; k is fixed. With w_s = 0 SM *is* the plain model.

# %%
import math

import plotly.graph_objects as go
import plotly.io as pio
import torch

pio.renderers.default = "plotly_mimetype+notebook"
m = smkit.load_pretrained(model)
m.eval()
check_parameter(length <= m.config.seq_len, "length", length, f"must be at most the model's seq_len={m.config.seq_len}")
w = m.soft_mask.values()
w_s, w_a, w_b, k = w["scale"], w["steepness"], w["centre"], w["k"]
V = m.config.vocab_size - 1
trained_with_sm = bool((m.train_config or {}).get("soft_mask", False))
print(f"model {model}: trained with SM: {trained_with_sm}; k = {k}; w_s = {w_s:.4g}, w_a = {w_a:.3f}, "
      f"w_b = {w_b:.3f}; {V} tokens, so H ranges from 0 to ln V = {math.log(V):.2f} nats")
print(f"lambda = w_s/2 = {w_s / 2:.4g} at H = {-w_b:.2f} nats; lambda falls from 88% to 12% of w_s between "
      f"H = {-w_b - 2 / w_a:.2f} and {-w_b + 2 / w_a:.2f} nats")

# %% [markdown]
# ## 2. Where does the gate open, and where are the model's predictions?
#
# Decode with SM on and record every step (a `Trace`). The histogram shows the entropy of every prediction made
# at a masked position; the curve is this model's lambda(H) over the range where it bends.
# **What to look for:** SM only acts where the curve is high *and* the histogram has mass. If the histogram sits
# right of the bend, or w_s is tiny, lambda stays near 0 everywhere: the gate is shut, and SM inputs are bare
# masks in all but name.

# %%
from plotly.subplots import make_subplots

common = dict(prompt=prompt or None, num_samples=num_samples, length=length, steps=steps, strategy="confidence",
              seed=seed)
g_sm = smkit.generate(m, soft_mask=True, **common)
tr = g_sm.trace
predicted = tr.masked_before & ~tr.fixed  # positions the model predicted at each step
H_all = tr.entropy[predicted]
lam_fed = tr.lam[tr.masked]  # lambda of every soft-masked input actually fed back
print(f"{int(predicted.sum())} predictions at masked positions: entropy median {H_all.median():.2f} nats, "
      f"10% below {H_all.quantile(0.1):.2f}")
print(f"lambda fed back: mean {lam_fed.mean():.4g}, max {lam_fed.max():.4g}, share above 0.1: "
      f"{(lam_fed > 0.1).float().mean():.1%}")

lo, hi = max(0.0, -w_b - 6 / w_a), min(math.log(V), -w_b + 6 / w_a)
hs = torch.linspace(0, math.log(V), 300)
fig = make_subplots(specs=[[{"secondary_y": True}]])
fig.add_trace(go.Histogram(x=H_all.tolist(), nbinsx=40, name="entropy of the model's predictions",
                           marker_color="#bbb"), secondary_y=False)
fig.add_trace(go.Scatter(x=hs.tolist(), y=(w_s * torch.sigmoid(w_a * (-hs - w_b))).tolist(), name="lambda(H)",
                         line={"color": "#d62728"}), secondary_y=True)
fig.add_vrect(x0=lo, x1=hi, fillcolor="#d62728", opacity=0.07, line_width=0, annotation_text="where lambda bends")
fig.update_yaxes(title_text="predictions", secondary_y=False)
fig.update_yaxes(title_text="lambda", range=[0, max(w_s, 1e-9) * 1.05], secondary_y=True)
fig.update_layout(title=f"{model}: w_s={w_s:.3g}, w_a={w_a:.2f}, w_b={w_b:.2f}", xaxis_title="entropy H (nats)",
                  height=340)
fig.show()

# %% [markdown]
# ## Exercise 1: write lambda(H)
# Return lambda for a tensor of entropies, given the three scalars. (The check uses its own scalars, where a
# wrong sign or a missing w_s shows, not this model's.)

# %% tags=["exercise"]
def my_lambda(entropy, scale, centre, steepness):
    raise NotImplementedError  # your code: w_s * sigmoid(w_a * (-H - w_b)), with scale = w_s, centre = w_b, steepness = w_a


# %% tags=["solution"]
def my_lambda(entropy, scale, centre, steepness):
    return scale * torch.sigmoid(steepness * (-entropy - centre))


# %%
def check_lambda(fn):
    """Two gates over entropies 0..5 nats: a sign flip of H or of w_b, or a missing w_s, fails."""
    H = torch.linspace(0, 5, 11)
    got = lambda: torch.stack([torch.as_tensor(fn(H, s, c, a)).float() for s, c, a in ((0.8, -2.0, 2.0), (1.0, -0.75, 6.66))])
    expected = torch.stack([smkit.soft_mask_lambda(None, s, c, a, entropy=H) for s, c, a in ((0.8, -2.0, 2.0),
                                                                                             (1.0, -0.75, 6.66))])
    return check_answer("lambda(H)", got, expected)


check_lambda(my_lambda);

# %% [markdown]
# ## 3. A superposition at a real position
#
# After the first step, take the still-masked position where the model was surest (lowest entropy) and one
# where it was least sure. The table shows their real top predictions and the weights of the rows mixed into
# their next input: `[MASK]` gets 1 - lambda, candidate i gets lambda * pi_i.
# **What you should see:** at the sure position, pi is concentrated on one token and lambda is as large as this
# model's gate allows; at the unsure one, lambda is near 0 and the input is (almost) a bare mask.

# %%
first = tr[0]
still = first.masked[0] & ~first.fixed[0]
H0 = torch.where(still, first.entropy[0], torch.tensor(float("inf")))
sure = int(H0.argmin())
unsure = int(torch.where(still, first.entropy[0], torch.tensor(-1.0)).argmax())
tok = m.tokenizer


def superposition(pos):
    p = first.topk_probs[0, pos, :k].double()
    lam = float(first.lam[0, pos])
    weights = smkit.softmask.mixture_weights(torch.tensor(lam), p.log())
    return p, lam, weights


bars = go.Figure()
for label, pos in (("surest", sure), ("least sure", unsure)):
    p, lam, weights = superposition(pos)
    print(f"{label} still-masked position {pos}: H = {float(first.entropy[0, pos]):.2f} nats, lambda = {lam:.4g}")
    print(f"   [MASK]{'':<14} weight {float(weights[0]):.4f}")
    names = ["[MASK]"]
    for i in range(k):
        name = repr(tok.decode([int(first.topk_ids[0, pos, i])]))
        names.append(name)
        print(f"   {name:<20} p = {float(p[i]):.3f}  pi = {float(p[i] / p.sum()):.3f}  weight {float(weights[i + 1]):.4g}")
    bars.add_trace(go.Bar(x=names, y=weights.tolist(), name=f"{label} (position {pos}, H={float(first.entropy[0, pos]):.2f})"))
bars.update_layout(title="rows mixed into the next input (weights; [MASK] gets 1 - lambda)", yaxis_type="log",
                   yaxis_title="weight (log scale)", height=320, barmode="group")
bars.show()

# %% [markdown]
# ## Exercise 2: the weights of a superposition
# Given a position's top-k probabilities `top_probs` [k] (from the full distribution, so they need not sum to 1)
# and its `lam`, return the k + 1 weights of its input: `[1 - lam, lam * pi_1, ..., lam * pi_k]` with pi the
# top-k probabilities renormalised to sum to 1.

# %% tags=["exercise"]
def superposition_weights(top_probs, lam):
    raise NotImplementedError  # your code: a tensor of k + 1 weights


# %% tags=["solution"]
def superposition_weights(top_probs, lam):
    pi = top_probs / top_probs.sum()
    return torch.cat([torch.tensor([1 - lam]), lam * pi])


# %%
def check_superposition(fn):
    """Top-3 mass 0.6 and lambda 0.3, then 0.9: forgetting to renormalise, swapping lambda and 1 - lambda, or a
    constant answer fails."""
    cases = [(torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64), 0.3),
             (torch.tensor([0.5, 0.05, 0.05], dtype=torch.float64), 0.9)]
    got = lambda: torch.stack([torch.as_tensor(fn(p, lam), dtype=torch.float64) for p, lam in cases])
    expected = torch.stack([smkit.softmask.mixture_weights(torch.tensor(lam, dtype=torch.float64), p.log()).double()
                            for p, lam in cases])
    return check_answer("superposition weights", got, expected)


check_superposition(superposition_weights);

# %% [markdown]
# ## 4. SM on and off, same seed
#
# The same prompt, seed and budget, decoded with and without SM. Every random draw is the same, so any
# difference is SM's doing. The first differing step is where an SM input first changed a decision.
# **What you should see:** if the gate is open, some samples differ, starting at an early step. If it is shut,
# the texts are identical, and the cell says so with the gate's values. For contrast, the last decode forces
# the gate open (w_s = 1, the paper's w_b = -0.75 and w_a = 6.66): that is *not* how this model was trained, and
# shows what SM inputs do to a model that never learned to read them.

# %%
g_off = smkit.generate(m, soft_mask=False, **common)
g_forced = smkit.generate(m, soft_mask=True, sm_scale=1.0, sm_centre=-0.75, sm_steepness=6.66, **common)


def first_difference(a, b):
    """The first step after which the two decodes' tokens differ (None: never)."""
    n = min(len(a.trace), len(b.trace))
    diff = (a.trace.tokens[:n] != b.trace.tokens[:n]).flatten(1).any(-1)
    return int(diff.float().argmax()) if diff.any() else None


changed = sum(x != y for x, y in zip(g_sm.tokens.tolist(), g_off.tokens.tolist()))
positions = int((g_sm.tokens != g_off.tokens).sum())
print(f"SM as trained: {changed} of {num_samples} samples differ from binary decoding, {positions} tokens in all; "
      f"first differing step: {first_difference(g_sm, g_off)}")
if lam_fed.max() < 1e-3:
    print(f"The gate is shut: w_s = {w_s:.3g} and the largest lambda fed back was {lam_fed.max():.3g}, so every SM "
          f"input is [MASK] plus less than 0.1% of a token. A difference, if any, is a float-level tie flipping.")
forced = sum(x != y for x, y in zip(g_forced.tokens.tolist(), g_off.tokens.tolist()))
print(f"gate forced open (not as trained): {forced} of {num_samples} samples differ, first differing step: "
      f"{first_difference(g_forced, g_off)}")
for name, g in (("binary", g_off), ("SM as trained", g_sm), ("SM forced open", g_forced)):
    print(f"\n--- {name}, sample 0 ---\n{g.texts[0][:400]}")

# %% [markdown]
# ## 5. Step by step (interactive kernels only)
# Scrub through the SM decode: the token strip, lambda and entropy per position and step, and the mixture at
# the selected position. Headless runs skip this cell.

# %%
if interactive:
    from IPython.display import display
    from smkit.widgets import TraceExplorer
    display(TraceExplorer(g_sm.trace, model=m))

# %% [markdown]
# ## What to take away
# - SM feeds a still-masked position a mix of `[MASK]` and its top-k guesses, gated by lambda(H).
# - Whether it does anything depends on two things you can read off: w_s (how far the gate can open) and where
#   the model's entropies lie relative to the bend at H = -w_b.
# - Same seed, SM on vs off, isolates SM's effect; an identical output with a shut gate is the expected result,
#   not a bug.
