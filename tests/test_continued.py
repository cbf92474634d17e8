"""Continued pretraining (--init-from): weights and tokenizer from a base, fresh optimizer, the base's SM values
unless the config sets some, the base and what was kept recorded, every mismatch an error before compute; bf16
resolution."""
import json
import subprocess
import sys

import pytest
import torch

import smkit
from smkit.io.checkpoint import CheckpointError, read_manifest
from smkit.core.config import ConfigError
from smkit.core.precision import cpu_bf16_kind, resolve_bf16
from smkit.training.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def base_dir(tiny_train_kwargs, tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    smkit.train(TrainConfig(**{**tiny_train_kwargs, "out_dir": str(out), "steps": 4, "soft_mask": False,
                               "sm": {"scale": 0.2, "k": 2}}))
    return out / "model"


def _cfg(kw, out, **more):
    return TrainConfig(**{**kw, "out_dir": str(out), **more})


def test_continuation_starts_from_the_base_weights_with_a_fresh_optimizer(tiny_train_kwargs, base_dir, tmp_path):
    base = smkit.load_pretrained(base_dir)
    tr = Trainer(_cfg(tiny_train_kwargs, tmp_path, steps=3, init_from=str(base_dir), soft_mask=True, p_sm=1.0))
    for (n, a), (_, b) in zip(base.backbone.state_dict().items(), tr.model.backbone.state_dict().items()):
        assert torch.equal(a, b), n
    assert tr.model.tokenizer.get_vocab() == base.tokenizer.get_vocab()
    assert tr.step == 0 and not tr.optimizer.state  # fresh optimizer and schedule
    base_sm = base.soft_mask.values()
    assert tr.model.soft_mask.values() == base_sm and base_sm["k"] == 2  # the base's values, k included, bit for bit
    res = tr.run()
    assert res.history.step.iloc[-1] == 3 and res.history.forward_passes.iloc[-1] == 6
    digest = read_manifest(base_dir)["files"]["model.safetensors"]
    for folder in ("model", "last"):
        meta = read_manifest(tmp_path / folder)
        base_record = meta["base"] if folder == "model" else meta["trainer"]["base"]
        assert base_record == {"name_or_path": str(base_dir), "sha256": digest,
                               "sm_kept": ["k", "scale", "centre", "steepness"], "sm_set": {}}


def test_the_config_sets_only_the_sm_values_it_names_and_says_so(tiny_train_kwargs, base_dir, tmp_path, capsys):
    tr = Trainer(_cfg(tiny_train_kwargs, tmp_path, steps=1, init_from=str(base_dir), sm={"scale": 0.05}))
    live, base = tr.model.soft_mask.values(), smkit.load_pretrained(base_dir).soft_mask.values()
    assert live["scale"] == pytest.approx(0.05) and live["k"] == 2
    assert (live["centre"], live["steepness"]) == (base["centre"], base["steepness"])
    assert "SM kept: k=2, centre=" in capsys.readouterr().out and "SM set by the config: scale=0.05" in \
        tr.base.start(tr.model, {"scale": 0.05})
    assert tr.base_record()["sm_kept"] == ["k", "centre", "steepness"]


def test_the_old_sm_keys_still_read_with_a_deprecation_message(tiny_train_kwargs, base_dir):
    with pytest.warns(DeprecationWarning, match="sm_scale_init.*deprecated.*'scale': 0.3"):
        cfg = TrainConfig.from_dict({**tiny_train_kwargs, "sm_scale_init": 0.3, "k": 2})
    assert cfg.sm == {"scale": 0.3, "k": 2}
    with pytest.warns(DeprecationWarning, match="init_sm"):
        reset = TrainConfig.from_dict({**tiny_train_kwargs, "init_from": str(base_dir), "init_sm": False})
    assert reset.sm == smkit.SoftMaskParams().to_dict()   # the old meaning: start from the defaults, not the base's


def test_a_warmup_longer_than_the_run_is_shortened_and_said(tiny_train_kwargs, tmp_path):
    with pytest.warns(smkit.TrainingWarning, match="warmup_steps=100 > steps=20.*shortened to 2"):
        cfg = _cfg({**tiny_train_kwargs, "warmup_steps": 100}, tmp_path, steps=20).validate()
    assert cfg.warmup_steps == 2


def test_continuation_resumes_exactly(tiny_train_kwargs, base_dir, tmp_path):
    kw = dict(steps=6, init_from=str(base_dir), soft_mask=True, p_sm=0.5, checkpoint_every=3)
    full = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "full", **kw))
    smkit.train(_cfg(tiny_train_kwargs, tmp_path / "cut", **{**kw, "steps": 3}))
    (tmp_path / "cut" / "model").rename(tmp_path / "cut-model-of-3")
    resumed = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "cut", resume=True, **kw))
    assert list(resumed.history.loss) != [] and resumed.history.step.iloc[-1] == 6
    # a cut run resumed at 3 ends where the uninterrupted run ends
    for (n, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), n


def test_the_iso_compute_budget_applies_to_a_continuation(tiny_train_kwargs, base_dir, tmp_path):
    r = smkit.train(_cfg(tiny_train_kwargs, tmp_path, steps=None, forward_budget=8, init_from=str(base_dir),
                         soft_mask=True, p_sm=1.0))
    assert r.history.step.iloc[-1] == 4 and r.history.forward_passes.iloc[-1] == 8


