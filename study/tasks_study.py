"""The tasks study: sudoku accuracy against cells revealed per step, per unmasking rule, binary vs SM models.

    python -m study.tasks_study run [--replica 0] [--models runs|shipped] [--givens 72] [--n 1000] [--seed 0]
    python -m study.tasks_study effect           # the default model's SM target (first-pass lambda, answers changed)
    python -m study.tasks_study report           # tables into docs/results.md, figure into docs/results/tasks/

What it reproduces: the tables of docs/results.md's "Exact answers" section, which are labelled there as the
PREVIOUS sudoku pair's (trained to 68 givens by configs/tasks/sudoku-{sm,binary}{,-continued}.yaml) and its
replicas. The shipped `sudoku-sm` / `sudoku-binary` were retrained since (configs/tasks/solver.sh); their report
card is docs/results/solver/, measured by study/solver_eval.py, not by this script. `--models shipped` decodes the
current shipped pair in place of replica 0 (its rows are then not those of docs/results.md), and `effect`
measures the current shipped `sudoku-sm` unless given `--models runs`.

Decodings: the binary solver (plain masks), the SM solver (with SM), the SM solver with SM switched off (what
its SM inputs add at decoding), the iso-compute binary solver (trained on as many forward passes as the SM one),
and the binary solver trained unconditionally (its givens masked and scored like every other cell; that pair
never masks them). Replica R is training seed R of each (configs/tasks/replica.sh trains all of them into
runs/tasks/, replica 0 with the configs' own seeds: the previous shipped pair). A run adds the rules missing from a
decoding's file and keeps its other rows. Every point decodes the same n held-out puzzles (never in a training
stream), with a Wilson 95% interval; each row keeps its per-puzzle correctness so that two decodings compare
puzzle by puzzle (a paired difference).
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


# decoding label -> (run folder name, decode with SM)
DECODINGS = {"binary": ("sudoku-binary", False), "SM": ("sudoku-sm", True), "SM model, SM off": ("sudoku-sm", False),
             "binary, iso-compute": ("sudoku-binary-iso", False),
             "binary, givens masked in training": ("sudoku-binary-uncond", False)}


def load(models: str, name: str, replica: int = 0):
    import smkit
    if models == "shipped":
        if replica or name not in smkit.PRETRAINED:
            raise SystemExit(f"--models shipped holds replica 0 of sudoku-binary and sudoku-sm only, not {name!r}")
        return smkit.load_pretrained(name)
    root = Path(models) / "tasks" / ("" if replica == 0 else f"r{replica}")
    return smkit.load_pretrained(root / f"{name}-continued" / "model")


def sweep_file(replica: int, decoding: str) -> Path:
    return OUT / f"sweep-r{replica}-{decoding.replace(', ', '-').replace(' ', '-').lower()}.csv"


def cmd_run(args) -> None:
    import torch
    from smkit import tasks
    torch.set_num_threads(args.threads)
    task = tasks.get("sudoku", givens=args.givens)
    OUT.mkdir(parents=True, exist_ok=True)
    for decoding in args.decodings:
        out = sweep_file(args.replica, decoding)
        kept = pd.read_csv(out, dtype={"correct": str}) if out.exists() and not args.force else None
        strategies = [s for s in args.strategies if kept is None or s not in set(kept.strategy)]
        if not strategies:
            print("kept", out.relative_to(ROOT), "(--force to redo)")
            continue
        if kept is not None and (set(kept.cells_per_step), set(kept.n), set(kept.givens), set(kept.seed)) != (
                set(args.cells), {args.n}, {args.givens}, {args.seed}):
            raise SystemExit(f"{out.relative_to(ROOT)} holds another sweep (cells, n, givens or seed); --force redoes it")
        name, soft = DECODINGS[decoding]
        model = load(args.models, name, args.replica)
        frame = tasks.sweep({decoding: (model, soft)}, task, n=args.n, cells_per_step=tuple(args.cells),
                            strategies=tuple(strategies), seed=args.seed, batch_size=args.batch_size)
        frame["givens"] = args.givens
        frame["replica"] = args.replica
        if kept is not None:   # rules added to a file: its other rows are kept as they were
            frame = pd.concat([kept, frame], ignore_index=True)
        frame.to_csv(out.with_suffix(".tmp"), index=False)
        os.replace(out.with_suffix(".tmp"), out)
        print(frame.drop(columns="correct").to_string(), flush=True)
        if decoding == "SM" and args.replica == 0:
            effect = sm_effect(model, task, 256, args.seed)
            (OUT / "sm_effect.json").write_text(json.dumps(effect, indent=1) + "\n")
            print("SM effect on the SM solver:", effect)


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


def pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (decoding, rule, cells per step): the replicas' puzzles pooled (accuracy and Wilson interval
    over all of them), the lowest and highest replica's accuracy, and the pooled correctness string."""
    from smkit.tasks import wilson_interval
    rows = []
    keys = ["model", "strategy", "cells_per_step"]
    for key, g in frame.groupby(keys, sort=False):
        solved, n = int(sum(c.count("1") for c in g.correct)), int(g.n.sum())
        low, high = wilson_interval(solved, n)
        rows.append({**dict(zip(keys, key)), "steps": int(g.steps.iloc[0]), "accuracy": solved / n, "ci_low": low,
                     "ci_high": high, "replica_min": g.accuracy.min(), "replica_max": g.accuracy.max(),
                     "replicas": len(g), "n": n, "correct": "".join(g.sort_values("replica").correct)})
    return pd.DataFrame(rows)


