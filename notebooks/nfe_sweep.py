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
# # Binary vs soft-masked decoding over forward-pass budgets
#
# For each strategy, each budget L/8, L/4, L/2, L (L: sequence length; budget = denoising steps), each seed and
# each decoding (binary masks, SM), decodes `num_samples` samples and scores them:
# - with the judge (`smkit.metrics`): generative perplexity (`gen_ppl`), the unigram entropy and 4-gram
#   repetition of the samples (low entropy or high repetition games gen. PPL: read them together), and MAUVE
#   against `mauve_references` held-out passages of the corpus, featurised by the same judge;
# - with the model itself: `sample_bound`, its own MDLM bound on what it generated (nats/token), and the mean
#   predictive entropy and lambda over the decode;
# - forward passes spent and wall time.
# The model's validation bound with binary and SM inputs is reported once (it does not depend on the decode).
# Writes `nfe_sweep.csv`, `nfe_sweep_summary.json` and the figures as HTML.

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "shakespeare-sm"  # shipped model name (smkit.PRETRAINED) or checkpoint folder; None: smkit.load_pretrained()
corpus: Optional[str] = "shakespeare"  # corpus for the validation bound and the MAUVE references; None to skip both
eval_blocks: int = 64  # validation blocks for the bound
prompt: str = ""  # prefix kept fixed ('' for unconditional samples)
length: int = 128  # L: tokens per sample (at most the model's seq_len)
budget_divisors: list = [8, 4, 2, 1]  # budgets L/d steps for each d
strategies: list = ["confidence", "ancestral"]  # unmasking rules compared, from smkit.STRATEGIES
decodings: list = ["binary", "SM"]  # binary masks and/or soft-masked inputs
num_samples: int = 4  # samples per (strategy, budget, decoding, seed)
seeds: list = [0]  # one decode per seed for every setting
k: Optional[int] = None  # SM top-k at decoding (None: the model's)
lambda_schedule: str = "none"  # none | linear | stepwise (SM strength over the decode)
judge: Optional[str] = "smollm2"  # judge for gen. PPL / entropy / MAUVE: built-in name or HF causal LM folder; None: skip
mauve_references: int = 256  # held-out corpus passages (decoded from validation blocks) MAUVE compares against; 0: no MAUVE
out_dir: Optional[str] = None  # output folder; None: the `smkit run` folder, else runs/nfe_sweep

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import smkit
from smkit.notebooks import check_parameter, output_dir

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(corpus is None or isinstance(corpus, str), "corpus", corpus, "None or a corpus name / path")
check_parameter(isinstance(eval_blocks, int) and eval_blocks >= 1, "eval_blocks", eval_blocks, "must be an integer >= 1")
check_parameter(isinstance(length, int) and length >= 2, "length", length, "must be an integer >= 2")
check_parameter(isinstance(budget_divisors, list) and budget_divisors
                and all(isinstance(d, int) and 1 <= d <= length for d in budget_divisors),
                "budget_divisors", budget_divisors, f"a non-empty list of integers in [1, length={length}]")
check_parameter(isinstance(strategies, list) and strategies and all(s in smkit.STRATEGIES for s in strategies),
                "strategies", strategies, f"a non-empty list from {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(decodings, list) and decodings and set(decodings) <= {"binary", "SM"},
                "decodings", decodings, "a non-empty list of 'binary' and/or 'SM'")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "must be an integer >= 1")
check_parameter(isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds), "seeds", seeds,
                "a non-empty list of integers")
check_parameter(k is None or (isinstance(k, int) and k >= 1), "k", k, "None or an integer >= 1")
check_parameter(lambda_schedule in ("none", "linear", "stepwise"), "lambda_schedule", lambda_schedule,
                "one of none, linear, stepwise")
check_parameter(judge is None or isinstance(judge, str), "judge", judge, "None, 'smollm2' or a causal LM folder")
check_parameter(isinstance(mauve_references, int) and mauve_references >= 0, "mauve_references", mauve_references,
                "an integer >= 0 (0 turns MAUVE off)")
check_parameter(mauve_references == 0 or (corpus is not None and judge is not None), "mauve_references",
                mauve_references, "needs a corpus and a judge (set it to 0 otherwise)")
out = output_dir(out_dir, "runs/nfe_sweep")

# %%
import json

import pandas as pd
import torch

from smkit.evaluation.metrics import reference_features as reference_features_of, text_metrics

