"""LLaDA-8B and Dream-7B at their real width, 2 layers deep: forward time per token and memory, extrapolated to depth.

8B parameters fit no test and no CPU run here, so each model is built with random weights at its real width and
vocabulary but only `--layers` (2) decoder layers, through the same path a loaded folder takes (transformers'
Llama / Qwen2 decoder with is_causal=False, wrapped as a smkit DiffusionLM; the timed call is the full
`model(x)`: embedding, layers, output layer, SUBS log-softmax over the vocabulary). Measured per model and dtype:
- t_model: the wrapped forward of one [batch, seq_len] input (best of --repeats, after one warm-up);
- t_layer: one decoder layer alone on the same hidden states;
  both as the process's CPU time (with --threads 1 that is the compute time, and it does not grow when other
  programs take the core away, as they do on this shared machine) and as wall time (printed beside it);
- fixed = t_model - layers * t_layer (embedding, output layer, log-softmax, the rest);
- weights: the bytes of the parameters (exact); peak RSS: the process's resident memory at its highest during
  the forward (a thread samples /proc every 2 ms), and its rise over the resident memory before it.
Extrapolated to the real depth D (32 for LLaDA-8B, 28 for Dream-7B): t(D) = fixed + D * t_layer, and weights(D)
from the parameter count of the real shape; both printed with their arithmetic. The real models run in bf16
(the published weights are bf16); a GPU run needs the weights' bytes plus activations.
Usage: python benchmarks/bench_llada_dream.py [--models llada,dream] [--dtypes fp32,bf16] [--seq-len 64]
       [--batch-size 1] [--layers 2] [--repeats 3] [--threads N] [--device cpu|cuda] [--quick] [--json PATH]
"""
from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import replace

import torch

from common import Row, base_parser, best, command, finish, interleaved, resolve
import smkit
from smkit.models.bidirectional import DecoderShape, random_decoder

SCRIPT = "bench_llada_dream.py"
FULL = dict(seq_len=64, batch_size=1, layers=2, repeats=2)
QUICK = dict(seq_len=16, batch_size=1, layers=2, repeats=1)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# The published configs: LLaDA-8B (config.json of LLaDA-8B-Base/Instruct) and Dream-v0-7B (Qwen2.5-7B's sizes).
REAL = {
    "llada": (DecoderShape(family="llama", vocab_rows=126464, hidden=4096, layers=32, heads=32, kv_heads=32,
                           intermediate=12288, max_positions=4096, rms_eps=1e-5, rope_theta=500000.0), 126336, False),
    "dream": (DecoderShape(family="qwen2", vocab_rows=152064, hidden=3584, layers=28, heads=28, kv_heads=4,
                           intermediate=18944, max_positions=131072, rms_eps=1e-6, rope_theta=1e6,
                           pad_id=151643), 151666, True),
}
NAMES = {"llada": "LLaDA-8B", "dream": "Dream-7B"}


