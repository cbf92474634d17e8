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
# # Workshop 2: train a tiny MDLM on your laptop
#
# **What you will learn**
# - what one training update of a masked diffusion language model (MDLM; Sahoo et al., 2024) does, and what to
#   watch while it trains;
# - how far a small character-level model gets in a few minutes on a laptop CPU: samples before and after;
# - how to tell a real improvement from noise: compare with a baseline and count standard errors.
#
# Needs `pip install "smkit[notebooks]"`. The defaults train for a few minutes on a 2-core laptop (the notebook
# prints the time it took); the training cell is the only slow one. Here a **token is one character**: the
# vocabulary is the set of characters of the training text, plus `[MASK]`; masking hides single characters.
# Lines that start with `verdict:` are computed from the numbers measured above them, with their uncertainty.

# %% tags=["parameters"]
from typing import Optional

corpus: str = "shakespeare"  # built-in corpus or a local text file / folder
steps: int = 800  # updates (the slow cell; timings in notebooks/README.md)
seq_len: int = 64  # characters per block
hidden_size: int = 128  # model width
num_layers: int = 2  # transformer layers
batch_size: int = 64  # blocks per update
lr: float = 4e-3  # peak learning rate (high: a tiny model, few updates)
eval_every: int = 200  # updates between validation bounds
eval_blocks: int = 256  # held-out blocks for every validation number (more blocks: less noise)
sample_steps: Optional[int] = None  # decoding steps for the samples; None: one character per step
temperature: float = 0.7  # sampling temperature of the samples (lower: commoner choices)
blank_fraction: float = 0.25  # share of characters blanked in the fill-in test
seed: int = 0  # fixes the model's initial weights, the batches and the noise
out_dir: Optional[str] = None  # checkpoints go here; None: the `smkit run` folder, else runs/workshop2

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
from smkit.notebooks import check_parameter, output_dir

check_parameter(isinstance(corpus, str) and corpus != "", "corpus", corpus, "a built-in corpus name or a local path")
check_parameter(isinstance(steps, int) and steps >= 2, "steps", steps, "must be an integer >= 2")
check_parameter(isinstance(seq_len, int) and seq_len >= 8, "seq_len", seq_len, "must be an integer >= 8")
check_parameter(isinstance(hidden_size, int) and hidden_size >= 8 and hidden_size % 4 == 0, "hidden_size",
                hidden_size, "a multiple of 4, >= 8 (4 attention heads)")
check_parameter(isinstance(num_layers, int) and num_layers >= 1, "num_layers", num_layers, "must be an integer >= 1")
check_parameter(isinstance(batch_size, int) and batch_size >= 1, "batch_size", batch_size, "must be an integer >= 1")
check_parameter(isinstance(lr, (int, float)) and 0 < lr < 1, "lr", lr, "a number in (0, 1)")
check_parameter(isinstance(eval_every, int) and 1 <= eval_every <= steps, "eval_every", eval_every,
                f"an integer in [1, steps={steps}]")
check_parameter(isinstance(eval_blocks, int) and eval_blocks >= 2, "eval_blocks", eval_blocks, "an integer >= 2")
check_parameter(sample_steps is None or (isinstance(sample_steps, int) and 1 <= sample_steps <= seq_len),
                "sample_steps", sample_steps, f"None or an integer in [1, seq_len={seq_len}]")
check_parameter(isinstance(temperature, (int, float)) and temperature > 0, "temperature", temperature, "a number > 0")
check_parameter(isinstance(blank_fraction, (int, float)) and 0 < blank_fraction < 1, "blank_fraction", blank_fraction,
                "a number in (0, 1)")
check_parameter(isinstance(seed, int) and seed >= 0, "seed", seed, "must be an integer >= 0")
out = output_dir(out_dir, "runs/workshop2")

