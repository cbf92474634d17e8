"""The continued-pretraining edition of the study: the four shipped twins, measured.

    python -m study.continued_study measure [--models runs/continued] [--seeds 7001 7002 7003]
    python -m study.continued_study gate            # lambda and entropy at masked positions against the share masked
    python -m study.continued_study quality [--samples 64] [--seeds 0 1]   # judge metrics over budgets (nfe_sweep)
    python -m study.continued_study report          # tables into docs/results.md, figures into docs/results/continued/

`measure` writes docs/results/continued/measurements.json: per model the held-out nats/char (binary and SM
inputs), the SM effect at L/4 steps with confidence unmasking over fresh decode seeds (first-pass lambda at
still-masked positions, samples of 16 that change when SM is switched on), the entropy histogram at the
positions still masked after the first pass, and the gradient that reaches the gate's three raw scalars.
Models come from the training runs (configs/continued/run.sh) or, with --models shipped, from the package.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import torch

from smkit.io.metrics import read_metrics

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results" / "continued"
NAMES = {"shakespeare": ("shakespeare-sm", "shakespeare-binary"), "python": ("python-sm", "python-binary")}
HELDOUT_BLOCKS = 512  # held-out blocks per bound (a fixed random draw, the same for every model of a corpus)
ENTROPY_BINS = [i * 0.5 for i in range(15)]  # nats, 0 .. 7 (ln 1024 = 6.93)


def model_path(models: str, name: str) -> Path:
    from smkit.io.model_files import PRETRAINED_DIR
    return PRETRAINED_DIR / name if models == "shipped" else Path(models) / name / "model"


def gate_gradient(model, blocks: torch.Tensor, seed: int = 0) -> dict:
    """d(SM loss)/d(raw gate scalars) on held-out blocks: the direction training pushes the gate."""
    model.zero_grad(set_to_none=True)
    loss = model.loss(blocks, soft_mask=True, generator=torch.Generator().manual_seed(seed))
    loss.backward()
    sm = model.soft_mask
    out = {n: float(getattr(sm, n).grad) for n in ("raw_scale", "raw_centre", "raw_steepness")}
    model.zero_grad(set_to_none=True)
    return out


def first_pass_entropy(model, num_samples: int, seed: int) -> list[float]:
    """Entropy (nats) at the positions still masked after the first decoding pass (L/4 steps, confidence)."""
    import smkit
    g = smkit.generate(model, num_samples=num_samples, length=model.config.seq_len, steps=model.config.seq_len // 4,
                       strategy="confidence", soft_mask=True, seed=seed)
    first = g.trace[0]
    return first.entropy[first.masked].tolist()


INFILL_SPAN = (48, 80)  # the tokens an infill decode fills: the middle quarter of a held-out 128-token block


def infill_effect(model, blocks: torch.Tensor, seed: int, n: int = 32) -> dict:
    """SM where the context is real: n held-out blocks (drawn with `seed`) with their middle quarter masked,
    decoded in a quarter as many steps as masked tokens (confidence), SM on and off on the same seed. Returns
    the first-pass lambda over still-masked positions, the blocks whose fill changes, and the share of filled
    tokens equal to the original (a paired accuracy of both decodes on the same blocks)."""
    import smkit
    a, b = INFILL_SPAN
    rows = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))[:n]
    truth = blocks[rows]
    template = truth.clone()
    template[:, a:b] = model.mask_id
    common = dict(infill=template, num_samples=len(rows), length=truth.shape[1], steps=(b - a) // 4,
                  strategy="confidence", seed=seed)
    on = smkit.generate(model, soft_mask=True, trace=True, **common)
    off = smkit.generate(model, soft_mask=False, trace=False, **common)
    first = on.trace[0]
    right_on = (on.tokens[:, a:b] == truth[:, a:b]).float()
    right_off = (off.tokens[:, a:b] == truth[:, a:b]).float()
    return {"mean_lambda": float(first.lam[first.masked].mean()),
            "mean_entropy": float(first.entropy[first.masked].mean()),
            "changed": int((on.tokens != off.tokens).any(-1).sum()), "n": len(rows),
            "token_accuracy_sm": float(right_on.mean()), "token_accuracy_off": float(right_off.mean()),
            "tokens": right_on.numel()}


MASK_RATES = (0.05, 0.15, 0.3, 0.5, 0.75, 1.0)


@torch.no_grad()
def lambda_by_mask_rate(model, blocks: torch.Tensor, seed: int = 0, n: int = 64) -> list[dict]:
    """Where the gate opens in text: for each share of a held-out block's tokens masked at random, one forward
    pass over n blocks, and at the masked positions the mean entropy, the mean lambda the learned gate gives
    there, and the share of positions with lambda above half its ceiling (the gate's scale)."""
    from smkit.core.softmask import entropy_from_logits, soft_mask_lambda
    gen = torch.Generator().manual_seed(seed)
    x = blocks[torch.randperm(len(blocks), generator=gen)[:n]]
    v = model.soft_mask.values()
    out = []
    for rate in MASK_RATES:
        masked = torch.rand(x.shape, generator=gen) < rate
        logits = model(torch.where(masked, model.mask_id, x))
        h = entropy_from_logits(logits)[masked]
        lam = soft_mask_lambda(None, v["scale"], v["centre"], v["steepness"], entropy=h)
        out.append({"mask_rate": rate, "mean_entropy": float(h.mean()), "mean_lambda": float(lam.mean()),
                    "share_half_open": float((lam > v["scale"] / 2).float().mean()), "positions": int(h.numel())})
    return out


def cmd_gate(args) -> None:
    """Adds `by_mask_rate` (lambda_by_mask_rate) to each measured model in measurements.json."""
    import smkit
    from smkit.io.data import load_corpus, pack_blocks, split_documents
    torch.set_num_threads(args.threads)
    path = OUT / "measurements.json"
    results = json.loads(path.read_text())
    for name, r in results.items():
        model = smkit.load_pretrained(model_path(args.models, name)).eval()
        _, val = split_documents(load_corpus(r["corpus"]))
        r["by_mask_rate"] = lambda_by_mask_rate(model, pack_blocks(val, model.tokenizer, model.config.seq_len))
        print(name, [(e["mask_rate"], round(e["mean_entropy"], 2), round(e["mean_lambda"], 4)) for e in r["by_mask_rate"]],
              flush=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def table_mask_rates(results: dict) -> str:
    rates = MASK_RATES
    lines = ["| model | " + " | ".join(f"{int(r * 100)}% masked" for r in rates) + " |", "|---|" + "---|" * len(rates)]
    for name, r in results.items():
        by = {e["mask_rate"]: e for e in r.get("by_mask_rate", [])}
        if by:
            lines.append(f"| {name} | " + " | ".join(f"H {by[x]['mean_entropy']:.2f}, lambda {by[x]['mean_lambda']:.3f}"
                                                   for x in rates) + " |")
    return "\n".join(lines)


def measure_model(path: Path, corpus: str, seeds: list[int]) -> dict:
    import smkit
    from smkit.io.data import load_corpus, pack_blocks, split_documents
    from smkit.evaluation.metrics import heldout_nats_per_char, soft_mask_effect
    model = smkit.load_pretrained(path)
    effects = [soft_mask_effect(model, num_samples=16, strategy="confidence", seed=s) for s in seeds]
    entropies = sum((first_pass_entropy(model, 16, s) for s in seeds), [])
    hist = pd.cut(pd.Series(entropies), ENTROPY_BINS + [math.inf], right=False).value_counts(sort=False)
    _, val = split_documents(load_corpus(corpus))
    held_out = pack_blocks(val, model.tokenizer, model.config.seq_len)
    return {
        "path": str(path), "soft_mask": model.soft_mask.values(),
        "nats_per_char_binary": heldout_nats_per_char(model, corpus, soft_mask=False, max_blocks=HELDOUT_BLOCKS),
        "nats_per_char_sm": heldout_nats_per_char(model, corpus, soft_mask=True, max_blocks=HELDOUT_BLOCKS),
        "effect": [{k: v for k, v in e.items() if not k.startswith("texts")} for e in effects],
        "example": {"sm": effects[0]["texts_sm"][0], "binary": effects[0]["texts_binary"][0]},
        "entropy_histogram": {"bins": ENTROPY_BINS, "counts": hist.tolist()},
        "mean_entropy_masked": sum(entropies) / max(1, len(entropies)),
        "gate_gradient": gate_gradient(model.train(), held_out[:32]),
        "infill": [infill_effect(model.eval(), held_out, s) for s in seeds],
    }


def _infill_cells(infill) -> str:
    if not infill:
        return "- | - | -"
    on = sum(e["token_accuracy_sm"] * e["tokens"] for e in infill) / sum(e["tokens"] for e in infill)
    off = sum(e["token_accuracy_off"] * e["tokens"] for e in infill) / sum(e["tokens"] for e in infill)
    return (f"{_mean_sd([e['mean_lambda'] for e in infill])} | {', '.join(str(e['changed']) for e in infill)} | "
            f"{on:.3f} / {off:.3f}")


def cmd_measure(args) -> None:
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "measurements.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for corpus, names in NAMES.items():
        for name in names:
            if args.names and name not in args.names:
                continue
            p = model_path(args.models, name)
            if not (p / "smkit.json").is_file():
                print(f"{name}: no model at {p} yet, skipped")
                continue
            results[name] = {"corpus": corpus, "seeds": args.seeds, **measure_model(p, corpus, args.seeds)}
            r = results[name]
            print(f"{name}: {r['nats_per_char_binary']:.3f} / {r['nats_per_char_sm']:.3f} nats/char (binary/SM "
                  f"inputs); mean lambda {[round(e['mean_lambda'], 4) for e in r['effect']]}, changed "
                  f"{[e['changed'] for e in r['effect']]} of 16", flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1) + "\n")
            os.replace(tmp, path)


def cmd_quality(args) -> None:
    """Each twin decoded at L/8, L/4, L/2, L with confidence unmasking as it was trained (SM model with SM,
    binary twin binary), every seed, scored by the judge (gen. PPL, unigram entropy, MAUVE): nfe_sweep runs."""
    import subprocess
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for corpus, names in NAMES.items():
        for name in names:
            if args.names and name not in args.names:
                continue
            model = model_path(args.models, name)
            out = Path(args.out) / name
            if (out / "nfe_sweep.csv").is_file() or not (model / "smkit.json").is_file():
                continue
            cmd = [sys.executable, "-m", "smkit.cli", "run", str(ROOT / "notebooks" / "nfe_sweep.ipynb"), "--out",
                   str(out), "-p", "model", str(model), "-p", "out_dir", str(out), "-p", "corpus", corpus,
                   "-p", "budget_divisors", "[8, 4, 2, 1]", "-p", "strategies", '["confidence"]',
                   "-p", "decodings", '["SM"]' if name.endswith("-sm") else '["binary"]',
                   "-p", "num_samples", str(args.samples), "-p", "seeds", json.dumps(args.seeds),
                   "-p", "mauve_references", str(args.references)]
            print(name, flush=True)
            subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)


