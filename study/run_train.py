"""Train every model of study/plan.yaml into runs/study/<variant>-s<seed>; finished models are skipped.

    python -m study.run_train [--workers 2] [--only sm binary]
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "study" / "plan.yaml"


def jobs(plan: dict, out_root: Path, only=None) -> list[tuple[str, dict]]:
    todo = []
    for variant, overrides in plan["variants"].items():
        if only and variant not in only:
            continue
        for seed in plan["seeds"][variant]:
            out = out_root / f"{variant}-s{seed}"
            todo.append((f"{variant}-s{seed}", {**plan["base"], **overrides, "seed": seed, "out_dir": str(out)}))
    return sorted(todo, key=lambda j: j[1]["seed"])  # every variant once before any repeat seed


def finished(out_dir: str) -> bool:
    return (Path(out_dir) / "model" / "smkit.json").is_file()


def run_one(job):
    name, cfg = job
    from smkit.training.train import train
    if finished(cfg["out_dir"]):
        return name, "done before"
    train(cfg)
    return name, "trained"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=1, help="models trained at once (one CPU thread each)")
    ap.add_argument("--only", nargs="*", help="variants to train (default: all)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "study"), help="folder of the trained models")
    args = ap.parse_args(argv)
    plan = yaml.safe_load(PLAN.read_text())
    todo = [j for j in jobs(plan, Path(args.out), args.only) if not finished(j[1]["out_dir"])]
    print(f"{len(todo)} models to train", flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for name, what in pool.map(run_one, todo):
            print(f"{name}: {what}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
