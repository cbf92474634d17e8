"""Decode and score every trained study model through the `nfe_sweep` notebook (papermill, headless).

Each (model, setting) is one notebook run into runs/study/decode/<model>/<setting>/ (executed notebook, CSV,
summary JSON, figure); runs already finished are skipped, models not trained yet are skipped (run again later).

    python -m study.run_decode [--samples 32] [--only sm-s0 binary-s0]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MAIN = {"budget_divisors": [8, 4, 2, 1], "strategies": ["confidence", "ancestral"]}
ABLATION = {"budget_divisors": [4, 1], "strategies": ["confidence"]}


def settings(variant: str, seed: int) -> dict[str, dict]:
    """What each model is decoded with: its own decoding over the main grid, plus the decode-time ablations."""
    sm = variant != "binary"
    grid = MAIN if variant in ("binary", "sm", "sm-iso-update", "sm-open") else ABLATION
    runs = {"main": {**grid, "decodings": ["SM" if sm else "binary"]}}
    if variant in ("binary", "sm"):
        runs["remdm"] = {**ABLATION, "strategies": ["remdm-loop"], "decodings": ["SM" if sm else "binary"]}
    if variant == "binary" and seed == 0:  # how much the metrics move between decode seeds of one model
        runs["decode-seeds"] = {**ABLATION, "decodings": ["binary"], "seeds": [1, 2, 3]}
    if variant == "sm":
        for schedule in ("linear", "stepwise"):
            runs[f"lambda-{schedule}"] = {**ABLATION, "decodings": ["SM"], "lambda_schedule": schedule}
    return runs


def jobs(plan: dict, models: Path, out: Path, samples: int, only=None):
    for variant in plan["variants"]:
        for seed in plan["seeds"][variant]:
            name = f"{variant}-s{seed}"
            if only and name not in only and variant not in only:
                continue
            for setting, params in settings(variant, seed).items():
                yield name, setting, models / name / "model", out / name / setting, {**params, "num_samples": samples}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=32, help="samples per (strategy, budget, decoding)")
    ap.add_argument("--only", nargs="*", help="models (variant-sSEED) or variants to decode (default: all)")
    ap.add_argument("--models", default=str(ROOT / "runs" / "study"), help="folder of the trained models")
    args = ap.parse_args(argv)
    plan = yaml.safe_load((ROOT / "study" / "plan.yaml").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    pending = 0
    for name, setting, model, out, params in jobs(plan, Path(args.models), Path(args.models) / "decode",
                                                   args.samples, args.only):
        if (out / "nfe_sweep.csv").is_file():
            continue
        if not (model / "smkit.json").is_file():
            pending += 1
            continue
        cmd = [sys.executable, "-m", "smkit.cli", "run", str(ROOT / "notebooks" / "nfe_sweep.ipynb"),
               "--out", str(out), "-p", "model", str(model), "-p", "out_dir", str(out), "-p", "mauve_references", "128"]
        for key, value in params.items():
            cmd += ["-p", key, str(value)]
        print(f"{name} {setting}", flush=True)
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"done; {pending} runs wait for models still training", flush=True)


if __name__ == "__main__":
    sys.exit(main())
