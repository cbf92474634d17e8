"""The sudoku solver's report card (issue 22): solved share by unmasking rule, cells per step and SM, the gate's
selectivity, and the curve of solved share against training updates.

    python -m study.solver_eval table MODEL [MODEL ...] [--n 1000] [--givens 72] [--out FILE.json]
    python -m study.solver_eval gate MODEL [--n 200] [--givens 72] [--out FILE.json]
    python -m study.solver_eval curve RUN_DIR [RUN_DIR ...] [--n 300] [--givens 72] [--out FILE.csv]
    python -m study.solver_eval markdown FILE.json [--write DOC.md]

MODEL: a shipped name (sudoku-sm) or a model folder (runs/solver/sudoku-sm-twin/model). Every setting decodes
the same n held-out puzzles (`smkit.tasks.evaluate`, the `test` split, never in a training stream) with the
notebooks' defaults (temperature 1), and reports the solved share with its Wilson 95% interval. Cells per step c
means ceil(blanks / c) steps, as notebooks/workshop/05 counts them.

`gate`: decodes with SM on (--strategy, margin by default; one cell per step, trace kept) and reads lambda at every blank still masked
after each step, against how hard that blank is on the board the model saw: its candidates (digits not yet in
its row, column or box; 1 = forced by the rules, an easy blank) and the entropy of the model's distribution.
A selective gate opens differently at easy and hard blanks; one that is the same everywhere is not selective.

`markdown`: a `table` file as a Markdown table (rows: model and SM, columns: rule and cells per step, each cell the
solved share and its interval); `--write` refreshes the document's `<!-- table:solver-givens-N -->` block (study.report.refresh).

`curve`: RUN_DIR/snapshots/step-N (configs/tasks/solver.sh keeps one per checkpoint) and RUN_DIR/model, each
decoded with random and margin order at one cell per step, SM off; an existing --out file keeps its points and
only the missing ones run.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

RULES = ("random", "margin", "confidence")


def load(name: str):
    """A shipped model, a model folder, or a snapshot of configs/tasks/solver.sh (a checkpoint without its
    optimizer state: its manifest still lists optimizer.safetensors, so it loads from a copy that does not)."""
    import smkit
    path = Path(name)
    manifest = path / "smkit.json"
    if not (manifest.is_file() and path.parent.name == "snapshots"):
        return smkit.load_pretrained(name)
    import shutil
    import tempfile
    meta = json.loads(manifest.read_text())
    meta["files"] = {f: digest for f, digest in meta["files"].items() if (path / f).is_file()}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copytree(path, copy)
        (copy / "smkit.json").write_text(json.dumps(meta))
        return smkit.load_pretrained(copy)


def has_sm(model) -> bool:
    """Trained with the two-pass SM estimate (its saved train_config), so SM on at decoding means something."""
    cfg = getattr(model, "train_config", None) or {}
    return bool(cfg.get("soft_mask", False))


def steps_for(task, cells: int) -> int:
    return math.ceil(task.masked / cells)


def row(label: str, r, cells: int) -> dict:
    return {"model": label, "strategy": r.strategy, "cells_per_step": cells, "steps": r.steps,
            "soft_mask": r.soft_mask, "solved": int(sum(r.correct)), "n": r.n, "share": r.accuracy,
            "ci_low": r.ci_low, "ci_high": r.ci_high, "cell_accuracy": r.cell_accuracy, "nfe": r.nfe,
            "seconds": r.wall_time}


def cmd_table(args) -> list[dict]:
    from smkit import tasks
    task = tasks.get("sudoku", givens=args.givens)
    rows = []
    for name in args.models:
        model = load(name)
        sms = (True, False) if has_sm(model) else (False,)
        for sm in sms:
            for cells in args.cells:
                for rule in args.strategies:
                    r = tasks.evaluate(model, task, n=args.n, steps=steps_for(task, cells), strategy=rule,
                                       soft_mask=sm, seed=args.seed, batch_size=args.batch_size)
                    rows.append(row(name, r, cells))
                    print(format_row(rows[-1]), flush=True)
    if args.out:
        write_json(args.out, {"givens": args.givens, "seed": args.seed, "rows": rows})
    return rows


def format_row(r: dict) -> str:
    return (f"{r['model']:<34} {r['strategy']:>10} c={r['cells_per_step']} ({r['steps']} steps) "
            f"SM {'on ' if r['soft_mask'] else 'off'}  {r['solved']:4d}/{r['n']} = {r['share']:.3f} "
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]  cells {r['cell_accuracy']:.3f}  {r['seconds']:.0f}s")


def candidates(digits: np.ndarray) -> np.ndarray:
    """[B, 81] digits (0 = blank) -> [B, 81] the number of digits 1..9 absent from each cell's row, column and
    box (meaningful at blanks)."""
    b = digits.reshape(-1, 9, 9)
    present = np.zeros(b.shape + (10,), dtype=bool)
    one_hot = np.eye(10, dtype=bool)[b]                            # [B, 9, 9, 10]
    rows = one_hot.any(axis=2, keepdims=True)                      # [B, 9, 1, 10]
    cols = one_hot.any(axis=1, keepdims=True)                      # [B, 1, 9, 10]
    boxes = one_hot.reshape(-1, 3, 3, 3, 3, 10).any(axis=(2, 4))   # [B, 3, 3, 10]
    boxes = np.repeat(np.repeat(boxes, 3, axis=1), 3, axis=2)      # [B, 9, 9, 10]
    present = rows | cols | boxes
    return (~present[..., 1:]).sum(-1).reshape(-1, 81)


def board_digits(tokens: np.ndarray, tokenizer, mask_id: int) -> np.ndarray:
    """[..., 89] token ids of the task's text -> [..., 81] digits (0 where [MASK])."""
    vocab = tokenizer.get_vocab()
    lookup = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
    for token, i in vocab.items():
        if len(token) == 1 and token.isdigit():
            lookup[i] = int(token)
    cells = [c for c in range(89) if c % 10 != 9]                  # skip the 8 newlines
    return lookup[tokens[..., cells]]


