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
# - what a masked diffusion language model (MDLM; Sahoo et al., 2024, "Simple and Effective Masked Diffusion
#   Language Models") masks: *tokens*, and what a token is here;
# - how it destroys text: the *forward process* and its schedule alpha_t (you write it: `noise()`);
# - what the denoiser predicts (the clean token at every masked position, and nothing else);
# - what the training loss (the ELBO) adds up, why each time t is weighted by 1/t, and how it relates to the
#   perplexity of an ordinary (autoregressive) language model;
# - what the three schedules `loglinear`, `linear` and `cosine` are, seen as functions of t and of alpha.
#
# Needs `pip install "smkit[notebooks]"`; about a minute on a laptop CPU. Cells tagged `exercise` are yours to
# fill in; the `solution` cell after each is dropped from the learner copy
# (`nbstripout --drop-tagged-cells solution`). The check cell after it says whether you got it right, case by
# case, and "not done yet" while the exercise is empty. Lines that start with `verdict:` are computed from the
# numbers measured just above them, with their uncertainty: on another seed or machine they may say otherwise.

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
from smkit.notebooks import check_parameter
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
# ## 1. Tokens
#
# A language model reads text as a sequence of **tokens**, ids in a fixed vocabulary of V entries. Here the
# tokenizer is a byte-pair encoding (BPE) learned on the training text: frequent words are one token, rare ones
# are split into pieces (a character-level model, as in notebook 02, uses one token per character). One more id
# is added to the vocabulary: `[MASK]`. **The forward process masks tokens**, never parts of a token.

# %%
import torch

import smkit
from smkit.io.data import load_corpus, pack_blocks, split_documents

m = smkit.load_pretrained(model)
m.eval()
tok = m.tokenizer
V = m.config.vocab_size - 1  # tokens the model can predict ([MASK] excluded)
source = corpus or (m.train_config or {}).get("corpus", "shakespeare")
_, held_out = split_documents(load_corpus(source), (m.train_config or {}).get("val_fraction", 0.05))
val = pack_blocks(held_out, tok, m.config.seq_len)  # held-out blocks of seq_len tokens, for the experiments below
val = val[torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))[:blocks]]
ids = torch.tensor(tok.encode(text))
print(f"model {model}: vocabulary of {V} tokens + [MASK] (id {m.mask_id}); {len(text)} characters of `text` are "
      f"{len(ids)} tokens:")
print("   " + " | ".join(repr(tok.decode([i]))[1:-1] for i in ids.tolist()))

# %% [markdown]
# ## 2. The forward process
#
# Take a clean text x_0 of L tokens. At time t in [0, 1] every token, independently, is still itself with
# probability alpha_t and has been replaced by `[MASK]` otherwise:
#
#     q(x_t^l = x_0^l) = alpha_t,        q(x_t^l = [MASK]) = 1 - alpha_t
#
# alpha_t falls from 1 (t = 0, clean text) to about 0 (t = 1, all masks). Generation runs this backwards: start
# from all masks and let a model fill them in, a few at a time. Below, `text` corrupted at each of `t_values`
# with the default `loglinear` schedule, where alpha_t = 1 - t (almost: see exercise 1). One `_` is one masked
# token (it may hide several characters).

# %%
from smkit.core.tokens import text_of

gen = torch.Generator().manual_seed(seed)
for tv in t_values:
    a = float(alpha("loglinear", torch.tensor(tv)))
    keep = torch.rand(len(ids), generator=gen) < a
    corrupted = torch.where(keep, ids, torch.full_like(ids, m.mask_id))
    print(f"t={tv:.2f} alpha={a:.3f} masked {int((~keep).sum()):2d}/{len(ids)} tokens: "
          + text_of(corrupted.tolist(), tok, m.mask_id, "_"))

# %% [markdown]
# ## Exercise 1: the log-linear schedule
# Write alpha_t for the log-linear schedule: it falls *linearly* from 1 at t = 0 to `EPS` (= 0.001, not 0) at
# t = 1. `EPS` keeps one token in a thousand clean even at t = 1, so the loss never divides by zero.
# (Calling smkit's own `alpha` does not count: the check refuses it.)

# %% tags=["exercise"]
def loglinear_alpha(t):
    raise NotImplementedError  # your code: return alpha_t for a tensor of times t


