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
corpus: Optional[str] = None  # held-out text to fill in; None: the corpus the model was trained on
num_samples: int = 4  # held-out blocks filled in (and unconditional samples)
mask_fraction: float = 0.5  # share of each held-out block masked for the model to fill
tokens_per_step: int = 4  # tokens revealed per step (4: the paper's L/4 budget, where SM helped most)
prompt: str = "def "  # prefix of the unconditional decodes ("" for none)
seed: int = 0  # the same seed for SM on and off
live_widget: bool = True  # also show the step-by-step explorer (only in an interactive kernel)

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import os

import smkit
from smkit.notebooks import check_answer, check_parameter

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(corpus is None or (isinstance(corpus, str) and corpus != ""), "corpus", corpus,
                "None or a built-in corpus name / local path")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "an integer >= 1")
check_parameter(isinstance(mask_fraction, (int, float)) and 0.05 <= mask_fraction <= 1, "mask_fraction",
                mask_fraction, "a number in [0.05, 1]")
check_parameter(isinstance(tokens_per_step, int) and tokens_per_step >= 1, "tokens_per_step", tokens_per_step,
                "an integer >= 1")
check_parameter(isinstance(prompt, str), "prompt", prompt, "must be text ('' for no prompt)")
check_parameter(isinstance(seed, int) and seed >= 0, "seed", seed, "must be an integer >= 0")
interactive = live_widget and "SMKIT_RUN_DIR" not in os.environ

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

from smkit.io.data import load_corpus, pack_blocks, split_documents

pio.renderers.default = "plotly_mimetype+notebook"
m = smkit.load_pretrained(model)
m.eval()
w = m.soft_mask.values()
w_s, w_a, w_b, k = w["scale"], w["steepness"], w["centre"], w["k"]
V = m.config.vocab_size - 1
L = m.config.seq_len
tok = m.tokenizer
trained_with_sm = bool((m.train_config or {}).get("soft_mask", False))
print(f"model {model}: trained with SM: {trained_with_sm}; k = {k}; w_s = {w_s:.4g}, w_a = {w_a:.3f}, "
      f"w_b = {w_b:.3f}; {V} tokens, so H ranges from 0 to ln V = {math.log(V):.2f} nats")
print(f"lambda = w_s/2 = {w_s / 2:.4g} at H = {-w_b:.2f} nats; it falls from 88% to 12% of w_s between "
      f"H = {-w_b - 2 / w_a:.2f} and {-w_b + 2 / w_a:.2f} nats")

# %% [markdown]
# ## 2. Where does the gate open, and where are the model's predictions?
#
# Two kinds of decode, both with SM on and every step recorded (a `Trace`):
# - **generate**: `num_samples` texts from all masks (after `prompt`), `tokens_per_step` tokens per step;
# - **fill in**: `num_samples` held-out blocks the model never trained on, with `mask_fraction` of their tokens
#   masked; the model fills them, `tokens_per_step` per step, with the true text around every mask.
#
# The histograms show the entropy of every prediction made at a masked position; the curve is this model's
# lambda(H). **What to look for:** SM only acts where the curve is high *and* a histogram has mass. Filling in
# gives the model context on both sides, so its predictions are surer (further left) than when generating from
# nothing. If a histogram sits right of the bend, lambda stays near 0 there: the gate is shut for that use, and
# SM inputs are bare masks in all but name.

# %%
from plotly.subplots import make_subplots

steps = max(2, math.ceil(L / tokens_per_step))
gen_common = dict(prompt=prompt or None, num_samples=num_samples, length=L, steps=steps, strategy="confidence",
                  seed=seed)
generated = {soft: smkit.generate(m, soft_mask=soft, **gen_common) for soft in (True, False)}

source = corpus or (m.train_config or {}).get("corpus", "shakespeare")
_, held_out = split_documents(load_corpus(source), (m.train_config or {}).get("val_fraction", 0.05))
blocks = pack_blocks(held_out, tok, L)
blocks = blocks[torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))[:num_samples]]
gen = torch.Generator().manual_seed(seed)
masks = torch.rand(blocks.shape, generator=gen) < mask_fraction
masks[:, 0] = True  # at least one blank per block
templates = torch.where(masks, torch.full_like(blocks, m.mask_id), blocks)