@pytest.mark.parametrize("field, value, words", [
    ("hidden_size", 64, "hidden_size=64 but the base has 32"), ("num_layers", 2, "num_layers=2"),
    ("seq_len", 48, "seq_len=48 but the base"),
    ("tokenizer", "bpe", "tokenizer='bpe' but the base was trained with a 'char'"),
    ("init_from", "no/such/folder", "neither a shipped model"),
])
def test_a_base_that_does_not_match_fails_before_compute(tiny_train_kwargs, base_dir, tmp_path, field, value, words):
    kw = {**tiny_train_kwargs, "steps": 2, "init_from": str(base_dir), field: value}
    with pytest.raises(ConfigError, match=words):
        smkit.train(_cfg(kw, tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_folder_that_is_not_a_checkpoint_or_is_corrupted_is_refused(tiny_train_kwargs, base_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not an smkit checkpoint"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path / "run", steps=1, init_from=str(tmp_path / "empty")))
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(base_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="fails its checksum"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path / "run", steps=1, init_from=str(broken)))
    with pytest.raises(ConfigError, match="sm.scale=2"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path / "run", steps=1, sm={"scale": 2}))
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_base_whose_weights_changed(tiny_train_kwargs, base_dir, tmp_path):
    import shutil
    base = tmp_path / "base"
    shutil.copytree(base_dir, base)
    kw = dict(steps=2, init_from=str(base), checkpoint_every=1)
    smkit.train(_cfg(tiny_train_kwargs, tmp_path / "run", **{**kw, "steps": 1}))
    other = smkit.load_pretrained(base)
    with torch.no_grad():
        next(other.backbone.parameters()).add_(1.0)
    other.save_pretrained(base)
    with pytest.raises(ConfigError, match="other weights"):
        smkit.train(_cfg(tiny_train_kwargs, tmp_path / "run", resume=True, **kw))


@pytest.mark.parametrize("flag, value, words", [("--hidden-size", "128", "hidden_size=128 but the base has"),
                                                ("--vocab-size", "2048", "vocab_size=2048 but the base's vocabulary")])
def test_cli_init_from_a_shipped_name_checks_the_config(tmp_path, flag, value, words):
    res = subprocess.run([sys.executable, "-m", "smkit.cli", "train", "--init-from", "shakespeare-sm",
                          flag, value, "--steps", "1", "--out-dir", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and words in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "r").exists()


def test_bf16_resolution():
    cpu = torch.device("cpu")
    assert resolve_bf16(None, cpu, {"amx_bf16", "avx512_bf16"}) is True
    assert resolve_bf16(None, cpu, {"avx512_bf16"}) is False       # no tiles: bf16 is slower than fp32
    assert resolve_bf16(None, cpu, set()) is False
    assert resolve_bf16(True, cpu, {"avx512_bf16"}) is True         # asked for, and the CPU can
    assert resolve_bf16(False, cpu, {"amx_bf16"}) is False
    with pytest.raises(ConfigError, match="bf16=True: this CPU has no bf16"):
        resolve_bf16(True, cpu, {"avx2"})
    assert cpu_bf16_kind({"amx_bf16"}) == "amx" and cpu_bf16_kind({"sse"}) is None


def test_bf16_training_tracks_fp32(tiny_train_kwargs, tmp_path):
    """50 SM updates with bf16 autocast stay within 2% of fp32's loss; SM scalars and loss stay fp32."""
    if cpu_bf16_kind() is None:
        pytest.skip("this CPU has no bf16 instructions")
    kw = dict(steps=50, soft_mask=True, p_sm=0.8, log_every=1)
    fp32 = smkit.train(_cfg(tiny_train_kwargs, tmp_path / "fp32", bf16=False, **kw))
    tr = Trainer(_cfg(tiny_train_kwargs, tmp_path / "bf16", bf16=True, **kw))
    assert tr.bf16
    bf16 = tr.run()
    a, b = fp32.history.loss.tail(10).mean(), bf16.history.loss.tail(10).mean()
    assert abs(a - b) / a < 0.02, (a, b)
    assert all(p.dtype == torch.float32 for p in bf16.model.soft_mask.parameters())
    x = torch.randint(0, bf16.model.mask_id, (2, tiny_train_kwargs["seq_len"]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = bf16.model(x)
        loss = bf16.model.loss(x, soft_mask=True)
    assert logits.dtype == torch.float32 and loss.dtype == torch.float32
    assert bf16.model.soft_mask.lam(logits).dtype == torch.float32


def test_a_task_model_continues_on_other_task_parameters(tmp_path):
    """A task corpus sizes its own character tokenizer: the continuation ignores vocab_size and keeps the task's."""
    kw = dict(corpus="task:sort", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, batch_size=8,
              eval_every=0, eval_blocks=8, checkpoint_every=0, progress=False, soft_mask=False)
    smkit.train(TrainConfig(**kw, task_params={"length": 3}, steps=2, out_dir=str(tmp_path / "base")))
    r = smkit.train(TrainConfig(**kw, task_params={"length": 3, "digits": 1}, steps=2, out_dir=str(tmp_path / "c"),
                                init_from=str(tmp_path / "base" / "model")))
    assert r.model.tokenizer.get_vocab() == smkit.load_pretrained(tmp_path / "base" / "model").tokenizer.get_vocab()
    assert read_manifest(tmp_path / "c" / "model")["base"]["name_or_path"] == str(tmp_path / "base" / "model")
