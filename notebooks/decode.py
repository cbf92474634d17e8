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
# `decode.trace` (the trace, written step by step while decoding: memory stays at one step, and a decode
# stopped early leaves a file that opens with the steps done; `smkit.Trace.open` reads it lazily),
# `decode_texts.jsonl`, `decode_trace.csv` (one row per sample, step and position, top-k columns left out; an
# even choice of steps when the whole trace would pass `table_rows_max` rows), and plots as HTML (lambda and
# entropy heatmaps, reveal order; `plotly.min.js` is written once beside them), plus a standalone trace
# explorer page `decode_explorer.html` when the trace is small enough for one page (`page_max_cells`).
#
# `smkit run notebooks/decode.ipynb -p steps 16 -p strategy margin -p soft_mask false`
#
# **Decode on a GPU, explore on a laptop.** Run this notebook where the model runs (`-p device cuda`); the trace
# file holds everything the views need (tokens, lambda, entropy, top-k, settings, tokenizer), so copy it to a
# laptop and run the notebook there with `-p open_trace decode.trace`: nothing is decoded, no model is loaded,
# and the file is read one step at a time (docs/traces.md).

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
device: Optional[str] = None  # run the model here, e.g. "cuda"; None: where the model is (the CPU)
trace_file: Optional[str] = None  # where the trace is written while decoding; None: decode.trace in the output folder (replaced on each run, like the other outputs)
overwrite: bool = False  # replace an existing trace_file you named (never done otherwise)
trace_precision: str = "float16"  # lambda, entropy, probabilities in the file: float16 (half the size) or float32
open_trace: Optional[str] = None  # a trace file written earlier: open it instead of decoding (no model needed)
table_rows_max: int = 2_000_000  # at most this many rows in decode_trace.csv (evenly chosen steps beyond it)
page_max_cells: int = 65_536  # write decode_explorer.html when steps x length is at most this (it holds every step)
out_dir: Optional[str] = None  # output folder; None: the `smkit run` folder, else runs/decode

# %%
# Check the parameters before any compute: a bad value stops here with a message naming it.
import os

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
check_parameter(device is None or isinstance(device, str), "device", device, "None or a torch device name, e.g. 'cuda'")
check_parameter(trace_file is None or isinstance(trace_file, str), "trace_file", trace_file, "None or a file path")
overwrite = bool_parameter(overwrite, "overwrite")
check_parameter(open_trace is not None or trace_file is None or overwrite or not os.path.exists(trace_file),
                "trace_file", trace_file, "a file is already there: name another, or pass overwrite=True to replace it")
check_parameter(trace_precision in ("float16", "float32"), "trace_precision", trace_precision,
                "choose float16 or float32")
check_parameter(open_trace is None or isinstance(open_trace, str), "open_trace", open_trace,
                "None or the path of a trace file written earlier")
check_parameter(isinstance(table_rows_max, int) and table_rows_max >= 1, "table_rows_max", table_rows_max,
                "must be an integer >= 1")
check_parameter(isinstance(page_max_cells, int) and page_max_cells >= 0, "page_max_cells", page_max_cells,
                "must be an integer >= 0")
out = output_dir(out_dir, "runs/decode")

# %%
import json

if open_trace is not None:   # explore a trace decoded elsewhere: no model, nothing decoded
    m = None
    trace = smkit.Trace.open(open_trace)
    print(f"opened {open_trace}: {trace}")
else:
    m = smkit.load_pretrained(model)
    check_parameter(length <= m.config.seq_len, "length", length,
                    f"must be at most the model's seq_len={m.config.seq_len}")
    trace_path = trace_file or str(out / "decode.trace")
    g = smkit.generate(m, prompt=prompt or None, infill=infill, num_samples=num_samples, length=length,
                       steps=steps, strategy=strategy, soft_mask=soft_mask, sm=None if k is None else {"k": k},
                       lambda_schedule=lambda_schedule, temperature=temperature, seed=seed, device=device,
                       trace=smkit.TraceFile(trace_path, overwrite=overwrite or trace_file is None,
                                             precision=trace_precision),
                       progress=True)
    trace = g.trace
    print(f"{num_samples} samples, {g.nfe} forward passes, {g.steps} steps; trace written to {trace.path}")
texts = trace.texts_at(-1) if trace.tokenizer is not None else None
for i, text in enumerate(texts or []):
    print(f"--- sample {i}\n{text}")

# %%
import numpy as np

final = trace.tokens_after(-1)
prompt_length = trace.meta.get("prompt_length", 0)
with open(out / "decode_texts.jsonl", "w", encoding="utf-8") as f:
    for i, row in enumerate(final.tolist()):
        completion = trace.tokenizer.decode(row[prompt_length:]) if trace.tokenizer is not None else None
        f.write(json.dumps({"sample": i, "text": texts[i] if texts else None, "completion": completion,
                            "tokens": row, "nfe": int(trace[-1].nfe)}) + "\n")
per_step = trace.num_samples * trace.length
shown = np.unique(np.linspace(0, len(trace) - 1, max(1, min(len(trace), table_rows_max // per_step))).round().astype(int))
table = trace.to_pandas(steps=shown.tolist())   # reads only these steps
table.drop(columns=[c for c in ("topk_ids", "topk_probs") if c in table]).to_csv(out / "decode_trace.csv", index=False)
print(f"decode_trace.csv: {len(table)} rows, {len(shown)} of {len(trace)} steps")
table.groupby("step")[["lam", "entropy"]].mean().round(4).head(8)

# %% [markdown]
# ## Lambda and entropy per step and position; the order in which positions were revealed

# %%
import plotly.graph_objects as go
import plotly.io as pio
from smkit.widgets import TraceExplorer, figures, sample_view

pio.renderers.default = "plotly_mimetype+notebook"
view = sample_view(trace, 0, model=m)
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
if view.num_steps * view.length <= page_max_cells:
    TraceExplorer(trace, model=m).to_html(out / "decode_explorer.html")
    print(f"plots and explorer page in {out}")
else:
    print(f"plots in {out}; no explorer page: {view.num_steps} steps x {view.length} positions pass page_max_cells="
          f"{page_max_cells} (a page holds every step); explore the file with TraceExplorer(smkit.Trace.open(path))")
