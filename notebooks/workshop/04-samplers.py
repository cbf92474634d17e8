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
#   (the budget: steps), and whether to *remask* some decoded ones (ReMDM: Wang et al., 2025, "Remasking Discrete
#   Diffusion Models with Inference-Time Scaling");
# - what each number in the tables below measures, and how to read a trade-off between them;
# - to write the confidence rule yourself, tie rule included, and then a whole sampler in about 15 lines that
#   decodes exactly as smkit does.
#
# Needs `pip install "smkit[notebooks]"`; one to three minutes on a laptop CPU. SM is off here (`soft_mask`) so
# that only the sampler changes; notebook 03 is about SM. The model's tokens are byte-pair pieces of Shakespeare
# (1023 of them plus `[MASK]`); a step reveals whole tokens. Lines that start with `verdict:` are computed from
# the numbers measured above them, with their uncertainty.

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
from smkit.notebooks import bool_parameter, check_parameter

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(isinstance(length, int) and length >= 2, "length", length, "must be an integer >= 2")
check_parameter(isinstance(steps, int) and 1 <= steps <= length, "steps", steps, f"an integer in [1, length={length}]")
check_parameter(isinstance(budgets, list) and budgets and all(isinstance(b, int) and 1 <= b <= length for b in budgets),
                "budgets", budgets, f"a non-empty list of integers in [1, length={length}]")