m = smkit.load_pretrained(model)
check_parameter(length <= m.config.seq_len, "length", length, f"must be at most the model's seq_len={m.config.seq_len}")
summary = {"model": model or "default", "length": length, "soft_mask": m.soft_mask.values(), "judge": judge}
references = None
if corpus is not None:
    from smkit.io.data import build_datasets
    _, _, val = build_datasets(corpus, tokenizer=m.tokenizer, seq_len=m.config.seq_len)
    summary["val_bound"] = m.validation_bound(val[:eval_blocks], soft_mask=False)
    summary["val_bound_sm"] = m.validation_bound(val[:eval_blocks], soft_mask=True)
    print(f"validation bound on {min(len(val), eval_blocks)} blocks: {summary['val_bound']:.4f} (binary inputs), "
          f"{summary['val_bound_sm']:.4f} (SM inputs) nats/token")
    # MAUVE references: held-out passages of the same length as the samples, spread over the validation split.
    if mauve_references:
        step = max(1, len(val) // mauve_references)
        references = m.tokenizer.batch_decode(val[::step][:mauve_references, :length].tolist())
        summary["mauve_references"] = len(references)

scorer = reference_features = None
if judge is not None:
    from smkit.evaluation.judge import load_judge
    scorer = load_judge(judge)
    if references is not None:
        reference_features = reference_features_of(scorer, references)  # cached on disk across runs
        summary["references_gen_ppl"] = text_metrics(references, scorer)["gen_ppl"]

# %%
rows = []
budgets = sorted({max(1, length // d) for d in budget_divisors})
for strategy in strategies:
    for steps in budgets:
        for decoding in decodings:
            for seed in seeds:
                g = smkit.generate(m, prompt=prompt or None, num_samples=num_samples, length=length, steps=steps,
                                   strategy=strategy, soft_mask=decoding == "SM", seed=seed,
                                   sm=None if k is None else {"k": k},
                                   lambda_schedule=lambda_schedule, trace=True)
                table = g.trace.to_pandas()
                with torch.no_grad():
                    sample_bound = m.validation_bound(g.tokens, soft_mask=False, seed=seed)
                row = {"strategy": strategy, "steps": steps, "budget": f"L/{length // steps}" if length % steps == 0
                       else f"{steps}/{length}", "decoding": decoding, "seed": seed, "nfe": g.nfe,
                       "wall_s": round(g.wall_time, 4), "mean_entropy": table[table.masked_before].entropy.mean(),
                       "mean_lambda": table[table.masked].lam.mean(), "sample_bound": sample_bound}
                if scorer is not None:
                    row.update(text_metrics(g.texts, scorer, reference_features=reference_features))
                row["example"] = g.texts[0]
                rows.append(row)
results = pd.DataFrame(rows)
results.to_csv(out / "nfe_sweep.csv", index=False)
(out / "nfe_sweep_summary.json").write_text(json.dumps(summary, indent=2))
results.drop(columns="example").groupby(["strategy", "steps", "decoding"]).mean(numeric_only=True).round(4)

# %% [markdown]
# ## Figures: each quantity against the forward-pass budget, binary (solid) vs SM (dashed), mean over seeds

# %%
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

pio.renderers.default = "plotly_mimetype+notebook"
panels = [(f, t) for f, t in [("gen_ppl", "generative perplexity (judge)"), ("entropy", "unigram entropy"),
                              ("mauve", "MAUVE"), ("sample_bound", "model's bound on its samples"),
                              ("wall_s", "wall time (s)")] if f in results]
fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t in panels])
colours = ["#1f77b4", "#e76f51", "#2a9d8f", "#e9a23b", "#6a4c93"]
mean = results.groupby(["strategy", "decoding", "steps"], as_index=False).mean(numeric_only=True)
for si, strategy in enumerate(strategies):
    for decoding, dash in (("binary", "solid"), ("SM", "dash")):
        part = mean[(mean.strategy == strategy) & (mean.decoding == decoding)]
        for col, (field, _) in enumerate(panels, start=1):
            fig.add_trace(go.Scatter(x=part.nfe, y=part[field], mode="lines+markers", name=f"{strategy}, {decoding}",
                                     legendgroup=f"{strategy}{decoding}", showlegend=col == 1,
                                     line=dict(dash=dash, color=colours[si % len(colours)])), 1, col)
fig.update_xaxes(type="log", title="forward passes")
fig.update_layout(height=360)
fig.write_html(out / "nfe_sweep.html", include_plotlyjs="directory")
fig.show()
print(f"table: {out / 'nfe_sweep.csv'}; figure: {out / 'nfe_sweep.html'}")
