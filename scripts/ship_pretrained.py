"""Copy trained models into the package as the shipped models (float16 weights; SM scalars float32), each with
its configs, its training curve (metrics.csv) and its base's curve (base_metrics.csv).

Reproduce every shipped model from scratch, then ship:
    bash configs/continued/run.sh shakespeare        # base -> SM and binary continuations
    bash configs/continued/run.sh python
    for m in binary sm; do smkit train --config configs/tasks/sudoku-$m.yaml
                           smkit train --config configs/tasks/sudoku-$m-continued.yaml; done
    python scripts/ship_pretrained.py
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

import smkit
from smkit.checkpoint import read_manifest
from smkit.saving import PRETRAINED_DIR

ROOT = Path(__file__).resolve().parents[1]

# shipped name -> (training run, its base's run, the configs that reproduce it, in order)
SHIPPED = {
    **{f"{corpus}-{mode}": (f"runs/continued/{corpus}-{mode}", f"runs/continued/{corpus}-base",
                            [f"configs/continued/{corpus}-base.yaml", f"configs/continued/{corpus}-{mode}.yaml"])
       for corpus in ("python", "shakespeare") for mode in ("sm", "binary")},
    **{f"sudoku-{mode}": (f"runs/tasks/sudoku-{mode}-continued", f"runs/tasks/sudoku-{mode}",
                          [f"configs/tasks/sudoku-{mode}.yaml", f"configs/tasks/sudoku-{mode}-continued.yaml"])
       for mode in ("sm", "binary")},
}


def ship(name: str) -> Path:
    run, base, configs = SHIPPED[name]
    run, base = ROOT / run, ROOT / base
    model = smkit.load_pretrained(run / "model")
    meta = read_manifest(run / "model")

    def records(tmp: Path):
        shutil.copy(run / "metrics.csv", tmp / "metrics.csv")
        shutil.copy(base / "metrics.csv", tmp / "base_metrics.csv")
        for i, config in enumerate(configs):
            shutil.copy(ROOT / config, tmp / ("base_config.yaml" if i == 0 else "train_config.yaml"))

    reproduce = " && ".join(f"smkit train --config {c}" for c in configs) + " && python scripts/ship_pretrained.py"
    extra = {"train_config": meta["train_config"], "base": meta.get("base"), "reproduce": reproduce}
    return model.save_pretrained(PRETRAINED_DIR / name, dtype=torch.float16, extra=extra, extra_files=records)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(SHIPPED):
        path = ship(name)
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        print(f"{name}: {path} ({size:.1f} MiB)")