def fill_in(soft, **options):
    """Decode every template (one generate call per block: each has its own blanks)."""
    out = []
    for i, template in enumerate(templates):
        n = int(masks[i].sum())
        out.append(smkit.generate(m, infill=template, length=L, steps=max(1, math.ceil(n / tokens_per_step)),
                                  strategy="confidence", soft_mask=soft, seed=seed + i, **options))
    return out


filled = {soft: fill_in(soft) for soft in (True, False)}


def entropies_and_lambdas(gens):
    H, lam = [], []
    for g in gens:
        tr = g.trace
        H.append(tr.entropy[tr.masked_before & ~tr.fixed])
        lam.append(tr.lam[tr.masked])
    H, lam = torch.cat(H), torch.cat(lam)
    return H, lam if lam.numel() else torch.zeros(1)


stats = {"generate": entropies_and_lambdas([generated[True]]), "fill in": entropies_and_lambdas(filled[True])}
for name, (H, lam) in stats.items():
    print(f"{name:>8}: {H.numel()} predictions at masked positions, entropy median {H.median():.2f} nats "
          f"(10% below {H.quantile(0.1):.2f}); lambda fed back: mean {lam.mean():.3g}, max {lam.max():.3g}, "
          f"share above w_s/4: {(lam > w_s / 4).float().mean():.1%}")

hs = torch.linspace(0, math.log(V), 300)
fig = make_subplots(specs=[[{"secondary_y": True}]])
for (name, (H, _)), colour in zip(stats.items(), ("#999", "#1f77b4")):
    fig.add_trace(go.Histogram(x=H.tolist(), nbinsx=40, name=f"entropies: {name}", marker_color=colour, opacity=0.6,
                               histnorm="probability"), secondary_y=False)
fig.add_trace(go.Scatter(x=hs.tolist(), y=(w_s * torch.sigmoid(w_a * (-hs - w_b))).tolist(), name="lambda(H)",
                         line={"color": "#d62728"}), secondary_y=True)
fig.add_vrect(x0=max(0.0, -w_b - 2 / w_a), x1=min(math.log(V), -w_b + 2 / w_a), fillcolor="#d62728", opacity=0.08,
              line_width=0, annotation_text="lambda bends")
fig.update_yaxes(title_text="share of predictions", secondary_y=False)
fig.update_yaxes(title_text="lambda", range=[0, max(w_s, 1e-9) * 1.05], secondary_y=True)
fig.update_layout(title=f"{model}: w_s={w_s:.3g}, w_a={w_a:.2f}, w_b={w_b:.2f}", xaxis_title="entropy H (nats)",
                  height=340, barmode="overlay")
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
# After the first step of the first fill-in, take the still-masked position where the model was surest (lowest
# entropy) and the one where it was least sure. The table shows their real top predictions and the weights of the
# rows mixed into their next input: `[MASK]` gets 1 - lambda, candidate i gets lambda * pi_i (with k = 1 there is
# one candidate and pi = 1). **What you should see:** at the sure position lambda is as large as this model's
# gate allows there; at the unsure one lambda is near 0 and the input is (almost) a bare mask.

# %%
first = filled[True][0].trace[0]
still = first.masked[0] & ~first.fixed[0]
sure = int(torch.where(still, first.entropy[0], torch.tensor(float("inf"))).argmin())
unsure = int(torch.where(still, first.entropy[0], torch.tensor(-1.0)).argmax())
bars = go.Figure()
for label, pos in (("surest", sure), ("least sure", unsure)):
    p = first.topk_probs[0, pos, :k].double()
    lam = float(first.lam[0, pos])
    weights = smkit.core.softmask.mixture_weights(torch.tensor(lam, dtype=torch.float64), p.log())
    print(f"{label} still-masked position {pos} (true token {tok.decode([int(blocks[0, pos])])!r}): "
          f"H = {float(first.entropy[0, pos]):.2f} nats, lambda = {lam:.4g}")
    print(f"   {'[MASK]':<20} weight {float(weights[0]):.4f}")
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
    expected = torch.stack([smkit.core.softmask.mixture_weights(torch.tensor(lam, dtype=torch.float64), p.log()).double()
                            for p, lam in cases])
    return check_answer("superposition weights", got, expected)


