"""The DiT backbone: shape and conditioning, the paper's initialisation, and the DiT inside smkit's denoiser
(training loss with SM, adapters, files). Parity with the paper's own code: tests/test_paper_formats.py."""
from __future__ import annotations

import pytest
import torch

from smkit.core.errors import ConfigError
from smkit.models.backbones import BackboneConfig, build_from_hf_config, hf_config
from smkit.models.config import ModelConfig
from smkit.models.denoiser import DiffusionLM
from smkit.models.dit import PRESETS, DiT, DiTConfig, dit_config_for, rotary_tables

SMALL = DiTConfig(vocab_size=50, hidden_size=32, num_layers=2, num_heads=4, cond_dim=16, max_seq_len=24)


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every weight random (a fresh DiT's adaLN and output layer are zero, which hides most of the network)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model


def test_forward_from_ids_and_from_embeddings_agree():
    dit = randomised(DiT(SMALL)).eval()
    ids = torch.randint(0, 50, (3, 24))
    logits = dit(ids)
    assert logits.shape == (3, 24, 50) and logits.dtype == torch.float32
    assert isinstance(dit.get_input_embeddings(), torch.nn.Embedding)
    assert torch.equal(dit(inputs_embeds=dit.get_input_embeddings()(ids)), logits)
    assert torch.allclose(dit(ids[:1]), logits[:1], atol=1e-5)           # rows do not see each other
    with pytest.raises(ConfigError, match="max_seq_len"):
        dit(torch.randint(0, 50, (1, 25)))
    with pytest.raises(ConfigError, match="exactly one"):
        dit()


def test_attention_is_bidirectional_and_position_aware():
    dit = randomised(DiT(SMALL)).eval()
    ids = torch.randint(0, 50, (1, 24))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 50
    assert not torch.allclose(dit(ids)[0, 0], dit(changed)[0, 0])        # the first position sees the last
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    # without positions, attention would be permutation-equivariant: permuting the input would permute the output
    assert not torch.allclose(dit(ids[:, perm]), dit(ids)[:, perm], atol=1e-3)


def test_rotary_tables_rotate_pairs_half_a_head_apart():
    cos, sin = rotary_tables(5, 8, "cpu")
    assert cos.shape == (5, 8) and torch.equal(cos[:, :4], cos[:, 4:]) and torch.equal(sin[:, :4], sin[:, 4:])
    assert torch.allclose(sin[1, :4], torch.sin(1.0 / 10_000 ** (torch.arange(0, 8, 2) / 8)))


def test_time_conditioning():
    off = randomised(DiT(SMALL)).eval()
    ids = torch.randint(0, 50, (2, 24))
    assert torch.equal(off(ids, sigma=torch.tensor([0.3, 2.0])), off(ids))    # off: sigma is 0 whatever is passed
    on = DiT(DiTConfig(**{**SMALL.__dict__, "time_conditioning": True}))
    on.load_state_dict(off.state_dict())
    on.eval()
    assert torch.allclose(on(ids, sigma=torch.zeros(2)), off(ids), atol=1e-6)
    varied = on(ids, sigma=torch.tensor([0.0, 2.0]))
    assert torch.allclose(varied[0], off(ids)[0], atol=1e-6) and not torch.allclose(varied[1], off(ids)[1])


def test_fresh_model_predicts_uniform_as_the_papers_initialisation_does():
    dit = DiT(SMALL)
    assert torch.count_nonzero(dit(torch.randint(0, 50, (2, 24)))) == 0
    assert all(torch.count_nonzero(b.adaLN_modulation.weight) == 0 for b in dit.blocks)
    assert torch.count_nonzero(dit.vocab_embed.weight) > 0


def test_bf16_forward_runs_close_to_fp32():
    dit = randomised(DiT(SMALL)).eval()
    ids = torch.randint(0, 50, (2, 24))
    ref = dit(ids)
    low = dit.to(torch.bfloat16)(ids)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_presets_are_the_papers_sizes():
    assert PRESETS["small"] == {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "cond_dim": 128}
    with torch.device("meta"):
        dit = DiT(dit_config_for("small", 50258))
    assert sum(p.numel() for p in dit.parameters()) == 169_627_218      # the paper's "169M"
    assert dit.output_layer.linear.weight.shape == (50258, 768)         # not tied to the embedding
    with pytest.raises(ConfigError, match="preset"):
        dit_config_for("huge", 100)


@pytest.mark.parametrize("bad, match", [({"num_heads": 5}, "head width"), ({"num_heads": 32}, "even"),
                                        ({"cond_dim": 0}, "cond_dim"), ({"dropout": 1.0}, "dropout"),
                                        ({"time_conditioning": "no"}, "time_conditioning")])
def test_bad_shapes_are_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        DiTConfig(**{**SMALL.__dict__, **bad}).validate()


def _dit_model(**sm) -> DiffusionLM:
    backbone = BackboneConfig("dit", hidden_size=32, num_layers=2, num_heads=4, intermediate_size=128, cond_dim=16)
    model = DiffusionLM(ModelConfig(vocab_size=50, seq_len=24, backbone=backbone))
    randomised(model.backbone)
    return model


def test_backbone_kind_dit_builds_and_rebuilds_from_its_config_dict():
    model = _dit_model()
    assert isinstance(model.backbone, DiT) and model.backbone.config.mlp_ratio == 4
    again = build_from_hf_config(model.backbone.config.to_dict())
    assert isinstance(again, DiT) and again.config == model.backbone.config
    with pytest.raises(ConfigError, match="multiple of"):
        hf_config(BackboneConfig("dit", 32, 2, 4, 100), 50, 24)


def test_denoiser_trains_a_dit_with_soft_masking():
    torch.manual_seed(0)
    model = _dit_model()
    model.train()
    x0 = torch.randint(0, 49, (4, 24))
    loss = model.loss(x0, soft_mask=True, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.blocks[0].attn_qkv.weight.grad.abs().sum() > 0
    assert model.soft_mask.raw_scale.grad is not None


def test_lora_targets_the_dits_attention_by_default():
    from smkit.io.adapters import add_adapter

    model = add_adapter(_dit_model(), method="lora", r=2)
    assert sorted(model.adapter["target_modules"]) == ["attn_out", "attn_qkv"]
    trainable = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    x = torch.randint(0, 49, (2, 24))
    assert model(x).shape == (2, 24, 50)


def test_a_dit_model_saves_and_loads(tmp_path):
    import smkit

    model = _dit_model().eval()
    smkit.save_pretrained(model, tmp_path / "m")
    back = smkit.load_pretrained(tmp_path / "m")
    assert isinstance(back.backbone, DiT)
    x = torch.randint(0, 49, (2, 24))
    x[:, ::3] = model.mask_id
    with torch.no_grad():
        assert torch.equal(model(x), back(x))


def test_train_config_presets_fill_the_dit_shape():
    from smkit.training.train import TrainConfig

    cfg = TrainConfig(backbone="dit", preset="small", vocab_size=50258, seq_len=1024).validate()
    assert (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.intermediate_size, cfg.cond_dim) == (768, 12, 12, 3072,
                                                                                                     128)
    bb = cfg.model_config().backbone
    assert bb.kind == "dit" and bb.cond_dim == 128
    with pytest.raises(ConfigError, match="preset='small' sets num_heads=12"):
        TrainConfig(backbone="dit", preset="small", num_heads=7).validate()
    with pytest.raises(ConfigError, match="presets are sizes of the dit backbone"):
        TrainConfig(preset="small").validate()
    with pytest.raises(ConfigError, match="preset"):
        TrainConfig(backbone="dit", preset="huge").validate()
