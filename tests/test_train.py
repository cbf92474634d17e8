"""The training loop: budgets, resume, checkpoints, metrics, bad settings."""
import dataclasses
import hashlib
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

import smkit
from smkit.io.checkpoint import CheckpointError, read_manifest
from smkit.core.config import ConfigError
from smkit.training.train import HISTORY_COLUMNS, TrainConfig, Trainer

COMPARED = ["step", "forward_passes", "loss", "soft_mask", "lr", "scale", "steepness", "centre"]


def _cfg(kw, tmp_path, **more):
    return TrainConfig(**{**kw, "out_dir": str(tmp_path), **more})


def test_iso_update_and_history(tiny_train_kwargs, tmp_path):
    r = smkit.train(_cfg(tiny_train_kwargs, tmp_path, steps=6, soft_mask=True, p_sm=0.5, eval_every=3))
    h = r.history
    assert list(h.columns) == HISTORY_COLUMNS and list(h.step) == [1, 2, 3, 4, 5, 6]
    assert h.forward_passes.iloc[-1] == 6 + h.soft_mask.sum() and 0 < h.soft_mask.sum() < 6
    assert h.val_bound.notna().sum() == 2 and (h.val_bound_sm.dropna() > 0).all()
    assert (h.tokens_per_s > 0).all()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "metrics.csv"), h, check_dtype=False)
    assert h.scale.iloc[-1] == pytest.approx(r.model.soft_mask.values()["scale"])
    smkit.load_pretrained(tmp_path / "model")


def test_iso_compute_budget_counts_forward_passes(tiny_train_kwargs, tmp_path):
    sm = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "sm", steps=None, forward_budget=12, soft_mask=True, p_sm=1.0))
    binary = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "b", steps=None, forward_budget=12, soft_mask=False))
    assert sm.history.step.iloc[-1] == 6 and sm.history.forward_passes.iloc[-1] == 12
    assert binary.history.step.iloc[-1] == 12 and binary.history.forward_passes.iloc[-1] == 12
    assert not binary.history.soft_mask.any()


def test_interrupted_run_resumes_exactly(tiny_train_kwargs, tmp_path):
    kw = dict(steps=8, soft_mask=True, p_sm=0.5, checkpoint_every=3, eval_every=4, ema=0.9)
    full = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "full", **kw))

    trainer = Trainer(_cfg(tiny_train_kwargs, tmp_path / "cut", **kw))
    calls = {"n": 0}

    def interrupt(*_):
        calls["n"] += 1
        if trainer.step == 7:  # killed in the middle of update 8, after the checkpoint of update 6
            raise KeyboardInterrupt

    trainer.model.backbone.register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert read_manifest(tmp_path / "cut" / "last")["trainer"]["step"] == 6  # last complete checkpoint intact

    resumed = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "cut", resume=True, **kw))
    pd.testing.assert_frame_equal(resumed.history[COMPARED], full.history[COMPARED])
    for (n, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), n
    final_full = smkit.load_pretrained(tmp_path / "full" / "model").state_dict()
    final_cut = smkit.load_pretrained(tmp_path / "cut" / "model").state_dict()
    assert all(torch.equal(final_full[k], final_cut[k]) for k in final_full)


def test_metrics_name_the_sm_scalars_as_the_library_does_and_old_files_still_read(tiny_train_kwargs, tmp_path):
    """metrics.csv writes scale, steepness, centre (the names of SoftMaskParams), never the paper's w_s, w_a, w_b;
    a file with the paper's names (an earlier smkit's) reads the same, and a run begun with one resumes."""
    from smkit.io.metrics import read_metrics

    kw = dict(steps=4, soft_mask=True, p_sm=1.0, checkpoint_every=2)
    full = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "full", **kw))
    header = (tmp_path / "full" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"scale", "steepness", "centre"} <= set(header) and not {"w_s", "w_a", "w_b"} & set(header)
    cut = Trainer(_cfg(tiny_train_kwargs, tmp_path / "cut", **{**kw, "steps": 2})).run()
    old = cut.history.rename(columns={"scale": "w_s", "steepness": "w_a", "centre": "w_b"})
    for folder in (tmp_path / "cut", tmp_path / "cut" / "last"):
        old.to_csv(folder / "metrics.csv", index=False)
    manifest = tmp_path / "cut" / "last" / "smkit.json"   # as an earlier smkit wrote it: its checksum of that file
    meta = json.loads(manifest.read_text())
    meta["files"]["metrics.csv"] = hashlib.sha256((tmp_path / "cut" / "last" / "metrics.csv").read_bytes()).hexdigest()
    manifest.write_text(json.dumps(meta))
    pd.testing.assert_frame_equal(read_metrics(tmp_path / "cut"), cut.history, check_dtype=False)
    resumed = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "cut", resume=True, **kw))
    assert list(resumed.history.columns) == HISTORY_COLUMNS
    pd.testing.assert_frame_equal(resumed.history[COMPARED], full.history[COMPARED])


