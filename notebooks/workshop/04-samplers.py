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
# # Workshop 4: samplers: orders, budgets, remasking
#
# **What you will learn**
# - a sampler makes three choices per step: *which* masked positions to reveal (the order), *how many*
#   (the budget: steps), and whether to *remask* some decoded ones (ReMDM);
# - what each number in the tables below measures, and how to read a trade-off between them;
# - to write the confidence rule yourself, tie rule included.
#
# Needs `pip install "smkit[notebooks]"`; one to three minutes on a laptop CPU. SM is off here (`soft_mask`) so
# that only the sampler changes; notebook 03 is about SM.

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "shakespeare-sm"  # shipped model name or checkpoint folder
length: int = 64  # tokens per sample
steps: int = 16  # denoising steps in the comparison of orders (length / steps tokens revealed per step)
budgets: list = [4, 8, 16, 32, 64]  # step counts in the budget sweep, each in [1, length]
strategies: list = ["ancestral", "random", "confidence", "margin", "entropy", "remdm-cap"]  # rules compared, from smkit.STRATEGIES
num_samples: int = 4  # samples per setting
soft_mask: bool = False  # decode with SM inputs (the model's gate) instead of bare masks
seed: int = 0  # the same seed for every decode

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import smkit
from smkit.notebooks import check_answer, check_parameter

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(isinstance(length, int) and length >= 2, "length", length, "must be an integer >= 2")
check_parameter(isinstance(steps, int) and 1 <= steps <= length, "steps", steps, f"an integer in [1, length={length}]")
check_parameter(isinstance(budgets, list) and budgets and all(isinstance(b, int) and 1 <= b <= length for b in budgets),
                "budgets", budgets, f"a non-empty list of integers in [1, length={length}]")