check_superposition(superposition_weights);

# %% [markdown]
# ## 4. SM on and off, same seed
#
# Each decode above was run twice, with and without SM, on the same seed: every random draw is the same, so any
# difference is SM's doing. For the fill-ins we also know the true text, so we can count the blanks each got
# right. **What you should see:** where lambda never leaves ~0 (typically when generating from nothing), the two
# decodes are identical, and the cell says the gate is shut there. Where some lambdas are open (filling in),
# some tokens differ, and the counts of right blanks tell whether the change helped on these few blocks (a
# difference of a few tokens is within noise). For contrast, the last decode forces the gate wide open
# (w_s = 1, centred at the median entropy of the fill-in predictions, so most blanks get lambda near 1): that is
# *not* how this model was trained, and shows what SM inputs do to a model that never learned to read them.

# %%
def first_difference(a, b):
    """The first step after which the two decodes' tokens differ (None: never)."""
    n = min(len(a.trace), len(b.trace))
    diff = (a.trace.tokens[:n] != b.trace.tokens[:n]).flatten(1).any(-1)
    return int(diff.float().argmax()) if diff.any() else None


def right_blanks(gens):
    return sum(int((g.tokens[0][masks[i]] == blocks[i][masks[i]]).sum()) for i, g in enumerate(gens))


on, off = generated[True], generated[False]
print(f"generate: {int((on.tokens != off.tokens).sum())} of {on.tokens.numel()} tokens differ between SM and binary; "
      f"first differing step {first_difference(on, off)}")
if float(stats["generate"][1].max()) < 1e-3:
    print(f"   the gate is shut when generating: w_s = {w_s:.3g}, the largest lambda fed back was "
          f"{float(stats['generate'][1].max()):.3g}, so each SM input is [MASK] plus less than 0.1% of a token")
blanks = int(masks.sum())
changed = sum(int((a.tokens != b.tokens).sum()) for a, b in zip(filled[True], filled[False]))
print(f"fill in: {changed} of {blanks} blanks differ between SM and binary; right blanks: SM {right_blanks(filled[True])}, "
      f"binary {right_blanks(filled[False])} (of {blanks})")
if float(stats["fill in"][1].max()) < 1e-3:
    print(f"   the gate is shut when filling in too: the largest lambda was {float(stats['fill in'][1].max()):.3g}")
forced = fill_in(True, sm={"scale": 1.0, "centre": -float(stats["fill in"][0].median()), "steepness": w_a})
print(f"gate forced open (not as trained): {sum(int((a.tokens != b.tokens).sum()) for a, b in zip(forced, filled[False]))} "
      f"of {blanks} blanks differ from binary; right blanks {right_blanks(forced)}")
show = lambda ids: tok.decode(ids.tolist()).replace(tok.mask_token, "_")[:300]
print(f"\n--- block 0 with its blanks (_) ---\n{show(templates[0])}")
for name, g in (("true text", None), ("binary", filled[False][0]), ("SM as trained", filled[True][0]),
                ("SM forced open", forced[0])):
    print(f"\n--- {name} ---\n{show(blocks[0] if g is None else g.tokens[0])}")

# %% [markdown]
# ## 5. Step by step (interactive kernels only)
# Scrub through the first SM fill-in: the token strip, lambda and entropy per position and step, and the mixture at
# the selected position. Headless runs skip this cell.

# %%
if interactive:
    from IPython.display import display
    from smkit.widgets import TraceExplorer
    display(TraceExplorer(filled[True][0].trace, model=m))

# %% [markdown]
# ## What to take away
# - SM feeds a still-masked position a mix of `[MASK]` and its top-k guesses, gated by lambda(H).
# - Whether it does anything depends on two things you can read off: w_s (how far the gate can open) and where
#   the model's entropies lie relative to the bend at H = -w_b.
# - Same seed, SM on vs off, isolates SM's effect; an identical output with a shut gate is the expected result,
#   not a bug.
