"""Which lambda lowers a sudoku solver's loss, blank by blank? The gate's target, measured (issue 22).

    python -m study.lambda_sweep run MODEL [--label NAME] [--givens 50] [--n 1000] [--values 0 0.1 ...] [--out FILE.json]
    python -m study.lambda_sweep markdown FILE.json [FILE.json ...] [--write DOC.md]

States: held-out puzzles (the `test` split) part-way through a random-order decode: of each puzzle's blanks a
uniform random share is revealed with its true digit, the rest stay `[MASK]`. Pass 1 gives each still-masked
blank its distribution and entropy H; pass 2 reads the SM input built from it (top-k and mixture exactly as the
model's own `soft_mask_inputs`) and scores the true digit at every still-masked blank.

For each entropy bin b and each value c, pass 2 runs with lambda = c at the blanks of bin b and the model's own
learned lambda at every other blank; the row reports the mean NLL over ALL still-masked blanks (a blank's
lambda changes its neighbours' predictions too) minus the NLL with the learned gate everywhere, per puzzle, with
a 95% interval. A gate whose best c falls as H rises should learn to be selective; one whose best c is the same
in every bin has nothing to select.

`markdown`: the files as one table (per solver: its learned lambda and the best c in each entropy bin, with the
loss change that c buys); `--write` refreshes the document's `<!-- table:gate-study-givens-N -->` block.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

EDGES = (0.0, 0.01, 0.1, 0.5, 1.0, float("inf"))
VALUES = (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)


def bin_labels(edges=EDGES) -> list[str]:
    return [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:])]


def decode_states(task, examples, seed: int):
    """(answers [N, L], masked [N, L]): the blanks still masked once a uniform random share of each puzzle's
    blanks is revealed."""
    import torch
    from smkit.tasks.base import encode
    answers = encode(task, [e.answer for e in examples])
    blank = ~torch.tensor([e.fixed for e in examples])
    gen = torch.Generator().manual_seed(seed)
    share = torch.rand(len(examples), 1, generator=gen)
    revealed = torch.rand(answers.shape, generator=gen) < share
    return answers, blank & ~revealed


def scored_states(task, n: int, seed: int, mask_id: int):
    """(x_t, answers, masked) for `n` held-out puzzles' decode states, less those with nothing left to fill."""
    import torch
    answers, masked = decode_states(task, task.generate(n, seed, split="test"), seed)
    keep = masked.any(-1)
    answers, masked = answers[keep], masked[keep]
    return torch.where(masked, torch.full_like(answers, mask_id), answers), answers, masked


def per_puzzle_nll(model, x_t, answers, masked, top_ids, top_logits, lam):
    """[N]: the mean NLL of the true token over each row's still-masked positions, from pass 2 on the SM input."""
    import torch
    from smkit.core.softmask import soft_mask_inputs
    embeds = soft_mask_inputs(x_t, top_ids, top_logits, lam, model.mask_id, model.embedding_weight)
    logp = model(x_t, inputs_embeds=embeds)
    nll = -logp.gather(-1, answers.unsqueeze(-1)).squeeze(-1)
    nll = torch.where(masked, nll, torch.zeros_like(nll))
    return nll.sum(-1) / masked.sum(-1).clamp(min=1)


def interval(d: np.ndarray) -> list[float]:
    """The normal 95% interval of the mean of `d`."""
    from smkit.evaluation.evidence import Estimate
    from smkit.tasks.evaluate import Z95
    e = Estimate.of(d)
    return [e.value - Z95 * e.se, e.value + Z95 * e.se]


def sweep(model, task, n: int, seed: int, values=VALUES, edges=EDGES, batch_size: int = 250) -> dict:
    import torch
    from smkit.core.softmask import entropy_from_log_probs
    x_t, answers, masked = scored_states(task, n, seed, model.mask_id)
    k = model.soft_mask.k
    labels = bin_labels(edges)
    base, rows = [], {(b, c): [] for b in range(len(labels)) for c in values}
    every = {c: [] for c in values}
    ent_all, lam_all = [], []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(answers), batch_size):
            a, x, m = answers[s:s + batch_size], x_t[s:s + batch_size], masked[s:s + batch_size]
            first = model(x)
            h = entropy_from_log_probs(first.float(), finite=False)
            learned = model.soft_mask.lam(first, entropy=h)
            top_logits, top_ids = first.float().topk(k, dim=-1)
            ent_all.append(h[m].numpy())
            lam_all.append(learned[m].numpy())
            base.append(per_puzzle_nll(model, x, a, m, top_ids, top_logits, learned).numpy())
            bins = torch.bucketize(h, torch.tensor(edges[1:-1]), right=True)
            for c in values:
                const = torch.full_like(learned, c)
                every[c].append(per_puzzle_nll(model, x, a, m, top_ids, top_logits, const).numpy())
                for b in range(len(labels)):
                    lam = torch.where(bins == b, const, learned)
                    rows[(b, c)].append(per_puzzle_nll(model, x, a, m, top_ids, top_logits, lam).numpy())
    base = np.concatenate(base)
    ent, lam = np.concatenate(ent_all), np.concatenate(lam_all)
    out = {"n_states": int(len(base)), "blanks_seen": int(len(ent)), "soft_mask": model.soft_mask.values(),
           "nll_learned_gate": float(base.mean()), "values": list(values), "everywhere": {}, "by_entropy": {}}
    for c in values:
        d = np.concatenate(every[c]) - base
        out["everywhere"][f"{c:g}"] = {"delta_nll": float(d.mean()), "ci95": interval(d)}
    for b, label in enumerate(labels):
        sel = (ent >= edges[b]) & (ent < edges[b + 1])
        entry = {"count": int(sel.sum()), "lambda_learned_mean": float(lam[sel].mean()) if sel.any() else None,
                 "delta_nll": {}}
        for c in values:
            d = np.concatenate(rows[(b, c)]) - base
            entry["delta_nll"][f"{c:g}"] = {"mean": float(d.mean()), "ci95": interval(d)}
        best = min(values, key=lambda c: entry["delta_nll"][f"{c:g}"]["mean"])
        entry["best_lambda"] = best
        out["by_entropy"][label] = entry
    return out