# %% [markdown]
# ## 1. One update, in words
#
# Take a batch of clean blocks x_0. Draw a time t per block, mask each character with probability 1 - alpha_t
# (notebook 01), run the model once on the masked blocks, and score its guesses at the masked positions:
#
#     loss = (1 / (B L)) * sum over blocks b, masked positions l of  (1 / t_b) * (-log p_theta(x_0^l | x_t))
#
# then take one gradient step (AdamW). That is all: no decoding happens during training. The *validation
# bound* is the same quantity on held-out blocks with fixed noise, in nats per character: the lower, the better.
# A model that guesses uniformly over V characters scores ln V; one that knows only how frequent each character
# is scores the *unigram entropy* (section 4).
#
# Settings chosen to produce words fast on a CPU: characters (small vocabulary, no tokenizer to learn), a small
# model (2 layers, width 128), short blocks (64 characters) and a high learning rate with a cosine decay.
# We train the plain MDLM of notebook 01, where every input position is either a token or `[MASK]` (smkit calls
# it *binary*, `soft_mask=False`). Notebook 03 introduces a variant that feeds the model's own guesses back in
# place of some masks; it costs two forward passes per update and is not used here.

# %%
import math
import time

import torch

import smkit
from smkit import tasks
from smkit.evaluation.evidence import paired_share_difference, share_difference
from smkit.io.data import load_corpus, pack_blocks, split_documents, train_tokenizer

settings = dict(corpus=corpus, tokenizer="char", seq_len=seq_len, hidden_size=hidden_size, num_layers=num_layers,
                num_heads=4, intermediate_size=4 * hidden_size, batch_size=batch_size, steps=steps, lr=lr,
                lr_schedule="cosine", warmup_steps=max(1, steps // 12), eval_every=eval_every,
                eval_blocks=eval_blocks, log_every=max(1, steps // 20), checkpoint_every=0, seed=seed,
                soft_mask=False)
train_docs, val_docs = split_documents(load_corpus(corpus), 0.05)
tok = train_tokenizer(train_docs, "char")  # the same character set smkit.train builds
val = pack_blocks(val_docs, tok, seq_len)
val = val[torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))[:eval_blocks]]
V = len(tok) - 1  # characters ([MASK] excluded)
decode = dict(num_samples=3, length=seq_len, steps=sample_steps or seq_len, strategy="confidence", soft_mask=False,
              seed=seed, trace=False, temperature=temperature)

# the fill-in test: blank `blank_fraction` of the characters of a few held-out blocks, let the model fill them
gen = torch.Generator().manual_seed(seed)
originals = val[:4]
blanks = torch.rand(originals.shape, generator=gen) < blank_fraction
blanks[:, 0] = True
templates = torch.where(blanks, torch.full_like(originals, len(tok) - 1), originals)  # [MASK] is the last id


def fill_in(model):
    """The held-out blocks with their blanks filled by `model` (one blank per step), and per blank (in a fixed
    order) whether it got its original character back."""
    texts, right = [], []
    for template, original, blank in zip(templates, originals, blanks):
        g = smkit.generate(model, infill=template, length=seq_len, steps=int(blank.sum()), strategy="confidence",
                           soft_mask=False, seed=seed, trace=False, temperature=temperature)
        texts.append(g.texts[0])
        right += (g.tokens[0] == original)[blank].tolist()
    return texts, right


def show(title, texts):
    print(title)
    for text in texts:
        print("   " + repr(text))


import re

corpus_words = set(re.findall(r"[a-z]+", "\n".join(d.text for d in train_docs).lower()))


def free_samples(model, n_samples=16):
    """Three free samples to read, and how many of the words (3 letters or more) in `n_samples` samples (one
    seed) are words of the training text, of how many: a number for "recognisable". Each sample's first and last
    word are left out (a block of characters cuts words at its ends, and the model learned from such blocks)."""
    texts = smkit.generate(model, **{**decode, "num_samples": n_samples}).texts
    words = [w for t in texts for w in re.findall(r"[a-z]+", t.lower())[1:-1] if len(w) >= 3]
    return texts[:3], sum(w in corpus_words for w in words), len(words)


def share(k, n):
    low, high = tasks.wilson_interval(k, n) if n else (0.0, 1.0)
    return f"{k}/{n} = {k / max(n, 1):.0%} [{low:.0%}, {high:.0%}]"


