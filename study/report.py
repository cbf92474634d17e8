"""Collect the study's training records and decode sweeps into docs/results/ (CSV, figures) and refresh the
generated tables of docs/results.md (the blocks between `<!-- table:NAME -->` and `<!-- /table:NAME -->`).

    python -m study.report [--runs runs/study]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from smkit.io.metrics import read_metrics

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OUT = DOCS / "results"
LABELS = {"binary": "binary", "sm": "SM, iso-compute", "sm-iso-update": "SM, iso-update", "sm-open": "SM, scale from 0.5",
          "sm-k1": "SM k=1", "sm-k5": "SM k=5", "sm-p0.5": "SM p_sm=0.5", "sm-p1.0": "SM p_sm=1.0"}
METRICS = ["gen_ppl", "entropy", "repetition", "mauve", "sample_bound"]


def split_name(name: str) -> tuple[str, int]:
    variant, seed = name.rsplit("-s", 1)
    return variant, int(seed)


def training_records(runs: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    finals, curves = [], []
    for folder in sorted(p for p in runs.iterdir() if (p / "model" / "smkit.json").is_file()):
        variant, seed = split_name(folder.name)
        history = read_metrics(folder)
        last = history.dropna(subset=["val_bound"]).iloc[-1]
        finals.append({"variant": variant, "seed": seed, "updates": int(last.step),
                       "forward_passes": int(last.forward_passes), "val_bound": last.val_bound,
                       "val_bound_sm": last.val_bound_sm, "scale": last.scale, "steepness": last.steepness,
                       "centre": last.centre,
                       "train_s": last.elapsed_s})
        curves.append(history[["step", "forward_passes", "scale", "steepness", "centre", "val_bound", "val_bound_sm"]]
                      .assign(variant=variant, seed=seed))
    return pd.DataFrame(finals), pd.concat(curves, ignore_index=True)


def decode_records(runs: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, refs = [], []
    for csv in sorted((runs / "decode").glob("*/*/nfe_sweep.csv")):
        variant, seed = split_name(csv.parent.parent.name)
        rows.append(pd.read_csv(csv).drop(columns="example").assign(variant=variant, train_seed=seed,
                                                                    setting=csv.parent.name))
        summary = json.loads((csv.parent / "nfe_sweep_summary.json").read_text())
        refs.append({"variant": variant, "seed": seed, "references_gen_ppl": summary.get("references_gen_ppl")})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(refs)


def pm(values: pd.Series, digits: int) -> str:
    """mean ± std over seeds (std only with more than one seed)."""
    v = values.dropna()
    if v.empty:
        return "n/a"
    if len(v) == 1:
        return f"{v.iloc[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def training_table(finals: pd.DataFrame) -> str:
    lines = ["| model | seeds | updates | forward passes | val. bound, binary inputs (nats/char) | val. bound, SM inputs "
             "| final scale | final steepness | final centre |", "|---|---|---|---|---|---|---|---|---|"]
    for variant in LABELS:
        part = finals[finals.variant == variant]
        if part.empty:
            continue
        lines.append(f"| {LABELS[variant]} | {len(part)} | {int(part.updates.mean())} | {int(part.forward_passes.mean())} "
                     f"| {pm(part.val_bound, 4)} | {pm(part.val_bound_sm, 4)} | {pm(part.scale, 4)} "
                     f"| {pm(part.steepness, 3)} | {pm(part.centre, 3)} |")
    return "\n".join(lines)


def decode_table(rows: pd.DataFrame, variants, setting: str, strategies=None) -> str:
    lines = ["| strategy | budget | model | seeds | gen. PPL | unigram entropy | 4-gram repetition | MAUVE "
             "| model's bound on its samples | mean lambda |", "|---|---|---|---|---|---|---|---|---|---|"]
    part = rows[rows.setting == setting]
    for strategy in strategies or sorted(part.strategy.unique()):
        for steps in sorted(part.steps.unique()):
            for variant in variants:
                cell = part[(part.strategy == strategy) & (part.steps == steps) & (part.variant == variant)]
                if cell.empty:
                    continue
                lines.append(f"| {strategy} | {cell.budget.iloc[0]} | {LABELS[variant]} | {cell.train_seed.nunique()} "
                             f"| {pm(cell.gen_ppl, 0)} | {pm(cell.entropy, 3)} | {pm(cell.repetition, 3)} "
                             f"| {pm(cell.mauve, 3)} | {pm(cell.sample_bound, 3)} | {pm(cell.mean_lambda, 4)} |")
    return "\n".join(lines)


def decode_ablation_table(rows: pd.DataFrame) -> str:
    """lambda schedules and ReMDM with and without SM, at the ablation budgets, confidence / remdm-loop."""
    lines = ["| decoding | budget | seeds | gen. PPL | unigram entropy | MAUVE | mean lambda |", "|---|---|---|---|---|---|---|"]
    cases = [("SM model, lambda schedule none", "sm", "main", "confidence"),
             ("SM model, lambda schedule linear", "sm", "lambda-linear", "confidence"),
             ("SM model, lambda schedule stepwise", "sm", "lambda-stepwise", "confidence"),
             ("ReMDM (loop), binary model", "binary", "remdm", "remdm-loop"),
             ("ReMDM (loop), SM model with SM", "sm", "remdm", "remdm-loop")]
    for steps in sorted(rows[rows.setting == "remdm"].steps.unique()):
        for label, variant, setting, strategy in cases:
            cell = rows[(rows.variant == variant) & (rows.setting == setting) & (rows.strategy == strategy)
                        & (rows.steps == steps)]
            if cell.empty:
                continue
            lines.append(f"| {label} | {cell.budget.iloc[0]} | {cell.train_seed.nunique()} | {pm(cell.gen_ppl, 0)} "
                         f"| {pm(cell.entropy, 3)} | {pm(cell.mauve, 3)} | {pm(cell.mean_lambda, 4)} |")
    return "\n".join(lines)


def noise_table(rows: pd.DataFrame) -> str:
    """The same binary model decoded with decode seeds 1, 2, 3: how far the metrics move by sampling alone."""
    part = rows[rows.setting == "decode-seeds"]
    lines = ["| budget | decode seeds | gen. PPL | unigram entropy | MAUVE |", "|---|---|---|---|---|"]
    for steps, cell in part.groupby("steps"):
        lines.append(f"| {cell.budget.iloc[0]} | {cell.seed.nunique()} | {pm(cell.gen_ppl, 0)} | {pm(cell.entropy, 3)} "
                     f"| {pm(cell.mauve, 3)} |")
    return "\n".join(lines)


def figures(rows: pd.DataFrame, curves: pd.DataFrame) -> list[str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    made = []
    colours = {"binary": "#264653", "sm": "#e76f51", "sm-iso-update": "#2a9d8f", "sm-open": "#e9c46a"}
    main = rows[rows.setting == "main"]
    fig = make_subplots(rows=2, cols=3, shared_xaxes=True, horizontal_spacing=0.07, vertical_spacing=0.1,
                        subplot_titles=["gen. PPL (SmolLM2-135M judge)", "MAUVE", "unigram entropy",
                                        "", "", ""])
    for r, strategy in enumerate(["confidence", "ancestral"], start=1):
        for variant, colour in colours.items():
            part = main[(main.variant == variant) & (main.strategy == strategy)]
            if part.empty:
                continue
            agg = part.groupby("steps")[["gen_ppl", "mauve", "entropy"]].agg(["mean", "std"])
            for c, metric in enumerate(["gen_ppl", "mauve", "entropy"], start=1):
                fig.add_trace(go.Scatter(x=agg.index, y=agg[metric]["mean"], mode="lines+markers",
                                         error_y=dict(array=agg[metric]["std"].fillna(0)), line=dict(color=colour),
                                         name=LABELS[variant], legendgroup=variant, showlegend=r == 1 and c == 1), r, c)
        fig.update_yaxes(title_text=strategy, row=r, col=1)
    fig.update_xaxes(type="log", tickvals=[16, 32, 64, 128], title_text="denoising steps (L = 128)", row=2)
    fig.update_layout(height=620, width=1100, title="Binary vs SM decoding over the budget (mean ± std over seeds)")
    made += save(fig, "budget_sweep")

    sm_curves = curves[curves.variant != "binary"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["scale", "centre"])
    palette = ["#e76f51", "#2a9d8f", "#e9c46a", "#264653", "#8ab17d", "#6a4c93", "#f4a261"]
    for i, (variant, group) in enumerate(sm_curves.groupby("variant")):
        for seed, run in group.groupby("seed"):
            for c, w in enumerate(["scale", "centre"], start=1):
                fig.add_trace(go.Scatter(x=run.forward_passes, y=run[w], mode="lines",
                                         line=dict(color=palette[i % len(palette)]), name=LABELS.get(variant, variant),
                                         legendgroup=variant, showlegend=bool(seed == group.seed.min() and c == 1)), 1, c)
    fig.update_xaxes(title_text="forward passes")
    fig.update_layout(height=380, width=1100, title="The learned SM scalars over training")
    made += save(fig, "learned_w")
    return made


def save(fig, name: str) -> list[str]:
    html = OUT / f"{name}.html"
    fig.write_html(html, include_plotlyjs="cdn")
    made = [str(html.relative_to(ROOT))]
    if os.path.exists("/usr/bin/chromium"):
        os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
    try:
        png = OUT / f"{name}.png"
        fig.write_image(png, scale=1)
        made.append(str(png.relative_to(ROOT)))
    except Exception as err:  # kaleido needs a Chrome/Chromium; the HTML is still written
        print(f"PNG export of {name} skipped: {type(err).__name__}: {err}", file=sys.stderr)
    return made


def refresh(doc: Path, tables: dict[str, str]) -> None:
    text = doc.read_text()
    for name, body in tables.items():
        start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
        if start not in text:
            raise SystemExit(f"{doc} has no {start} ... {end} block")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{body}\n{end}{tail}"
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, doc)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(ROOT / "runs" / "study"), help="folder of the trained models and decodes")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    OUT.mkdir(parents=True, exist_ok=True)
    finals, curves = training_records(runs)
    rows, refs = decode_records(runs)
    finals.to_csv(OUT / "training.csv", index=False)
    curves.to_csv(OUT / "learned_w.csv", index=False)
    rows.to_csv(OUT / "decode.csv", index=False)
    tables = {
        "training": training_table(finals),
        "main": decode_table(rows, ["binary", "sm", "sm-iso-update", "sm-open"], "main"),
        "ablations": decode_table(rows, ["sm", "sm-k1", "sm-k5", "sm-p0.5", "sm-p1.0"], "main", ["confidence"]),
        "decode_ablations": decode_ablation_table(rows),
        "noise": noise_table(rows),
        "references": f"Held-out passages of the same length (128 characters), scored the same way: gen. PPL "
                      f"{refs.references_gen_ppl.dropna().iloc[0]:.0f}." if refs.references_gen_ppl.notna().any() else "n/a",
    }
    made = figures(rows, curves)
    refresh(DOCS / "results.md", tables)
    print("wrote", ", ".join(made + ["docs/results/training.csv", "docs/results/learned_w.csv",
                                     "docs/results/decode.csv", "docs/results.md (tables)"]))


if __name__ == "__main__":
    sys.exit(main())
