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
# - why a plain masked diffusion model (MDLM, notebooks 01-02) throws information away at every step, and how
#   soft-masking (SM; "Soft-Masked Diffusion Language Models", arXiv 2510.17206) keeps some of it;
# - the gate lambda(H): how sure the model must be before its guess is fed back, read off a trained model;
# - what a soft-masked input really is: the mixture of real top-k predictions at a real still-masked position;
# - how to tell what SM changes in a decode: its direct effect on the model's predictions, and the drift that
#   follows once one sampled token differs.
#
# Needs `pip install "smkit[notebooks]"`; about a minute on a laptop CPU. The default model, `python-sm`, was
# trained on Python code with SM (k = 1: the mixture holds `[MASK]` and the single most likely token). Its tokens
# are byte-pair pieces of Python source (a keyword, a name, part of a name, spaces, a bracket), 1023 of them plus
# `[MASK]`; masking hides whole tokens. Lines that start with `verdict:` are computed from the numbers measured
# above them, with their uncertainty.

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "python-sm"  # shipped model name or checkpoint folder (trained with SM)
corpus: Optional[str] = None  # held-out text to fill in; None: the corpus the model was trained on
num_samples: int = 4  # held-out blocks filled in (and unconditional samples)
mask_fraction: float = 0.5  # share of each held-out block masked for the model to fill
tokens_per_step: int = 4  # tokens revealed per step (4: the paper's L/4 budget, where SM helped most)
prompt: str = "def "  # prefix of the unconditional decodes ("" for none)
seed: int = 0  # the same seed for SM on and off
live_widget: bool = False  # True: also show the step-by-step explorer (interactive kernels; its widget state makes a saved notebook large)

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import os

import smkit
from smkit.notebooks import bool_parameter, check_parameter

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
live_widget = bool_parameter(live_widget, "live_widget")  # papermill's own -p passes true/false as text
check_parameter(isinstance(live_widget, bool), "live_widget", live_widget, "True or False")
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
# learned in training; k is fixed. With w_s = 0 SM *is* the plain model, which smkit calls *binary* (every input is
# a token or a bare `[MASK]`). A model must be trained with SM inputs to read them: the SM paper trains with two
# passes per update, the first one (without gradient) giving the predictions that the second one's input mixes.

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
# The bars show the entropy of every prediction made at a masked position; the curve is this model's lambda(H).
# **What to look for:** SM only acts where the curve is high *and* the bars have mass. Filling in gives the model
# context on both sides, so one expects surer predictions (further left) than when generating from nothing; the
# `verdict:` line says whether the share of predictions with an open gate differs between the two.

# %%
from plotly.subplots import make_subplots

from smkit.evaluation.evidence import Estimate, mean_difference, paired_share_difference

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
    """Per sample: the entropies of its predictions at masked positions and the lambdas fed back."""
    out = []
    for g in gens:
        tr = g.trace
        for b in range(tr.num_samples):
            H = tr.entropy[:, b][tr.masked_before[:, b] & ~tr.fixed[:, b]]
            lam = tr.lam[:, b][tr.masked[:, b]]
            out.append((H, lam if lam.numel() else torch.zeros(1)))
    return out


per_sample = {"generate": entropies_and_lambdas([generated[True]]), "fill in": entropies_and_lambdas(filled[True])}
stats = {name: (torch.cat([h for h, _ in rows]), torch.cat([lam for _, lam in rows])) for name, rows in per_sample.items()}
open_share = {}
for name, (H, lam) in stats.items():
    shares = [float((lam_ > w_s / 4).float().mean()) for _, lam_ in per_sample[name]]
    open_share[name] = Estimate.of(shares) if len(shares) >= 2 else Estimate(shares[0], float("nan"), 1)
    print(f"{name:>8}: {H.numel()} predictions at masked positions, entropy median {H.median():.2f} nats "
          f"(10% below {H.quantile(0.1):.2f}); lambda fed back: mean {lam.mean():.3g}, max {lam.max():.3g}, "
          f"share above w_s/4: {open_share[name].value:.1%}"
          + (f" +- {open_share[name].se:.1%} (over {len(shares)} samples)" if len(shares) >= 2 else ""))
if num_samples >= 2:
    print("verdict: " + mean_difference(open_share["fill in"], open_share["generate"], "filling in", "generating",
                                        larger="opens the gate more often than",
                                        smaller="opens the gate less often than").text
          + " (share of predictions with lambda above w_s/4, per sample)")

