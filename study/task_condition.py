"""Train with the givens fixed or masked? The small tasks (sort, add, dyck), both ways, three seeds each.

    python -m study.task_condition run       # 18 tiny trainings and evaluations (a few CPU-minutes)
    python -m study.task_condition report    # the table into docs/results.md (table:task-condition)

Each run: a 2-layer, 64-wide binary denoiser trained for `--steps` updates with `task_condition` True (the given
characters never masked nor scored) or False (every character maskable and scored); evaluated on 1000 held-out
examples, margin order, one character per step. Sudoku's larger solvers are measured in study/tasks_study.py (the
"binary, givens masked in training" decoding).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results" / "tasks" / "task-condition.csv"
TASKS = {"sort": {"length": 5}, "add": {"digits": 2}, "dyck": {"length": 12}}


def cmd_run(args) -> None:
    import torch

    import smkit
    from smkit import tasks
    torch.set_num_threads(args.threads)
    rows = []
    for name, params in TASKS.items():
        task = tasks.get(name, **params)
        for seed in args.seeds:
            for condition in (True, False):
                with tempfile.TemporaryDirectory() as tmp:
                    r = smkit.train(corpus=f"task:{name}", task_params=params, task_condition=condition,
                                    hidden_size=64, num_layers=2, num_heads=2, intermediate_size=256, batch_size=64,
                                    steps=args.steps, lr=3e-3, warmup_steps=args.steps // 20, lr_schedule="cosine",
                                    soft_mask=False, eval_every=0, eval_blocks=32, checkpoint_every=0,
                                    progress=False, seed=seed, threads=args.threads, out_dir=tmp)
                ev = tasks.evaluate(r.model, task, n=args.n, strategy="margin", soft_mask=False, seed=0)
                rows.append({"task": str(task), "seed": seed, "givens fixed in training": condition,
                             "accuracy": ev.accuracy, "ci_low": ev.ci_low, "ci_high": ev.ci_high,
                             "cell_accuracy": ev.cell_accuracy, "n": args.n, "steps": args.steps,
                             "correct": "".join("1" if c else "0" for c in ev.correct)})
                print(rows[-1]["task"], seed, condition, f"{ev.accuracy:.3f}", f"{ev.cell_accuracy:.3f}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(OUT.with_suffix(".tmp"), index=False)
    os.replace(OUT.with_suffix(".tmp"), OUT)


def table(frame: pd.DataFrame) -> str:
    from study.tasks_study import paired_difference, seed_difference
    lines = ["| task | givens fixed: solved (per seed) | givens masked: solved (per seed) | fixed - masked, paired "
             "(pooled puzzles) | fixed - masked, across seeds (t 95%) |", "|---|---|---|---|---|"]
    for task, g in frame.groupby("task", sort=False):
        fixed, masked = (g[g["givens fixed in training"] == c].sort_values("seed") for c in (True, False))
        mean, low, high = paired_difference("".join(fixed.correct), "".join(masked.correct))
        smean, slow, shigh = seed_difference(list(fixed.accuracy.values - masked.accuracy.values))
        per = lambda d: (f"{d.accuracy.mean():.3f} ({', '.join(f'{a:.2f}' for a in d.accuracy)}); cells "
                         f"{d.cell_accuracy.mean():.2f}")
        lines.append(f"| {task} | {per(fixed)} | {per(masked)} | {mean:+.3f} [{low:+.3f}, {high:+.3f}] | "
                     f"{smean:+.3f} [{slow:+.3f}, {shigh:+.3f}] |")
    n, steps, seeds = int(frame.n.iloc[0]), int(frame.steps.iloc[0]), frame.seed.nunique()
    return "\n".join(lines) + (f"\n\n{n} held-out examples per run, margin order, one character per step; {steps} "
                               f"updates of a 2-layer, 64-wide binary denoiser; training seeds {seeds}.")


def cmd_report(args) -> None:
    from study.report import refresh
    refresh(ROOT / "docs" / "results.md", {"task-condition": table(pd.read_csv(OUT, dtype={"correct": str}))})
    print("wrote docs/results.md (task-condition)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--steps", type=int, default=600)
    r.add_argument("--n", type=int, default=1000)
    r.add_argument("--threads", type=int, default=1)
    sub.add_parser("report")
    args = ap.parse_args(argv)
    {"run": cmd_run, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
