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
# # Workshop 1: the forward process and the ELBO
#
# **What you will learn**
# - how a masked diffusion language model (MDLM) destroys text: the *forward process* and its schedule alpha_t;
# - what the denoiser predicts (the clean token at every masked position, and nothing else);
# - what the training loss (the ELBO) adds up, and why each time t is weighted by 1/t;
# - what the three schedules `loglinear`, `linear` and `cosine` are, seen as functions of t and of alpha.
#
# Needs `pip install "smkit[notebooks]"`; about a minute on a laptop CPU. Cells tagged `exercise` are yours to
# fill in; the `solution` cell after each is dropped from the learner copy
# (`nbstripout --drop-tagged-cells solution`). The check cell after it says whether you got it right.

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "shakespeare-sm"  # shipped model name or checkpoint folder, used for the experiments
corpus: Optional[str] = None  # held-out text for the experiments; None: the corpus the model was trained on
text: str = "To be, or not to be, that is the question."  # the text we corrupt by hand
t_values: list = [0.1, 0.5, 0.9]  # times shown, each in (0, 1]
schedules: list = ["loglinear", "linear", "cosine"]  # schedules plotted, from smkit.core.schedules.SCHEDULES
blocks: int = 16  # held-out blocks in the experiments (more: less noise, slower)
n_times: int = 10  # times on the grid of the cross-entropy curve
seed: int = 0  # fixes the random masks

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
from smkit.notebooks import check_answer, check_parameter
from smkit.core.schedules import EPS, SCHEDULES, alpha

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(corpus is None or (isinstance(corpus, str) and corpus != ""), "corpus", corpus,
                "None or a built-in corpus name / local path")
check_parameter(isinstance(text, str) and len(text) >= 2, "text", text, "must be text of at least 2 characters")
check_parameter(isinstance(t_values, list) and t_values and all(isinstance(t, (int, float)) and 0 < t <= 1 for t in t_values),
                "t_values", t_values, "a non-empty list of times in (0, 1]")
check_parameter(isinstance(schedules, list) and schedules and all(s in SCHEDULES for s in schedules), "schedules",
                schedules, f"a non-empty list from {sorted(SCHEDULES)}")
check_parameter(isinstance(blocks, int) and blocks >= 2, "blocks", blocks, "must be an integer >= 2")
check_parameter(isinstance(n_times, int) and n_times >= 2, "n_times", n_times, "must be an integer >= 2")
check_parameter(isinstance(seed, int), "seed", seed, "must be an integer")

# %% [markdown]
# ## 1. The forward process
#
# Take a clean text x_0 of L tokens. At time t in [0, 1] every token, independently, is still itself with
# probability alpha_t and has been replaced by `[MASK]` otherwise:
#
#     q(x_t^l = x_0^l) = alpha_t,        q(x_t^l = [MASK]) = 1 - alpha_t
#
# alpha_t falls from 1 (t = 0, clean text) to about 0 (t = 1, all masks). Generation runs this backwards: start
# from all masks and let a model fill them in, a few at a time. Below, `text` corrupted at each of `t_values`
# with the default `loglinear` schedule, where alpha_t = 1 - t (almost: see exercise 1). `_` is a mask.

# %%
import torch

gen = torch.Generator().manual_seed(seed)
for tv in t_values:
    a = float(alpha("loglinear", torch.tensor(tv)))
    keep = torch.rand(len(text), generator=gen) < a
    print(f"t={tv:.2f} alpha={a:.3f} masked {int((~keep).sum()):2d}/{len(text)}: "
          + "".join(c if k else "_" for c, k in zip(text, keep.tolist())))

# %% [markdown]
# ## Exercise 1: the log-linear schedule
# Write alpha_t for the log-linear schedule: it falls *linearly* from 1 at t = 0 to `EPS` (= 0.001, not 0) at
# t = 1. `EPS` keeps one token in a thousand clean even at t = 1, so the loss never divides by zero.

# %% tags=["exercise"]
def loglinear_alpha(t):
    raise NotImplementedError  # your code: return alpha_t for a tensor of times t


# %% tags=["solution"]
def loglinear_alpha(t):
    return 1 - (1 - EPS) * t


# %%
def check_loglinear_alpha(fn):
    """At fixed times (not the parameters): 1 - t is off by EPS * t, which is > 1e-5 here."""
    ts = torch.tensor([0.05, 0.3, 0.6, 0.9, 1.0])
    return check_answer("loglinear alpha", lambda: fn(ts), alpha("loglinear", ts))