def format_report(out: dict) -> str:
    lines = [f"{out['n_states']} decode states, {out['blanks_seen']} blanks still masked; learned gate "
             f"{json.dumps({k: round(v, 4) for k, v in out['soft_mask'].items()})}; "
             f"NLL with it {out['nll_learned_gate']:.4f} nats per blank",
             "change in mean NLL (x1000) when lambda = c at one entropy bin, the learned gate elsewhere:",
             f"{'entropy bin':>14} {'blanks':>7} {'learned':>8} " + " ".join(f"c={c:<6g}" for c in out["values"])
             + "  best c"]
    for label, e in out["by_entropy"].items():
        cells = " ".join(f"{1000 * e['delta_nll'][f'{c:g}']['mean']:+8.2f}" for c in out["values"])
        learned = "-" if e["lambda_learned_mean"] is None else f"{e['lambda_learned_mean']:.4f}"
        lines.append(f"{label:>14} {e['count']:>7} {learned:>8} {cells}  {e['best_lambda']:g}")
    cells = " ".join(f"{1000 * out['everywhere'][f'{c:g}']['delta_nll']:+8.2f}" for c in out["values"])
    lines.append(f"{'every blank':>14} {out['blanks_seen']:>7} {'':>8} {cells}")
    return "\n".join(lines)


def markdown_table(runs: list[dict]) -> str:
    labels = list(runs[0]["by_entropy"])
    lines = [f"{runs[0]['n_states']} held-out puzzles with {runs[0]['givens']} givens, each part-way through a "
             "random-order decode; lambda by the blank's entropy H (nats). `learned`: the solver's own gate (mean "
             "lambda, and the share of blanks in that bin); `best`: the c in " + ", ".join(f"{c:g}" for c in
             runs[0]["values"]) + " that lowers the mean NLL most when set at that bin's blanks alone, and by how "
             "much (nats per blank, x1000):", "",
             "| solver | gate (w_s, w_a, w_b) | lambda | " + " | ".join(f"H in {b}" for b in labels) + " |",
             "|---|---|---|" + "---|" * len(labels)]
    for run in runs:
        g = run["soft_mask"]
        gate = f"{g['scale']:.3f}, {g['steepness']:.2f}, {g['centre']:.2f}"
        learned, best = [], []
        for b in labels:
            e = run["by_entropy"][b]
            if not e["count"]:
                learned.append("-")
                best.append("-")
                continue
            learned.append(f"{e['lambda_learned_mean']:.3f} ({e['count'] / run['blanks_seen']:.0%})")
            change = e["delta_nll"][f"{e['best_lambda']:g}"]["mean"]
            best.append(f"{e['best_lambda']:g} ({1000 * change:+.1f})")
        lines.append(f"| {run['label']} | {gate} | learned | " + " | ".join(learned) + " |")
        lines.append("| | | best | " + " | ".join(best) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    md = sub.add_parser("markdown")
    md.add_argument("files", nargs="+")
    md.add_argument("--write", default=None)
    run = sub.add_parser("run")
    run.add_argument("model")
    run.add_argument("--label", default=None, help="the solver's name in the markdown table (default: MODEL)")
    run.add_argument("--givens", type=int, default=50)
    run.add_argument("--n", type=int, default=1000)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--values", type=float, nargs="+", default=list(VALUES))
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.command == "markdown":
        runs = [json.loads(Path(f).read_text()) for f in args.files]
        text = markdown_table(runs)
        if args.write:
            from study.report import refresh
            refresh(Path(args.write), {f"gate-study-givens-{runs[0]['givens']}": text})
        else:
            print(text)
        return
    bad = [c for c in args.values if not 0 <= c <= 1]
    if bad:
        from smkit.core.errors import ConfigError
        raise ConfigError(f"--values: each lambda must lie in [0, 1] (a share of the input mixture); got {bad}")
    import torch
    from smkit import tasks
    from study.solver_eval import load, write_json
    torch.set_num_threads(args.threads)
    out = sweep(load(args.model), tasks.get("sudoku", givens=args.givens), args.n, args.seed, tuple(args.values))
    out.update(model=args.model, label=args.label or args.model, givens=args.givens)
    print(format_report(out))
    if args.out:
        write_json(args.out, out)


if __name__ == "__main__":
    main()
