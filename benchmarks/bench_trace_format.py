"""Why trace format 2 is a file of frames and not one safetensors file: both hold the same arrays, measured on a
trace file written by `generate(trace=path)` (e.g. the one bench_trace_scale.py leaves in its --workdir).

  framed   format 2 as written: one safetensors buffer per step, appended while decoding, an index at the end
  single   the same arrays concatenated over the steps into one safetensors file (each frame's arrays one after
           the other, per-step offsets beside them), written once the decode is over

Reported: file size, open (header and index), reading one step's arrays at random steps (the explorer's
slider), reading every step (the explorer's sample maps), and what a decode that is stopped after half its steps
leaves behind. Usage: python benchmarks/bench_trace_format.py --trace runs/bench-trace/run.trace [--reads 200]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NAMES = ("ev_pos", "ev_tok", "rows", "t", "lam", "entropy", "topk_ids", "topk_probs")


def to_single(trace, path: Path) -> None:
    """Write the arrays of every frame of `trace` as one safetensors file (what format 2 could have been)."""
    from safetensors.numpy import save_file
    parts = {n: [] for n in NAMES}
    counts = {n: [] for n in NAMES}
    keys = {}
    for s in range(len(trace)):
        arrays, _ = trace._store.frame(s)
        for n in NAMES:
            if n in arrays:
                a = np.asarray(arrays[n])
                parts[n].append(a)
                counts[n].append(len(a))
        if "tokens" in arrays:
            keys[f"key_{s}"] = np.asarray(arrays["tokens"])
    out = {n: np.concatenate(parts[n]) for n in NAMES if parts[n]}
    out.update({f"{n}_offsets": np.concatenate([[0], np.cumsum(counts[n])]).astype(np.int64) for n in out})
    out.update(keys)
    save_file(out, str(path), metadata={"steps": str(len(trace))})


def read_single(f, s: int) -> dict:
    out = {}
    for n in NAMES:
        off = f.get_slice(f"{n}_offsets")[s:s + 2]
        out[n] = f.get_slice(n)[int(off[0]):int(off[1])]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", required=True, help="a format-2 trace file")
    ap.add_argument("--reads", type=int, default=200, help="random steps read (default 200)")
    args = ap.parse_args(argv)
    import smkit
    from safetensors import safe_open

    tmp = Path(tempfile.mkdtemp(prefix="trace-format-"))
    trace = smkit.Trace.open(args.trace)
    S = len(trace)
    single = tmp / "single.safetensors"
    t = time.perf_counter()
    to_single(trace, single)
    write_single = time.perf_counter() - t
    rng = np.random.default_rng(0)
    steps = rng.integers(0, S, args.reads).tolist()
    res = {"steps": S, "framed_mb": os.path.getsize(args.trace) / 1e6, "single_mb": os.path.getsize(single) / 1e6,
           "single_write_s": write_single}

    def timed(fn, repeats=5):
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return min(ts)

    res["framed_open_ms"] = timed(lambda: smkit.Trace.open(args.trace).close()) * 1e3
    res["single_open_ms"] = timed(lambda: safe_open(str(single), framework="numpy").__enter__()) * 1e3
    from smkit.core.trace_file import TraceFile
    framed = TraceFile(args.trace)
    res["framed_step_us"] = statistics.median(
        timed(lambda s=s: (TraceFile.frame(framed, s), framed._frames.clear()), 3) for s in steps) * 1e6
    with safe_open(str(single), framework="numpy") as f:
        res["single_step_us"] = statistics.median(timed(lambda s=s: read_single(f, s), 3) for s in steps) * 1e6
        res["single_all_steps_s"] = timed(lambda: [read_single(f, s) for s in range(S)], 3)
    def every_frame():
        f = TraceFile(args.trace)
        for s in range(S):
            f.frame(s)
    res["framed_all_steps_s"] = timed(every_frame, 3)
    res["stopped_halfway"] = {"framed": "every whole step frame: Trace.open(path, partial=True) reads them; a "
                                        "Python-level stop (error, Ctrl-C) writes the index, so open works as is",
                              "single": "nothing: the one header is written once every array is known"}
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
