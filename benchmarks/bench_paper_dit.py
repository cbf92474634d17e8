"""The paper's model at its real size: a random-weight DiT (169M, vocabulary 50258, L = 1024) timed in smkit.

Rows (each timing the best of --repeats as the process's CPU time -- with --threads 1 the compute itself, steady
while other programs share the machine -- with the wall time beside it; on CUDA both are wall time):
- forward: one full `model(x)` (embedding, 12 DiT blocks, output layer over 50258 ids, SUBS), half the positions
  masked, batch 1 and 4, fp32 and bf16 (CPU: bf16 autocast, as smkit runs bf16; CUDA: bf16 weights);
- subs: `subs()` on [4, 1024, 50258] logits against a bare log_softmax of the same tensor (goal <= 1.2x);
- decode: `generate` with soft-masking (lambda open: sm scale 0.9) at L = --length, --steps steps, batch 1, traced
  and untraced; against --steps bare forwards of the same model on SM input embeddings (decode / bare goal
  <= 1.05 at this vocabulary: entropy and top-k over 50k ids must not cost a forward; traced / untraced <= 1.15);
  in-run: each untraced decode's time over its own time inside model.forward (the sampler's share, free of the
  drift between separate runs that the decode / bare ratio carries);
- peak memory of each row: resident memory (CPU, sampled every 2 ms) or torch's peak allocation (CUDA).
Usage: python benchmarks/bench_paper_dit.py [--device cpu|cuda] [--threads 1] [--steps 64] [--length 1024]
       [--repeats 2] [--rows forward,subs,decode] [--quick] [--json PATH]
"""
from __future__ import annotations

import gc
import time

import torch

from common import Row, base_parser, finish, machine, resolve
from bench_llada_dream import PeakRSS
from bench_sampling import forward_clock
from smkit.models.backbones import dit_backbone_config
from smkit.models.config import ModelConfig
from smkit.models.denoiser import DiffusionLM, subs
from smkit.models.dit import DiT, dit_config_for
from smkit.sampling.loop import generate

SCRIPT = "bench_paper_dit.py"
VOCAB = 50258
FULL = dict(steps=64, length=1024, repeats=2)
QUICK = dict(steps=4, length=128, repeats=1)


def parser():
    ap = base_parser(__doc__, device_aware=False)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--steps", type=int, default=None, help=f"decoding steps (default {FULL['steps']})")
    ap.add_argument("--length", type=int, default=None, help=f"tokens per sequence (default {FULL['length']})")
    ap.add_argument("--repeats", type=int, default=None, help=f"timed repeats (default {FULL['repeats']})")
    ap.add_argument("--preset", default="small", help="DiT size: tiny, small (the paper's 169M), medium (default "
                                                      "small; --quick: tiny)")
    ap.add_argument("--rows", default="forward,subs,decode", help="which rows: forward, subs, decode")
    return ap


def random_model(preset: str, length: int, device: str, dtype=torch.float32) -> DiffusionLM:
    """A DiT of the paper's shape with every weight random (adaLN and output layer too, so that the
    distributions are not uniform), in eval mode."""
    cfg = dit_config_for(preset, VOCAB, max_seq_len=length)
    model = DiffusionLM(ModelConfig(vocab_size=VOCAB, seq_len=length, backbone=dit_backbone_config(cfg)), DiT(cfg))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.backbone.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.02, generator=gen)
    return model.to(device=device, dtype=dtype).eval()


def half_masked(batch: int, length: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, VOCAB - 1, (batch, length), generator=gen)
    x[torch.rand(batch, length, generator=gen) < 0.5] = VOCAB - 1
    return x.to(device)