check_parameter(isinstance(strategies, list) and strategies and all(s in smkit.STRATEGIES for s in strategies),
                "strategies", strategies, f"a non-empty list from {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "an integer >= 1")
soft_mask = bool_parameter(soft_mask, "soft_mask")  # papermill's own -p passes true/false as text
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
# | `ancestral` | each masked position with probability (alpha_s - alpha_t) / (1 - alpha_t) | (a coin per position: MDLM's sampler, Sahoo et al., 2024) |
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

from smkit.evaluation.evidence import Estimate, mean_difference, paired_difference
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


per_sample_nll = {}  # (setting) -> per-sample self NLL, for the verdicts


def describe(g, setting=None) -> dict:
    """The numbers of one decode setting (all samples together)."""
    tr = g.trace
    words = [w.lower() for t in g.texts for w in WORD.findall(t)]
    share = sum(w in known for w in words) / max(len(words), 1)
    nll = self_nll(g.tokens)
    if setting is not None:
        per_sample_nll[setting] = nll
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
# so the greedy rules can end up *less* coherent than a random order, or more. The `verdict:` lines compare each
# rule's self NLL with random order's on the same seeds; notebook 05 then shows a task where a sure cell really
# does pin down the others.

# %%
gens, rows = {}, []
for strategy in strategies:
    g = smkit.generate(m, length=length, steps=steps, strategy=strategy, soft_mask=soft_mask, seed=seed,
                       num_samples=num_samples)
    gens[strategy] = g
    rows.append({"strategy": strategy, **describe(g, strategy)})
orders = pd.DataFrame(rows).set_index("strategy")
print(orders.round(3).to_string())
if "random" in strategies and num_samples >= 2:
    for strategy in strategies:
        if strategy != "random":
            print("verdict: " + paired_difference(per_sample_nll[strategy], per_sample_nll["random"], strategy,
                                                  "random order", "nats/token", larger="is less coherent (higher self "
                                                  "NLL) than", smaller="is more coherent (lower self NLL) than").text)
for strategy in strategies:
    print(f"\n--- {strategy}, sample 0 ---\n{gens[strategy].texts[0][:300]}")

# %% [markdown]
# The plot follows sample 0 of the first four rules through the decode. Left: the share of positions still
# masked after each step (every rule ends at 0; `ancestral`'s staircase has flat parts where it revealed
# nothing). Right: the mean entropy over the positions the model predicted at that step (those still masked when
# it began): what it was unsure of at that moment, over all open positions. That is another mean than `p1 at
# reveal`, which looks only at the positions chosen. An adaptive rule should leave its least sure positions for
# the end, so that by the last steps its open positions are the hardest ones, while a random order keeps a fair
# mix: the `verdict:` lines compare the entropy of the positions still open in the last quarter of the steps.

# %%
import plotly.io as pio
from smkit.widgets import figures, sample_view

pio.renderers.default = "plotly_mimetype+notebook"
shown = strategies[:4]
views = [sample_view(gens[s].trace, 0, model=m) for s in shown]
figures.progress_figure(views, list(shown), min(v.num_steps for v in views) - 1).show()


def late_entropy(trace):
    """Per sample: the mean entropy of the positions still open in the last quarter of the steps."""
    S = len(trace)
    late = slice(S - max(1, S // 4), S)
    H, open_ = trace.entropy[late], trace.masked_before[late] & ~trace.fixed[late]
    return (H * open_).sum((0, 2)).double() / open_.sum((0, 2)).clamp(min=1)


if "random" in gens and num_samples >= 2:
    for s in ("confidence", "margin", "entropy"):
        if s in gens:
            print("verdict: " + paired_difference(late_entropy(gens[s].trace), late_entropy(gens["random"].trace),
                                                  f"{s}: entropy of the positions open in the last quarter",
                                                  "random order's", "nats",
                                                  larger="is higher than", smaller="is lower than").text)

# %% [markdown]
# ## 3. Budgets
#
# Fewer steps means more tokens revealed at once, from one forward pass, each sampled *independently* of the
# others revealed in the same step: two neighbours can be revealed as "of of". The sweep decodes with
# `ancestral` and `confidence` at each budget in `budgets`.
# **What to look for:** NFE equals the steps for `confidence`; for `ancestral` it can be lower at large step
# counts (a step that happens to reveal nothing is free: the input did not change, the last output is reused).
# Tokens chosen together, each without seeing the others, should fit their neighbours worse, so `self NLL` should
# be higher at the smallest budget than at the largest: that is the cost of parallel decoding. Between
# neighbouring budgets the differences are often within the `+-`. The `verdict:` lines check both claims on
# these numbers.

# %%
rows = []
for strategy in ("ancestral", "confidence"):
    for b in budgets:
        g = smkit.generate(m, length=length, steps=b, strategy=strategy, soft_mask=soft_mask, seed=seed,
                           num_samples=num_samples)
        rows.append({"strategy": strategy, "steps": b, "tokens per step": round(length / b, 1),
                     **describe(g, (strategy, b))})
sweep = pd.DataFrame(rows).drop(columns=["remasked"])
print(sweep.round(3).to_string(index=False))
for strategy in ("ancestral", "confidence"):
    part = sweep[sweep.strategy == strategy]
    equal = (part.NFE == part.steps).all()
    below = part[part.NFE < part.steps]
    print(f"verdict: {strategy}: NFE " + ("equals the steps at every budget" if equal else
          "is below the steps at " + ", ".join(f"{int(r.steps)} steps (NFE {int(r.NFE)})" for r in below.itertuples())
          + " (steps that revealed nothing cost no forward pass)"))
    lo, hi = min(budgets), max(budgets)
    if lo != hi and num_samples >= 2:
        print("verdict: " + paired_difference(per_sample_nll[(strategy, lo)], per_sample_nll[(strategy, hi)],
                                              f"{strategy} at {lo} steps", f"at {hi} steps", "nats/token",
                                              larger="fits its neighbours worse (higher self NLL) than",
                                              smaller="fits its neighbours better (lower self NLL) than").text)

# %% [markdown]
# ## 4. Remasking
#
# ReMDM lets the sampler change its mind: at each step a decoded token goes back to `[MASK]` with probability
# sigma_t (`remdm-cap`: sigma_t = min(eta, (1 - alpha_s) / alpha_t), with a small eta by default; a larger eta remasks
# more). Below, the positions of sample 0 that were remasked at least once with eta = 0.05, the token before and
# the token finally written there. **What to look for:** remasks scattered over the decode (more with a larger
# eta), and whether a remasked position comes back with its old token or another: the count is printed.

# %%
g = smkit.generate(m, length=length, steps=steps, strategy="remdm-cap", eta=0.05, soft_mask=soft_mask, seed=seed,
                   num_samples=num_samples)
tr, tok = g.trace, m.tokenizer
print(f"remdm-cap, eta 0.05: {int(tr.remasked.sum())} remasks over {num_samples} samples, NFE {g.nfe}")
same = other = 0
for b in range(num_samples):
    for s, pos in tr.remasked[:, b].nonzero().tolist():
        before = int(tr.tokens[s - 1, b, pos]) if s > 0 else m.mask_id
        same, other = same + (before == int(g.tokens[b, pos])), other + (before != int(g.tokens[b, pos]))
        if b == 0 and same + other <= 8:
            print(f"step {s:3d}, position {pos:3d}: {tok.decode([before])!r} -> [MASK] -> finally "
                  f"{tok.decode([int(g.tokens[0, pos])])!r}")
if same + other:
    print(f"verdict: of {same + other} remasks, {same} came back with the token they had before and {other} with "
          f"another ({other / (same + other):.0%})")
else:
    print("verdict: nothing was remasked in this decode (raise eta or the steps to see remasking)")

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
from smkit.core.strategies import STRATEGIES, top_n
from smkit.exercises import Case, Hint, check


def check_confidence_rule(fn):
    """Named cases: ties straddle the cut (0.5 at positions 0, 2, 5, 7; the lowest must win), the most confident
    positions are not candidates, random scores. Ignoring candidates, the reverse order, the higher position first
    on a tie, or one too many fails with a hint; calling smkit's top_n is refused."""
    g = torch.Generator().manual_seed(0)
    inputs = {"a tie at the cut: the lowest positions win": (torch.tensor([0.5, 0.9, 0.5, 0.7, 0.95, 0.5, 0.2, 0.5]),
                                                           torch.tensor([True, True, True, True, False, True, True, True]), 3),
              "the surest positions are not candidates": (torch.tensor([0.3, 0.3, 0.3, 0.3, 0.8, 0.8]),
                                                          torch.tensor([False, True, True, True, True, False]), 2),
              "12 random scores, pick 4": (torch.rand(12, generator=g), torch.rand(12, generator=g) < 0.7, 4)}
    cases = [Case(name, args, top_n(args[0][None], args[1][None], torch.tensor([args[2]]))[0])
             for name, args in inputs.items()]

    def by_order(top1, candidates, n, key):
        order = sorted((i for i in range(len(top1)) if candidates[i]), key=key)[:n]
        out = torch.zeros_like(candidates)
        out[order] = True
        return out

    def answer(t, c, n):
        got = fn(t, c, n)
        return None if got is None else torch.as_tensor(got).bool()

    return check("confidence rule", answer, cases, forbid=[top_n, STRATEGIES["confidence"]],
                 hints=[Hint("on a tie the LOWER position goes first (a stable sort keeps position order)",
                             lambda t, c, n: by_order(t, c, n, lambda i: (-float(t[i]), -i))),
                        Hint("only candidates may be revealed, however confident the others are",
                             lambda t, c, n: by_order(t, torch.ones_like(c), n, lambda i: (-float(t[i]), i))),
                        Hint("the MOST confident positions first: sort by descending top1",
                             lambda t, c, n: by_order(t, c, n, lambda i: (float(t[i]), i))),
                        Hint("exactly n positions", lambda t, c, n: by_order(t, c, n + 1, lambda i: (-float(t[i]), i)))])


check_confidence_rule(pick_most_confident);

# %% [markdown]
# ## Exercise 2: a whole sampler
# You now have every piece of a decode. Write `my_sampler(model, length, k, seed)`: start from `length` masks
# (`x = torch.full((1, length), model.mask_id)`) and run `length // k` steps (`length` is a multiple of `k` here).
# Each step:
# 1. one forward pass, `logp = model(x)[0]` under `torch.no_grad()` ([length, V+1] log-probabilities; count it:
#    that is the NFE);
# 2. p1 = the largest probability at each position (`logp.max(-1).values.exp()`);
# 3. reveal the k still-masked positions with the highest p1, ties to the lower position: your `pick_most_confident`;
# 4. draw their tokens with `draw(logp[reveal], gen)` (below) and write them into x.
#
# Return `(x[0], nfe)`. Use `gen = torch.Generator().manual_seed(sample_seed(seed, 0))`: smkit seeds sample i of a
# run with `sample_seed(seed, i)` and draws exactly this way, so your tokens must equal
# `smkit.generate(model, length=length, steps=length // k, strategy="confidence", soft_mask=False, seed=seed)`'s,
# token for token, with the same NFE. The check compares on four (seed, k) pairs and refuses a sampler that calls
# smkit's own (`generate`, `iter_steps`, `top_n`). About 15 lines.

# %%
from smkit.sampling.loop import sample_seed


def draw(log_probs, gen):
    """One token per row of `log_probs` [n, V+1] (one row per revealed position, in position order), by Gumbel-max:
    argmax(log p + G), G = -log(-log u) with u uniform, is a draw from p. In float64, as smkit draws."""
    u = torch.rand(log_probs.shape, generator=gen, dtype=torch.float64)
    return (log_probs.double() - (-u.log()).log()).argmax(-1)


# %% tags=["exercise"]
def my_sampler(model, length, k, seed):
    raise NotImplementedError  # your code: return x[0], nfe


# %% tags=["solution"]
def my_sampler(model, length, k, seed):
    gen = torch.Generator().manual_seed(sample_seed(seed, 0))
    x = torch.full((1, length), model.mask_id)
    nfe = 0
    for _ in range(length // k):
        with torch.no_grad():
            logp = model(x)[0]
        nfe += 1
        p1 = logp.max(-1).values.exp()
        reveal = pick_most_confident(p1, x[0] == model.mask_id, k)
        x[0, reveal] = draw(logp[reveal], gen)
    return x[0], nfe


# %%
def check_sampler(fn, model, length=32):
    """Against smkit.generate (confidence rule, SM off, one sample) on fixed seeds: the same tokens and the same
    NFE. The difference names the first position that differs, in smkit's reveal order. Taking the likeliest
    token instead of a draw fails with a hint; calling smkit's sampler is refused."""
    from smkit.sampling.loop import Steps, _Loop, generate, iter_steps

    def library(seed, k, **options):
        g = generate(model, length=length, steps=length // k, strategy="confidence", soft_mask=False, seed=seed,
                     num_samples=1, **options)
        return g.tokens[0], g.nfe, g.trace

    def answer(seed, k):
        got = fn(model, length, k, seed)
        return None if got is None else got

    def compare(got, expected, atol):
        if not (isinstance(got, tuple) and len(got) == 2):
            return f"return the pair (tokens, nfe); got {type(got).__name__}"
        tokens, nfe = torch.as_tensor(got[0]).flatten(), got[1]
        want, want_nfe, trace = expected
        problems = []
        if tokens.shape != want.shape:
            return f"tokens: {tokens.numel()} of them, expected {want.numel()}"
        differ = (tokens != want).nonzero().flatten()
        if differ.numel():
            if trace is not None:
                steps_of = trace.revealed[:, 0].int().argmax(0)
                p = int(differ[steps_of[differ].argmin()])
                where = f"first at position {p}, which smkit revealed at step {int(steps_of[p])}"
                if int(steps_of[p]) == 0:
                    where += " (the very first draw: check the generator, sample_seed(seed, 0), and draw())"
            else:
                p, where = int(differ[0]), f"first at position {int(differ[0])}"
            problems.append(f"tokens: {differ.numel()} of {want.numel()} differ, {where}: yours "
                            f"{model.tokenizer.decode([int(tokens[p])])!r}, smkit's {model.tokenizer.decode([int(want[p])])!r}")
        if int(nfe) != int(want_nfe):
            problems.append(f"NFE: yours {int(nfe)}, smkit's {int(want_nfe)} (one forward pass per step)")
        return "; ".join(problems) or None

    pairs = [(0, 4), (1, 4), (2, 8), (3, 1)]
    cases = [Case(f"seed {s}, k = {k}", (s, k), (lambda s=s, k=k: library(s, k))) for s, k in pairs]
    return check("your sampler", answer, cases, compare=compare,
                 forbid=[generate, iter_steps, Steps.__next__, _Loop.run, top_n, STRATEGIES["confidence"]],
                 hints=[Hint("you took the likeliest token at each revealed position: draw it with draw(logp[reveal], "
                             "gen), a sample from p", lambda s, k: library(s, k, top_k=1)[:2] + (None,))])


check_sampler(my_sampler, m, length=min(32, m.config.seq_len) // 8 * 8);

# %% [markdown]
# With your sampler done, the same seed decoded by smkit and by yours (they are equal when the check passed):

# %%
from smkit.exercises import attempt

n_tokens = min(32, m.config.seq_len) // 8 * 8
mine = attempt(my_sampler, m, n_tokens, 4, seed)
print("smkit:", repr(smkit.generate(m, length=n_tokens, steps=n_tokens // 4, strategy="confidence", soft_mask=False,
                                    seed=seed).texts[0]))
print("yours:", "not done yet" if mine is None else repr(tok.decode(mine[0].tolist())) + f" (NFE {mine[1]})")

# %% [markdown]
# ## A filmstrip of one decode
# Sample 0 of the `confidence` decode of section 2 at nine moments (· is a masked token): the surest tokens come
# first, and they are often spaces, line breaks and punctuation.

# %%
from smkit.core.filmstrip import filmstrip

print(filmstrip(gens["confidence"].trace if "confidence" in gens else gens[strategies[0]].trace, sample=0))

# %% [markdown]
# ## What to take away
# - Order: which positions go first. Budget: how many per forward pass. Remasking: whether a decision can be
#   undone. They are independent knobs; SM (notebook 03) is a fourth, orthogonal to all three.
# - Report NFE, not steps: a cache makes some steps free.
# - One readability number can be gamed by repetition: read it beside repeated 4-grams and unigram entropy.
#
# Next: notebook 05, where answers are right or wrong and the order effect is large.
