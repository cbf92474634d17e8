"""Workshop timings: run each workshop notebook headless with its default parameters (`smkit run ... --no-html`),
time it, weigh the executed notebook it saves, and write the table into notebooks/README.md and docs/workshop.md (`<!-- table:workshop-timings -->`)
from the committed results (benchmarks/workshop.json). Run it on a quiet machine: the load average before each
notebook is recorded and shown.
Usage:
    python scripts/workshop_timings.py --run [--threads 2] [--only 05-sudoku]   # measure, commit, refresh
    python scripts/workshop_timings.py                                          # refresh from the committed results
    python scripts/workshop_timings.py --print                                  # print the block only"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "workshop.json"
WORKSHOP = ROOT / "notebooks" / "workshop"
DOCS = [ROOT / "notebooks" / "README.md", ROOT / "docs" / "workshop.md"]
sys.path.insert(0, str(ROOT))  # the study package


def slowest_cell(executed: Path) -> tuple[str, float]:
    """The first code line of the executed notebook's slowest cell and its seconds (papermill's cell metadata)."""
    cells = [c for c in json.loads(executed.read_text())["cells"] if c["cell_type"] == "code"]
    cell = max(cells, key=lambda c: c["metadata"].get("papermill", {}).get("duration") or 0.0)
    source = "".join(cell["source"]).strip().splitlines()
    first = next((line for line in source if line.strip() and not line.startswith(("#", "import ", "from "))), "")
    return first.strip(), float(cell["metadata"]["papermill"]["duration"])


def run_one(name: str, threads: int, out: Path) -> dict:
    load = os.getloadavg()[0]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", SMKIT_PLAIN_PROGRESS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "smkit.cli", "run", str(WORKSHOP / f"{name}.ipynb"), "--no-html",
                    "--out", str(out)], check=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    executed = out / name / f"{name}.ipynb"
    line, cell_seconds = slowest_cell(executed)
    return {"notebook": name, "seconds": round(seconds, 1), "slowest_cell": line,
            "slowest_cell_seconds": round(cell_seconds, 1), "load_before": round(load, 2),
            "saved_bytes": executed.stat().st_size}


def measure(threads: int, only: list[str] | None) -> dict:
    names = sorted(p.stem for p in WORKSHOP.glob("*.ipynb"))
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise SystemExit(f"--only {unknown}: not a workshop notebook; choose from {names}")
    out = ROOT / "runs" / "workshop-timings"
    rows = [run_one(n, threads, out) for n in names if not only or n in only]
    if only and RESULTS.is_file():   # keep the other notebooks' rows of the committed run
        kept = [r for r in json.loads(RESULTS.read_text())["rows"] if r["notebook"] not in only]
        rows = sorted(kept + rows, key=lambda r: r["notebook"])
    import torch
    return {"command": f"python scripts/workshop_timings.py --run --threads {threads}",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "threads": threads,
            "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "torch": torch.__version__}, "rows": rows}


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def table(results: dict | None) -> str:
    if results is None:
        return f"No timings are committed yet ({RESULTS.relative_to(ROOT)}): run `python scripts/workshop_timings.py --run`."
    machine = ", ".join(f"{k} {v}" for k, v in results["machine"].items())
    lines = [f"Measured by `{results['command']}` on {results['date']} ({machine}): each notebook run headless with "
             f"its default parameters and {results['threads']} torch thread(s), kernel start included; the load "
             "average before each run shows how quiet the machine was; the executed notebook's size is what a "
             "saved run weighs (plotly.js shared, no widget state).", "",
             "| notebook | whole notebook | slowest cell | load before | saved notebook |", "|---|---|---|---|---|"]
    for r in results["rows"]:
        size = f"{r['saved_bytes'] / 1e6:.2f} MB" if "saved_bytes" in r else "not measured"
        lines.append(f"| `{r['notebook']}` | {minutes(r['seconds'])} | {minutes(r['slowest_cell_seconds'])}: "
                     f"`{r['slowest_cell']}` | {r['load_before']:.2f} | {size} |")
    total = sum(r["seconds"] for r in results["rows"])
    lines += ["", f"All {len(results['rows'])} in {minutes(total)}."]
    return "\n".join(lines)


def load() -> dict | None:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run the notebooks and commit the results first")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads per notebook (default: all)")
    ap.add_argument("--only", nargs="+", default=None, help="notebook stems to rerun, e.g. 05-sudoku")
    ap.add_argument("--print", action="store_true", help="print the block instead of writing the docs")
    args = ap.parse_args(argv)
    if args.threads < 1:
        raise SystemExit(f"--threads {args.threads}: an integer >= 1")
    if args.run:
        results = measure(args.threads, args.only)
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        os.replace(tmp, RESULTS)
    body = table(load())
    if args.print:
        print(body)
        return
    from study.report import refresh
    for doc in DOCS:
        refresh(doc, {"workshop-timings": body})
    print("refreshed:", ", ".join(str(d.relative_to(ROOT)) for d in DOCS))


if __name__ == "__main__":
    main()
