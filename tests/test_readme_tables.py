"""The README's generated tables are what their scripts write now (scripts/shipped_table.py from the shipped
records, scripts/bench_table.py from the committed benchmark results, scripts/workshop_timings.py from the
committed workshop timings): a hand edit or a new record that was not written back fails here."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_table  # noqa: E402
import shipped_table  # noqa: E402
import workshop_timings  # noqa: E402


def readme_block(name: str, doc: str = "README.md") -> str:
    text = (ROOT / doc).read_text()
    start, end = f"<!-- table:{name} -->\n", f"\n<!-- /table:{name} -->"
    assert text.count(start) == 1 and text.count(end) == 1, f"{doc} needs one {start.strip()} block"
    return text.split(start, 1)[1].split(end, 1)[0]


def test_readme_shipped_table_is_what_its_script_writes():
    assert readme_block("shipped") == shipped_table.table(), "run python scripts/shipped_table.py"


def test_readme_bench_table_is_what_its_script_writes():
    assert readme_block("bench") == bench_table.table(bench_table.load()), "run python scripts/bench_table.py"


RESULTS = {"command": "python benchmarks/run_all.py", "date": "2026-12-02 12:00 UTC",
           "machine": {"torch": "2.13.0+cpu", "cpu_count": 2}, "failed": [],
           "rows": [{"name": "decode_over_forwards_sm", "figure": "untraced SM decode / NFE bare forwards",
                     "value": 1.049, "unit": "ratio", "device": "cpu", "target": "<= 1.05"},
                    {"name": "train_update_ratio", "figure": "SM / binary training-update time", "value": 1.369,
                     "unit": "ratio", "device": "cpu", "target": "<= 1.35"},
                    {"name": "widget_step_ms", "figure": "widget slider, one step", "value": 3.6, "unit": "ms",
                     "device": "cpu", "target": "< 100"},
                    {"name": "trace_bytes_per_step_position", "figure": "trace memory", "value": 56.125,
                     "unit": "bytes", "device": "cpu", "target": "~ 59 (8 k + 19, trace.py)"}]}


def test_bench_table_lists_every_figure_and_the_misses():
    lines = bench_table.table(RESULTS).splitlines()
    assert lines[0].startswith("Measured by `python benchmarks/run_all.py` on 2026-12-02 12:00 UTC (torch 2.13.0+cpu")
    assert lines[2:8] == ["| figure | device | measured | target |", "|---|---|---|---|",
                          "| untraced SM decode / NFE bare forwards | cpu | 1.049 | <= 1.05 |",
                          "| SM / binary training-update time | cpu | 1.369 | <= 1.35 |",
                          "| widget slider, one step | cpu | 3.600 ms | < 100 |",
                          "| trace memory | cpu | 56.1 bytes | ~ 59 (8 k + 19, trace.py) |"]
    assert lines[9:] == ["Misses its target: SM / binary training-update time (cpu): 1.369, target <= 1.35.",
                         "No CUDA rows: the run had no GPU."]


def test_one_benchmark_merges_into_the_results_and_is_named():
    run = {"command": "python benchmarks/bench_trace_scale.py --threads 1", "machine": {},
           "rows": [{"name": "widget_step_ms", "figure": "widget slider, one step", "value": 2.0, "unit": "ms",
                     "device": "cpu", "target": "< 100"},
                    {"name": "trace_scale_file_mb", "figure": "trace file", "value": 34.7, "unit": "MB", "device": "cpu",
                     "target": "<= 40"}]}
    merged = bench_table.merge(RESULTS, run, "2026-12-03 11:00 UTC")
    assert [r["name"] for r in merged["rows"]] == [r["name"] for r in RESULTS["rows"]] + ["trace_scale_file_mb"]
    assert merged["rows"][2]["value"] == 2.0 and RESULTS["rows"][2]["value"] == 3.6      # replaced in place
    lines = bench_table.table(merged).splitlines()
    assert lines[1] == ("Rows widget_step_ms, trace_scale_file_mb: measured by `python benchmarks/bench_trace_scale.py "
                        "--threads 1` on 2026-12-03 11:00 UTC.")
    assert "| trace file | cpu | 34.7 MB | <= 40 |" in lines
    with pytest.raises(SystemExit, match="--quick"):
        bench_table.merge(RESULTS, dict(run, command=run["command"] + " --quick"), "now")


def test_bench_table_refuses_a_quick_run():
    with pytest.raises(SystemExit, match="--quick"):
        bench_table.table(dict(RESULTS, command="python benchmarks/run_all.py --quick"))


@pytest.mark.parametrize("doc", ["notebooks/README.md", "docs/workshop.md"])
def test_workshop_timings_are_what_their_script_writes(doc):
    assert readme_block("workshop-timings", doc) == workshop_timings.table(workshop_timings.load()), \
        "run python scripts/workshop_timings.py"


def test_workshop_timings_table_and_the_slowest_cell(tmp_path):
    cell = lambda source, seconds: {"cell_type": "code", "source": source, "metadata": {"papermill": {"duration": seconds}}}
    executed = tmp_path / "nb.ipynb"
    executed.write_text(json.dumps({"cells": [
        cell(["import torch\n", "x = 1\n"], 0.5), {"cell_type": "markdown", "source": ["# hi"], "metadata": {}},
        cell(["# train\n", "import time\n", "result = smkit.train(steps=10)\n"], 75.25), cell(["y = 2"], None)]}))
    assert workshop_timings.slowest_cell(executed) == ("result = smkit.train(steps=10)", 75.25)
    results = {"command": "python scripts/workshop_timings.py --run --threads 2", "date": "2026-12-02 18:00 UTC",
               "threads": 2, "machine": {"cpu_count": 2},
               "rows": [{"notebook": "01-a", "seconds": 20.04, "slowest_cell": "x = 1", "slowest_cell_seconds": 3.0,
                         "load_before": 0.1, "saved_bytes": 365_998},
                        {"notebook": "02-b", "seconds": 250.0, "slowest_cell": "result = smkit.train(steps=10)",
                         "slowest_cell_seconds": 200.0, "load_before": 0.5}]}
    lines = workshop_timings.table(results).splitlines()
    assert lines[4:] == ["| `01-a` | 20 s | 3 s: `x = 1` | 0.10 | 0.37 MB |",
                         "| `02-b` | 4.2 min | 3.3 min: `result = smkit.train(steps=10)` | 0.50 | not measured |", "",
                         "All 2 in 4.5 min."]


def test_every_measured_workshop_notebook_saves_under_a_megabyte():
    rows = (workshop_timings.load() or {}).get("rows", [])
    heavy = [(r["notebook"], r["saved_bytes"]) for r in rows if r.get("saved_bytes", 0) >= 1_000_000]
    assert not heavy, f"executed workshop notebooks of 1 MB or more: {heavy}"