torch.manual_seed(seed)
untrained = smkit.DiffusionLM(smkit.TrainConfig(**settings).validate().model_config(len(tok)), tokenizer=tok)
untrained.eval()
print(f"{V} characters; uniform guess ln V = {math.log(V):.3f} nats/char; "
      f"{sum(p.numel() for p in untrained.parameters()) / 1e6:.2f}M parameters; {len(val)} held-out blocks")
print(f"untrained: validation bound {untrained.validation_bound(val, seed=seed):.3f} nats/char\n")
show("held-out blocks with blanks (_):", [tok.decode(t.tolist()).replace(tok.mask_token, "_") for t in templates])
before_texts, before_right = fill_in(untrained)
show(f"\nBEFORE training, blanks filled (restored exactly: {share(sum(before_right), len(before_right))}, "
     f"Wilson 95% interval):", before_texts)
before_samples, before_known, before_words = free_samples(untrained)
show(f"\nBEFORE training, free samples (words of 3+ letters in 16 samples that are words of the training text: "
     f"{share(before_known, before_words)}):", before_samples)

# %% [markdown]
# ## 2. Train
# The progress bar shows the loss (noisy: one random t per block) and is redrawn a few times only.

# %%
start = time.perf_counter()
result = smkit.train(**settings, out_dir=str(out / "model"))
minutes = (time.perf_counter() - start) / 60
m, history = result.model, result.history
m.eval()
print(f"{steps} updates in {minutes:.1f} min ({history.tokens_per_s.median():.0f} characters/s); "
      f"final validation bound {history.val_bound.dropna().iloc[-1]:.3f} nats/char")

# %% [markdown]
# ## 3. What to look for
# The loss should fall fast from about ln V, then slower, and the validation bound (markers) follow it; section 4
# measures, block by block, how far the bound fell. Two tests of the trained model, the same as before training:
# - **fill in the blanks** of held-out text, with the rest of the characters around them. The share of blanks
#   restored exactly is measured on the same blanks before and after training, so the two compare blank by blank;
# - **free samples** from all masks, one character per step: much harder. Look for real short words, the shape
#   of a play (names in capitals, line breaks, punctuation) and made-up words: the model sees 64 characters and
#   trained for minutes. A lower `temperature` gives more real words and less variety. The share of sample words
#   (3 letters or more) found in the training text puts a number on "recognisable", before and after.
#
# The `verdict:` lines say whether each change is larger than its noise; the filmstrip after them shows one
# free sample being decoded, a character per step, at nine moments of its decode.

# %%
import plotly.graph_objects as go
import plotly.io as pio

pio.renderers.default = "plotly_mimetype+notebook"
fig = go.Figure()
fig.add_trace(go.Scatter(x=history.step, y=history.loss, name="training loss", mode="lines", opacity=0.5))
v = history.dropna(subset=["val_bound"])
fig.add_trace(go.Scatter(x=v.step, y=v.val_bound, name="validation bound", mode="lines+markers"))
fig.add_hline(y=math.log(V), line_dash="dot", annotation_text="uniform guess, ln V")
fig.update_layout(xaxis_title="update", yaxis_title="nats per character", height=340)
fig.show()
after_texts, after_right = fill_in(m)
show(f"AFTER training, blanks filled (restored exactly: {share(sum(after_right), len(after_right))}; before: "
     f"{share(sum(before_right), len(before_right))}):", after_texts)
after_samples, after_known, after_words = free_samples(m)
show(f"\nAFTER training, free samples, same seed (words of the training text: {share(after_known, after_words)}; "
     f"before: {share(before_known, before_words)}):", after_samples)
print("\nverdict: " + paired_share_difference(after_right, before_right, "trained", "untrained",
                                              larger="restores more blanks than", smaller="restores fewer blanks than",
                                              items="blanks", done="restored").text)
if after_words and before_words:
    print("verdict: " + share_difference(after_known, after_words, before_known, before_words, "trained", "untrained",
                                        larger="writes more real words than", smaller="writes fewer real words than").text)
