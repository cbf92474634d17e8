"""Cost of one two-pass SM training update against one binary update of the shipped model on the same batch.

The floor is ~1.33x: SM adds one forward pass without backward. Figures: SM/binary update time (target
<= 1.35) and training tokens/s of each kind. Binary and SM updates take turns (--repeats each); a figure
is the best (minimum) update, the median is printed beside it.
Usage: python benchmarks/bench_train_step.py [--device cpu|cuda|all] [--batch-size 32] [--seq-len 128]
                                             [--repeats 10] [--threads N] [--bf16] [--quick] [--json PATH]
"""
from __future__ import annotations

import sys

import torch

from common import (Row, base_parser, best, command, device_label, interleaved, median, per_device, precision,
                    real_batch, run_alone, shipped_model)
from smkit.training.train import TrainConfig, make_optimizer

SCRIPT = "bench_train_step.py"
FULL = dict(batch_size=32, seq_len=128, repeats=10)
QUICK = dict(batch_size=4, seq_len=32, repeats=2)


def parser():
    ap = base_parser(__doc__)
    ap.add_argument("--batch-size", type=int, default=None, help=f"sequences per update (default {FULL['batch_size']})")
    ap.add_argument("--seq-len", type=int, default=None, help=f"tokens per sequence (default {FULL['seq_len']})")
    ap.add_argument("--repeats", type=int, default=None, help=f"timed updates of each kind (default {FULL['repeats']})")
    return ap


def measure(device: str, args) -> list[Row]:
    model = shipped_model(device).train()
    if args.seq_len > model.config.seq_len:
        raise SystemExit(f"--seq-len={args.seq_len}: the shipped model takes at most {model.config.seq_len} tokens")
    opt = make_optimizer(model, TrainConfig())
    batch = real_batch(model.tokenizer, args.batch_size, args.seq_len).to(device)

    def update(soft: bool):
        def run():
            with precision(device, args.bf16):
                loss = model.loss(batch, soft_mask=soft, generator=torch.Generator().manual_seed(0))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    times = interleaved({"binary": update(False), "sm": update(True)}, args.repeats, device, warmup=2)
    tb, ts = best(times["binary"]), best(times["sm"])
    mb, ms = median(times["binary"]), median(times["sm"])
    tokens = batch.numel()
    cmd = command(SCRIPT, device, {k: getattr(args, k) for k in FULL}, args)
    dev = device_label(device, args.bf16)
    print(f"[{dev}] shipped model, batch {tuple(batch.shape)}, torch threads {torch.get_num_threads()}")
    print(f"  binary update {tb * 1e3:.1f} ms (median {mb * 1e3:.1f}); SM update {ts * 1e3:.1f} ms "
          f"(median {ms * 1e3:.1f}); SM/binary {ts / tb:.3f} (median {ms / mb:.3f}; target <= 1.35)")
    print(f"  tokens/s: binary {tokens / tb:.0f}, SM {tokens / ts:.0f}")
    print(f"  command: {cmd}")
    shape = f"{args.batch_size} x {args.seq_len}"
    return [
        Row("train_update_ratio", f"SM / binary training-update time (same batch, {shape})", ts / tb, "ratio",
            dev, cmd, "<= 1.35", {"median": ms / mb}),
        Row("train_tokens_per_s_binary", f"training tokens/s, binary update ({shape})", tokens / tb, "tokens/s",
            dev, cmd, "", {"median": tokens / mb, "update_s": tb}),
        Row("train_tokens_per_s_sm", f"training tokens/s, SM update ({shape})", tokens / ts, "tokens/s",
            dev, cmd, "", {"median": tokens / ms, "update_s": ts}),
    ]


def collect(argv=None) -> list[Row]:
    return per_device(measure, parser, FULL, QUICK, argv)


if __name__ == "__main__":
    sys.exit(run_alone(collect, parser))