hs = torch.linspace(0, math.log(V), 300)
edges = torch.linspace(0, math.log(V), 41)
fig = make_subplots(specs=[[{"secondary_y": True}]])
for (name, (H, _)), colour in zip(stats.items(), ("#999", "#1f77b4")):
    share = torch.histc(H.float(), bins=40, min=0, max=math.log(V)) / H.numel()  # 40 bars, not every prediction
    fig.add_trace(go.Bar(x=((edges[:-1] + edges[1:]) / 2).tolist(), y=share.tolist(), width=float(edges[1]),
                         name=f"entropies: {name}", marker_color=colour, opacity=0.6), secondary_y=False)
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
# wrong sign or a missing w_s shows, not this model's; calling smkit's `soft_mask_lambda` is refused.)

# %% tags=["exercise"]
def my_lambda(entropy, scale, centre, steepness):
    raise NotImplementedError  # your code: w_s * sigmoid(w_a * (-H - w_b)), with scale = w_s, centre = w_b, steepness = w_a


# %% tags=["solution"]
def my_lambda(entropy, scale, centre, steepness):
    return scale * torch.sigmoid(steepness * (-entropy - centre))


# %%
from smkit.exercises import Case, Hint, check


def check_lambda(fn):
    """Two gates over entropies 0..5 nats: a sign flip of H or of w_b, or a missing w_s, fails with a hint."""
    H = torch.linspace(0, 5, 11)
    gates = {"w_s 0.8, w_b -2, w_a 2": (0.8, -2.0, 2.0), "the paper's start, w_s 1, w_b -0.75, w_a 6.66": (1.0, -0.75, 6.66)}
    cases = [Case(f"{name}, H = 0, 0.5, ..., 5", (H, s, c, a), smkit.soft_mask_lambda(None, s, c, a, entropy=H))
             for name, (s, c, a) in gates.items()]
    def answer(*args):
        got = fn(*args)
        return None if got is None else torch.as_tensor(got).float()

    return check("lambda(H)", answer, cases,
                 forbid=[smkit.soft_mask_lambda],
                 hints=[Hint("lambda never exceeds w_s: multiply the sigmoid by scale",
                             lambda H, s, c, a: torch.sigmoid(a * (-H - c))),
                        Hint("the sign of w_b: the sigmoid reads -H - w_b (lambda = w_s / 2 where H = -w_b)",
                             lambda H, s, c, a: s * torch.sigmoid(a * (-H + c))),
                        Hint("the sign of H: lambda must FALL as the entropy rises",
                             lambda H, s, c, a: s * torch.sigmoid(a * (H - c)))])


check_lambda(my_lambda);

# %% [markdown]
# ## 3. A superposition at a real position
#
# After the first step of the first fill-in, take the still-masked position where the model was surest (lowest
# entropy) and the one where it was least sure. The table shows their real top predictions and the weights of the
# rows mixed into their next input: `[MASK]` gets 1 - lambda, candidate i gets lambda * pi_i (with k = 1 there is
# one candidate and pi = 1). Expect lambda near w_s at the sure position (if its entropy is left of the bend) and
# near 0 at the unsure one: the printed lambda / w_s says how far each gate is open.

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
          f"H = {float(first.entropy[0, pos]):.2f} nats, lambda = {lam:.4g} = {lam / max(w_s, 1e-12):.1%} of w_s")
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
    """Top-3 mass 0.6 with lambda 0.3, top-3 mass 0.6 with lambda 0.9, and k = 1: forgetting to renormalise,
    swapping lambda and 1 - lambda, or leaving out the mask's slot fails with a hint."""
    cases = [Case("p = 0.3, 0.2, 0.1; lambda 0.3", (torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64), 0.3)),
             Case("p = 0.5, 0.05, 0.05; lambda 0.9", (torch.tensor([0.5, 0.05, 0.05], dtype=torch.float64), 0.9)),
             Case("k = 1: p = 0.4; lambda 0.5", (torch.tensor([0.4], dtype=torch.float64), 0.5))]
    for case in cases:
        p, lam = case.args
        case.expected = smkit.core.softmask.mixture_weights(torch.tensor(lam, dtype=torch.float64), p.log()).double()
    mask_slot = lambda lam: torch.tensor([1 - lam], dtype=torch.float64)  # noqa: E731
    def answer(p, lam):
        got = fn(p, lam)
        return None if got is None else torch.as_tensor(got, dtype=torch.float64)

    return check("superposition weights", answer, cases,
                 forbid=[smkit.core.softmask.mixture_weights, smkit.core.softmask.sparse_mixture],
                 hints=[Hint("renormalise: pi_i = p_i / (p_1 + ... + p_k), so the k candidate weights sum to lambda",
                             lambda p, lam: torch.cat([mask_slot(lam), lam * p])),
                        Hint("[MASK] gets 1 - lambda and the candidates share lambda, not the other way round",
                             lambda p, lam: torch.cat([torch.tensor([lam], dtype=torch.float64), (1 - lam) * p / p.sum()])),
                        Hint("k + 1 weights: the first one, 1 - lambda, is the mask's",
                             lambda p, lam: lam * p / p.sum())])


