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
# # Decode with any strategy, with or without soft-masking
#
# One decode with every sampler setting exposed as a parameter. Writes into the output folder:
# `decode.trace.safetensors` (the full trace, reload with `smkit.Trace.load`), `decode_texts.jsonl`,
# `decode_trace.csv` (one row per sample, step and position, top-k columns left out), and plots as HTML
# (lambda and entropy heatmaps, reveal order; `plotly.min.js` is written once beside them), plus a
# standalone trace explorer page `decode_explorer.html`.
#
# `smkit run notebooks/decode.ipynb -p steps 16 -p strategy margin -p soft_mask false`

# %% tags=["parameters"]
from typing import Optional

model: Optional[str] = "python-sm"  # shipped model name (smkit.PRETRAINED) or checkpoint folder; None: smkit.load_pretrained()
prompt: str = "ROMEO.\n"  # text kept fixed as a prefix ('' for none)
infill: Optional[str] = None  # template after the prompt; each [MASK] in it is generated, the rest kept
length: int = 128  # tokens per sample, prompt included (at most the model's seq_len)
num_samples: int = 2  # samples decoded together
strategy: str = "confidence"  # unmasking rule, one of smkit.STRATEGIES
steps: int = 32  # denoising steps, the forward-pass budget
soft_mask: bool = True  # feed still-masked positions soft-masked inputs
k: Optional[int] = None  # SM top-k candidates; None: the model's
lambda_schedule: str = "none"  # none, linear or stepwise scaling of lambda over the decode
temperature: float = 1.0  # sampling temperature, > 0
seed: int = 0  # fixes the samples on a given machine
out_dir: Optional[str] = None  # output folder; None: the `smkit run` folder, else runs/decode

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import smkit
from smkit.notebooks import bool_parameter, check_parameter, output_dir

check_parameter(model is None or isinstance(model, str), "model", model, "a shipped model name or a checkpoint folder")
check_parameter(isinstance(prompt, str), "prompt", prompt, "must be text ('' for no prompt)")
check_parameter(infill is None or (isinstance(infill, str) and "[MASK]" in infill), "infill", infill,
                "None or a text holding at least one [MASK]")
check_parameter(isinstance(length, int) and length >= 2, "length", length, "must be an integer >= 2")
check_parameter(isinstance(num_samples, int) and num_samples >= 1, "num_samples", num_samples, "must be an integer >= 1")
check_parameter(strategy in smkit.STRATEGIES, "strategy", strategy, f"choose one of {sorted(smkit.STRATEGIES)}")
check_parameter(isinstance(steps, int) and steps >= 1, "steps", steps, "must be an integer >= 1")
soft_mask = bool_parameter(soft_mask, "soft_mask")  # papermill's own -p passes true/false as text
check_parameter(k is None or (isinstance(k, int) and k >= 1), "k", k, "None or an integer >= 1")
check_parameter(lambda_schedule in ("none", "linear", "stepwise"), "lambda_schedule", lambda_schedule,
                "choose one of none, linear, stepwise")
check_parameter(isinstance(temperature, (int, float)) and temperature > 0, "temperature", temperature, "must be > 0")
check_parameter(isinstance(seed, int), "seed", seed, "must be an integer")
out = output_dir(out_dir, "runs/decode")

# %%
import json

m = smkit.load_pretrained(model)
check_parameter(length <= m.config.seq_len, "length", length, f"must be at most the model's seq_len={m.config.seq_len}")
g = smkit.generate(m, prompt=prompt or None, infill=infill, num_samples=num_samples, length=length, steps=steps,
                   strategy=strategy, soft_mask=soft_mask, sm=None if k is None else {"k": k},
                   lambda_schedule=lambda_schedule,
                   temperature=temperature, seed=seed, trace=True, progress=True)
print(f"{num_samples} samples, {g.nfe} forward passes, {g.steps} steps")
for i, text in enumerate(g.texts):
    print(f"--- sample {i}\n{text}")

# %%
trace_path = g.trace.save(out / "decode.trace.safetensors")
with open(out / "decode_texts.jsonl", "w", encoding="utf-8") as f:
    for i, row in enumerate(g.tokens.tolist()):
        f.write(json.dumps({"sample": i, "text": g.texts[i], "completion": g.completions[i], "tokens": row,
                            "nfe": g.nfe}) + "\n")
table = g.trace.to_pandas()
table.drop(columns=[c for c in ("topk_ids", "topk_probs") if c in table]).to_csv(out / "decode_trace.csv", index=False)
print(f"trace: {trace_path}; {len(table)} rows")
table.groupby("step")[["lam", "entropy"]].mean().round(4).head(8)

# %% [markdown]
# ## Lambda and entropy per step and position; the order in which positions were revealed

# %%
import plotly.graph_objects as go
import plotly.io as pio
from smkit.widgets import TraceExplorer, figures, sample_view

pio.renderers.default = "plotly_mimetype+notebook"
view = sample_view(g.trace, 0, model=m)
last = view.num_steps - 1
heat = figures.heatmaps_figure([view], last)
reveal = [view.reveal_step(p) for p in range(view.length)]
order = go.Figure(go.Bar(x=list(range(view.length)), y=[-1 if s is None else s for s in reveal],
                         hovertext=view.token_labels(last), marker_color="#1f77b4"))
order.update_layout(title="reveal order of sample 0 (step at which each position was decoded; -1: prompt)",
                    xaxis_title="position", yaxis_title="step", height=300)
for fig, name in ((heat, "decode_heatmaps"), (order, "decode_reveal_order")):
    fig.write_html(out / f"{name}.html", include_plotlyjs="directory")
    fig.show()
TraceExplorer(g.trace, model=m).to_html(out / "decode_explorer.html")
print(f"plots and explorer page in {out}")