else:
    print("verdict: no words of 3+ letters to count " + ("after" if not after_words else "before") + " training")

# %%
from smkit.core.filmstrip import filmstrip

one = smkit.generate(m, **{**decode, "num_samples": 1, "trace": True})
print(f"one free sample of the trained model, {one.steps} steps (\u00b7 = a masked character):")
print(filmstrip(one.trace))

# %% [markdown]
# ## 4. Did it learn more than letter frequencies?
#
# A model that ignores context can at best predict each character from its frequency: its cross-entropy is
# the *unigram entropy* of the text, H_1 = -sum_c f_c ln f_c over characters c with frequencies f_c. A bound
# below H_1 means the model uses context. First compute H_1.
#
# ## Exercise 1: the unigram entropy
# Return the entropy in **nats** of the frequencies of the token ids in `ids` (a tensor of any shape).

# %% tags=["exercise"]
def unigram_entropy(ids):
    raise NotImplementedError  # your code: a float


# %% tags=["solution"]
def unigram_entropy(ids):
    f = torch.bincount(ids.flatten()).double()
    f = f[f > 0] / f.sum()
    return float(-(f * f.log()).sum())


# %%
from smkit.exercises import Case, Hint, check


def check_unigram_entropy(fn):
    """Frequencies 1/2, 1/4, 1/8, 1/8 over ids with gaps, a single repeated id, and a uniform batch: bits instead
    of nats, or ln of the number of distinct ids, fails with a hint."""
    def freqs(ids):
        f = torch.bincount(ids.flatten()).double()
        return f[f > 0] / f.sum()

    return check("unigram entropy (nats)", fn,
                 [Case("ids 7,7,7,7,2,2,9,30 (frequencies 1/2, 1/4, 1/8, 1/8)", (torch.tensor([[7, 7, 7, 7, 2, 2, 9, 30]]),),
                       1.75 * math.log(2)),
                  Case("one id repeated", (torch.full((2, 5), 3),), 0.0),
                  Case("ids 0..3 once each", (torch.arange(4),), math.log(4))],
                 hints=[Hint("that is in bits (log base 2): use the natural log, as every loss in smkit does",
                             lambda ids: float(-(freqs(ids) * freqs(ids).log2()).sum())),
                        Hint("ln(number of distinct ids) is the entropy of a uniform guess over them; weight each "
                             "id by its frequency", lambda ids: math.log(len(freqs(ids)))),
                        Hint("ln(largest id + 1) assumes every id up to the largest occurs equally often; count "
                             "frequencies", lambda ids: math.log(int(ids.max()) + 1))])


check_unigram_entropy(unigram_entropy);

# %% [markdown]
# ## Is the gap real? Count standard errors
#
# The validation bound is a mean over blocks, each with its own random mask, so it is noisy. Its standard error
# is std / sqrt(n) over n per-block values. A gap of a few hundredths of a nat measured on a dozen blocks is a
# coin flip; a gap of many standard errors is not. Below: the per-block bound of the trained model on
# `eval_blocks` held-out blocks (4 noise draws each), against the unigram entropy of the same blocks.
#
# ## Exercise 2: the gap in standard errors
# Given per-block values `per_block` [n] and a `reference` number, return (reference - mean) / standard error,
# with the standard error = sample standard deviation / sqrt(n).

# %% tags=["exercise"]
def gap_in_standard_errors(per_block, reference):
    raise NotImplementedError  # your code: a float


# %% tags=["solution"]
def gap_in_standard_errors(per_block, reference):
    x = torch.as_tensor(per_block, dtype=torch.float64)
    return float((reference - x.mean()) / (x.std() / math.sqrt(len(x))))