class Timer:
    """Best-of-n (CPU seconds, wall seconds) of a call, and the peak memory while it ran."""

    def __init__(self, device: str):
        self.device = device

    def __call__(self, fn, repeats: int, warmup: int = 1):
        cuda = self.device.startswith("cuda")
        for _ in range(warmup):
            fn()
        best_cpu = best_wall = float("inf")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with PeakRSS() as mem:
            for _ in range(repeats):
                if cuda:
                    torch.cuda.synchronize()
                c0, w0 = time.process_time(), time.perf_counter()
                fn()
                if cuda:
                    torch.cuda.synchronize()
                best_cpu, best_wall = min(best_cpu, time.process_time() - c0), min(best_wall, time.perf_counter() - w0)
        peak = torch.cuda.max_memory_allocated() if cuda else mem.peak
        return (best_wall if cuda else best_cpu), best_wall, peak


def forward_rows(args, timer, cmd) -> list[Row]:
    rows = []
    for dtype_name in ("fp32", "bf16"):
        cuda = args.device.startswith("cuda")
        weights = torch.bfloat16 if (dtype_name == "bf16" and cuda) else torch.float32
        model = random_model(args.preset, args.length, args.device, weights)
        for batch in (1, 4):
            x = half_masked(batch, args.length, args.device)

            def run():
                with torch.no_grad(), torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16,
                                                     enabled=dtype_name == "bf16" and not cuda):
                    model(x)
            t, wall, peak = timer(run, args.repeats)
            rows.append(Row(f"dit_forward_b{batch}_{dtype_name}", f"DiT-{args.preset} forward, batch {batch}, "
                            f"L {args.length}, {dtype_name}", t, "s", args.device, cmd,
                            extra={"wall_s": wall, "peak_bytes": peak, "tokens_per_s": batch * args.length / t}))
            print(f"{rows[-1].figure}: {t:.3f} s ({wall:.3f} s wall), peak {peak / 2**30:.2f} GiB")
        del model
        gc.collect()
    return rows


