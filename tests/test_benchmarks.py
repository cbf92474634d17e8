"""`make bench` machinery, smoke-sized: every figure is produced, finite and positive, with the command that
reproduces it. No timing is judged here (the machine may be loaded); only that the figures exist."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smkit.core.precision import cpu_bf16_kind
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

CPU_ROWS = {
    "train_update_ratio", "train_tokens_per_s_binary", "train_tokens_per_s_sm",
    "decode_sm_over_binary", "decode_traced_over_untraced", "decode_over_forwards_binary", "decode_over_forwards_sm",
    "decode_forward_share_binary", "decode_forward_share_sm", "decode_forward_share_sm_traced",
    "decode_tokens_per_s_binary", "decode_tokens_per_s_sm",
    "trace_bytes", "trace_bytes_per_step_position",
    "trace_scale_file_mb", "trace_scale_peak_mb", "trace_scale_peak_mb_memory", "trace_scale_open_explorer_s",
    "trace_scale_scrub_ms", "trace_scale_pandas_step_ms", "trace_scale_traced_over_untraced",
    "trace_scale_file_mb_big_vocab", "trace_scale_bytes_per_kept_position_big_vocab", "trace_scale_many_peak_mb",
    "trace_scale_many_file_mb", "trace_scale_many_open_explorer_s",
    "widget_step_ms", "widget_step_p95_ms", "widget_select_ms",
    "matmul_gflops_fp32", "train_tokens_per_s_fp32_w1", "train_tokens_per_s_fp32_fused_adamw_w1",
    "train_default_over_fp32_eager",
} | ({"matmul_gflops_bf16", "train_tokens_per_s_bf16_w1"} if cpu_bf16_kind() else set())


def _run(script: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = _run("run_all.py", "--quick", "--device", "cpu", "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, out


def test_run_all_quick_has_every_row_with_finite_positive_values(quick_run):
    proc, out = quick_run
    report = json.loads((out / "bench-quick.json").read_text())
    rows = report["rows"]
    names = [r["name"] for r in rows]
    assert set(names) == CPU_ROWS and len(names) == len(CPU_ROWS), sorted(set(names) ^ CPU_ROWS)
    assert report["failed"] == []
    for r in rows:
        assert r["device"] == "cpu"
        assert isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] > 0, r
        assert r["unit"] and r["figure"]
    ratios = {r["name"] for r in rows if r["unit"] == "ratio"}
    assert {"train_update_ratio", "decode_sm_over_binary", "decode_traced_over_untraced"} <= ratios


def test_trace_memory_rows_agree_with_the_trace_shape(quick_run):
    _, out = quick_run
    rows = {r["name"]: r for r in json.loads((out / "bench-quick.json").read_text())["rows"]}
    total, per = rows["trace_bytes"], rows["trace_bytes_per_step_position"]
    shape = total["extra"]
    assert (shape["samples"], shape["length"], shape["k_trace"]) == (2, 32, 5)
    assert per["value"] * shape["samples"] * shape["steps"] * shape["length"] == pytest.approx(total["value"])
    # statistics only where masked: about the kept share x (8 + k (id bytes + 4)), less than the dense 8 k + 19
    extra = per["extra"]
    expect = extra["kept_share"] * (8 + shape["k_trace"] * (extra["id_bytes"] + 4))
    assert expect <= per["value"] <= 1.5 * expect + 4 and per["value"] < extra["dense_format_1"]


def test_table_printed_and_written_with_reproducing_commands(quick_run):
    proc, out = quick_run
    rows = json.loads((out / "bench-quick.json").read_text())["rows"]
    header = "| figure | device | value | unit | target | command |"
    table = proc.stdout[proc.stdout.index("# all figures"):]
    assert header in table
    md = (out / "bench-quick.md").read_text()
    assert header in md and "python benchmarks/run_all.py" in md
    for r in rows:
        cmd = r["command"]
        assert cmd.startswith("python benchmarks/bench_") and "--threads 1" in cmd, cmd
        assert f"command: {cmd}" in proc.stdout  # printed by the benchmark itself
        assert f"`{cmd}`" in table and f"`{cmd}`" in md  # and in the table's row
    assert len([line for line in table.splitlines() if line.startswith("| ") and "`python" in line]) == len(rows)


def test_a_benchmark_runs_alone_and_writes_its_rows(tmp_path):
    path = tmp_path / "rows.json"
    proc = _run("bench_trace_memory.py", "--quick", "--threads", "1", "--device", "cpu", "--json", str(path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(path.read_text())["rows"]
    assert {r["name"] for r in rows} == {"trace_bytes", "trace_bytes_per_step_position"}
    assert all(f"command: {r['command']}" in proc.stdout for r in rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when no GPU is present")
def test_cuda_without_a_gpu_fails_before_any_compute(tmp_path):
    proc = _run("run_all.py", "--device", "cuda", "--out", str(tmp_path), timeout=120)
    assert proc.returncode != 0
    assert "--device cuda" in proc.stderr and "torch.cuda.is_available() is False" in proc.stderr
    assert "##" not in proc.stdout and not any(tmp_path.iterdir())
