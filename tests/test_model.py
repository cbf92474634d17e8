"""The denoiser wrapper: SUBS, the MDLM bound, the two-pass SM estimate, files."""
import json

import pytest
import torch

import smkit
from smkit.io.checkpoint import CheckpointError
from smkit.io.data import DataError, train_tokenizer, Document


def _batch(model, n=4):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, model.mask_id, (n, model.config.seq_len), generator=g)


def test_subs_never_predicts_mask_and_copies_unmasked(tiny_model):
    x = _batch(tiny_model, 2)
    x[:, ::2] = tiny_model.mask_id
    logp = tiny_model(x)
    assert torch.isneginf(logp[..., tiny_model.mask_id]).all()
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(x.shape))
    unmasked = x != tiny_model.mask_id
    assert (logp.argmax(-1)[unmasked] == x[unmasked]).all()
    assert (logp.gather(-1, x.unsqueeze(-1)).squeeze(-1)[unmasked] == 0).all()


def test_sm_with_scale_zero_gives_exactly_the_binary_loss(tiny_model):
    tiny_model.soft_mask = smkit.SoftMask(k=3, scale=0.0)
    x = _batch(tiny_model)
    binary = tiny_model.loss(x, soft_mask=False, generator=torch.Generator().manual_seed(5))
    sm = tiny_model.loss(x, soft_mask=True, generator=torch.Generator().manual_seed(5))
    assert torch.equal(binary, sm)


def test_sm_changes_the_loss_when_open(tiny_model):
    tiny_model.soft_mask = smkit.SoftMask(k=3, scale=0.9, centre=-8.0, steepness=1.0)
    x = _batch(tiny_model)
    binary = tiny_model.loss(x, soft_mask=False, generator=torch.Generator().manual_seed(5))
    sm = tiny_model.loss(x, soft_mask=True, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(binary, sm)


def test_gradients_reach_all_three_scalars_and_pass_one_has_no_grad(tiny_model):
    tiny_model.soft_mask = smkit.SoftMask(k=3, scale=0.5, centre=-4.0, steepness=1.0)
    grad_modes = []
    handle = tiny_model.backbone.register_forward_hook(lambda *a: grad_modes.append(torch.is_grad_enabled()))
    loss = tiny_model.loss(_batch(tiny_model), soft_mask=True, generator=torch.Generator().manual_seed(0))
    handle.remove()
    loss.backward()
    assert grad_modes == [False, True]
    for name in ("raw_scale", "raw_centre", "raw_steepness"):
        g = getattr(tiny_model.soft_mask, name).grad
        assert g is not None and torch.isfinite(g) and g != 0, name


def test_loss_is_the_weighted_bound(tiny_model):
    # With t fixed, loss = (1/t) * sum of masked NLL / number of tokens (log-linear schedule).
    x = _batch(tiny_model, 2)
    t = torch.tensor([0.5, 0.5])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    loss = tiny_model.loss(x, t=t, generator=g1)
    x_t, masked, weight = tiny_model.noise(x, t=t, generator=g2)
    nll = -tiny_model(x_t).gather(-1, x.unsqueeze(-1)).squeeze(-1)
    want = (nll * masked).sum() / x.numel() / (0.5 * (1 - 1e-3)) * (1 - 1e-3)
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(weight, torch.full((2,), 2.0))


def test_validation_bound_is_deterministic(tiny_model):
    blocks = _batch(tiny_model, 6)
    a = tiny_model.validation_bound(blocks, soft_mask=True, batch_size=4, seed=0)
    b = tiny_model.validation_bound(blocks, soft_mask=True, batch_size=4, seed=0)
    assert a == b and a > 0


def test_save_load_round_trip(tiny_model, tmp_path):
    tiny_model.soft_mask = smkit.SoftMask(k=2, scale=0.4)
    path = tiny_model.save_pretrained(tmp_path / "m")
    loaded = smkit.load_pretrained(path)
    x = _batch(tiny_model, 2)
    x[:, 1::3] = tiny_model.mask_id
    torch.testing.assert_close(loaded(x), tiny_model.eval()(x))
    assert loaded.soft_mask.values() == pytest.approx(tiny_model.soft_mask.values())
    assert loaded.mask_id == tiny_model.mask_id == loaded.tokenizer.mask_token_id
    assert loaded.tokenizer.decode(loaded.tokenizer("To be, or not")["input_ids"]) == "To be, or not"
    assert not any(p.name.endswith((".bin", ".pt", ".pkl")) for p in path.iterdir())


def test_half_precision_export_keeps_sm_scalars_exact(tiny_model, tmp_path):
    tiny_model.soft_mask = smkit.SoftMask(k=3, scale=0.123456789)
    path = tiny_model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    loaded = smkit.load_pretrained(path)
    assert loaded.soft_mask.values()["scale"] == tiny_model.soft_mask.values()["scale"]
    assert next(loaded.backbone.parameters()).dtype == torch.float32


def test_corrupted_and_truncated_checkpoints_fail_loudly(tiny_model, tmp_path):
    path = tiny_model.save_pretrained(tmp_path / "m")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        smkit.load_pretrained(path)
    path = tiny_model.save_pretrained(tmp_path / "m")  # a checkpoint folder may be overwritten
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        smkit.load_pretrained(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        smkit.load_pretrained(path)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not an smkit checkpoint"):
        smkit.load_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="neither a shipped model"):
        smkit.load_pretrained(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="not a folder"):
        smkit.load_pretrained(tmp_path / "notes.txt")


def test_saving_never_overwrites_a_users_folder(tiny_model, tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_interrupted_save_leaves_previous_checkpoint(tiny_model, tmp_path):
    path = tiny_model.save_pretrained(tmp_path / "m")
    before = (path / "model.safetensors").read_bytes()

    def crash(tmp):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_model.save_pretrained(path, extra_files=crash)
    assert (path / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    smkit.load_pretrained(path)


def test_tokenizer_vocabulary_mismatch(tiny_model, tmp_path):
    other = train_tokenizer([Document("x", "abc")], "char")
    with pytest.raises(DataError, match="do not match"):
        smkit.DiffusionLM(tiny_model.config, tokenizer=other)
    path = tiny_model.save_pretrained(tmp_path / "m")
    other.save_pretrained(str(path))  # a user swaps the tokenizer files by hand
    meta = json.loads((path / "smkit.json").read_text())
    for name in list(meta["files"]):
        if name.startswith("tokenizer"):
            meta["files"].pop(name)
    (path / "smkit.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="do not match"):
        smkit.load_pretrained(path)


@pytest.mark.parametrize("field, value, words", [("sm", {"k": 0}, "sm.k=0"), ("seq_len", 1, "seq_len=1"),
                                                  ("schedule", "quadratic", "schedule"),
                                                  ("sm", {"scale": 1.5}, "sm.scale=1.5"),
                                                  ("sm", {"temperature": 2}, "unknown soft-masking setting")])
def test_model_config_errors(tiny_model, field, value, words):
    cfg = tiny_model.config
    kwargs = dict(vocab_size=cfg.vocab_size, seq_len=cfg.seq_len, backbone=cfg.backbone)
    kwargs[field] = value
    with pytest.raises(smkit.ConfigError, match=words):
        smkit.ModelConfig(**kwargs).validate()


def test_k_larger_than_vocabulary(tiny_model):
    cfg = tiny_model.config
    with pytest.raises(smkit.ConfigError, match=r"sm.k=.*the vocabulary without \[MASK\]"):
        smkit.ModelConfig(vocab_size=cfg.vocab_size, sm={"k": cfg.vocab_size + 5}).validate()
