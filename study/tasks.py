"""The tasks study: sudoku accuracy against cells revealed per step, per unmasking rule, binary vs SM models.

    python study/tasks.py run [--models runs|shipped] [--givens 72] [--n 1000] [--seed 0]
    python study/tasks.py effect           # the default model's SM target (first-pass lambda, answers changed)
    python study/tasks.py report           # table into docs/results.md, figure into docs/results/tasks/

Models: the binary solver (decoded with plain masks), the SM solver (decoded with SM) and the SM solver decoded
with SM switched off (what its SM inputs add at decoding). Every point decodes the same n held-out puzzles
(never in a training stream) and gets a Wilson 95% interval.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results" / "tasks"


def load(models: str, name: str):
    import smkit
    if models == "shipped":
        return smkit.load_pretrained(name)
    return smkit.load_pretrained(Path(models) / "tasks" / f"{name}-continued" / "model")


def cmd_run(args) -> None:
    import torch
    from smkit import tasks
    torch.set_num_threads(args.threads)
    binary, sm = load(args.models, "sudoku-binary"), load(args.models, "sudoku-sm")
    task = tasks.get("sudoku", givens=args.givens)
    decodings = {"sudoku-binary": (binary, False), "sudoku-sm": (sm, True), "sudoku-sm, SM off": (sm, False)}
    frame = tasks.sweep({k: decodings[k] for k in args.decodings}, task, n=args.n,
                        cells_per_step=tuple(args.cells), strategies=tuple(args.strategies), seed=args.seed)
    frame["givens"] = args.givens
    OUT.mkdir(parents=True, exist_ok=True)
    if "sudoku-sm" in args.decodings:
        effect = sm_effect(sm, task, 256, args.seed)
        (OUT / "sm_effect.json").write_text(json.dumps(effect, indent=1) + "\n")
        print("SM effect on the SM solver:", effect)
    out = OUT / f"sweep-{'-'.join(k.split(',')[0] + ('-off' if 'off' in k else '') for k in args.decodings)}.csv"
    frame.to_csv(out.with_suffix(".tmp"), index=False)
    os.replace(out.with_suffix(".tmp"), out)
    print(frame.to_string())


def sm_effect(model, task, n: int, seed: int, steps: int | None = None) -> dict:
    """What SM changes when the SM solver decodes held-out puzzles (one cell per step, confidence): the mean lambda
    over cells still masked after the first pass, and how many of the n answers differ from SM switched off."""
    import smkit
    puzzles = [e.puzzle for e in task.generate(n, seed, split="test")]
    common = dict(infill=puzzles, num_samples=n, length=task.length, steps=steps or task.masked, strategy="confidence",
                  seed=seed)
    on = smkit.generate(model, soft_mask=True, trace=True, **common)
    off = smkit.generate(model, soft_mask=False, trace=False, **common)
    first = on.trace[0]
    return {"mean_lambda": float(first.lam[first.masked].mean()),
            "max_lambda": float(first.lam[first.masked].max()),
            "changed": sum(a != b for a, b in zip(on.texts, off.texts)), "n": n}


def cmd_effect(args) -> None:
    """The default model's SM target: its own task, ~4 cells per step (masked / 4 steps, as L/4 is for text),
    confidence unmasking, 16 puzzles per fresh seed: first-pass lambda and answers changed by SM."""
    import math

    import torch
    from smkit import tasks
    torch.set_num_threads(args.threads)
    model = load(args.models, "sudoku-sm")
    task = tasks.for_model(model)
    rows = [{"seed": s, **sm_effect(model, task, 16, s, steps=math.ceil(task.masked / 4))} for s in args.seeds]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "default_effect.json").write_text(json.dumps(rows, indent=1) + "\n")
    for r in rows:
        print(f"seed {r['seed']}: mean lambda {r['mean_lambda']:.3f}, {r['changed']} of {r['n']} answers changed")


def table(frame: pd.DataFrame) -> str:
    cells = sorted(set(frame.cells_per_step))
    lines = ["| model (decoding) | rule | " + " | ".join(f"{c} cell{'s' if c > 1 else ''}/step ({int(frame[frame.cells_per_step == c].steps.iloc[0])} steps)"
                                               for c in cells) + " |", "|---|---|" + "---|" * len(cells)]
    for (model, strategy), g in frame.groupby(["model", "strategy"], sort=False):
        row = g.set_index("cells_per_step")
        lines.append(f"| {model} | {strategy} | " + " | ".join(
            f"{row.accuracy[c]:.3f} [{row.ci_low[c]:.3f}, {row.ci_high[c]:.3f}]" for c in cells) + " |")
    return "\n".join(lines)


def cmd_report(args) -> None:
    sys.path.insert(0, str(ROOT / "study"))
    from report import refresh, save
    from smkit import tasks
    frame = pd.concat([pd.read_csv(f) for f in sorted(OUT.glob("sweep-*.csv"))])
    fig = tasks.sweep_figure(frame, title=f"sudoku, {int(frame.givens.iloc[0])} givens: puzzles solved "
                                          f"(n = {int(frame.n.iloc[0])} per point, Wilson 95%)")
    made = save(fig, "tasks/sweep")
    effect = json.loads((OUT / "sm_effect.json").read_text())
    summary = (f"\n\nSM at work in the SM solver (256 held-out puzzles, one cell per step, confidence): mean lambda "
               f"{effect['mean_lambda']:.3f} (max {effect['max_lambda']:.3f}) over the cells still masked after the "
               f"first pass; {effect['changed']} of {effect['n']} answers differ from the same decode with SM off.")
    refresh(ROOT / "docs" / "results.md", {"tasks-sweep": table(frame) + summary})
    print("wrote", ", ".join(made + ["docs/results.md (tasks-sweep)"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--models", default=str(ROOT / "runs"), help="the runs folder, or 'shipped'")
    r.add_argument("--givens", type=int, default=72)
    r.add_argument("--n", type=int, default=1000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--decodings", nargs="+", default=["sudoku-binary", "sudoku-sm", "sudoku-sm, SM off"])
    r.add_argument("--strategies", nargs="+", default=["random", "confidence", "margin", "entropy"])
    r.add_argument("--cells", type=int, nargs="+", default=[1, 2, 4, 8], help="cells revealed per step")
    e = sub.add_parser("effect")
    e.add_argument("--models", default="shipped", help="the runs folder, or 'shipped'")
    e.add_argument("--seeds", type=int, nargs="+", default=[7001, 7002, 7003])
    e.add_argument("--threads", type=int, default=1)
    sub.add_parser("report")
    args = ap.parse_args(argv)
    {"run": cmd_run, "effect": cmd_effect, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
