"""The README's generated tables are what their scripts write now (scripts/shipped_table.py from the shipped
records, scripts/bench_table.py from the committed benchmark results): a hand edit or a new record that was
not written back fails here."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_table  # noqa: E402
import shipped_table  # noqa: E402


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    start, end = f"<!-- table:{name} -->\n", f"\n<!-- /table:{name} -->"
    assert text.count(start) == 1 and text.count(end) == 1, f"README.md needs one {start.strip()} block"
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


def test_bench_table_refuses_a_quick_run():
    with pytest.raises(SystemExit, match="--quick"):
        bench_table.table(dict(RESULTS, command="python benchmarks/run_all.py --quick"))