check_superposition(superposition_weights);

# %% [markdown]
# ## 4. SM on and off, same seed: the gate's effect, then drift
#
# Each decode above was run twice, with and without SM, on the same seed: every random draw (the Gumbel noise
# that picks each token) is the same, so any difference starts with SM. Two different things then happen:
# - **what the gate does**: at the same context, an SM input moves the model's predictions a little where lambda
#   is open. Measured directly below: every state of the binary decode is run twice, with bare masks and with the
#   SM inputs built from the previous step's predictions, and the two predictions compared;
# - **drift**: as soon as one sampled token differs (a small change in the probabilities can flip a draw that was
#   near a tie), the two decodes have different contexts, every later prediction differs, and the texts part
#   ways. The number of differing tokens at the end then measures this drift, not the size of the gate's effect.
#
# For the fill-ins we also know the true text, so we count the blanks each decode got right, blank by blank. For
# contrast, the last decode forces the gate wide open (w_s = 1, centred at the median entropy of the fill-in
# predictions, so most blanks get lambda near 1): that is *not* how this model was trained, and shows what SM
# inputs do to a model that never learned to read them.

# %%
from smkit.core.softmask import soft_mask_embeddings


def first_difference(a, b):
    """(step, sample, [positions]) of the first step after which two decodes' tokens differ, or None."""
    n = min(len(a.trace), len(b.trace))
    for s in range(n):
        diff = a.trace.tokens[s] != b.trace.tokens[s]
        if diff.any():
            sample = int(diff.any(-1).float().argmax())
            return s, sample, diff[sample].nonzero().flatten().tolist()
    return None


def gate_effect(g_binary):
    """At every state of a binary decode (step 2 on): total variation between the predictions with bare masks and
    with SM inputs from the previous step's predictions, at the masked positions, and how often the likeliest
    token changes."""
    tvs, flips, states = [], 0, g_binary.trace.tokens
    with torch.no_grad():
        previous = m(torch.where(g_binary.trace[0].masked_before, m.mask_id, g_binary.trace[0].tokens))
        for s in range(len(g_binary.trace) - 1):
            x = states[s]
            masked = x == m.mask_id
            if not masked.any():
                break
            plain = m(x)
            soft = m(x, inputs_embeds=soft_mask_embeddings(x, previous, m.embedding_weight, m.mask_id, k, w_s, w_b, w_a))
            tvs.append(0.5 * (plain.exp() - soft.exp()).abs().sum(-1)[masked])
            flips += int((plain.argmax(-1) != soft.argmax(-1))[masked].sum())
            previous = plain
    tv = torch.cat(tvs) if tvs else torch.zeros(1)
    return tv, flips


def mean_text(x):
    if x.numel() < 2:
        return f"{float(x.mean()):.3g}"
    e = Estimate.of(x)
    return f"{e.value:.3g} +- {e.se:.2g}"