def table_quality(folder: Path) -> str:
    """Mean ± sd over decode seeds of each twin's judge metrics per budget, from the copies of the runs'
    nfe_sweep.csv kept beside the other measurements (docs/results/continued/quality-NAME.csv)."""
    lines = ["| model | budget (steps) | gen. PPL | unigram entropy | MAUVE | decode seeds |", "|---|---|---|---|---|---|"]
    for names in NAMES.values():
        for name in names:
            run, f = folder / name / "nfe_sweep.csv", OUT / f"quality-{name}.csv"
            if run.is_file():
                shutil.copy(run, f)
            if not f.is_file():
                continue
            d = pd.read_csv(f)
            for steps, g in d.groupby("steps"):
                lines.append(f"| {name} | {steps} | {_mean_sd(g.gen_ppl)} | {_mean_sd(g.entropy)} | "
                             f"{_mean_sd(g.mauve)} | {g.seed.nunique()} |")
    return "\n".join(lines)


def curves(models: str) -> pd.DataFrame:
    """The twins' training curves since their base: the shipped ones (every continuation stage joined), or a
    runs folder's (one stage)."""
    frames = []
    for names in NAMES.values():
        for name in names:
            folder = model_path(models, name)   # a shipped model's folder, or a run's model/ folder
            f = (folder if models == "shipped" else folder.parent) / "metrics.csv"
            if f.is_file():
                frames.append(read_metrics(f).assign(model=name))
    return pd.concat(frames) if frames else pd.DataFrame()