def cmd_gate(args) -> dict:
    from smkit import generate, tasks
    task = tasks.get("sudoku", givens=args.givens)
    model = load(args.model)
    examples = task.generate(args.n, args.seed, split="test")
    lam, ent, cand, right = [], [], [], []
    for start in range(0, args.n, args.batch_size):
        chunk = examples[start:start + args.batch_size]
        g = generate(model, infill=[e.puzzle for e in chunk], num_samples=len(chunk), length=task.length,
                     steps=task.masked, strategy=args.strategy, soft_mask=True, seed=args.seed, first_sample=start,
                     trace=True)
        tr, mask_id = g.trace, g.trace.meta["mask_id"]
        answer = board_digits(_answer_ids(task, chunk), model.tokenizer, mask_id)
        for s in range(len(tr)):
            tokens = tr.tokens[s].numpy()
            still = (tokens == mask_id)
            still_cells = still[:, [c for c in range(89) if c % 10 != 9]]
            digits = board_digits(tokens, model.tokenizer, mask_id)
            n_cand = candidates(digits)
            top = tr.topk_ids[s].numpy()[..., 0]
            top_digit = board_digits(top, model.tokenizer, mask_id)
            lam.append(board_cells(tr.lam[s].numpy())[still_cells])
            ent.append(board_cells(tr.entropy[s].numpy())[still_cells])
            cand.append(n_cand[still_cells])
            right.append((top_digit == answer)[still_cells])
    lam, ent, cand, right = (np.concatenate(x) for x in (lam, ent, cand, right))
    out = {"model": args.model, "givens": args.givens, "strategy": args.strategy, "n_puzzles": args.n,
           "blanks_seen": int(len(lam)),
           "soft_mask": model.soft_mask.values(), "lambda_mean": float(lam.mean()),
           "lambda_q10_q50_q90": [float(q) for q in np.quantile(lam, [0.1, 0.5, 0.9])],
           "by_candidates": {}, "by_entropy": {}, "by_top1_correct": {}}
    # 0: no digit left (an earlier wrong reveal made the board contradictory); 1: forced by the rules
    for label, sel in (("0", cand == 0), ("1", cand == 1), ("2", cand == 2), ("3+", cand >= 3)):
        out["by_candidates"][label] = summary(lam[sel], ent[sel])
    edges = [0.0, 0.01, 0.1, 0.5, 1.0, 10.0]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (ent >= lo) & (ent < hi)
        out["by_entropy"][f"[{lo}, {hi})"] = summary(lam[sel], ent[sel])
    for label, sel in (("top-1 right", right), ("top-1 wrong", ~right)):
        out["by_top1_correct"][label] = summary(lam[sel], ent[sel])
    print(json.dumps(out, indent=1))
    if args.out:
        write_json(args.out, out)
    return out


def _answer_ids(task, chunk) -> np.ndarray:
    from smkit.tasks.base import encode
    return encode(task, [e.answer for e in chunk]).numpy()


def board_cells(x: np.ndarray) -> np.ndarray:
    return x[..., [c for c in range(89) if c % 10 != 9]]