def paired_difference(a: str, b: str) -> tuple[float, float, float]:
    """Mean of (a solved - b solved) over the same puzzles, with a normal 95% interval of the paired differences."""
    import math

    from smkit.tasks.evaluate import Z95
    d = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    half = Z95 * sd / math.sqrt(len(d))
    return mean, mean - half, mean + half


def _cells_header(frame: pd.DataFrame) -> tuple[list, str]:
    cells = sorted(set(frame.cells_per_step))
    head = " | ".join(f"{c} cell{'s' if c > 1 else ''}/step ({int(frame[frame.cells_per_step == c].steps.iloc[0])} steps)"
                      for c in cells)
    return cells, head


def table(frame: pd.DataFrame) -> str:
    cells, head = _cells_header(frame)
    lines = [f"| decoding | rule | training seeds | {head} |", "|---|---|---|" + "---|" * len(cells)]
    for (model, strategy), g in frame.groupby(["model", "strategy"], sort=False):
        row = g.set_index("cells_per_step")
        lines.append(f"| {model} | {strategy} | {int(g.replicas.min())} | " + " | ".join(
            f"{row.accuracy[c]:.3f} [{row.ci_low[c]:.3f}, {row.ci_high[c]:.3f}]"
            + (f" ({row.replica_min[c]:.2f}-{row.replica_max[c]:.2f})" if row.replicas[c] > 1 else "")
            for c in cells) + " |")
    return "\n".join(lines)


COMPARISONS = [("SM", "binary"), ("SM", "binary, iso-compute"), ("SM", "SM model, SM off"),
               ("SM model, SM off", "binary"), ("binary", "binary, givens masked in training")]   # decodings compared rule by rule
ORDER_EFFECTS = [("confidence", "random"), ("margin", "random")]   # rules compared within a decoding


def _pairs(frame: pd.DataFrame):
    """((decoding, rule), (decoding, rule)) pairs to difference: decodings under each rule, then rules."""
    strategies = list(dict.fromkeys(frame.strategy))
    for a, b in COMPARISONS:
        yield from (((a, s), (b, s)) for s in strategies)
    for model in ("binary", "SM"):
        yield from (((model, a), (model, b)) for a, b in ORDER_EFFECTS)


def _compared(frame: pd.DataFrame, min_seeds: int):
    """(label, [rows of x, rows of y], training seeds both were decoded for) per pair of `_pairs` decoded for at
    least `min_seeds` common seeds."""
    for x, y in _pairs(frame):
        rows = [frame[(frame.model == m) & (frame.strategy == s)] for m, s in (x, y)]
        replicas = sorted(set(rows[0].replica) & set(rows[1].replica))
        if len(replicas) >= min_seeds:
            yield (f"{x[0]} - {y[0]} ({x[1]})" if x[1] == y[1] else f"{x[1]} - {y[1]} ({x[0]})"), rows, replicas