check_parameter(isinstance(strategies, list) and strategies and all(s in smkit.STRATEGIES for s in strategies),
                "strategies", strategies, f"a non-empty list from {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "an integer >= 1")
check_parameter(isinstance(soft_mask, bool), "soft_mask", soft_mask, "True or False")
check_parameter(isinstance(seed, int) and seed >= 0, "seed", seed, "must be an integer >= 0")

# %% [markdown]
# ## 1. The idea
#
# A decode starts from `length` masks. Each step runs the model once on the current state (one forward pass,
# one NFE), gets a distribution p_l at every masked position, and a *rule* picks the positions to reveal; the
# tokens there are sampled from p_l. The rules differ only in their score:
#
# | rule | reveals | score |
# |---|---|---|
# | `ancestral` | each masked position with probability (alpha_s - alpha_t) / (1 - alpha_t) | (a coin per position) |
# | `random` | the n highest | a uniform random number |
# | `confidence` | the n highest | p1 = max_v p_l(v) |
# | `margin` | the n highest | p1 - p2 (best minus second best) |
# | `entropy` | the n highest | -H(p_l) |
# | `remdm-cap` | as ancestral, and each decoded token goes back to `[MASK]` with probability sigma_t | (ReMDM) |
#
# n = masked positions left / steps left (rounded up), so the decode ends on time. `ancestral` is the MDLM
# posterior: it reveals the same number *on average*, so some steps reveal nothing, the input does not change,
# and the sampler reuses the last output instead of running the model: such a step costs no NFE.

# %%
import re

import pandas as pd
import torch

from smkit.io.data import load_corpus
from smkit.evaluation.metrics import repetition_rate, unigram_entropy

m = smkit.load_pretrained(model)
m.eval()
check_parameter(length <= m.config.seq_len, "length", length, f"must be at most the model's seq_len={m.config.seq_len}")
source = (m.train_config or {}).get("corpus", "shakespeare")
WORD = re.compile(r"[A-Za-z_]{2,}")
known = {w.lower() for d in load_corpus(source) for w in WORD.findall(d.text)}
print(f"model {model}; {len(known)} distinct words in its training corpus {source!r}")


def self_nll(tokens):
    """Per sample, the mean over positions of -log p(token | all the other tokens), by the same model: each
    position masked alone."""
    B, L = tokens.shape
    rows = tokens.repeat_interleave(L, 0)                      # [B*L, L]: copy l of sample b ...
    pos = torch.arange(L).repeat(B)
    rows[torch.arange(B * L), pos] = m.mask_id                  # ... with position l masked
    with torch.no_grad():
        logp = torch.cat([m(chunk) for chunk in rows.split(256)])
    return -logp[torch.arange(B * L), pos, tokens.flatten()].view(B, L).mean(1).double()


def describe(g) -> dict:
    """The numbers of one decode setting (all samples together)."""
    tr = g.trace
    words = [w.lower() for t in g.texts for w in WORD.findall(t)]
    share = sum(w in known for w in words) / max(len(words), 1)
    nll = self_nll(g.tokens)
    return {"NFE": g.nfe,
            "p1 at reveal": float(tr.topk_probs[..., 0][tr.revealed].mean()),
            "self NLL": float(nll.mean()),
            "NLL +-": float(nll.std() / len(nll) ** 0.5) if len(nll) > 1 else float("nan"),
            "remasked": int(tr.remasked.sum()) / g.tokens.shape[0],
            "known words": share,
            "known +-": (share * (1 - share) / max(len(words), 1)) ** 0.5,
            "repeated 4-grams": repetition_rate(g.tokens.tolist(), 4),
            "unigram entropy": unigram_entropy(g.tokens.tolist())}


# %% [markdown]
# ## 2. Orders at one budget
#
# Every rule decodes the same `num_samples` samples (same seed) in `steps` steps. The columns:
# - **NFE**: forward passes spent (a step that reveals nothing costs none; +1 if a last pass fills what is left);
# - **p1 at reveal**: the mean probability of the most likely token at each position, *at the step it was
#   revealed*: how sure the model was where it committed, averaged over the whole decode;
# - **self NLL** (+- its standard error over the samples): mean -log p(token | all the other tokens of the
#   finished sample), by the same model, each position masked alone (nats per token). Low = the model finds its
#   own sample coherent;
# - **remasked**: tokens sent back to `[MASK]` per sample (only ReMDM rules do that);
# - **known words** (+- its standard error): share of the words (letters or `_`, 2+ long) in the samples that
#   occur in the training corpus, a rough, judge-free readability score;
# - **repeated 4-grams**: share of 4-token windows that repeat an earlier one in the same sample (0 = none);
#   **unigram entropy**: entropy of a sample's own token counts (low = few distinct tokens, repetitive).
#
# Differences smaller than about two `+-` are noise: a few samples cannot tell the rules apart on those columns.
# **What to look for:** `confidence`, `margin` and `entropy` pick the surest position *at each step*; that is a
# greedy choice. Whether it pays over the whole decode shows in `p1 at reveal` and `self NLL`: on text, the surest
# tokens are often generic (line breaks, spaces, word endings) and give the positions left open little to go on,
# so the greedy rules can end up *less* sure and less coherent than a random order. Read this model's answer off
# the table, then compare with notebook 05, where a sure cell really does pin down the others.

# %%
gens, rows = {}, []
for strategy in strategies:
    g = smkit.generate(m, length=length, steps=steps, strategy=strategy, soft_mask=soft_mask, seed=seed,
                       num_samples=num_samples)
    gens[strategy] = g
    rows.append({"strategy": strategy, **describe(g)})
orders = pd.DataFrame(rows).set_index("strategy")
print(orders.round(3).to_string())
for strategy in strategies:
    print(f"\n--- {strategy}, sample 0 ---\n{gens[strategy].texts[0][:300]}")

# %% [markdown]
# The plot follows sample 0 of the first four rules through the decode. Left: the share of positions still
# masked after each step (every rule ends at 0; `ancestral`'s staircase has flat parts where it revealed
# nothing). Right: the mean entropy over the positions the model predicted at that step (those still masked when
# it began): what it was unsure of at that moment, over all open positions. That is another mean than `p1 at
# reveal`, which looks only at the positions chosen. An adaptive rule leaves its least sure positions for the end,
# so by the last steps its open positions are the hardest ones; a random order keeps a fair mix.

# %%
import plotly.io as pio
from smkit.widgets import figures, sample_view

pio.renderers.default = "plotly_mimetype+notebook"
shown = strategies[:4]
views = [sample_view(gens[s].trace, 0, model=m) for s in shown]
figures.progress_figure(views, list(shown), min(v.num_steps for v in views) - 1).show()

# %% [markdown]
# ## 3. Budgets
#
# Fewer steps means more tokens revealed at once, from one forward pass, each sampled *independently* of the
# others revealed in the same step: two neighbours can be revealed as "of of". The sweep decodes with
# `ancestral` and `confidence` at each budget in `budgets`.
# **What you should see:** NFE equals the steps for `confidence`; for `ancestral` it can be lower at large step
# counts (a step that happens to reveal nothing is free: the input did not change, the last output is reused).
# `self NLL` is clearly higher at the smallest budget than at the largest: tokens chosen together, each without
# seeing the others, fit their neighbours worse. That is the cost of parallel decoding. Between neighbouring
# budgets the differences are often within the `+-`.

# %%
rows = []
for strategy in ("ancestral", "confidence"):
    for b in budgets:
        g = smkit.generate(m, length=length, steps=b, strategy=strategy, soft_mask=soft_mask, seed=seed,
                           num_samples=num_samples)
        rows.append({"strategy": strategy, "steps": b, "tokens per step": round(length / b, 1), **describe(g)})
sweep = pd.DataFrame(rows).drop(columns=["remasked"])
print(sweep.round(3).to_string(index=False))

# %% [markdown]
# ## 4. Remasking
#
# ReMDM lets the sampler change its mind: at each step a decoded token goes back to `[MASK]` with probability
# sigma_t (`remdm-cap`: sigma_t = min(eta, (1 - alpha_s) / alpha_t), with a small eta by default; a larger eta remasks
# more). Below, the positions of sample 0 that were remasked at least once with eta = 0.05, the token before and
# the token finally written there. **What you should see:** remasks scattered over the decode (more with a
# larger eta); some positions come back with the same token, many with another.

# %%
g = smkit.generate(m, length=length, steps=steps, strategy="remdm-cap", eta=0.05, soft_mask=soft_mask, seed=seed,
                   num_samples=num_samples)
tr, tok = g.trace, m.tokenizer
print(f"remdm-cap, eta 0.05: {int(tr.remasked.sum())} remasks over {num_samples} samples, NFE {g.nfe}")
for s, pos in tr.remasked[:, 0].nonzero().tolist()[:8]:
    before = int(tr.tokens[s - 1, 0, pos]) if s > 0 else m.mask_id
    print(f"step {s:3d}, position {pos:3d}: {tok.decode([before])!r} -> [MASK] -> finally "
          f"{tok.decode([int(g.tokens[0, pos])])!r}")

# %% [markdown]
# ## Exercise: the confidence rule
# Given each position's top-1 probability `top1` [L], which positions may be revealed `candidates` [L] (bool)
# and how many to reveal `n`, return a bool mask [L] of the n candidates with the highest `top1`. **Ties: the
# lower position first.** Positions that are not candidates are never picked, however confident. This is what
# `smkit.core.strategies.top_n` does for a batch.

# %% tags=["exercise"]
def pick_most_confident(top1, candidates, n):
    raise NotImplementedError  # your code


# %% tags=["solution"]
def pick_most_confident(top1, candidates, n):
    scores = torch.where(candidates, top1.double(), torch.tensor(float("-inf"), dtype=torch.float64))
    order = torch.sort(scores, descending=True, stable=True).indices[:n]  # stable: equal scores keep position order
    out = torch.zeros_like(candidates)
    out[order] = True
    return out & candidates


# %%
def check_confidence_rule(fn):
    """Ties straddle the cut (0.5 at positions 0, 2, 5, 7; the lowest must win), the most confident positions
    are not candidates, and a random case: ignoring candidates, the reverse order, or the higher position first
    fails."""
    from smkit.core.strategies import top_n
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([0.5, 0.9, 0.5, 0.7, 0.95, 0.5, 0.2, 0.5]),
              torch.tensor([True, True, True, True, False, True, True, True]), 3),
             (torch.tensor([0.3, 0.3, 0.3, 0.3, 0.8, 0.8]), torch.tensor([False, True, True, True, True, False]), 2),
             (torch.rand(12, generator=g), torch.rand(12, generator=g) < 0.7, 4)]
    got = lambda: torch.cat([torch.as_tensor(fn(t, c, n)).bool() for t, c, n in cases])
    expected = torch.cat([top_n(t[None], c[None], torch.tensor([n]))[0] for t, c, n in cases])
    return check_answer("confidence rule (ties, non-candidates, random scores)", got, expected)


check_confidence_rule(pick_most_confident);

# %% [markdown]
# ## What to take away
# - Order: which positions go first. Budget: how many per forward pass. Remasking: whether a decision can be
#   undone. They are independent knobs; SM (notebook 03) is a fourth, orthogonal to all three.
# - Report NFE, not steps: a cache makes some steps free.
# - One readability number can be gamed by repetition: read it beside repeated 4-grams and unigram entropy.
#
# Next: notebook 05, where answers are right or wrong and the order effect is large.