def _mean_sd(values) -> str:
    s = pd.Series(values, dtype=float)
    return f"{s.mean():.3f} ± {s.std(ddof=1):.3f}" if len(s) > 1 else f"{s.mean():.3f}"


def table_models(results: dict) -> str:
    lines = ["| model | held-out nats/char, binary inputs | SM inputs | scale | centre | steepness | mean lambda after pass 1 "
             "(L/4, confidence) | samples changed by SM (of 16) | entropy at masked positions (nats) | infill: mean "
             "lambda after pass 1 | infill: fills changed by SM (of 32) | infill: tokens right, SM on / off |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        w = r["soft_mask"]
        lam = _mean_sd([e["mean_lambda"] for e in r["effect"]])
        changed = ", ".join(str(e["changed"]) for e in r["effect"])
        lines.append(f"| {name} | {r['nats_per_char_binary']:.3f} | {r['nats_per_char_sm']:.3f} | {w['scale']:.4f} | "
                     f"{w['centre']:.3f} | {w['steepness']:.3f} | {lam} | {changed} | {r['mean_entropy_masked']:.2f} | "
                     + _infill_cells(r.get("infill")) + " |")
    return "\n".join(lines)


def table_iso(c: pd.DataFrame) -> str:
    """Validation bounds at the same updates and at the same forward passes (from the runs' records)."""
    lines = ["| corpus | SM model: updates / forward passes / bound (SM inputs) | binary at the same updates | "
             "binary at the same forward passes |", "|---|---|---|---|"]
    for corpus, (sm_name, bin_name) in NAMES.items():
        sm, b = c[c.model == sm_name].dropna(subset=["val_bound"]), c[c.model == bin_name].dropna(subset=["val_bound"])
        if sm.empty or b.empty:
            continue
        last = sm.iloc[-1]
        same_updates = b[b.step == last.step]
        nearest = b.iloc[(b.forward_passes - last.forward_passes).abs().argsort()[:1]]
        su = f"{same_updates.val_bound.iloc[0]:.3f}" if len(same_updates) else "n/a"
        at = nearest.iloc[0]
        lines.append(f"| {corpus} | {int(last.step)} / {int(last.forward_passes)} / {last.val_bound_sm:.3f} | {su} | "
                     f"{at.val_bound:.3f} (binary at {int(at.forward_passes)} passes: the SM run's budget exceeds the "
                     f"binary run's, so this is its final bound) |" if at.forward_passes < last.forward_passes else
                     f"| {corpus} | {int(last.step)} / {int(last.forward_passes)} / {last.val_bound_sm:.3f} | {su} | "
                     f"{at.val_bound:.3f} (at {int(at.forward_passes)} passes) |")
    return "\n".join(lines)


def cmd_report(args) -> None:
    from study.report import refresh
    results = json.loads((OUT / "measurements.json").read_text())
    c = curves(args.models)
    if not c.empty:
        c.to_csv(OUT / "curves.csv", index=False)
    tables = {"continued-models": table_models(results), "continued-iso": table_iso(c) if not c.empty else "n/a",
              "continued-mask-rates": table_mask_rates(results)}
    if any(Path(args.quality).glob("*/nfe_sweep.csv")) or any(OUT.glob("quality-*.csv")):  # once it has run
        tables["continued-quality"] = table_quality(Path(args.quality))
    refresh(ROOT / "docs" / "results.md", tables)
    print("wrote docs/results.md (continued-models, continued-iso), docs/results/continued/curves.csv")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--models", default=str(ROOT / "runs" / "continued"), help="runs folder, or 'shipped'")
    m.add_argument("--seeds", type=int, nargs="+", default=[7001, 7002, 7003], help="fresh decode seeds")
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--names", nargs="+", default=None, help="measure only these models (default: all four)")
    g = sub.add_parser("gate")
    g.add_argument("--models", default="shipped", help="runs folder, or 'shipped'")
    g.add_argument("--threads", type=int, default=1)
    q = sub.add_parser("quality")
    q.add_argument("--models", default=str(ROOT / "runs" / "continued"), help="runs folder, or 'shipped'")
    q.add_argument("--out", default=str(ROOT / "runs" / "continued" / "quality"))
    q.add_argument("--samples", type=int, default=64)
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    q.add_argument("--references", type=int, default=128, help="held-out passages for MAUVE")
    q.add_argument("--names", nargs="+", default=None, help="only these models (default: all four)")
    r = sub.add_parser("report")
    r.add_argument("--models", default="shipped", help="whose training curves: 'shipped' (all stages) or a runs folder")
    r.add_argument("--quality", default=str(ROOT / "runs" / "continued" / "quality"))
    args = ap.parse_args(argv)
    {"measure": cmd_measure, "gate": cmd_gate, "quality": cmd_quality, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
