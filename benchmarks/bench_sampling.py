"""Sampler overheads and decoding speed of the shipped model. Not a test: prints figures, asserts nothing.

(a) SM decode / binary decode at the same steps                       target <= 1.05
(b) untraced decode / NFE bare forward passes of the same batch       target <= 1.05
(c) traced / untraced SM decode                                       target <= 1.15
in-run: one decode's time / its time inside model.forward (CPU time on the CPU, the steadiest reading of (b)
under load; synchronised wall time on CUDA)                           target <= 1.05 untraced
tokens/s: tokens produced per second by an untraced decode, binary and SM.

The decodes and the bare forwards take turns (--repeats each); a figure is the best (minimum) run, medians
are printed beside it.
Usage: python benchmarks/bench_sampling.py [--device cpu|cuda|all] [--samples 4] [--length 128] [--steps 32]
                                           [--repeats 5] [--threads N] [--bf16] [--quick] [--json PATH]
"""
from __future__ import annotations

import contextlib
import sys
import time

import torch

import smkit
from common import (Row, base_parser, best, command, device_label, interleaved, median, per_device, precision,
                    run_alone, shipped_model, sync, timed)

SCRIPT = "bench_sampling.py"
FULL = dict(samples=4, length=128, steps=32, repeats=5)
QUICK = dict(samples=2, length=32, steps=8, repeats=2)
STRATEGY = "confidence"


def parser():
    ap = base_parser(__doc__)
    ap.add_argument("--samples", type=int, default=None, help=f"samples decoded together (default {FULL['samples']})")
    ap.add_argument("--length", type=int, default=None, help=f"tokens per sample (default {FULL['length']})")
    ap.add_argument("--steps", type=int, default=None, help=f"denoising steps (default {FULL['steps']})")
    ap.add_argument("--repeats", type=int, default=None, help=f"timed runs of each kind (default {FULL['repeats']})")
    return ap


@contextlib.contextmanager
def forward_clock(model, device: str):
    """Accumulate the time spent inside model.forward while the context is open: process CPU time on the
    CPU; on CUDA, wall time with the device synchronised on entry and exit (CPU time would only count
    kernel launches). Yields a one-element list holding the running total."""
    inside = [0.0]
    forward = model.forward
    clock = time.perf_counter if device.startswith("cuda") else time.process_time

    def counted(*a, **k):
        sync(device)
        c0 = clock()
        try:
            out = forward(*a, **k)
            sync(device)
            return out
        finally:
            inside[0] += clock() - c0

    model.forward = counted
    try:
        yield inside
    finally:
        del model.forward


def measure(device: str, args) -> list[Row]:
    model = shipped_model(device)
    if args.length > model.config.seq_len:
        raise SystemExit(f"--length={args.length}: the shipped model takes at most {model.config.seq_len} tokens")
    B, L = args.samples, args.length
    kw = dict(num_samples=B, length=L, steps=args.steps, strategy=STRATEGY, seed=0)

    def decode(soft: bool, trace: bool):
        def run():
            with precision(device, args.bf16):
                return smkit.generate(model, soft_mask=soft, trace=trace, **kw)
        return run

    runs = {"binary": decode(False, False), "sm": decode(True, False), "sm_traced": decode(True, True)}
    nfe = {name: fn().nfe for name, fn in runs.items()}  # the forward passes each spends
    g = torch.Generator().manual_seed(0)
    x = torch.full((B, L), model.mask_id, dtype=torch.long)
    x[:, ::2] = torch.randint(0, model.mask_id, (B, (L + 1) // 2), generator=g)
    x = x.to(device)
    embeds = model.embed(x).detach()

    def bare(n: int, with_embeds: bool):
        def run():
            with torch.no_grad(), precision(device, args.bf16):
                for _ in range(n):
                    model(x, inputs_embeds=embeds) if with_embeds else model(x)
        return run

    fns = {**runs, "bare_binary": bare(nfe["binary"], False), "bare_sm": bare(nfe["sm"], True)}
    times = interleaved(fns, args.repeats, device)
    wall = {k: best(v) for k, v in times.items()}
    cpu = {k: best(v, 1) for k, v in times.items()}
    med = {k: median(v) for k, v in times.items()}

    share, share_med = {}, {}
    with forward_clock(model, device) as inside:
        for name, fn in runs.items():
            ratios = []
            for _ in range(args.repeats):
                inside[0] = 0.0
                w, c = timed(fn, device)
                ratios.append((w if device.startswith("cuda") else c) / inside[0])
            share[name], share_med[name] = min(ratios), sorted(ratios)[len(ratios) // 2]

    cmd = command(SCRIPT, device, {k: getattr(args, k) for k in FULL}, args)
    dev = device_label(device, args.bf16)
    setting = f"{B} x {L}, {args.steps} steps"
    print(f"[{dev}] shipped model, {setting}, strategy {STRATEGY}, torch threads {torch.get_num_threads()}")
    print(f"  NFE: binary {nfe['binary']}, SM {nfe['sm']}, SM traced {nfe['sm_traced']}")

    def ratio(name, figure, num, den, target):
        r, rc, rm = wall[num] / wall[den], cpu[num] / cpu[den], med[num] / med[den]
        print(f"  {figure}: {r:.3f} (CPU time {rc:.3f}, median {rm:.3f}; target {target})  "
              f"{num} {wall[num]:.3f}s vs {den} {wall[den]:.3f}s")
        return Row(name, f"{figure} ({setting})", r, "ratio", dev, cmd, target, {"cpu_time": rc, "median": rm})

    def in_run(name, figure, run, target):
        print(f"  {figure}: {share[run]:.3f} (median {share_med[run]:.3f})")
        return Row(name, f"{figure} ({setting})", share[run], "ratio", dev, cmd, target, {"median": share_med[run]})

    def speed(name, figure, run):
        v = B * L / wall[run]
        print(f"  {figure}: {v:.0f} tokens/s (median {B * L / med[run]:.0f})")
        return Row(name, f"{figure} ({setting})", v, "tokens/s", dev, cmd, "", {"median": B * L / med[run],
                                                                                  "decode_s": wall[run]})

    clock = "wall time, synchronised" if device.startswith("cuda") else "CPU time"
    rows = [
        ratio("decode_sm_over_binary", "SM / binary decode time, same steps", "sm", "binary", "<= 1.05"),
        ratio("decode_traced_over_untraced", "traced / untraced SM decode time", "sm_traced", "sm", "<= 1.15"),
        ratio("decode_over_forwards_binary", "untraced binary decode / NFE bare forwards", "binary",
              "bare_binary", "<= 1.05"),
        ratio("decode_over_forwards_sm", "untraced SM decode / NFE bare forwards with input embeddings", "sm",
              "bare_sm", "<= 1.05"),
        in_run("decode_forward_share_binary", f"in-run binary decode / its time inside forward, {clock}",
               "binary", "<= 1.05"),
        in_run("decode_forward_share_sm", f"in-run SM decode / its time inside forward, {clock}", "sm", "<= 1.05"),
        in_run("decode_forward_share_sm_traced", f"in-run traced SM decode / its time inside forward, {clock}",
               "sm_traced", ""),
        speed("decode_tokens_per_s_binary", "decoding tokens/s, binary, untraced", "binary"),
        speed("decode_tokens_per_s_sm", "decoding tokens/s, SM, untraced", "sm"),
    ]
    print(f"  command: {cmd}")
    return rows


def collect(argv=None) -> list[Row]:
    return per_device(measure, parser, FULL, QUICK, argv)


if __name__ == "__main__":
    sys.exit(run_alone(collect, parser))