# %%
def check_gap(fn):
    """Known values: dividing by the standard deviation (not the standard error), by the variance, with the
    population standard deviation (n instead of n - 1), or the sign reversed fails, each with its hint."""
    x = torch.tensor([2.0, 2.5, 3.0, 2.5, 2.0, 3.0, 2.5, 2.5, 2.0, 3.0], dtype=torch.float64)
    y = torch.tensor([1.0, 1.5, 0.5, 2.0], dtype=torch.float64)
    gap = lambda v, ref, sd, scale=1.0: (ref - float(v.mean())) / (sd * scale)  # noqa: E731
    return check("gap in standard errors", fn,
                 [Case("10 values, mean 2.5, reference 3.2", (x, 3.2), gap(x, 3.2, float(x.std()) / math.sqrt(10))),
                  Case("4 values, mean 1.25, reference 1.0 (below)", (y, 1.0), gap(y, 1.0, float(y.std()) / 2))],
                 atol=1e-6,
                 hints=[Hint("you divided by the population standard deviation (n in the denominator): the sample "
                             "standard deviation divides by n - 1 (torch's default, x.std())",
                             lambda v, ref: gap(v, ref, float(v.std(unbiased=False)) / math.sqrt(len(v)))),
                        Hint("that is the gap in standard DEVIATIONS: divide the deviation by sqrt(n) to get the "
                             "standard error of the mean", lambda v, ref: gap(v, ref, float(v.std()))),
                        Hint("the sign: (reference - mean), positive when the mean lies below the reference",
                             lambda v, ref: -gap(v, ref, float(v.std()) / math.sqrt(len(v)))),
                        Hint("that divides by the variance; the standard error is sqrt(variance / n)",
                             lambda v, ref: gap(v, ref, float(v.var())))])


check_gap(gap_in_standard_errors);

# %% [markdown]
# **What you should see:** if the model learned to use context, its bound lies below the unigram entropy by many
# standard errors. (After only a few updates the bound can still be above H_1.) The `verdict:` line is computed
# by smkit (`Estimate`); your two functions are used beside it once you have written them.

# %%
from smkit.evaluation.evidence import Estimate, paired_difference
from smkit.exercises import attempt

def per_block_bound(model):
    """Each held-out block's bound (nats/char), 4 noise draws; the same draws for every model (same seed)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(len(val), dtype=torch.float64)
    with torch.no_grad():
        for _ in range(4):
            x_t, masked, weight = model.noise(val, generator=g)
            nll = -model(x_t).gather(-1, val.unsqueeze(-1)).squeeze(-1)
            out += ((weight[:, None] * nll * masked).sum(-1) / val.shape[1]).double() / 4
    return out


per_block = per_block_bound(m)
print("verdict: " + paired_difference(per_block, per_block_bound(untrained), "the trained model's bound",
                                      "the untrained one's", "nats/char").text)
counts = torch.bincount(val.flatten()).double()
freq = counts[counts > 0] / counts.sum()
H1 = float(-(freq * freq.log()).sum())
bound = Estimate.of(per_block)
print(f"unigram entropy of the held-out blocks: {H1:.3f} nats/char (uniform: {math.log(V):.3f})")
print(f"model's bound: {bound} (standard error, {len(per_block)} blocks)")
z = (H1 - bound.value) / bound.se
print(f"verdict: the bound lies {'below' if z > 0 else 'above'} the unigram entropy by {abs(H1 - bound.value):.3f} "
      f"nats/char = {abs(z):.1f} standard errors: "
      + ("the model uses context" if z > 2 else "no evidence yet that it uses context" if z > -2 else
         "it does worse than letter frequencies (train longer)"))
yours_h1, yours_gap = attempt(unigram_entropy, val), attempt(gap_in_standard_errors, per_block, H1)
print("your unigram_entropy: " + ("not done yet" if yours_h1 is None else f"{yours_h1:.3f}")
      + "; your gap_in_standard_errors: " + ("not done yet" if yours_gap is None else f"{yours_gap:.1f}"))

# %% [markdown]
# ## Try next
# - Halve `steps` or `lr` and rerun: how do the bound and the samples change? Is the difference many standard
#   errors?
# - `sample_steps = 16` decodes 4 characters per forward pass: what happens to the words? (Notebook 04.)
#
# The trained model is saved in `out_dir` (printed below); `smkit.load_pretrained(path)` loads it back.

# %%
print(f"saved: {result.out_dir / 'model'}")
