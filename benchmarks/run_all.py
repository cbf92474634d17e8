"""`make bench`: run every benchmark and print ONE markdown table of all their figures:
figure | device | value | unit | target | command. Each benchmark also prints its own details (medians,
CPU-time readings, NFE) as it goes; each row's command reproduces that row alone.

The table is also written to runs/bench/bench.md and runs/bench/bench.json (bench-quick.* with --quick,
so a smoke run never overwrites a measurement).
Usage: python benchmarks/run_all.py [--device cpu|cuda|all] [--quick] [--threads N] [--bf16] [--out DIR]
"""
from __future__ import annotations

import argparse
import datetime
import sys
import traceback
from pathlib import Path

from common import DEVICE_CHOICES, ROOT, devices, invocation, machine, markdown_table, rows_json, write_atomic
import bench_precision
import bench_sampling
import bench_trace_memory
import bench_trace_scale
import bench_train_step
import bench_widgets

# (module, runs per device); bench_widgets and bench_trace_scale time kernel-side CPU work and CPU memory, so they
# run once, on the CPU
BENCHMARKS = [(bench_train_step, True), (bench_sampling, True), (bench_trace_memory, True), (bench_trace_scale, False),
              (bench_widgets, False),
              (bench_precision, False)]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                    help="cpu, cuda, or all (default: cpu, plus cuda when torch.cuda.is_available())")
    ap.add_argument("--quick", action="store_true", help="few repeats, small sizes: a smoke run, not a measurement")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--bf16", action="store_true", help="run forward passes under torch.autocast(bfloat16)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"), help="folder for bench.md and bench.json")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads={args.threads!r}: must be an integer >= 1")
    devs = devices(args.device)  # fails before any compute when cuda is asked for and absent
    shared = (["--quick"] if args.quick else []) + ([] if args.threads is None else ["--threads", str(args.threads)])
    rows, failed = [], []
    for module, per_device in BENCHMARKS:
        runs = [["--device", d] + (["--bf16"] if args.bf16 else []) for d in devs] if per_device else \
            ([[]] if "cpu" in devs else [])
        for extra in runs:
            name = Path(module.__file__).name
            print(f"\n## {name} {' '.join(extra)}".rstrip(), flush=True)
            try:
                rows += module.collect(shared + extra)
            except Exception:  # one broken benchmark must not hide the others' figures
                traceback.print_exc()
                failed.append(f"{name} {' '.join(extra)}".strip())

    me = invocation()
    stem = "bench-quick" if args.quick else "bench"
    info = machine()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = markdown_table(rows)
    hardware = ", ".join(f"{k} {v}" for k, v in info.items())
    md = (f"# smkit benchmarks\n\nProduced by `{me}` on {when} ({hardware}).\n"
          "Timings are the best (minimum) of interleaved repeats; medians and CPU-time readings are in "
          f"{stem}.json. Each command reproduces its rows alone.\n\n{table}\n")
    out = Path(args.out)
    md_path = write_atomic(out / f"{stem}.md", md)
    json_path = write_atomic(out / f"{stem}.json", rows_json(rows, command=me, date=when, machine=info,
                                                             failed=failed))
    print("\n# all figures\n")
    print(table)
    print(f"\ntable written to {md_path} and {json_path}")
    print(f"command: {me}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (tracebacks above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