def subs_rows(args, timer, cmd) -> list[Row]:
    """subs() and a bare log_softmax on the same fresh [4, L, V] logits, taking turns (each input cloned outside the
    timed call); best of 2 x (--repeats + 2) each."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, args.length, VOCAB, generator=gen).to(args.device)
    ids = half_masked(4, args.length, args.device)
    calls = {"log_softmax": lambda x: torch.log_softmax(x, -1),
             "subs": lambda x: subs(x, ids, VOCAB - 1, inplace=True)}
    best = {name: float("inf") for name in calls}
    cuda = args.device.startswith("cuda")
    with torch.no_grad():
        for _ in range(2 * (args.repeats + 2)):
            for name, fn in calls.items():
                x = logits.clone()
                if cuda:
                    torch.cuda.synchronize()
                c0, w0 = time.process_time(), time.perf_counter()
                out = fn(x)
                if cuda:
                    torch.cuda.synchronize()
                best[name] = min(best[name], (time.perf_counter() - w0) if cuda else (time.process_time() - c0))
                del x, out
    ratio = best["subs"] / best["log_softmax"]
    print(f"subs {best['subs']:.3f} s, bare log_softmax {best['log_softmax']:.3f} s: {ratio:.2f}x")
    return [Row("subs_over_log_softmax", f"subs() / bare log_softmax at [4, {args.length}, {VOCAB}]", ratio, "ratio",
                args.device, cmd, target="<= 1.2", extra={"subs_s": best["subs"],
                                                          "log_softmax_s": best["log_softmax"]})]


def decode_rows(args, timer, cmd) -> list[Row]:
    model = random_model(args.preset, args.length, args.device)
    settings = dict(length=args.length, steps=args.steps, num_samples=1, strategy="confidence", soft_mask=True,
                    sm={"scale": 0.9}, seed=0)
    out = {}

    def decode(trace: bool):
        def run():
            out[trace] = generate(model, trace=trace, **settings)
        return run
    traced, traced_wall, traced_peak = timer(decode(True), args.repeats, warmup=0)
    clock = time.perf_counter if args.device.startswith("cuda") else time.process_time
    in_run = []   # each untraced run / its own time inside model.forward: immune to run-to-run drift

    def untraced_in_run():
        before, c0 = inside[0], clock()
        decode(False)()
        in_run.append((clock() - c0) / (inside[0] - before))
    with forward_clock(model, args.device) as inside:
        untraced, untraced_wall, untraced_peak = timer(untraced_in_run, args.repeats, warmup=0)
    nfe = out[False].nfe
    assert out[True].nfe == nfe and torch.equal(out[True].tokens, out[False].tokens)
    x = half_masked(1, args.length, args.device)
    with torch.no_grad():
        first = model(x)
        embeds = model.soft_embeddings(x, first)

    def bare():
        with torch.no_grad():
            for _ in range(nfe):
                model(x, inputs_embeds=embeds)
    t_bare, bare_wall, bare_peak = timer(bare, args.repeats, warmup=0)
    print(f"decode L {args.length}, {args.steps} steps, {nfe} forward passes: traced {traced:.2f} s, untraced "
          f"{untraced:.2f} s, {nfe} bare forwards {t_bare:.2f} s; in-run decode / its forwards {min(in_run):.3f}")
    size = f"L {args.length}, {args.steps} steps"
    return [
        Row("dit_decode_traced", f"traced SM decode, DiT-{args.preset}, {size}", traced, "s", args.device, cmd,
            extra={"wall_s": traced_wall, "peak_bytes": traced_peak, "nfe": nfe}),
        Row("dit_decode_untraced", f"untraced SM decode, DiT-{args.preset}, {size}", untraced, "s", args.device, cmd,
            extra={"wall_s": untraced_wall, "peak_bytes": untraced_peak, "nfe": nfe}),
        Row("dit_decode_over_forwards", f"untraced SM decode / {nfe} bare forwards, vocabulary {VOCAB}",
            untraced / t_bare, "ratio", args.device, cmd, target="<= 1.05",
            extra={"bare_s": t_bare, "bare_wall_s": bare_wall, "bare_peak_bytes": bare_peak}),
        Row("dit_traced_over_untraced", "traced / untraced SM decode", traced / untraced, "ratio", args.device, cmd,
            target="<= 1.15"),
        Row("dit_decode_in_run", f"in-run untraced SM decode / its time inside forward, vocabulary {VOCAB}",
            min(in_run), "ratio", args.device, cmd, target="<= 1.05", extra={"runs": in_run}),
    ]


def collect(argv=None) -> list[Row]:
    args = resolve(parser().parse_args(argv), FULL, QUICK)
    if args.quick and args.preset == "small":
        args.preset = "tiny"
    if args.threads:
        torch.set_num_threads(args.threads)
    cmd = " ".join(["python", f"benchmarks/{SCRIPT}", "--device", args.device, "--preset", args.preset,
                    "--length", str(args.length), "--steps", str(args.steps), "--repeats", str(args.repeats),
                    "--rows", args.rows] + (["--threads", str(args.threads)] if args.threads else []))
    timer = Timer(args.device)
    wanted = args.rows.split(",")
    rows = []
    if "forward" in wanted:
        rows += forward_rows(args, timer, cmd)
    if "subs" in wanted:
        rows += subs_rows(args, timer, cmd)
    if "decode" in wanted:
        rows += decode_rows(args, timer, cmd)
    print(machine())
    return finish(rows, args)


def docs_table(report: dict) -> str:
    """The README's table of these figures, from the JSON a run wrote (`--json`): the rows, their targets and the
    command of each."""
    lines = ["| figure | value | target | command |", "|---|---|---|---|"]
    for r in report["rows"]:
        value = f"{r['value']:.3f} {r['unit']}" if r["unit"] != "ratio" else f"{r['value']:.2f}x"
        extra = r.get("extra", {})
        if "peak_bytes" in extra:
            value += f", peak {extra['peak_bytes'] / 2**30:.2f} GiB"
        lines.append(f"| {r['figure']} ({r['device']}) | {value} | {r.get('target') or '-'} | `{r['command']}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    collect()