# %% tags=["solution"]
def loglinear_alpha(t):
    return 1 - (1 - EPS) * t


# %%
from smkit.exercises import Case, Hint, check


def check_loglinear_alpha(fn):
    """Named times; 1 - t is off by EPS * t (> 1e-5 here), t is the masked share, not the kept one."""
    ts = torch.tensor([0.05, 0.3, 0.6, 0.9])
    return check("log-linear alpha", fn,
                 [Case("t = 0.05, 0.3, 0.6, 0.9", (ts,), alpha("loglinear", ts)),
                  Case("t = 0: clean text", (torch.tensor([0.0]),), torch.tensor([1.0])),
                  Case("t = 1: EPS left clean", (torch.tensor([1.0]),), torch.tensor([EPS]))],
                 hints=[Hint("1 - t reaches 0 at t = 1; the log-linear alpha stops at EPS: 1 - (1 - EPS) t",
                             lambda t: 1 - t),
                        Hint("that is the share MASKED at time t; alpha_t is the share still clean", lambda t: t),
                        Hint("that rises with t; alpha_t must fall from 1 to EPS", lambda t: EPS + (1 - EPS) * t)],
                 forbid=[alpha, *SCHEDULES.values()])


check_loglinear_alpha(loglinear_alpha);

# %% [markdown]
# ## Exercise 2: the forward process, `noise()`
# Write the forward process for a batch: given clean blocks `x0` [B, L] (token ids), one time per block `t` [B],
# the `mask_id` and a random `generator`, return `(x_t, masked)`: `masked` [B, L] is True where the token was
# replaced by `mask_id`, with probability 1 - alpha_t of its block (use your `loglinear_alpha`), and `x_t` is
# `x0` with those tokens replaced. Draw the randomness as smkit does, so the check can compare token for token
# with smkit's `m.noise` on the same seed: **one** call `torch.rand(B, L, generator=generator)`, and a token is
# masked where its uniform is below 1 - alpha_t.

# %% tags=["exercise"]
def noise(x0, t, mask_id, generator):
    raise NotImplementedError  # your code: return x_t, masked


# %% tags=["solution"]
def noise(x0, t, mask_id, generator):
    B, L = x0.shape
    masked = torch.rand(B, L, generator=generator) < (1 - loglinear_alpha(t))[:, None]
    return torch.where(masked, torch.full_like(x0, mask_id), x0), masked


# %%
from smkit import DiffusionLM
from smkit.exercises import describe_difference


def check_noise(fn, m, x0):
    """Against `m.noise` (the library's forward process) on fixed seeds: the same masks and the same x_t. Masking
    with probability alpha_t (the kept share) or one uniform per block fails; calling m.noise is refused."""
    B = len(x0)
    t_rows = torch.linspace(0.1, 1.0, B)

    def library(t, seed):
        x_t, masked, _ = m.noise(x0, t=t, generator=torch.Generator().manual_seed(seed))
        return x_t, masked

    def yours(t, seed):
        return fn(x0, t, m.mask_id, torch.Generator().manual_seed(seed))

    def compare(got, expected, atol):
        if not (isinstance(got, tuple) and len(got) == 2):
            return f"return the pair (x_t, masked); got {type(got).__name__}"
        for what, g, e in (("masked", got[1], expected[1]), ("x_t", got[0], expected[0])):
            diff = describe_difference(g, e)
            if diff:
                return f"{what}: {diff}"
        return None

    def kept_share(t, seed):
        u = torch.rand(x0.shape, generator=torch.Generator().manual_seed(seed))
        masked = u < alpha("loglinear", t)[:, None]
        return torch.where(masked, torch.full_like(x0, m.mask_id), x0), masked

    def one_per_block(t, seed):
        u = torch.rand(len(x0), 1, generator=torch.Generator().manual_seed(seed)).expand(x0.shape)
        masked = u < 1 - alpha("loglinear", t)[:, None]
        return torch.where(masked, torch.full_like(x0, m.mask_id), x0), masked

    cases = [Case(f"t = {', '.join(f'{v:.2f}' for v in t_rows.tolist())}, seed 0", (t_rows, 0),
                  lambda: library(t_rows, 0)),
             Case("the same times, seed 1", (t_rows, 1), lambda: library(t_rows, 1)),
             Case("t = 0.5 for every block, seed 2", (torch.full((B,), 0.5), 2),
                  lambda: library(torch.full((B,), 0.5), 2))]
    return check("noise()", yours, cases, compare=compare, forbid=[DiffusionLM.noise, DiffusionLM.loss],
                 hints=[Hint("you masked where u < alpha_t: alpha_t is the share KEPT; mask where u < 1 - alpha_t",
                             kept_share),
                        Hint("one uniform per block masks all of a block or none of it: draw one per token, "
                             "torch.rand(B, L, generator=generator)", one_per_block)])


