"""Shared by the benchmarks: the result row, device choice, timing that is honest on CUDA, the shipped model
on a real Shakespeare batch, and the command line that reproduces a figure.

Every benchmark module exposes `parser()` and `collect(argv) -> list[Row]` (prints its own figures, returns
rows); `run_all.py` gathers the rows of all of them into one table.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

import smkit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEVICE_CHOICES = ("cpu", "cuda", "all")


@dataclass
class Row:
    """One figure. `name` is a stable key (for docs and tests), `figure` the words a reader sees; `value` is
    the best (minimum) of interleaved repeats for timings, `extra` holds medians and companion readings."""
    name: str
    figure: str
    value: float
    unit: str
    device: str
    command: str
    target: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- options

def base_parser(doc: str, device_aware: bool = True) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if device_aware:
        ap.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                        help="cpu, cuda, or all (default: cpu, plus cuda when torch.cuda.is_available())")
        ap.add_argument("--bf16", action="store_true", help="run forward passes under torch.autocast(bfloat16)")
    ap.add_argument("--quick", action="store_true", help="few repeats, small sizes: a smoke run, not a measurement")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the rows to this JSON file")
    return ap


def resolve(args: argparse.Namespace, full: dict, quick: dict) -> argparse.Namespace:
    """Fill every size option left unset (None) from the full or the --quick preset; check they are >= 1."""
    preset = quick if args.quick else full
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
        v = getattr(args, name)
        if not isinstance(v, int) or v < 1:
            raise SystemExit(f"--{name.replace('_', '-')}={v!r}: must be an integer >= 1")
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads={args.threads!r}: must be an integer >= 1")
        torch.set_num_threads(args.threads)
    return args


def devices(choice: str | None) -> list[str]:
    """The devices a run covers; an explicit cuda without a GPU fails here, before any compute."""
    has_cuda = torch.cuda.is_available()
    if choice in (None, "all"):
        return ["cpu", "cuda"] if has_cuda else ["cpu"]
    if choice == "cuda" and not has_cuda:
        raise SystemExit("--device cuda: torch.cuda.is_available() is False on this machine; use cpu or all")
    if choice not in ("cpu", "cuda"):
        raise SystemExit(f"--device {choice!r}: choose one of {DEVICE_CHOICES}")
    return [choice]


def device_label(device: str, bf16: bool) -> str:
    return f"{device} bf16" if bf16 else device


def precision(device: str, bf16: bool):
    """Context for forward passes: bfloat16 autocast when asked, else nothing."""
    return torch.autocast(device_type=device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def command(script: str, device: str | None, options: dict, args: argparse.Namespace,
            device_aware: bool = True) -> str:
    """The exact command that reproduces this script's figures on `device`: every size spelled out, so
    it does not depend on defaults or on --quick."""
    parts = ["python", f"benchmarks/{script}"]
    if device_aware:
        parts += ["--device", device]
        if args.bf16:
            parts.append("--bf16")
    if args.threads is not None:
        parts += ["--threads", str(args.threads)]
    for name, value in options.items():
        parts += [f"--{name.replace('_', '-')}", str(value)]
    return " ".join(parts)


def invocation() -> str:
    """How this process was started (the script relative to the repository root when inside it), e.g.
    for run_all's own footer."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]
    return " ".join(["python", shown, *sys.argv[1:]])


# ---------------------------------------------------------------- timing

def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of fn(), with CUDA work finished inside the window. CPU time
    leaves out time the process sat preempted, so on a loaded CPU it is the steadier figure."""
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def interleaved(fns: dict, repeats: int, device: str, warmup: int = 1) -> dict[str, list[tuple[float, float]]]:
    """Time each of `fns` `repeats` times, taking turns, so drift in machine load hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return times


def best(samples: list[tuple[float, float]], which: int = 0) -> float:
    """Minimum of the wall (which=0) or CPU (which=1) readings."""
    return min(s[which] for s in samples)


def median(samples: list[tuple[float, float]], which: int = 0) -> float:
    return statistics.median(s[which] for s in samples)


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall seconds of fn() (CPU only; used by backbones.py)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---------------------------------------------------------------- model and data

def shipped_model(device: str) -> smkit.DiffusionLM:
    """The shipped text model python-sm (the shape every text model ships in), on `device`, in eval mode."""
    return smkit.load_pretrained("python-sm").to(device).eval()


def real_batch(tokenizer, batch_size: int, seq_len: int) -> torch.Tensor:
    """[batch_size, seq_len] token blocks of Hamlet in `tokenizer`, drawn with a fixed seed."""
    from smkit.io.data import load_corpus, pack_blocks
    docs = [d for d in load_corpus("shakespeare") if d.name == "hamlet"]
    blocks = pack_blocks(docs, tokenizer, seq_len)
    g = torch.Generator().manual_seed(0)
    return blocks[torch.randint(len(blocks), (batch_size,), generator=g)]


# ---------------------------------------------------------------- output

def markdown_table(rows: list[Row]) -> str:
    lines = ["| figure | device | value | unit | target | command |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.figure} | {r.device} | {format_value(r.value)} | {r.unit} | {r.target or '-'} "
                     f"| `{r.command}` |")
    return "\n".join(lines)


def format_value(v: float) -> str:
    if v == int(v) and abs(v) >= 1000:
        return f"{int(v)}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}"


def write_atomic(path, text: str) -> Path:
    """Write `text` to `path` through a temporary sibling and a rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def rows_json(rows: list[Row], **meta) -> str:
    return json.dumps({**meta, "rows": [r.to_dict() for r in rows]}, indent=2) + "\n"


def machine() -> dict:
    """What the figures were measured on."""
    import platform
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpu": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def finish(rows: list[Row], args: argparse.Namespace) -> list[Row]:
    """End of a stand-alone run: print the rows as a table, write --json when asked."""
    print()
    print(markdown_table(rows))
    if args.json:
        path = write_atomic(args.json, rows_json(rows, command=invocation(), machine=machine()))
        print(f"rows written to {path}")
    return rows


def per_device(measure, parser, full: dict, quick: dict, argv=None) -> list[Row]:
    """The rows of `measure(device, args)` on every device asked for: a device-aware benchmark's `collect`."""
    args = resolve(parser().parse_args(argv), full, quick)
    return [row for d in devices(args.device) for row in measure(d, args)]


def run_alone(collect, parser, argv=None) -> int:
    """A benchmark run as a script: collect its rows, print them as a table, write --json when asked."""
    finish(collect(argv), parser().parse_args(argv))
    return 0
