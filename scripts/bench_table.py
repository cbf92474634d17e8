"""The README's performance table, from the committed benchmark results (benchmarks/results.json, a copy of
the runs/bench/bench.json that `make bench` writes), between the README's `<!-- table:bench -->` markers.
Usage:
    python scripts/bench_table.py --from runs/bench/bench.json   # commit a run's results, then refresh README
    python scripts/bench_table.py                                # refresh README from the committed results
    python scripts/bench_table.py --print                        # print the block only
    python scripts/bench_table.py --merge runs/bench-trace/rows.json   # one benchmark's rows replace (or join)
                                                                       # those of the same name and device"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.json"
sys.path.insert(0, str(ROOT))  # the study package
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import format_value  # noqa: E402

COMPARE = {"<=": float.__le__, "<": float.__lt__, ">=": float.__ge__, ">": float.__gt__}


def load(path: Path = RESULTS) -> dict | None:
    """The committed results, or None when there are none."""
    return json.loads(path.read_text()) if path.is_file() else None


def misses_target(value: float, target: str) -> bool:
    """Whether `value` misses a target written as "<= 1.05", "< 100", ">= 2 (why)"; other targets never miss."""
    m = re.match(r"\s*(<=|<|>=|>)\s*([0-9.]+)", target or "")
    return bool(m) and not COMPARE[m.group(1)](float(value), float(m.group(2)))


def merge(results: dict, run: dict, date: str) -> dict:
    """`results` with the rows of `run` (one benchmark's --json) in place of those of the same name and device,
    new ones at the end; the run's command and date are listed under "merged" (the table names them)."""
    if "--quick" in run["command"].split():
        raise SystemExit("these rows come from a --quick run: a smoke run, not a measurement")
    new = {(r["name"], r["device"]): r for r in run["rows"]}
    rows = [new.pop((r["name"], r["device"]), r) for r in results["rows"]] + list(new.values())
    merged = [m for m in results.get("merged", []) if not set(m["rows"]) <= {r["name"] for r in run["rows"]}]
    merged.append({"command": run["command"], "date": date, "rows": [r["name"] for r in run["rows"]]})
    return {**results, "rows": rows, "merged": merged}


def table(results: dict | None) -> str:
    """The README block: what was run where, one line per figure, and the figures that miss their target."""
    if results is None:
        return (f"No benchmark results are committed yet ({RESULTS.relative_to(ROOT)}): run `make bench` on a "
                "quiet machine, then `python scripts/bench_table.py --from runs/bench/bench.json`.")
    if "--quick" in results["command"].split():
        raise SystemExit("these results come from a --quick run: a smoke run, not a measurement")
    machine = ", ".join(f"{k} {v}" for k, v in results["machine"].items())
    lines = [f"Measured by `{results['command']}` on {results['date']} ({machine}); each figure's own command "
             f"is in {RESULTS.relative_to(ROOT)}.", "",
             "| figure | device | measured | target |", "|---|---|---|---|"]
    for m in results.get("merged", []):
        lines.insert(1, f"Rows {', '.join(m['rows'])}: measured by `{m['command']}` on {m['date']}.")
    for r in results["rows"]:
        unit = "" if r["unit"] == "ratio" else f" {r['unit']}"
        lines.append(f"| {r['figure']} | {r['device']} | {format_value(r['value'])}{unit} | {r['target'] or '-'} |")
    misses = [f"{r['figure']} ({r['device']}): {format_value(r['value'])}, target {r['target']}"
              for r in results["rows"] if misses_target(r["value"], r["target"])]
    lines += ["", ("Misses its target: " + "; ".join(misses) + ".") if misses else
              "Every figure with a target meets it."]
    if not any(r["device"].startswith("cuda") for r in results["rows"]):
        lines.append("No CUDA rows: the run had no GPU.")
    if results.get("failed"):
        lines.append(f"Failed in this run (no rows): {', '.join(results['failed'])}.")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", default=None, help="a run's bench.json to commit as the results")
    ap.add_argument("--merge", default=None, help="one benchmark's rows (its --json) to put into the results")
    ap.add_argument("--print", action="store_true", help="print the block instead of writing README.md")
    args = ap.parse_args(argv)
    if args.merge is not None:
        import datetime
        run = json.loads(Path(args.merge).read_text())
        when = datetime.datetime.fromtimestamp(Path(args.merge).stat().st_mtime, datetime.timezone.utc)
        merged = merge(load(), run, when.strftime("%Y-%m-%d %H:%M UTC"))
        RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    if args.source is not None:
        table(json.loads(Path(args.source).read_text()))  # refuses a --quick run before it is copied
        shutil.copyfile(args.source, RESULTS)
    body = table(load())
    if args.print:
        print(body)
        return
    from study.report import refresh
    refresh(ROOT / "README.md", {"bench": body})
    print("README.md: performance table refreshed")


if __name__ == "__main__":
    main()
