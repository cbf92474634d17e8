"""Traces at the paper's decoding size (issue 21): L = T = 1024, 4 samples, k_trace = 3, a random model of a
few layers (vocabulary 1024: ids up to 65535 take the same room), SM decoding with the confidence rule.

Each decode runs in its own process, so its peak resident memory is its own (ru_maxrss); "beyond the model"
subtracts the process's resident memory after the model is built. Figures and goals:
  trace file (MB, streamed with generate(trace=path), float16)                         <= 40
  peak memory of decode + save beyond the model (MB)                                    <= 300
  open + explorer build (s): Trace.open, then TraceExplorer at its opening step         <= 1
  slider scrub, one step (ms, median over moves forward, kernel side)                   <= 20
  to_pandas of one step (ms, median): Trace.open(path).to_pandas(steps=[s])             <= 50
  traced (streamed) / untraced decode time (best CPU time of --repeats each, in turns)  <= 1.10
The reading figures are process CPU time, wall time beside them in the JSON: this single-threaded work waits on
nothing else (the file sits in the page cache after the decode), so on a quiet machine the two agree, while on a
shared one the wall time measures the neighbours. The first explorer build, which also imports the widget
libraries, is in the JSON too.
plus a row at vocabulary 50258 with --big-steps steps (file size and bytes per kept position against the
vocabulary-1024 trace), and --many-samples samples at the same size, streamed: peak memory, file, open.
Usage: python benchmarks/bench_trace_scale.py [--length 1024] [--steps 1024] [--samples 4] [--k-trace 3]
         [--vocab 1024] [--layers 2] [--hidden 64] [--repeats 2] [--big-vocab 50258] [--big-steps 64]
         [--many-samples 64] [--threads N] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import HERE, Row, base_parser, command, finish, resolve

SCRIPT = "bench_trace_scale.py"
FULL = dict(length=1024, steps=1024, samples=4, k_trace=3, vocab=1024, layers=2, hidden=64, repeats=2,
            big_vocab=50258, big_steps=64, many_samples=64)
QUICK = dict(length=128, steps=64, samples=2, k_trace=3, vocab=1024, layers=1, hidden=32, repeats=1,
             big_vocab=50258, big_steps=8, many_samples=4)
MB = 1e6


def parser():
    ap = base_parser(__doc__, device_aware=False)
    for name, help_ in (("length", "positions per sample"), ("steps", "denoising steps"), ("samples", "samples"),
                        ("k_trace", "top-k kept per position"), ("vocab", "vocabulary of the random model"),
                        ("layers", "layers of the random model"), ("hidden", "width of the random model"),
                        ("repeats", "timed decodes of each kind"), ("big_vocab", "vocabulary of the extra row"),
                        ("big_steps", "steps of the extra row"), ("many_samples", "samples of the streamed run")):
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=None, help=f"{help_} (default {FULL[name]})")
    ap.add_argument("--workdir", default=None, help="keep the trace files and each decode's figures here; a rerun "
                    "with the same sizes reuses the decodes already measured (default: a new temporary folder)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return ap


# ---------------------------------------------------------------- one decode in its own process

def random_model(vocab: int, length: int, layers: int, hidden: int):
    import torch
    import smkit
    from smkit.models.backbones import BackboneConfig
    torch.manual_seed(0)
    backbone = BackboneConfig(hidden_size=hidden, num_layers=layers, num_heads=2, intermediate_size=2 * hidden)
    cfg = smkit.ModelConfig(vocab_size=vocab, seq_len=length, sm=smkit.SoftMaskParams(scale=0.2, centre=-6.5),
                            backbone=backbone)
    return smkit.DiffusionLM(cfg).eval()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(spec: dict) -> dict:
    """One decode as `spec` says (mode: untraced | stream | memory); prints what it measured as JSON."""
    import torch
    import smkit
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    model = random_model(spec["vocab"], spec["length"], spec["layers"], spec["hidden"])
    base = _rss()
    kw = dict(num_samples=spec["samples"], length=spec["length"], steps=spec["steps"], k_trace=spec["k_trace"],
              seed=0, soft_mask=True)
    mode = spec["mode"]
    w0, c0 = time.perf_counter(), time.process_time()
    if mode == "untraced":
        g = smkit.generate(model, trace=False, **kw)
    elif mode == "stream":
        g = smkit.generate(model, trace=smkit.TraceFile(spec["path"], overwrite=True), **kw)
    else:  # the whole trace in memory, then saved
        g = smkit.generate(model, trace=True, **kw)
        g.trace.save(spec["path"], overwrite=True)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"mode": mode, "cpu_s": cpu, "wall_s": wall, "peak_beyond_model": peak - base, "base_rss": base,
           "steps": g.steps}
    if mode != "untraced":
        tr = smkit.Trace.open(spec["path"])
        rows = sum(int(tr._store.frame(s)[0]["rows"].sum()) for s in range(len(tr)))
        out.update(file_bytes=os.path.getsize(spec["path"]), recorded_steps=len(tr), stat_rows=rows)
    return out


def run_child(spec: dict, workdir: Path, repeat: int = 0) -> dict:
    """`child(spec)` in a fresh process; its result is kept in `workdir` and reused by a rerun."""
    key = hashlib.sha256(json.dumps([spec, repeat], sort_keys=True).encode()).hexdigest()[:16]
    done = workdir / f"{spec['mode']}-{key}.json"
    if done.is_file() and (spec["mode"] == "untraced" or Path(spec["path"]).is_file()):
        return json.loads(done.read_text())
    res = subprocess.run([sys.executable, str(HERE / SCRIPT), "--child", json.dumps(spec)], capture_output=True,
                         text=True, cwd=str(HERE))
    if res.returncode != 0:
        raise RuntimeError(f"child {spec['mode']} failed:\n{res.stderr[-4000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    done.write_text(json.dumps(out))
    return out


# ---------------------------------------------------------------- reading the file

def _timed(fn):
    """(result, wall seconds, process CPU seconds) of fn()."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def reading(path: str, moves: int, threads) -> dict:
    """Open + explorer build (3 times: the first also imports the widget libraries), slider moves forward,
    to_pandas of one step (a fresh Trace.open each time), in this process. Wall and CPU seconds of each."""
    import torch
    import smkit
    if threads:
        torch.set_num_threads(threads)
    from smkit.widgets import TraceExplorer
    builds = [_timed(lambda: TraceExplorer(smkit.Trace.open(path))) for _ in range(3)]
    ex = builds[-1][0]
    S = len(ex.trace)
    first = ex.step
    scrub = [_timed(lambda i=i: setattr(ex, "step", (first + 1 + i) % S))[1:] for i in range(moves)]
    jumps = [_timed(lambda s=s: setattr(ex, "step", s))[1:] for s in range(0, S, max(1, S // 20))]
    pandas = [_timed(lambda s=s: smkit.Trace.open(path).to_pandas(steps=[s])) for s in range(S // 7, S, max(1, S // 7))]
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    return {"build_s": min(b[1] for b in builds[1:]), "build_cpu_s": min(b[2] for b in builds[1:]),
            "first_build_s": builds[0][1], "first_build_cpu_s": builds[0][2],
            "scrub_ms": med(scrub, 0) * 1e3, "scrub_cpu_ms": med(scrub, 1) * 1e3,
            "scrub_max_ms": max(x[0] for x in scrub) * 1e3, "jump_ms": med(jumps, 0) * 1e3,
            "jump_cpu_ms": med(jumps, 1) * 1e3, "pandas_ms": med([p[1:] for p in pandas], 0) * 1e3,
            "pandas_cpu_ms": med([p[1:] for p in pandas], 1) * 1e3, "pandas_rows": len(pandas[-1][0]),
            "opening_step": first, "steps": S}


# ---------------------------------------------------------------- the rows

def collect(argv=None) -> list[Row]:
    args = resolve(parser().parse_args(argv), FULL, QUICK)
    options = {k: getattr(args, k) for k in FULL}
    cmd = command(SCRIPT, None, options, args, device_aware=False)
    base = dict(length=args.length, steps=args.steps, samples=args.samples, k_trace=args.k_trace, vocab=args.vocab,
                layers=args.layers, hidden=args.hidden, threads=args.threads)
    shape = f"L {args.length}, T {args.steps}, {args.samples} samples, k {args.k_trace}, vocab {args.vocab}"
    big_shape = f"L {args.length}, T {args.big_steps}, {args.samples} samples, k {args.k_trace}, vocab {args.big_vocab}"
    many_shape = f"L {args.length}, T {args.steps}, {args.many_samples} samples, k {args.k_trace}, vocab {args.vocab}"
    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-trace-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = str(tmp / "run.trace")

    # the decodes, each in its own process (a rerun with --workdir reuses those already measured)
    runs = {"untraced": [], "stream": []}
    for i in range(args.repeats):               # in turns, so drift in machine load hits both alike
        for mode in runs:
            r = run_child(dict(base, mode=mode, path=path if i == 0 else str(tmp / f"run{i}.trace")), tmp, i)
            runs[mode].append(r)
            print(f"  {mode}: {r['cpu_s']:.1f} s CPU, {r['wall_s']:.1f} s wall, peak beyond the model "
                  f"{r['peak_beyond_model'] / MB:.0f} MB", flush=True)
    memory = run_child(dict(base, mode="memory", path=str(tmp / "memory.trace")), tmp)
    print(f"  in memory + save: peak beyond the model {memory['peak_beyond_model'] / MB:.0f} MB", flush=True)
    big = run_child(dict(base, vocab=args.big_vocab, steps=args.big_steps, mode="stream", path=str(tmp / "big.trace")),
                    tmp)
    many_path = str(tmp / "many.trace")
    many = run_child(dict(base, samples=args.many_samples, mode="stream", path=many_path), tmp)

    # reading the files, in this process
    read = reading(path, moves=100 if not args.quick else 10, threads=args.threads)
    import smkit
    from smkit.widgets import TraceExplorer
    many_ex, many_open_wall, many_open = _timed(lambda: TraceExplorer(smkit.Trace.open(many_path),
                                                                    sample=args.many_samples - 1))

    stream = runs["stream"][0]
    plain = min(runs["untraced"], key=lambda r: r["cpu_s"])
    ratio = min(r["cpu_s"] for r in runs["stream"]) / plain["cpu_s"]
    peak = max(r["peak_beyond_model"] for r in runs["stream"])
    per_row = stream["file_bytes"] / stream["stat_rows"]
    big_per_row = big["file_bytes"] / big["stat_rows"]
    print(f"  file {stream['file_bytes'] / MB:.1f} MB ({stream['recorded_steps']} steps, {stream['stat_rows']} "
          f"kept positions, {per_row:.2f} bytes each); open + explorer {read['build_cpu_s']:.2f} s CPU "
          f"({read['build_s']:.2f} s wall); scrub {read['scrub_cpu_ms']:.1f} ms CPU ({read['scrub_ms']:.1f} wall); "
          f"to_pandas one step {read['pandas_cpu_ms']:.1f} ms CPU ({read['pandas_ms']:.1f} wall); traced / untraced "
          f"{ratio:.3f}")
    print(f"  vocab {args.big_vocab}: {big['file_bytes'] / MB:.2f} MB, {big_per_row:.2f} bytes per kept position")
    print(f"  {args.many_samples} samples: peak beyond the model {many['peak_beyond_model'] / MB:.0f} MB, file "
          f"{many['file_bytes'] / MB:.0f} MB, decode {many['wall_s']:.0f} s, open + explorer {many_open:.2f} s "
          f"(step {many_ex.step})", flush=True)
    rows = [
        Row("trace_scale_file_mb", f"trace file, streamed, float16 ({shape})", stream["file_bytes"] / MB, "MB",
            "cpu", cmd, "<= 40", {"bytes": stream["file_bytes"], "steps": stream["recorded_steps"],
                                  "kept_positions": stream["stat_rows"], "bytes_per_kept_position": per_row}),
        Row("trace_scale_peak_mb", f"peak memory of decode + streamed save, beyond the model ({shape})", peak / MB,
            "MB", "cpu", cmd, "<= 300", {"untraced_decode_mb": max(r["peak_beyond_model"]
                                                                   for r in runs["untraced"]) / MB}),
        Row("trace_scale_peak_mb_memory", f"peak memory of decode with the trace in memory + save, beyond the model "
            f"({shape})", memory["peak_beyond_model"] / MB, "MB", "cpu", cmd, "<= 300",
            {"file_mb": memory["file_bytes"] / MB}),
        Row("trace_scale_open_explorer_s", f"Trace.open + TraceExplorer built, CPU time ({shape})",
            read["build_cpu_s"], "s", "cpu", cmd, "<= 1", {"wall_s": read["build_s"], "opening_step":
                                                          read["opening_step"], "first_build_wall_s": read["first_build_s"],
                                                          "first_build_cpu_s": read["first_build_cpu_s"]}),
        Row("trace_scale_scrub_ms", f"explorer slider, one step forward, median CPU time, kernel side ({shape})",
            read["scrub_cpu_ms"], "ms", "cpu", cmd, "<= 20", {"wall_ms": read["scrub_ms"], "max_wall_ms":
                                                              read["scrub_max_ms"], "jump_cpu_ms": read["jump_cpu_ms"]}),
        Row("trace_scale_pandas_step_ms", f"Trace.open + to_pandas of one step, median CPU time ({shape})",
            read["pandas_cpu_ms"], "ms", "cpu", cmd, "<= 50", {"wall_ms": read["pandas_ms"],
                                                               "rows": read["pandas_rows"]}),
        Row("trace_scale_traced_over_untraced", f"traced (streamed) / untraced SM decode time, best CPU time ({shape})",
            ratio, "ratio", "cpu", cmd, "<= 1.10", {"traced_cpu_s": [r["cpu_s"] for r in runs["stream"]],
                                                    "untraced_cpu_s": [r["cpu_s"] for r in runs["untraced"]],
                                                    "traced_wall_s": [r["wall_s"] for r in runs["stream"]],
                                                    "untraced_wall_s": [r["wall_s"] for r in runs["untraced"]]}),
        Row("trace_scale_file_mb_big_vocab", f"trace file, streamed, float16 ({big_shape})", big["file_bytes"] / MB,
            "MB", "cpu", cmd, "", {"bytes": big["file_bytes"], "kept_positions": big["stat_rows"]}),
        Row("trace_scale_bytes_per_kept_position_big_vocab", f"trace file bytes per kept (masked) position "
            f"({big_shape})", big_per_row, "bytes", "cpu", cmd, f"~ {per_row:.1f} (vocab {args.vocab})"),
        Row("trace_scale_many_peak_mb", f"peak memory of decode + streamed save, beyond the model ({many_shape})",
            many["peak_beyond_model"] / MB, "MB", "cpu", cmd, "<= 24576 (24 GiB machine)",
            {"decode_wall_s": many["wall_s"], "decode_cpu_s": many["cpu_s"]}),
        Row("trace_scale_many_file_mb", f"trace file, streamed, float16 ({many_shape})", many["file_bytes"] / MB,
            "MB", "cpu", cmd, ""),
        Row("trace_scale_many_open_explorer_s", f"Trace.open + TraceExplorer built, last sample, CPU time "
            f"({many_shape})", many_open, "s", "cpu", cmd, "<= 1", {"wall_s": many_open_wall}),
    ]
    print(f"  command: {cmd}")
    return rows


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    finish(collect(argv), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