check_noise(noise, m, val[:4]);

# %% [markdown]
# ## 3. What the denoiser predicts
#
# The denoiser f_theta reads the corrupted sequence x_t (it is *not* told t) and returns, **at every masked
# position, a distribution over the clean token x_0 there**. It does not predict the next, slightly less noisy
# state, and it predicts nothing at unmasked positions: they are copied ("SUBS": the mask token itself is
# never predicted). Here is a real model on held-out text it never trained on, half the tokens masked.

# %%
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
print("corrupted (_ = one masked token):", text_of(x_t[0, :40].tolist(), tok, m.mask_id, "_"), "...")
print(f"\n{'position':>8}  {'clean token':>12}  model's top 3 guesses (probability)")
for pos in masked[0].nonzero().flatten()[:8].tolist():
    top = logp[0, pos].exp().topk(3)
    guesses = "  ".join(f"{show(i)} {p:.2f}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
    print(f"{pos:>8}  {show(x0[0, pos]):>12}  {guesses}")
unmasked = (~masked[0]).nonzero().flatten()[0].item()
print(f"\nat an unmasked position ({unmasked}) the output is one-hot on the input token: "
      f"p = {logp[0, unmasked].exp().max():.3f}")

# %% [markdown]
# ## 4. The ELBO: what the loss adds up
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
# The experiment: mean cross-entropy per masked token at a grid of times, on the held-out blocks (error bars:
# one standard error over the blocks). The bound is then estimated twice: from the grid (each block's weighted
# sum at every grid time, averaged over t) and as the library does in training, one random t per block
# (`validation_bound`, 4 draws per block). The `verdict:` lines say what the numbers show.

# %%
import math

import plotly.graph_objects as go
import plotly.io as pio

from smkit.evaluation.evidence import Estimate, mean_difference

pio.renderers.default = "plotly_mimetype+notebook"
grid = (torch.arange(n_times) + 0.5) / n_times  # midpoints: the mean over the grid approximates the integral over t
gen = torch.Generator().manual_seed(seed)
L = val.shape[1]
per_time, per_block_grid = [], torch.zeros(len(val), dtype=torch.float64)
with torch.no_grad():
    for tv in grid:
        a = alpha("loglinear", tv)
        mask = torch.rand(val.shape, generator=gen) >= a
        nll = -m(torch.where(mask, torch.full_like(val, m.mask_id), val)).gather(-1, val.unsqueeze(-1)).squeeze(-1)
        has = mask.any(-1)
        per_time.append(Estimate.of(((nll * mask).sum(-1)[has] / mask.sum(-1)[has]).double())
                        if int(has.sum()) >= 2 else Estimate(float((nll * mask).sum() / mask.sum().clamp(min=1)), float("nan")))
        per_block_grid += ((1 - EPS) / (1 - a) * (nll * mask).sum(-1) / L).double() / n_times


def per_block_bound(blocks_, seed_, repeats):
    """Each block's Monte-Carlo bound as in training: `repeats` draws of (t, mask) per block, the 1/t-weighted sum."""
    g = torch.Generator().manual_seed(seed_)
    out = torch.zeros(len(blocks_), dtype=torch.float64)
    with torch.no_grad():
        for _ in range(repeats):
            x_t_, masked_, weight = m.noise(blocks_, generator=g)
            nll_ = -m(x_t_).gather(-1, blocks_.unsqueeze(-1)).squeeze(-1)
            out += ((weight[:, None] * nll_ * masked_).sum(-1) / blocks_.shape[1]).double() / repeats
    return out


from_grid = Estimate.of(per_block_grid)
monte_carlo = Estimate.of(per_block_bound(val, seed, 4))
ln_v = math.log(V)
print(f"bound from the grid: {from_grid} nats/token; Monte-Carlo as in training: {monte_carlo} "
      f"(m.validation_bound: {m.validation_bound(val, seed=seed, repeats=4):.3f}); uniform guess ln V = {ln_v:.3f}")
first, last = per_time[0], per_time[-1]
print("verdict: " + mean_difference(last, first, f"cross-entropy at t = {grid[-1]:.2f}", f"at t = {grid[0]:.2f}",
                                    "nats", larger="is higher than", smaller="is lower than").text)
highest = max(per_time, key=lambda e: e.value)
if highest.se == highest.se and highest.se > 0:
    z = (ln_v - highest.value) / highest.se
    print(f"verdict: the highest point of the curve, {highest}, lies {'below' if z > 0 else 'above'} ln V = {ln_v:.3f} "
          f"by {abs(z):.1f} standard errors" + (": the model does better than a uniform guess even with "
                                               "(almost) everything masked" if z > 2 else ""))
print("verdict: " + mean_difference(from_grid, monte_carlo, "the grid's bound", "the Monte-Carlo bound",
                                    "nats/token").text)
fig = go.Figure(go.Scatter(x=grid.tolist(), y=[e.value for e in per_time], mode="lines+markers", name="model",
                           error_y=dict(type="data", array=[e.se if e.se == e.se else 0 for e in per_time])))
fig.add_hline(y=ln_v, line_dash="dot", annotation_text="uniform guess, ln V")
fig.update_layout(title="mean cross-entropy per masked token (held-out blocks)", xaxis_title="t (fraction masked)",
                  yaxis_title="nats per masked token", height=320)
fig.show()

# %% [markdown]
# ## Exercise 3: the bound of one batch
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
    """Against the model's own loss on the same noise, at two sets of times. Without the weight, with t instead
    of 1/t, or averaged over masked positions only, the answer is off by a factor of about t or more."""
    def case(t, s):
        x_t, msk, weight = m.noise(x0, t=t, generator=torch.Generator().manual_seed(s))
        with torch.no_grad():
            expected = float(m.loss(x0, noised=(x_t, msk, weight)))
            logp = m(x_t)
        return Case(f"t = {', '.join(f'{v:.2f}' for v in t.tolist())}", (x0, msk, logp, t), expected)

    def nll(x0, logp):
        return -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)

    t1 = torch.tensor([0.15, 0.4, 0.65, 0.9])[: len(x0)]
    t2 = torch.full((len(x0),), 0.5)
    return check("batch bound", fn, [case(t1, seed), case(t2, seed + 1)], atol=1e-4,
                 forbid=[DiffusionLM.loss, DiffusionLM.validation_bound],
                 hints=[Hint("no 1/t weight: each block's sum must be multiplied by w(t) = 1/t",
                             lambda x0, masked, logp, t: float((nll(x0, logp) * masked).sum() / x0.numel())),
                        Hint("divide by the number of tokens B * L, not by the number of masked tokens",
                             lambda x0, masked, logp, t: float(((1 - EPS) / (1 - alpha("loglinear", t))[:, None]
                                                                * nll(x0, logp) * masked).sum() / masked.sum())),
                        Hint("the weight is 1/t, not t",
                             lambda x0, masked, logp, t: float((t[:, None] * nll(x0, logp) * masked).sum()
                                                               / x0.numel()))])


