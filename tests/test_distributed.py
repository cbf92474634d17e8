"""`smkit train` under `accelerate launch` with 2 CPU processes (gloo) against 1 process on the same global batch.

Launcher: `accelerate launch --multi_gpu --num_processes 2` in a subprocess, the command users run. On a
machine without CUDA that is accelerate's torchrun-based launcher; smkit then asks accelerate for a CPU
process group (gloo). (`accelerate launch --cpu --num_processes 2` would need mpirun to start processes.)
All scenarios run in ONE launch (tests/distributed_worker.py) to pay the start-up of 2 processes once.

Tolerance: rel 1e-4 on losses and validation bounds, and on how far the SM scalars moved from their initial
values. Two processes sum the loss and the gradients in a different order (per-process sums, then an
all-reduce mean) than one process; float32 rounding of that order is ~1e-7 relative per sum and Adam passes
relative gradient errors through at the same size, so after a few updates the runs agree to ~1e-6. A real
mismatch (noise drawn per process, a missing all-reduce of the SM scalars, a wrong loss normalisation)
moves these numbers by far more than 1e-4.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import smkit
from smkit.io.checkpoint import read_manifest
from smkit.training.train import TrainConfig

REL = 1e-4
WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base(hamlet_file):
    return dict(corpus=str(hamlet_file), tokenizer="char", seq_len=16, hidden_size=32, num_layers=1, num_heads=2,
                intermediate_size=64, batch_size=8, lr=1e-3, warmup_steps=2, eval_every=0, eval_blocks=8, log_every=1,
                checkpoint_every=0, val_fraction=0.25, progress=False, threads=1, device="cpu")


SCENARIOS = {  # name: (extra fields, steps of the reference run)
    # the two-pass SM path on every update, gradients accumulated over micro-batches (2 per process, 4 in one)
    "sm": dict(soft_mask=True, p_sm=1.0, steps=4, micro_batch_size=2, sm={"scale": 0.5, "centre": -3.0},
               eval_every=2),
    # binary MDLM: the SM scalars get no gradient at all; interrupted after 3 updates and resumed to 5
    "binary": dict(soft_mask=False, steps=5, checkpoint_every=3),
    # SM on some updates only, with EMA
    "mixed": dict(soft_mask=True, p_sm=0.5, steps=4, sm={"scale": 0.5, "centre": -3.0}, ema=0.9, seed=3),
    # continued pretraining: SM continuation of a trained binary base (init_from: the `continued_base` fixture)
    "continued": dict(init_from="BASE", soft_mask=True, p_sm=1.0, steps=3, sm={"scale": 0.5, "centre": -3.0}),
}


@pytest.fixture(scope="module")
def continued_base(base, tmp_path_factory):
    """A binary base trained for 20 updates in this process: what the `continued` scenario starts from."""
    out = tmp_path_factory.mktemp("continued-base")
    smkit.train(TrainConfig(**{**base, "steps": 20, "soft_mask": False, "out_dir": str(out)}))
    return str(out / "model")


def _fields(extra: dict, continued_base: str) -> dict:
    return {k: continued_base if v == "BASE" else v for k, v in extra.items()}


@pytest.fixture(scope="module")
def launched(base, continued_base, tmp_path_factory):
    """One 2-process launch running every scenario; returns (runs folder, per-rank results, launch output)."""
    tmp = tmp_path_factory.mktemp("dist")
    runs = tmp / "runs"
    plan = []
    for name, extra in SCENARIOS.items():
        cfg = {**base, **_fields(extra, continued_base), "out_dir": str(runs / name)}
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        if name == "binary":
            plan.append({"name": "binary_cut", "config": str(tmp / f"{name}.yaml"), "via": "api",
                         "overrides": {"steps": 3}})
            plan.append({"name": "binary", "config": str(tmp / f"{name}.yaml"), "via": "api",
                         "overrides": {"resume": True}})
        else:
            plan.append({"name": name, "config": str(tmp / f"{name}.yaml"), "via": "cli" if name == "sm" else "api"})
    plan.append({"name": "odd_batch", "config": str(tmp / "sm.yaml"), "via": "cli", "expect_code": 2,
                 "overrides": {"batch_size": 7, "micro_batch_size": "none", "out_dir": str(runs / "odd")}})
    (tmp / "plan.json").write_text(json.dumps({"watch": str(runs), "runs": plan}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(WORKER), str(tmp / "plan.json")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    results = {}
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT "):])
            results[r["rank"]] = r
    assert sorted(results) == [0, 1], out[-4000:]
    return runs, results, out


@pytest.fixture(scope="module")
def reference(base, continued_base, tmp_path_factory):
    """The same scenarios in this process (one process, no launcher)."""
    tmp = tmp_path_factory.mktemp("ref")
    return {name: smkit.train(TrainConfig(**{**base, **_fields(extra, continued_base), "out_dir": str(tmp / name)}))
            for name, extra in SCENARIOS.items()}


def _close(a, b, rel=REL, abs_=1e-7):
    return abs(a - b) <= rel * abs(b) + abs_


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_processes_make_the_updates_of_one(launched, reference, name):
    runs, results, _ = launched
    ref = reference[name]
    got = pd.read_csv(runs / name / "metrics.csv")
    want = ref.history
    assert list(got.step) == list(want.step) == list(range(1, SCENARIOS[name]["steps"] + 1))
    assert list(got.forward_passes) == list(want.forward_passes)
    assert list(got.soft_mask) == list(want.soft_mask)
    for column in ("loss", "lr", "val_bound", "val_bound_sm"):
        # (the interrupted binary run also evaluated at its own last update, 3; the reference did not)
        pairs = [(a, b) for a, b in zip(got[column], want[column]) if not pd.isna(b)]
        assert len(pairs) == want[column].notna().sum() > 0
        assert all(_close(a, b) for a, b in pairs), (column, list(got[column]), list(want[column]))
    # the SM scalars: how far they moved from their initial values
    init = smkit.SoftMask(**smkit.SoftMaskParams().overridden(SCENARIOS[name].get("sm")).to_dict()).values()
    final = read_manifest(runs / name / "model")["soft_mask"]
    ref_final = ref.model.soft_mask.values()
    for key in ("scale", "centre", "steepness"):
        moved, ref_moved = final[key] - init[key], ref_final[key] - init[key]
        assert _close(moved, ref_moved, abs_=1e-6), (key, moved, ref_moved)
        if name == "binary":
            assert moved == 0  # no gradient ever reached them, on any process
        else:
            assert abs(ref_moved) > 1e-4  # the scalars did learn, so the comparison means something
    weights = smkit.load_pretrained(runs / name / "model").state_dict()  # EMA weights where kept
    for key, value in smkit.load_pretrained(ref.out_dir / "model").state_dict().items():
        assert torch.allclose(weights[key], value, rtol=REL, atol=1e-5), key
    if name in results[0]["runs"]:  # every process holds the same model
        assert results[0]["runs"][name] == results[1]["runs"][name]


def test_the_continued_run_starts_from_its_base_on_every_process(launched, continued_base):
    runs, _, _ = launched
    meta = read_manifest(runs / "continued" / "model")
    assert meta["base"] == {"name_or_path": continued_base,
                            "sha256": read_manifest(continued_base)["files"]["model.safetensors"],
                            "sm_kept": ["k", "steepness"], "sm_set": {"scale": 0.5, "centre": -3.0}}
    first_loss = pd.read_csv(runs / "continued" / "metrics.csv").loss.iloc[0]
    fresh_loss = pd.read_csv(runs / "sm" / "metrics.csv").loss.iloc[0]
    assert first_loss < fresh_loss  # it began from trained weights, not from a fresh initialisation


def test_mixed_scenario_has_both_kinds_of_update(reference):
    used = reference["mixed"].history.soft_mask
    assert used.any() and not used.all()


def test_only_rank_0_writes_and_checkpoints_are_complete(launched):
    runs, results, _ = launched
    assert results[1]["writes"] == []
    assert any("metrics.csv" in w for w in results[0]["writes"])
    for name, extra in SCENARIOS.items():
        meta = read_manifest(runs / name / "last")  # every file present, checksums match
        assert meta["trainer"]["step"] == extra["steps"] and meta["trainer"]["world_size"] == 2
        read_manifest(runs / name / "model")
        leftovers = [p.name for p in (runs / name).iterdir() if p.name.startswith(".")]
        assert leftovers == []
    assert not (runs / "odd").exists()


def test_batch_that_does_not_divide_fails_clearly(launched):
    _, _, out = launched
    assert "batch_size=7: the global batch must divide by the number of processes (2)" in out


@pytest.mark.parametrize("name, kind", [("ddp-8gpu", "MULTI_GPU"), ("fsdp", "FSDP")])
def test_documented_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file
    config = load_config_from_file(str(ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    assert str(config.distributed_type).endswith(kind) and config.num_processes == 8
    assert config.mixed_precision == "no"  # smkit's bf16 field sets the precision