def difference_table(frame: pd.DataFrame) -> str:
    """Paired differences in puzzles solved between two (decoding, rule) pairs: the same puzzles of the training
    seeds both were decoded for, per cells per step."""
    cells, head = _cells_header(frame)
    lines = [f"| difference | training seeds | {head} |", "|---|---|" + "---|" * len(cells)]
    for label, rows, replicas in _compared(frame, 1):
        parts = []
        for c in cells:
            joined = ["".join(r[(r.cells_per_step == c) & (r.replica == i)].correct.iloc[0] for i in replicas)
                      for r in rows]
            mean, low, high = paired_difference(*joined)
            parts.append(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]")
        lines.append(f"| {label} | {len(replicas)} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


# Student t quantiles, 97.5%, by degrees of freedom: the seed-level interval treats each training seed as one draw
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def seed_difference(diffs: list[float]) -> tuple[float, float, float]:
    """Mean of per-seed differences with a t 95% interval: what another training seed would give on average, the
    training-seed variance included (the paired interval covers only the puzzles)."""
    import statistics
    mean = statistics.fmean(diffs)
    half = T975[len(diffs) - 1] * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def seed_table(frame: pd.DataFrame, min_seeds: int = 3) -> str:
    """Per (decoding, rule) pair decoded for at least `min_seeds` training seeds: the per-seed differences in the
    share solved and their mean with a t interval."""
    cells, head = _cells_header(frame)
    lines = [f"| difference | training seeds | {head} |", "|---|---|" + "---|" * len(cells)]
    for label, rows, replicas in _compared(frame, min_seeds):
        parts = []
        for c in cells:
            acc = [r[r.cells_per_step == c].set_index("replica").accuracy for r in rows]
            diffs = [float(acc[0][i] - acc[1][i]) for i in replicas]
            mean, low, high = seed_difference(diffs)
            parts.append(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] ({', '.join(f'{d:+.2f}' for d in diffs)})")
        lines.append(f"| {label} | {len(replicas)} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def cmd_report(args) -> None:
    from study.report import refresh, save
    from smkit import tasks
    frame = pd.concat([pd.read_csv(f, dtype={"correct": str}) for f in sorted(OUT.glob("sweep-r*-*.csv"))])
    order = {d: i for i, d in enumerate(DECODINGS)}
    frame = frame.sort_values(["model", "replica"], key=lambda s: s.map(order) if s.name == "model" else s,
                              kind="stable")
    pool = pooled(frame)
    replicas = sorted(set(frame.replica))
    fig = tasks.sweep_figure(pool, title=f"sudoku, {int(frame.givens.iloc[0])} givens: puzzles solved "
                                         f"({len(replicas)} training seeds x {int(frame.n.iloc[0])} puzzles per "
                                         f"point, Wilson 95%)")
    made = save(fig, "tasks/sweep")
    effect = json.loads((OUT / "sm_effect.json").read_text())
    summary = (f"\n\nPooled over training seeds {replicas} ({int(frame.n.iloc[0])} held-out puzzles each, the same "
               f"puzzles for every decoding): accuracy [Wilson 95%] (lowest-highest seed).\n\n"
               f"Paired differences in the share of puzzles solved (same puzzles, same seeds; normal 95% interval):"
               f"\n\n{difference_table(frame)}"
               f"\n\nAcross training seeds (each seed one draw: mean of the per-seed differences, t 95% interval, "
               f"then each seed's difference), for the pairs decoded for three seeds or more:\n\n{seed_table(frame)}"
               f"\n\nSM at work in replica 0's SM solver (the previous shipped one; 256 held-out puzzles, one cell per "
               f"step, confidence): mean "
               f"lambda {effect['mean_lambda']:.3f} (max {effect['max_lambda']:.3f}) over the cells still masked after "
               f"the first pass; {effect['changed']} of {effect['n']} answers differ from the same decode with SM off.")
    refresh(ROOT / "docs" / "results.md", {"tasks-sweep": table(pool) + summary})
    print("wrote", ", ".join(made + ["docs/results.md (tasks-sweep)"]))


def main(argv=None):
    from smkit.tasks.sweep import ORDER_STRATEGIES
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--models", default=str(ROOT / "runs"), help="the runs folder, or 'shipped'")
    r.add_argument("--givens", type=int, default=72)
    r.add_argument("--n", type=int, default=1000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--replica", type=int, default=0, help="training seed R (configs/tasks/replica.sh)")
    r.add_argument("--batch-size", dest="batch_size", type=int, default=250)
    r.add_argument("--force", action="store_true",
                   help="redo decodings whose file exists (without it, only rules missing from the file run)")
    r.add_argument("--decodings", nargs="+", default=list(DECODINGS), choices=list(DECODINGS))
    r.add_argument("--strategies", nargs="+", default=list(ORDER_STRATEGIES))
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