check_batch_bound(batch_bound, m, val[:4], seed);

# %% [markdown]
# ## From the bound to perplexity: MDLMs and autoregressive LMs
#
# An autoregressive language model (GPT-style) writes left to right and factorises
# p(x) = p(x_1) p(x_2 | x_1) ... p(x_L | x_<L); its training loss is the exact negative log-likelihood (NLL) per
# token, and its **perplexity** is exp(NLL per token): the number of equally likely tokens it hesitates between,
# on average. An MDLM cannot compute its NLL exactly, only the bound above, so exp(bound) is an *upper bound* on
# its perplexity. MDLM papers report that number beside an autoregressive model's perplexity on the same text and
# tokenizer (lower is better; it counts per token, so compare only models with the same tokenizer).

# %%
print(f"this model: bound {monte_carlo.value:.3f} nats/token -> perplexity at most exp({monte_carlo.value:.3f}) = "
      f"{math.exp(monte_carlo.value):.1f} (uniform guess: V = {V}; 95% range of the bound's estimate: "
      f"{math.exp(monte_carlo.value - 1.96 * monte_carlo.se):.1f} to {math.exp(monte_carlo.value + 1.96 * monte_carlo.se):.1f})")

# %% [markdown]
# ## 5. Three schedules, in t and in alpha
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
# alpha, the share of 20000 draws per bin of alpha.