def summary(lam: np.ndarray, ent: np.ndarray) -> dict:
    if len(lam) == 0:
        return {"count": 0}
    return {"count": int(len(lam)), "lambda_mean": float(lam.mean()), "lambda_sd": float(lam.std()),
            "lambda_q10": float(np.quantile(lam, 0.1)), "lambda_q90": float(np.quantile(lam, 0.9)),
            "entropy_mean": float(ent.mean())}


def cmd_curve(args) -> list[dict]:
    from smkit import tasks
    import pandas as pd
    task = tasks.get("sudoku", givens=args.givens)
    kept = pd.read_csv(args.out) if args.out and Path(args.out).is_file() else None
    rows = [] if kept is None else kept.to_dict("records")
    done = set() if kept is None else {(r["run"], int(r["step"]), r["strategy"]) for r in rows}
    for run in args.runs:
        run = Path(run)
        points = sorted(((int(re.sub(r"\D", "", p.name)), p) for p in (run / "snapshots").glob("step-*")))
        if (run / "model").is_dir():
            points.append((None, run / "model"))
        for step, path in points:
            model = load(str(path))
            if step is None:
                step = int(pd.read_csv(run / "metrics.csv").step.iloc[-1])
            for rule in args.strategies:
                if (run.name, step, rule) in done:   # an existing --out file keeps its rows; only new points run
                    continue
                r = tasks.evaluate(model, task, n=args.n, steps=task.masked, strategy=rule, soft_mask=False,
                                   seed=args.seed, batch_size=args.batch_size)
                rows.append({"run": run.name, "step": step, **row(str(path), r, 1)})
                print(f"{run.name} step {step:5d} {rule:>8}: {rows[-1]['solved']}/{r.n} = {r.accuracy:.3f} "
                      f"[{r.ci_low:.3f}, {r.ci_high:.3f}]", flush=True)
                if args.out:
                    pd.DataFrame(rows).to_csv(args.out, index=False)
    return rows


def markdown_table(data: dict) -> str:
    rows = data["rows"]
    columns = sorted({(r["cells_per_step"], RULES.index(r["strategy"])) for r in rows})
    solvers = list(dict.fromkeys((r["model"], r["soft_mask"]) for r in rows))
    head = [f"{RULES[rule]}, {cells} cell{'s' if cells > 1 else ''}" for cells, rule in columns]
    lines = [f"{rows[0]['n']} fresh puzzles with {data['givens']} givens, solved share "
             "[Wilson 95%]:", "", "| solver | decoding | " + " | ".join(head) + " |",
             "|---|---|" + "---|" * len(columns)]
    by_setting = {(r["model"], r["soft_mask"], r["cells_per_step"], r["strategy"]): r for r in rows}
    with_sm = {r["model"] for r in rows if r["soft_mask"]}
    for model, sm in solvers:
        cells = []
        for c, rule in columns:
            r = by_setting.get((model, sm, c, RULES[rule]))
            cells.append("" if r is None else f"{r['share']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        decoding = ("SM on" if sm else "SM off") if model in with_sm else "binary"
        lines.append(f"| `{model}` | {decoding} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_markdown(args) -> str:
    data = json.loads(Path(args.table).read_text())
    text = markdown_table(data)
    if args.write:
        from study.report import refresh
        refresh(Path(args.write), {f"solver-givens-{data['givens']}": text})
    else:
        print(text)
    return text


def write_json(path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    md = sub.add_parser("markdown")
    md.add_argument("table")
    md.add_argument("--write", default=None)
    for name in ("table", "gate", "curve"):
        s = sub.add_parser(name)
        s.add_argument("--givens", type=int, default=72)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--batch-size", type=int, default=250)
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--out", default=None)
        if name == "table":
            s.add_argument("models", nargs="+")
            s.add_argument("--n", type=int, default=1000)
            s.add_argument("--cells", type=int, nargs="+", default=[1, 4])
            s.add_argument("--strategies", nargs="+", default=list(RULES), choices=RULES)
        elif name == "gate":
            s.add_argument("model")
            s.add_argument("--n", type=int, default=200)
            s.add_argument("--strategy", default="margin", choices=RULES)
        else:
            s.add_argument("runs", nargs="+")
            s.add_argument("--n", type=int, default=300)
            s.add_argument("--strategies", nargs="+", default=["random", "margin"], choices=RULES)
    args = p.parse_args(argv)
    if args.command == "markdown":
        cmd_markdown(args)
        return
    import torch
    torch.set_num_threads(args.threads)
    {"table": cmd_table, "gate": cmd_gate, "curve": cmd_curve}[args.command](args)


if __name__ == "__main__":
    main()