def test_resume_needs_a_checkpoint_and_the_same_settings(tiny_train_kwargs, tmp_path):
    with pytest.raises(CheckpointError, match="resume=True"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path, steps=2, resume=True))
    smkit.train(_cfg(tiny_train_kwargs, tmp_path, steps=2))
    with pytest.raises(ConfigError, match="p_sm"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path, steps=4, resume=True, p_sm=0.3))


def test_optimizer_groups_and_ema_exclude_sm_scalars(tiny_train_kwargs, tmp_path):
    tr = Trainer(_cfg(tiny_train_kwargs, tmp_path, steps=1, ema=0.99, weight_decay=0.1))
    groups = {g["name"]: g for g in tr.optimizer.param_groups}
    assert groups["soft_mask"]["lr"] == 1e-2 and groups["soft_mask"]["weight_decay"] == 0.0
    assert len(groups["soft_mask"]["params"]) == 3 and groups["backbone"]["weight_decay"] == 0.1
    assert not any("soft_mask" in k for k in tr.ema) and len(tr.ema) == len(list(tr.model.backbone.parameters()))


@pytest.mark.parametrize("field, value, words", [
    ("p_sm", 1.5, "p_sm=1.5"), ("p_sm", -0.1, "p_sm=-0.1"), ("t_min", 0.0, "t_min=0.0"),
    ("t_max", 1.2, "t_max=1.2"), ("t_min", 0.9, "reversed"), ("lr", -1e-3, "lr=-0.001"),
    ("sm_lr", -1.0, "sm_lr=-1.0"), ("sm", {"k": 0}, "sm.k=0"), ("seq_len", 1, "seq_len=1"), ("tokenizer", "x", "tokenizer="),
    ("backbone", "gpt", "backbone="), ("forward_budget", 10, "exactly one"), ("ema", 1.0, "ema=1.0"),
])
def test_bad_settings_fail_before_compute(tiny_train_kwargs, tmp_path, field, value, words):
    kw = {**tiny_train_kwargs, "steps": 5, field: value}
    if field == "t_min" and value == 0.9:
        kw["t_max"] = 0.5
    with pytest.raises(ValueError, match=words):
        smkit.train(_cfg(kw, tmp_path))
    assert not any(tmp_path.iterdir())  # nothing was computed or written


def test_unknown_corpus_and_field(tiny_train_kwargs, tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path, corpus="./nowhere.txt", steps=1))
    with pytest.raises(ConfigError, match="unknown training option"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path, steps=1), learning_rate=3)


def test_cli_help_documents_every_field():
    out = subprocess.run([sys.executable, "-m", "smkit.cli", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for f in dataclasses.fields(TrainConfig):
        flag = "--task-param" if f.name == "task_params" else f"--{f.name.replace('_', '-')}"  # repeatable KEY=VALUE
        assert flag in out, flag


def test_cli_trains_from_yaml_and_flags(tiny_train_kwargs, tmp_path):
    import yaml
    cfg = {**tiny_train_kwargs, "steps": 2, "out_dir": str(tmp_path / "run")}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-m", "smkit.cli", "train", "--config", str(tmp_path / "c.yaml"),
                          "--steps", "3", "--soft-mask", "false"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "trained 3 updates, 3 forward passes" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "smkit.cli", "train", "--config", str(tmp_path / "c.yaml"),
                          "--p-sm", "2"], capture_output=True, text=True)
    assert bad.returncode == 2 and "p_sm=2.0" in bad.stderr and "Traceback" not in bad.stderr


def test_field_types_are_checked_and_paths_accepted(tiny_train_kwargs, tmp_path):
    from pathlib import Path
    cfg = TrainConfig(**{**tiny_train_kwargs, "out_dir": tmp_path / "run", "steps": 1}).validate()
    assert cfg.out_dir == str(tmp_path / "run")
    for field, value, words in [("steps", 2.5, "steps=2.5: must be int or None"), ("soft_mask", 1, "must be bool"),
                                ("lr", "3e-4", "write 3.0e-4"), ("corpus", 3, "corpus=3: must be str")]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            TrainConfig(**{**tiny_train_kwargs, field: value}).validate()
    assert not Path(tmp_path / "run").exists()
