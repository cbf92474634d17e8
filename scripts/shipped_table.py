"""The README's table of the shipped models, from their own records (smkit.json, metrics.csv) and the study's
measurements (docs/results/continued/measurements.json), written between the README's
`<!-- table:shipped -->` markers.
Usage: python scripts/shipped_table.py [--print]"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the study package

from smkit.io.metrics import read_metrics  # noqa: E402
from smkit.io.model_files import PRETRAINED, PRETRAINED_DIR  # noqa: E402


def table() -> str:
    measured_file = ROOT / "docs" / "results" / "continued" / "measurements.json"
    measured = json.loads(measured_file.read_text()) if measured_file.is_file() else {}
    lines = ["| model | trained on | parameters | size (MiB) | updates | forward passes | val. bound (nats/token) | "
             "held-out nats/char (binary / SM inputs) | scale | centre | steepness |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in PRETRAINED:
        folder = PRETRAINED_DIR / name
        meta = json.loads((folder / "smkit.json").read_text())
        cfg = meta["train_config"]
        corpus = cfg["corpus"] + (f" {cfg['task_params']}" if cfg.get("task_params") else "")
        h = read_metrics(folder / "metrics.csv")
        last = h.dropna(subset=["val_bound"]).iloc[-1]
        bound = last.val_bound_sm if cfg["soft_mask"] else last.val_bound
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            params = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
        m = measured.get(name)
        chars = f"{m['nats_per_char_binary']:.3f} / {m['nats_per_char_sm']:.3f}" if m else "-"
        w = meta["soft_mask"]
        lines.append(f"| {name} | {corpus} | {params / 1e6:.2f}M | {size:.1f} | {int(last.step)} | "
                     f"{int(last.forward_passes)} | {bound:.3f} | {chars} | {w['scale']:.4f} | {w['centre']:.3f} | "
                     f"{w['steepness']:.3f} |")
    return "\n".join(lines)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    body = table()
    if "--print" in sys.argv:
        print(body)
    else:
        from study.report import refresh
        refresh(ROOT / "README.md", {"shipped": body})
        print("README.md: shipped-models table refreshed")
