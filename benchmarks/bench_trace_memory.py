"""Memory of a decoding trace: bytes a `Trace` holds (`Trace.nbytes()`, the sum of its tensors' sizes) for
samples x steps x length x k_trace, and per (sample, step, position). The trace lives on the CPU whatever the
device; on CUDA the peak GPU memory of a traced and of an untraced decode are reported too
(torch.cuda.max_memory_allocated), so the trace's cost on the GPU shows as their difference.
A trace keeps statistics only at the positions masked before or after a step (format 2, smkit/core/trace.py):
expected per (sample, step, position), about the share of such positions times 8 + k (b + 4) bytes in memory
(float32 lambda and entropy, k ids of b bytes, k float32 probabilities), plus a few bytes of events per step.
The dense trace of format 1 took 8 k + 19 bytes at every (sample, step, position).
Usage: python benchmarks/bench_trace_memory.py [--device cpu|cuda|all] [--samples 4] [--length 128]
                                               [--steps 32] [--k-trace 5] [--threads N] [--bf16] [--quick]
                                               [--json PATH]
"""
from __future__ import annotations

import sys

import torch

import smkit
from common import Row, base_parser, command, device_label, per_device, precision, run_alone, shipped_model

SCRIPT = "bench_trace_memory.py"
FULL = dict(samples=4, length=128, steps=32, k_trace=5)
QUICK = dict(samples=2, length=32, steps=8, k_trace=5)


def parser():
    ap = base_parser(__doc__)
    ap.add_argument("--samples", type=int, default=None, help=f"samples decoded together (default {FULL['samples']})")
    ap.add_argument("--length", type=int, default=None, help=f"tokens per sample (default {FULL['length']})")
    ap.add_argument("--steps", type=int, default=None, help=f"denoising steps (default {FULL['steps']})")
    ap.add_argument("--k-trace", type=int, default=None,
                    help=f"top-k ids/probabilities kept per position (default {FULL['k_trace']})")
    return ap


def measure(device: str, args) -> list[Row]:
    model = shipped_model(device)
    if args.length > model.config.seq_len:
        raise SystemExit(f"--length={args.length}: the shipped model takes at most {model.config.seq_len} tokens")
    kw = dict(num_samples=args.samples, length=args.length, steps=args.steps, k_trace=args.k_trace, seed=0)
    cuda = device.startswith("cuda")

    def decode(trace: bool):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with precision(device, args.bf16):
            g = smkit.generate(model, soft_mask=True, trace=trace, **kw)
        peak = torch.cuda.max_memory_allocated() if cuda else None
        return g, peak

    g, peak_traced = decode(True)
    tr = g.trace
    S, B, L, k = len(tr), tr.num_samples, tr.length, args.k_trace
    total = tr.nbytes()
    per = total / (S * B * L)
    kept = sum(int(tr._store.frame(s)[0]["rows"].sum()) for s in range(S))
    b = tr.layout.ids.itemsize
    expect = kept / (S * B * L) * (8 + k * (b + 4))
    cmd = command(SCRIPT, device, {k_: getattr(args, k_) for k_ in FULL}, args)
    dev = device_label(device, args.bf16)
    shape = f"{B} samples x {S} steps x {L} positions x k {k}"
    print(f"[{dev}] shipped model, SM decode, {args.steps} steps asked, {S} recorded")
    print(f"  trace: {total} bytes ({total / 2**20:.2f} MiB) for {shape}; {per:.1f} bytes per step-position "
          f"({kept / (S * B * L):.2f} of them kept x (8 + k ({b} + 4)) = {expect:.1f}; dense, format 1: {8 * k + 19})")
    rows = [Row("trace_bytes", f"trace memory, {shape}", float(total), "bytes", dev, cmd, "",
                {"samples": B, "steps": S, "length": L, "k_trace": k}),
            Row("trace_bytes_per_step_position", f"trace memory per (sample, step, position), k {k}", per,
                "bytes", dev, cmd, f"~ {expect:.1f} (kept share x (8 + k (b + 4)), trace.py)",
                {"kept_share": kept / (S * B * L), "id_bytes": b, "dense_format_1": 8 * k + 19})]
    if cuda:
        _, peak_plain = decode(False)
        print(f"  peak GPU memory: traced decode {peak_traced} bytes, untraced {peak_plain} bytes")
        rows += [Row("gpu_peak_bytes_traced", f"peak GPU memory, traced SM decode ({shape})", float(peak_traced),
                     "bytes", dev, cmd),
                 Row("gpu_peak_bytes_untraced", f"peak GPU memory, untraced SM decode ({B} x {L}, {args.steps} "
                     f"steps)", float(peak_plain), "bytes", dev, cmd)]
    print(f"  command: {cmd}")
    return rows


def collect(argv=None) -> list[Row]:
    return per_device(measure, parser, FULL, QUICK, argv)


if __name__ == "__main__":
    sys.exit(run_alone(collect, parser))
