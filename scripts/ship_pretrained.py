"""Copy trained models into the package as the shipped models (float16 weights; SM scalars float32), each with
its configs, its training curve (metrics.csv) and its base's curve (base_metrics.csv).

Reproduce every shipped model from scratch, then ship:
    bash configs/continued/run.sh shakespeare        # base -> SM and binary continuations
    bash configs/continued/run.sh python
    for m in sm binary; do smkit train --config configs/continued/python-$m-long.yaml; done
    bash configs/tasks/solver.sh                     # sudoku base -> binary twin -> SM and binary twins
    python scripts/ship_pretrained.py
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import torch

import smkit
from smkit.io.checkpoint import read_manifest
from smkit.io.metrics import read_metrics
from smkit.io.model_files import PRETRAINED_DIR

ROOT = Path(__file__).resolve().parents[1]

# shipped name -> (its base's run and config, then the continuation stages: (run, config), each from the one
# before). A model continued in two stages ships both stages' configs and one curve over both.
SHIPPED = {
    **{f"shakespeare-{mode}": (("runs/continued/shakespeare-base", "configs/continued/shakespeare-base.yaml"),
                               [(f"runs/continued/shakespeare-{mode}", f"configs/continued/shakespeare-{mode}.yaml")])
       for mode in ("sm", "binary")},
    **{f"python-{mode}": (("runs/continued/python-base", "configs/continued/python-base.yaml"),
                          [(f"runs/continued/python-{mode}", f"configs/continued/python-{mode}.yaml"),
                           (f"runs/continued/python-{mode}-long", f"configs/continued/python-{mode}-long.yaml")])
       for mode in ("sm", "binary")},
    **{f"sudoku-{mode}": (("runs/solver/sudoku-base", "configs/tasks/sudoku-base.yaml"),
                          [("runs/solver/sudoku-binary-twin", "configs/tasks/sudoku-binary-twin.yaml"),
                           (f"runs/solver/sudoku-{mode}-round2", f"configs/tasks/sudoku-{mode}-round2.yaml")])
       for mode in ("sm", "binary")},
}


def stage_configs(stages) -> list[str]:
    """File names of the continuation stages' configs in the shipped folder: train_config.yaml for the last one
    (what the model is), continue_config_1.yaml, ... for the ones before it."""
    return [f"continue_config_{i + 1}.yaml" for i in range(len(stages) - 1)] + ["train_config.yaml"]


def joined_curve(stages) -> pd.DataFrame:
    """The stages' metrics.csv as one curve: each stage's updates and forward passes counted on from the last."""
    frames, step, passes = [], 0, 0
    for run, _ in stages:
        h = read_metrics(ROOT / run / "metrics.csv")   # older stages have the paper's column names
        frames.append(h.assign(step=h.step + step, forward_passes=h.forward_passes + passes))
        step, passes = int(frames[-1].step.iloc[-1]), int(frames[-1].forward_passes.iloc[-1])
    return pd.concat(frames, ignore_index=True)


def ship(name: str) -> Path:
    (base_run, base_config), stages = SHIPPED[name]
    run = ROOT / stages[-1][0]
    model = smkit.load_pretrained(run / "model")
    meta = read_manifest(run / "model")
    first = read_manifest(ROOT / stages[0][0] / "model")

    def records(tmp: Path):
        joined_curve(stages).to_csv(tmp / "metrics.csv", index=False)
        shutil.copy(ROOT / base_run / "metrics.csv", tmp / "base_metrics.csv")
        shutil.copy(ROOT / base_config, tmp / "base_config.yaml")
        for (_, config), file in zip(stages, stage_configs(stages)):
            shutil.copy(ROOT / config, tmp / file)

    configs = [base_config] + [c for _, c in stages]
    reproduce = " && ".join(f"smkit train --config {c}" for c in configs) + " && python scripts/ship_pretrained.py"
    extra = {"train_config": meta["train_config"], "base": first.get("base"), "reproduce": reproduce,
             "stages": [{"config": c, "updates": int(pd.read_csv(ROOT / r / "metrics.csv").step.iloc[-1])}
                        for r, c in stages]}
    return model.save_pretrained(PRETRAINED_DIR / name, dtype=torch.float16, extra=extra, extra_files=records)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(SHIPPED):
        path = ship(name)
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        print(f"{name}: {path} ({size:.1f} MiB)")