# %%
from plotly.subplots import make_subplots

t = torch.linspace(0.005, 1.0, 400)
fig = make_subplots(rows=1, cols=3, subplot_titles=["alpha_t (share of clean tokens)", "ELBO weight w(t), log scale",
                                                    "a uniform t lands at alpha ..."])
colours = {"loglinear": "#1f77b4", "linear": "#d62728", "cosine": "#2ca02c"}
edges = torch.linspace(0, 1, 21)
for name in schedules:
    a, w = SCHEDULES[name](t)
    style = dict(name=name, legendgroup=name, line={"color": colours.get(name)})
    fig.add_trace(go.Scatter(x=t.tolist(), y=a.tolist(), **style), 1, 1)
    fig.add_trace(go.Scatter(x=t.tolist(), y=w.tolist(), showlegend=False, **style), 1, 2)
    draws = SCHEDULES[name](torch.rand(20000, generator=torch.Generator().manual_seed(seed)))[0]
    share = torch.histc(draws, bins=20, min=0, max=1) / len(draws)  # counted here: the figure keeps 20 bars, not 20000 draws
    fig.add_trace(go.Bar(x=((edges[:-1] + edges[1:]) / 2).tolist(), y=share.tolist(), width=0.05, opacity=0.5,
                         showlegend=False, marker_color=colours.get(name), name=name), 1, 3)
fig.update_yaxes(type="log", row=1, col=2)
fig.update_layout(height=340, barmode="overlay", xaxis_title="t", xaxis2_title="t", xaxis3_title="alpha")
fig.show()
for name in schedules:
    print(f"{name:>9}: alpha at t = 0.01, 0.25, 0.5, 0.75: "
          + ", ".join(f"{float(alpha(name, torch.tensor(v))):.3f}" for v in (0.01, 0.25, 0.5, 0.75)))

# %% [markdown]
# **The experiment:** the bound of the same held-out blocks estimated with each schedule, one random t per block
# (as in training), `4 * blocks` draws each, each with its standard error. The theory says the means agree and
# only the standard errors differ (`linear` spends most draws on fully masked blocks and gets the low-noise levels
# from a few heavily weighted draws). One small exception: times in [EPS, 1] reach alpha at most alpha_EPS, so a
# schedule leaves out the part of the integral above alpha_EPS; for `linear` alpha_EPS = 0.98, 2% of the
# integral. The `verdict:` lines compare each schedule with the first one and size that left-out part.

# %%
rows, estimates = [], {}
gen = torch.Generator().manual_seed(seed)
reps = val.repeat(4, 1)
with torch.no_grad():
    for name in schedules:
        ts = EPS + (1 - EPS) * torch.rand(len(reps), generator=gen)
        a, w = SCHEDULES[name](ts)
        mask = torch.rand(reps.shape, generator=gen) >= a[:, None]
        logp = m(torch.where(mask, torch.full_like(reps, m.mask_id), reps))
        nll = -logp.gather(-1, reps.unsqueeze(-1)).squeeze(-1)
        estimates[name] = Estimate.of((w[:, None] * nll * mask).sum(-1).double() / reps.shape[1])
        print(f"{name:>9}: bound {estimates[name]} (standard error of {len(reps)} draws)")
base = schedules[0]
low_noise = per_time[0].value  # mean cross-entropy at the smallest t of the grid: about the integrand near alpha = 1
for name in schedules[1:]:
    print("verdict: " + mean_difference(estimates[name], estimates[base], name, base, "nats/token").text)
    print(f"verdict: {name}'s standard error is {estimates[name].se / estimates[base].se:.1f} times {base}'s")