def parser():
    ap = base_parser(__doc__, device_aware=False)
    ap.add_argument("--models", default="llada,dream", help="llada, dream or both (default: both)")
    ap.add_argument("--dtypes", default="fp32,bf16", help="fp32, bf16 or both (default: both)")
    ap.add_argument("--seq-len", type=int, default=None, help=f"tokens per sequence (default {FULL['seq_len']})")
    ap.add_argument("--batch-size", type=int, default=None, help=f"sequences per forward (default {FULL['batch_size']})")
    ap.add_argument("--layers", type=int, default=None, help=f"decoder layers built (default {FULL['layers']})")
    ap.add_argument("--repeats", type=int, default=None, help=f"timed forwards (default {FULL['repeats']})")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    return ap


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The highest resident memory seen while the block runs (sampled every 2 ms by a thread)."""

    def __enter__(self):
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def build(kind: str, dtype: torch.dtype, layers: int, quick: bool, device: str):
    shape, mask_id, shift = REAL[kind]
    if quick:   # a smoke run: the real structure at a width that fits any machine
        shape = replace(shape, vocab_rows=1024, hidden=64, heads=4, kv_heads=4 if kind == "llada" else 2,
                        intermediate=96, pad_id=None if kind == "llada" else 1000)
        mask_id = 1001
    backbone = random_decoder(replace(shape, layers=layers), dtype=dtype).to(device)
    model = smkit.from_hf(backbone, mask_id=mask_id, shift_logits=shift, bidirectional=True, seq_len=4096)
    return model.eval(), shape


def measure(kind: str, dtype_name: str, args) -> list[Row]:
    dtype = DTYPES[dtype_name]
    device = args.device
    gc.collect()
    before_build = rss()
    t0 = time.perf_counter()
    model, shape = build(kind, dtype, args.layers, args.quick, device)
    build_s = time.perf_counter() - t0
    decoder = model.backbone.model
    x = torch.randint(0, 1000, (args.batch_size, args.seq_len), device=device)
    x[:, ::2] = model.mask_id
    with torch.no_grad():
        h = model.embed(x)
        positions = torch.arange(args.seq_len, device=device).unsqueeze(0)
        rotary = decoder.rotary_emb(h, positions)
        layer = decoder.layers[0]
        times = interleaved({"model": lambda: model(x),
                             "layer": lambda: layer(h, position_embeddings=rotary, attention_mask=None,
                                                    is_causal=False)},
                            args.repeats, device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with PeakRSS() as mem:
            model(x)
        if device == "cuda":
            print(f"  GPU memory: {torch.cuda.memory_allocated() / 2**30:.2f} GiB held, peak "
                  f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB during the forward")
    tokens = args.batch_size * args.seq_len
    clock = 1 if device == "cpu" else 0       # CPU seconds on the CPU; on a GPU only wall time means anything
    t_model, t_layer = best(times["model"], clock), best(times["layer"], clock)
    wall_model, wall_layer = best(times["model"]), best(times["layer"])
    fixed = t_model - args.layers * t_layer
    depth = shape.layers
    t_full = fixed + depth * t_layer
    bytes_per = torch.finfo(dtype).bits // 8
    built_params = sum(p.numel() for p in model.backbone.parameters())
    full_params = shape.parameter_count()
    name, label = NAMES[kind], f"{kind}_{dtype_name}"
    cmd = command(SCRIPT, None, {"models": kind, "dtypes": dtype_name, "seq_len": args.seq_len,
                                 "batch_size": args.batch_size, "layers": args.layers, "repeats": args.repeats,
                                 "device": device}, args, device_aware=False)
    print(f"\n{name} {dtype_name} on {device}, width {shape.hidden}, vocabulary {shape.vocab_rows}, "
          f"{args.layers} of {depth} layers built ({built_params / 1e9:.3f}B parameters, built in {build_s:.0f} s), "
          f"input {args.batch_size} x {args.seq_len} tokens, threads {torch.get_num_threads()}")
    print(f"  wall time: model {wall_model * 1e3:.1f} ms, layer {wall_layer * 1e3:.1f} ms; "
          f"{'CPU' if clock else 'wall'} time used below:")
    print(f"  t_model = {t_model * 1e3:.1f} ms; t_layer = {t_layer * 1e3:.1f} ms; "
          f"fixed = {t_model * 1e3:.1f} - {args.layers} x {t_layer * 1e3:.1f} = {fixed * 1e3:.1f} ms")
    print(f"  t({depth} layers) = {fixed * 1e3:.1f} + {depth} x {t_layer * 1e3:.1f} = {t_full * 1e3:.0f} ms per "
          f"forward = {t_full / tokens * 1e3:.2f} ms per token ({tokens} tokens)")
    print(f"  weights: {built_params / 1e9:.3f}B x {bytes_per} B = {built_params * bytes_per / 2**30:.2f} GiB built; "
          f"{full_params / 1e9:.3f}B x {bytes_per} B = {full_params * bytes_per / 2**30:.2f} GiB at {depth} layers")
    print(f"  resident memory: {(mem.start - before_build) / 2**30:.2f} GiB after building, peak "
          f"{mem.peak / 2**30:.2f} GiB during the forward (+{(mem.peak - mem.start) / 2**30:.2f} GiB over before it)")
    extra = {"t_model_cpu_s": t_model, "t_layer_cpu_s": t_layer, "fixed_cpu_s": fixed, "t_model_wall_s": wall_model,
             "t_layer_wall_s": wall_layer, "layers_built": args.layers,
             "layers_real": depth, "tokens": tokens, "params_built": built_params, "params_real": full_params,
             "weights_gib_real": full_params * bytes_per / 2**30, "peak_rss_gib": mem.peak / 2**30,
             "forward_rss_rise_gib": (mem.peak - mem.start) / 2**30, "threads": torch.get_num_threads(),
             "build_s": build_s}
    rows = [Row(f"{label}_ms_per_token_built", f"{name} {dtype_name}: forward CPU time per token, {args.layers} "
                f"layers built",
                t_model / tokens * 1e3, "ms/token", device, cmd, extra=extra),
            Row(f"{label}_ms_per_token_real_depth", f"{name} {dtype_name}: forward CPU time per token extrapolated to "
                f"{depth} layers", t_full / tokens * 1e3, "ms/token", device, cmd),
            Row(f"{label}_weights_gib_real_depth", f"{name} {dtype_name}: weights at {depth} layers",
                full_params * bytes_per / 2**30, "GiB", device, cmd)]
    del model, decoder, layer, h, rotary
    gc.collect()
    return rows


def docs_table(report: dict) -> str:
    """The figures of a --json report as the table docs/huggingface.md shows (a test keeps the two in step)."""
    lines = ["| model, dtype | t(2 layers) | t_layer | fixed | t(all layers) per forward | per token | weights, "
             "all layers | peak RSS, 2 layers |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        if not r["name"].endswith("_ms_per_token_built"):
            continue
        e = r["extra"]
        kind, dtype = r["name"].split("_")[:2]
        full = e["fixed_cpu_s"] + e["layers_real"] * e["t_layer_cpu_s"]
        lines.append(f"| {NAMES[kind]} {dtype} | {e['t_model_cpu_s'] * 1e3:.0f} ms | {e['t_layer_cpu_s'] * 1e3:.0f} ms "
                     f"| {e['fixed_cpu_s'] * 1e3:.0f} ms | {e['fixed_cpu_s'] * 1e3:.0f} + {e['layers_real']} x "
                     f"{e['t_layer_cpu_s'] * 1e3:.0f} = {full:.1f} s | {full / e['tokens'] * 1e3:.0f} ms "
                     f"| {e['weights_gib_real']:.1f} GiB | {e['peak_rss_gib']:.1f} GiB |")
    return "\n".join(lines)


def collect(argv=None) -> list[Row]:
    args = resolve(parser().parse_args(argv), FULL, QUICK)
    models = [m for m in args.models.split(",") if m]
    dtypes = [d for d in args.dtypes.split(",") if d]
    for m in models:
        if m not in REAL:
            raise SystemExit(f"--models: {m!r} is not one of {sorted(REAL)}")
    for d in dtypes:
        if d not in DTYPES:
            raise SystemExit(f"--dtypes: {d!r} is not one of {sorted(DTYPES)}")
    if args.device not in ("cpu", "cuda") or (args.device == "cuda" and not torch.cuda.is_available()):
        raise SystemExit(f"--device {args.device!r}: cpu, or cuda where torch sees a GPU")
    return [row for m in models for d in dtypes for row in measure(m, d, args)]


if __name__ == "__main__":
    finish(collect(), parser().parse_args())