def describe_drift(pairs, what):
    """`pairs`: (SM decode, binary decode) of the same seeds; the first pair that differs is explained."""
    differ = sum(int((on_.tokens != off_.tokens).sum()) for on_, off_ in pairs)
    total = sum(int((on_.trace[0].masked_before).sum()) for on_, _ in pairs)
    print(f"{what}: {differ} of {total} decoded tokens differ between SM and binary")
    found = [(on_, off_, first_difference(on_, off_)) for on_, off_ in pairs]
    found = [f for f in found if f[2] is not None]
    if not found:
        print("verdict: the decodes are identical: no draw flipped, so there was nothing to drift from")
        return
    on, off, (s, b, positions) = found[0]
    rec_on, rec_off = on.trace[s], off.trace[s]
    both = [p for p in positions if rec_on.revealed[b, p] and rec_off.revealed[b, p]]
    detail = []
    for p in positions[:2]:
        a_id, b_id = int(rec_on.tokens[b, p]), int(rec_off.tokens[b, p])
        probs = []
        for rec, label in ((rec_on, "SM"), (rec_off, "binary")):
            ids, ps = rec.topk_ids[b, p].tolist(), rec.topk_probs[b, p].tolist()
            probs.append(f"{label}: " + ", ".join(f"p({tok.decode([t])!r}) = {ps[ids.index(t)]:.3f}" if t in ids else
                                                  f"{tok.decode([t])!r} not in its top {len(ids)}"
                                                  for t in (a_id, b_id) if t != m.mask_id))
        detail.append(f"position {p}: SM wrote {tok.decode([a_id]) if a_id != m.mask_id else '[MASK]'!r}, binary "
                      f"{tok.decode([b_id]) if b_id != m.mask_id else '[MASK]'!r} ({'; '.join(probs)})")
    kind = ("the same positions were revealed but a different token was drawn" if len(both) == len(positions)
            else "the rule revealed different positions (their confidence order changed)")
    print(f"verdict: the first decode that differs parts at step {s} (of {len(on.trace)}), at {len(positions)} "
          f"position(s): {kind}; " + " / ".join(detail))
    print(f"verdict: drift: after the first changed step the contexts differ, and by the end {differ} tokens differ "
          f"over {len(found)} of {len(pairs)} decode(s): the consequences of a few changed draws, not {differ} "
          f"separate effects of the gate")


on, off = generated[True], generated[False]
describe_drift([(on, off)], "generate")
tv, flips = gate_effect(off)
print(f"verdict: what the gate itself does (generate, same contexts as the binary decode): total variation between "
      f"the predictions with and without SM inputs {mean_text(tv)} "
      f"(mean over {tv.numel()} predictions, largest {float(tv.max()):.3f}); the likeliest token changed at {flips} "
      f"of them")

blanks = int(masks.sum())


def right_per_blank(gens):
    return [bool(x) for i, g in enumerate(gens) for x in (g.tokens[0][masks[i]] == blocks[i][masks[i]]).tolist()]


print()
describe_drift(list(zip(filled[True], filled[False])), "fill in")
tv_fill = torch.cat([gate_effect(g)[0] for g in filled[False]])
print(f"verdict: what the gate itself does when filling in: total variation "
      f"{mean_text(tv_fill)} (largest {float(tv_fill.max()):.3f})")
print("verdict: " + paired_share_difference(right_per_blank(filled[True]), right_per_blank(filled[False]), "SM",
                                            "binary", larger="restores more blanks than",
                                            smaller="restores fewer blanks than", items="blanks", done="restored").text)
forced = fill_in(True, sm={"scale": 1.0, "centre": -float(stats["fill in"][0].median()), "steepness": w_a})
print(f"gate forced open (not as trained): {sum(int((a.tokens != b.tokens).sum()) for a, b in zip(forced, filled[False]))} "
      f"of {blanks} blanks differ from binary")
print("verdict: " + paired_share_difference(right_per_blank(forced), right_per_blank(filled[False]), "SM forced open",
                                            "binary", larger="restores more blanks than",
                                            smaller="restores fewer blanks than", items="blanks", done="restored").text)
show = lambda ids: tok.decode(ids.tolist()).replace(tok.mask_token, "_")[:300]  # noqa: E731
print(f"\n--- block 0 with its blanks (_) ---\n{show(templates[0])}")
for name, g in (("true text", None), ("binary", filled[False][0]), ("SM as trained", filled[True][0]),
                ("SM forced open", forced[0])):
    print(f"\n--- {name} ---\n{show(blocks[0] if g is None else g.tokens[0])}")

# %% [markdown]
# ## 5. A filmstrip of one decode
# The first generated sample with SM on, at nine moments of its decode (· is a masked token): the prompt stays,
# `tokens_per_step` tokens appear per step, confident ones (often spaces, brackets, line breaks) first.

# %%
from smkit.core.filmstrip import filmstrip

print(filmstrip(generated[True].trace, sample=0))

# %% [markdown]
# ## 6. Step by step (interactive kernels, `live_widget = True`)
# Scrub through the first SM fill-in: the token strip, lambda and entropy per position and step, and the mixture at
# the selected position. Headless runs skip this cell; the explorer's widget state is large, so clear this
# cell's output before saving the notebook.

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
# - Same seed, SM on vs off, isolates SM's effect; but once one draw flips the decodes drift apart, so count the
#   gate's direct effect (same context) apart from the differences that follow.