for name in schedules:
    top = float(alpha(name, torch.tensor(EPS)))
    left_out = (1 - top) * low_noise
    print(f"verdict: {name} reaches alpha = {top:.3f} at t = EPS; the part of the integral above it is about "
          f"(1 - {top:.3f}) x {low_noise:.2f} = {left_out:.3f} nats/token, "
          + ("smaller than its standard error" if left_out < estimates[name].se else "larger than its standard error")
          + f" ({estimates[name].se:.3f})")

# %% [markdown]
# ## Exercise 4: the ELBO weight of any schedule
# Write `elbo_weight(alpha_fn, t)` = -alpha'_t / (1 - alpha_t), where `alpha_fn(t)` gives alpha_t for a tensor of
# times. Differentiate with autograd (`t.requires_grad_()`, `torch.autograd.grad`) or with a small central
# difference. The check gives you smkit's three schedules and two it does not know (alpha = 1 - t^2 and a plain
# cosine): for `loglinear` you should get 1/t; for the others you will not.

# %% tags=["exercise"]
def elbo_weight(alpha_fn, t):
    raise NotImplementedError  # your code: a tensor of weights, one per time


# %% tags=["solution"]
def elbo_weight(alpha_fn, t):
    t = t.detach().clone().requires_grad_()
    a = alpha_fn(t)
    (da,) = torch.autograd.grad(a.sum(), t)
    return (-da / (1 - a)).detach()


# %%
def check_elbo_weight(fn):
    """Every schedule at times 0.05..0.9, as a ratio to the true weight (1.0 everywhere when right): 1/t is right
    for loglinear only; a missing minus sign, or forgetting to divide by 1 - alpha, fails."""
    ts = torch.tensor([0.05, 0.2, 0.5, 0.9], dtype=torch.float64)
    schedules_ = {name: ((lambda t, name=name: alpha(name, t)), SCHEDULES[name](ts)[1]) for name in sorted(SCHEDULES)}
    schedules_["alpha = 1 - t^2"] = (lambda t: 1 - t ** 2, 2 * ts / ts ** 2)
    schedules_["alpha = cos(pi t / 2)"] = (lambda t: torch.cos(math.pi * t / 2),
                                           (math.pi / 2) * torch.sin(math.pi * ts / 2) / (1 - torch.cos(math.pi * ts / 2)))

    def ratio(alpha_fn, true_weight):
        got = fn(alpha_fn, ts.clone())
        return None if got is None else torch.as_tensor(got).double() / true_weight

    def derivative(alpha_fn, t):
        t = t.detach().clone().requires_grad_()
        return torch.autograd.grad(alpha_fn(t).sum(), t)[0]

    cases = [Case(name, (f, w), torch.ones(len(ts))) for name, (f, w) in schedules_.items()]
    wrong = lambda weight: (lambda f, w: weight(f, ts.clone()).double() / w)  # noqa: E731
    return check("ELBO weight (yours / the true one at t = 0.05, 0.2, 0.5, 0.9)", ratio, cases, atol=1e-3,
                 hints=[Hint("1/t is the weight of the log-linear schedule only: use alpha_fn",
                             wrong(lambda f, t: 1 / t)),
                        Hint("the minus sign: alpha falls, so alpha' < 0 and the weight -alpha' / (1 - alpha) > 0",
                             wrong(lambda f, t: derivative(f, t) / (1 - f(t)))),
                        Hint("divide -alpha' by 1 - alpha_t (the masked share), not by alpha_t",
                             wrong(lambda f, t: -derivative(f, t) / f(t))),
                        Hint("divide -alpha' by 1 - alpha_t", wrong(lambda f, t: -derivative(f, t)))])


check_elbo_weight(elbo_weight);

# %% [markdown]
# ## What to take away
# - A token is an entry of the model's vocabulary (here a BPE piece); masking is independent per token, and the
#   schedule alpha_t only sets how much is masked at time t.
# - The model predicts the clean token at each mask. The loss scores only masked positions.
# - With weight 1/t the bound is the average over noise levels of the mean cross-entropy per masked token; in
#   alpha it is the same integral for every schedule, and the schedule only moves the Monte-Carlo noise.
# - exp(bound) bounds the perplexity from above: the number to hold against an autoregressive model's.
#
# Next: notebook 02 trains such a model from scratch.
