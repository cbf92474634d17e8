"""Where CPU training time goes: fp32 against bf16 autocast, model width, torch.compile and a fused optimizer.

Rows: the bf16 and fp32 matmul throughput of this CPU (a 4096x256 @ 256x1024 product, GFLOP/s: the peak a
training step could approach), then training tokens/s of binary updates at the shipped shape and at 2x and 4x
width, each with its achieved GFLOP/s (6 x parameters x tokens/s) and its share of the better matmul peak, and
the speed of smkit's default path (`resolve_bf16(None)`) over fp32 eager. bf16 pays only with AMX tiles; on a
CPU with avx512_bf16 alone (this project's CI machine) oneDNN's bf16 matmul is slower than fp32.
Usage: python benchmarks/bench_precision.py [--widths 1,2,4] [--batch-size 32] [--seq-len 128] [--repeats 3]
                                            [--threads N] [--quick] [--json PATH]
"""
from __future__ import annotations

import sys
import time

import torch

from common import Row, base_parser, best, command, interleaved, real_batch, resolve, run_alone, shipped_model
from smkit.models.denoiser import DiffusionLM
from smkit.core.precision import cpu_bf16_kind, resolve_bf16
from smkit.training.train import TrainConfig, make_optimizer

SCRIPT = "bench_precision.py"
FULL = dict(batch_size=32, seq_len=128, repeats=3)
QUICK = dict(batch_size=2, seq_len=16, repeats=1)


def parser():
    ap = base_parser(__doc__, device_aware=False)
    ap.add_argument("--widths", default=None, help="width multiples of the shipped model (default 1,2,4; quick: 1)")
    ap.add_argument("--batch-size", type=int, default=None, help=f"sequences per update (default {FULL['batch_size']})")
    ap.add_argument("--seq-len", type=int, default=None, help=f"tokens per sequence (default {FULL['seq_len']})")
    ap.add_argument("--repeats", type=int, default=None, help=f"timed updates per variant (default {FULL['repeats']})")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile at the shipped width")
    return ap


def matmul_gflops(dtype: torch.dtype, n: int) -> float:
    a, b = torch.randn(4096, 256).to(dtype), torch.randn(256, 1024).to(dtype)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(n):
        a @ b
    return 2 * 4096 * 256 * 1024 * n / (time.perf_counter() - t0) / 1e9


def model_of_width(width: int) -> DiffusionLM:
    shipped = shipped_model("cpu")
    bb = shipped.config.backbone
    cfg = TrainConfig(hidden_size=bb.hidden_size * width, num_layers=bb.num_layers, num_heads=bb.num_heads,
                      intermediate_size=bb.intermediate_size * width, seq_len=shipped.config.seq_len)
    torch.manual_seed(0)
    return DiffusionLM(cfg.model_config(shipped.config.vocab_size), tokenizer=shipped.tokenizer).train()


def update_fn(model, batch, bf16: bool, fused: bool = False, compiled: bool = False):
    opt = make_optimizer(model, TrainConfig())
    if fused:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    loss_fn = torch.compile(model.loss) if compiled else model.loss

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(batch, generator=torch.Generator().manual_seed(0))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


def collect(argv=None) -> list[Row]:
    args = resolve(parser().parse_args(argv), FULL, QUICK)
    widths = [int(w) for w in (args.widths or ("1" if args.quick else "1,2,4")).split(",")]
    cmd = command(SCRIPT, None, {**{k: getattr(args, k) for k in FULL}, "widths": ",".join(map(str, widths))}, args,
                  device_aware=False)
    kind = cpu_bf16_kind()
    n = 3 if args.quick else 30
    peak32, peak16 = matmul_gflops(torch.float32, n), (matmul_gflops(torch.bfloat16, n) if kind else 0.0)
    peak = max(peak32, peak16)
    default_bf16 = resolve_bf16(None, torch.device("cpu"))
    print(f"CPU bf16 support: {kind or 'none'}; matmul fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s; "
          f"smkit's default on this CPU: {'bf16' if default_bf16 else 'fp32'}; torch threads {torch.get_num_threads()}")
    rows = [Row("matmul_gflops_fp32", "fp32 matmul 4096x256 @ 256x1024", peak32, "GFLOP/s", "cpu", cmd)]
    if kind:
        rows.append(Row("matmul_gflops_bf16", "bf16 matmul 4096x256 @ 256x1024", peak16, "GFLOP/s", "cpu", cmd))
    for width in widths:
        model = model_of_width(width)
        params = sum(p.numel() for p in model.parameters())
        batch = real_batch(model.tokenizer, args.batch_size, args.seq_len)
        variants = {"fp32": update_fn(model, batch, False)}
        if kind:
            variants["bf16"] = update_fn(model, batch, True)
        if width == 1:
            variants["fp32_fused_adamw"] = update_fn(model, batch, False, fused=True)
            if args.compile:
                variants["fp32_compiled"] = update_fn(model, batch, False, compiled=True)
        times = interleaved(variants, args.repeats, "cpu", warmup=1)
        tokens = batch.numel()
        for name, samples in times.items():
            tps = tokens / best(samples)
            gflops = 6 * params * tps / 1e9
            print(f"  width x{width} ({params / 1e6:.1f}M params) {name}: {tps:.0f} tokens/s, {gflops:.1f} GFLOP/s "
                  f"({gflops / peak:.0%} of the matmul peak)")
            rows.append(Row(f"train_tokens_per_s_{name}_w{width}", f"binary training tokens/s, {name}, width x{width} "
                            f"({params / 1e6:.1f}M params)", tps, "tokens/s", "cpu", cmd, "",
                            {"gflops": gflops, "share_of_matmul_peak": gflops / peak, "params": params}))
        if width == 1:
            default = "bf16" if default_bf16 else "fp32"
            ratio = best(times["fp32"]) / best(times[default])
            rows.append(Row("train_default_over_fp32_eager", f"default training path ({default}) speed over fp32 "
                            "eager, shipped width", ratio, "ratio", "cpu", cmd, ">= 2 (issue 11)"))
    print(f"  command: {cmd}")
    return rows


if __name__ == "__main__":
    sys.exit(run_alone(collect, parser))