check_loglinear_alpha(loglinear_alpha);

# %% [markdown]
# ## 2. What the denoiser predicts
#
# The denoiser f_theta reads the corrupted sequence x_t (it is *not* told t) and returns, **at every masked
# position, a distribution over the clean token x_0 there**. It does not predict the next, slightly less noisy
# state, and it predicts nothing at unmasked positions: they are copied ("SUBS": the mask token itself is
# never predicted). Here is a real model on held-out text it never trained on, half the tokens masked.

# %%
import smkit
from smkit.io.data import load_corpus, pack_blocks, split_documents

m = smkit.load_pretrained(model)
m.eval()
tok = m.tokenizer
source = corpus or (m.train_config or {}).get("corpus", "shakespeare")
_, held_out = split_documents(load_corpus(source), (m.train_config or {}).get("val_fraction", 0.05))
val = pack_blocks(held_out, tok, m.config.seq_len)
val = val[torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))[:blocks]]
V = m.config.vocab_size - 1  # tokens the model can predict ([MASK] excluded)
print(f"model {model}: {sum(p.numel() for p in m.parameters()) / 1e6:.1f}M parameters, {V} tokens, "
      f"blocks of {m.config.seq_len} tokens; {len(val)} held-out blocks from {source!r}")


def show(i):
    return repr(tok.decode([int(i)]))


gen = torch.Generator().manual_seed(seed)
x0 = val[:1]
masked = torch.rand(x0.shape, generator=gen) < 0.5
x_t = torch.where(masked, torch.full_like(x0, m.mask_id), x0)
with torch.no_grad():
    logp = m(x_t)  # [1, L, V+1] log-probabilities of the clean token
print("corrupted:", tok.decode(x_t[0, :40].tolist()).replace(tok.mask_token, "_"), "...")
print(f"\n{'position':>8}  {'clean token':>12}  model's top 3 guesses (probability)")
for pos in masked[0].nonzero().flatten()[:8].tolist():
    top = logp[0, pos].exp().topk(3)
    guesses = "  ".join(f"{show(i)} {p:.2f}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
    print(f"{pos:>8}  {show(x0[0, pos]):>12}  {guesses}")
unmasked = (~masked[0]).nonzero().flatten()[0].item()
print(f"\nat an unmasked position ({unmasked}) the output is one-hot on the input token: "
      f"p = {logp[0, unmasked].exp().max():.3f}")

# %% [markdown]
# ## 3. The ELBO: what the loss adds up
#
# Training minimises an upper bound on the negative log-likelihood of x_0 (nats per token):
#
#     bound = E_{t ~ U(0,1)} [ w(t) * sum over masked l of -log p_theta(x_0^l | x_t) ] / L,      w(t) = -alpha'_t / (1 - alpha_t)
#
# Only masked positions are scored: the sum is the cross-entropy of the model's guesses at the masks. For the
# log-linear schedule w(t) = 1/t. **Why 1/t:** at time t about a fraction t of the L tokens are masked, so the sum
# has about t*L terms; dividing by t turns it into L times the *mean* cross-entropy per masked token. The bound
# is therefore the average, over t, of "how well does the model guess a masked token when a fraction t of the
# text is hidden". Every noise level counts the same, however few masks it has.
#
# The experiment: mean cross-entropy per masked token at a grid of times, on the held-out blocks.
# **What you should see:** low at small t (lots of context around each mask), rising towards t = 1, where the
# model sees almost nothing and can do little better than the token frequencies. It stays well below ln V, the
# cross-entropy of a uniform guess. The mean of the curve over t is the bound, and it matches the library's
# Monte-Carlo `validation_bound` (random t per block) within its noise.

# %%
import plotly.graph_objects as go
import plotly.io as pio

pio.renderers.default = "plotly_mimetype+notebook"
grid = (torch.arange(n_times) + 0.5) / n_times  # midpoints: the mean over the grid approximates the integral over t
gen = torch.Generator().manual_seed(seed)
curve = []
with torch.no_grad():
    for tv in grid:
        a = alpha("loglinear", tv)
        mask = torch.rand(val.shape, generator=gen) >= a
        logp = m(torch.where(mask, torch.full_like(val, m.mask_id), val))
        nll = -logp.gather(-1, val.unsqueeze(-1)).squeeze(-1)
        curve.append(float(nll[mask].mean()))
bound_from_curve = sum(curve) / len(curve)
library = m.validation_bound(val, seed=seed, repeats=4)
print(f"mean of the curve over t: {bound_from_curve:.3f} nats/token; m.validation_bound: {library:.3f}; "
      f"uniform guess ln V = {torch.log(torch.tensor(float(V))):.3f}")
fig = go.Figure(go.Scatter(x=grid.tolist(), y=curve, mode="lines+markers", name="model"))
fig.add_hline(y=float(torch.log(torch.tensor(float(V)))), line_dash="dot", annotation_text="uniform guess, ln V")
fig.update_layout(title="mean cross-entropy per masked token (held-out blocks)", xaxis_title="t (fraction masked)",
                  yaxis_title="nats per masked token", height=320)
fig.show()

# %% [markdown]
# ## Exercise 2: the bound of one batch
# Given clean blocks `x0` [B, L], which positions are masked `masked` [B, L], the model's log-probabilities
# `logp` [B, L, V+1] on the corrupted blocks and each block's time `t` [B] (log-linear schedule), return the
# Monte-Carlo estimate of the bound in nats per token: the 1/t-weighted sum of -log p_theta(x_0) over masked
# positions, divided by the number of tokens B * L. `logp.gather(-1, x0.unsqueeze(-1))` picks log p(x_0).

# %% tags=["exercise"]
def batch_bound(x0, masked, logp, t):
    raise NotImplementedError  # your code: a float, nats per token


# %% tags=["solution"]
def batch_bound(x0, masked, logp, t):
    nll = -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # [B, L]
    weight = (1 - EPS) / (1 - alpha("loglinear", t))  # = 1/t for the log-linear schedule
    return float((weight[:, None] * nll * masked).sum() / x0.numel())


# %%
def check_batch_bound(fn, m, x0, seed=0):
    """Against the model's own loss on the same noise. Without the weight, with t instead of 1/t, or averaged
    over masked positions only, the answer is off by a factor of about t or more."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor([0.15, 0.4, 0.65, 0.9])[: len(x0)]
    x_t, msk, weight = m.noise(x0, t=t, generator=g)
    with torch.no_grad():
        expected = float(m.loss(x0, noised=(x_t, msk, weight)))
        logp = m(x_t)
    return check_answer("batch bound", lambda: fn(x0, msk, logp, t), expected, atol=1e-4)


check_batch_bound(batch_bound, m, val[:4], seed);

# %% [markdown]
# ## 4. Three schedules, in t and in alpha
#
# A schedule is only a way of choosing how much to mask at time t:
# - **`loglinear`**: alpha_t = 1 - (1 - EPS) t, *linear in t*. Its name comes from the total noise
#   sigma_t = -log alpha_t = -log(1 - t), which is a log of a linear function. Weight 1/t.
# - **`linear`**: the *total noise* sigma_t is linear in t (from 1e-4 to 20) and alpha_t = exp(-sigma_t); alpha is
#   not linear at all: 0.82 already at t = 0.01 and 0.007 at t = 0.25. Three quarters of the times mask > 99%.
# - **`cosine`**: alpha_t = cos(pi t / 2), slow at first, fast at the end.
#
# Change variables from t to alpha: w(t) dt = -d alpha / (1 - alpha), and about (1 - alpha) L tokens are masked,
# so **bound = integral over alpha from 0 to 1 of the mean masked cross-entropy at clean fraction alpha**: the same
# number for every schedule. A schedule changes only *which* masking levels a random t lands on, hence the noise
# of a Monte-Carlo estimate. Left: alpha_t. Middle: the weight (log scale). Right: where a uniform t lands in
# alpha, the share of draws per bin of alpha.

# %%
from plotly.subplots import make_subplots

t = torch.linspace(0.005, 1.0, 400)
fig = make_subplots(rows=1, cols=3, subplot_titles=["alpha_t (share of clean tokens)", "ELBO weight w(t), log scale",
                                                    "a uniform t lands at alpha ..."])
colours = {"loglinear": "#1f77b4", "linear": "#d62728", "cosine": "#2ca02c"}
for name in schedules:
    a, w = SCHEDULES[name](t)
    style = dict(name=name, legendgroup=name, line={"color": colours.get(name)})
    fig.add_trace(go.Scatter(x=t.tolist(), y=a.tolist(), **style), 1, 1)
    fig.add_trace(go.Scatter(x=t.tolist(), y=w.tolist(), showlegend=False, **style), 1, 2)
    draws = SCHEDULES[name](torch.rand(20000, generator=torch.Generator().manual_seed(seed)))[0]
    fig.add_trace(go.Histogram(x=draws.tolist(), xbins=dict(start=0, end=1, size=0.05), histnorm="probability",
                               opacity=0.5, showlegend=False, marker_color=colours.get(name), name=name), 1, 3)
fig.update_yaxes(type="log", row=1, col=2)
fig.update_layout(height=340, barmode="overlay", xaxis_title="t", xaxis2_title="t", xaxis3_title="alpha")
fig.show()
for name in schedules:
    print(f"{name:>9}: alpha at t = 0.01, 0.25, 0.5, 0.75: "
          + ", ".join(f"{float(alpha(name, torch.tensor(v))):.3f}" for v in (0.01, 0.25, 0.5, 0.75)))

# %% [markdown]
# **The experiment:** the bound of the same held-out blocks estimated with each schedule, one random t per block
# (as in training), `4 * blocks` draws each. **What you should see:** the means agree within about two standard
# errors (the bound does not depend on the schedule), while the standard errors differ: `linear` spends most
# draws on fully masked blocks and gets the low-noise levels from a few heavily weighted draws. `linear` can read
# a little lower: its times in [EPS, 1] reach alpha = 0.98 only, so it leaves out the last 2% of the integral.

# %%
import math

rows = []
gen = torch.Generator().manual_seed(seed)
reps = val.repeat(4, 1)
with torch.no_grad():
    for name in schedules:
        ts = EPS + (1 - EPS) * torch.rand(len(reps), generator=gen)
        a, w = SCHEDULES[name](ts)
        mask = torch.rand(reps.shape, generator=gen) >= a[:, None]
        logp = m(torch.where(mask, torch.full_like(reps, m.mask_id), reps))
        nll = -logp.gather(-1, reps.unsqueeze(-1)).squeeze(-1)
        per_block = (w[:, None] * nll * mask).sum(-1) / reps.shape[1]
        se = float(per_block.std()) / math.sqrt(len(per_block))
        rows.append(f"{name:>9}: bound {float(per_block.mean()):.3f} +- {se:.3f} (standard error of {len(per_block)} draws)")
print("\n".join(rows))

# %% [markdown]
# ## Exercise 3: the ELBO weight of any schedule
# Write `elbo_weight(name, t)` = -alpha'_t / (1 - alpha_t) for the schedule `name`, using only
# `alpha(name, t)`. Differentiate with autograd (`t.requires_grad_()`, `torch.autograd.grad`) or with a small
# central difference. For `loglinear` you should get 1/t; for the other two you will not.

# %% tags=["exercise"]
def elbo_weight(name, t):
    raise NotImplementedError  # your code: a tensor of weights, one per time


# %% tags=["solution"]
def elbo_weight(name, t):
    t = t.detach().clone().requires_grad_()
    a = alpha(name, t)
    (da,) = torch.autograd.grad(a.sum(), t)
    return (-da / (1 - a)).detach()


# %%
def check_elbo_weight(fn):
    """Every schedule at times 0.05..0.9, as a ratio to the true weight (1.0 everywhere when right): 1/t is right
    for loglinear only; a missing minus sign, or forgetting to divide by 1 - alpha, fails everywhere."""
    ts = torch.tensor([0.05, 0.2, 0.5, 0.9], dtype=torch.float64)
    ratios = torch.stack([fn(name, ts).double() / SCHEDULES[name](ts)[1] for name in sorted(SCHEDULES)])
    return check_answer("ELBO weight (your weight / the true one, per schedule and time)", lambda: ratios,
                        torch.ones_like(ratios), atol=1e-3)


check_elbo_weight(elbo_weight);

# %% [markdown]
# ## What to take away
# - Masking is independent per token; the schedule alpha_t only sets how much is masked at time t.
# - The model predicts the clean token at each mask. The loss scores only masked positions.
# - With weight 1/t the bound is the average over noise levels of the mean cross-entropy per masked token; in
#   alpha it is the same integral for every schedule, and the schedule only moves the Monte-Carlo noise.
#
# Next: notebook 02 trains such a model from scratch.
