"""The diffusion transformer (DiT) of MDLM, Duo and the soft-masking paper, as an smkit backbone.

The architecture (facts from the public code of those projects, written here anew):
- an input embedding matrix [V, D], not tied to the output layer;
- a conditioning vector c = silu(MLP(sinusoidal features of sigma)), 256 features, cos half first. MDLM runs with
  time conditioning off, which means sigma = 0 -- c is still computed from the weights and feeds every block;
- per block, pre-norm with adaLN: six vectors from c (shift, scale, gate for attention and for the MLP);
  h = LayerNorm(x) * (1 + scale) + shift; x += gate * attention(h); the same around a GELU(tanh) MLP (4x wide);
- LayerNorm without bias, computed in fp32; rotary positions (base 10000, rotate-half) on queries and keys only;
  bidirectional scaled-dot-product attention, no attention dropout;
- a final LayerNorm modulated by (shift, scale) from c, then a linear layer (with bias) to the V logits.
Parameter names follow the published checkpoints (`blocks.0.attn_qkv.weight`, ...) except the embedding, an
`nn.Embedding` here (`vocab_embed.weight`, the checkpoints' `vocab_embed.embedding`), so that soft-masking, LoRA
and `inputs_embeds` work as on every other backbone. A fresh model is initialised as the paper's code does:
adaLN and the output layer at zero, so it starts by predicting the uniform distribution.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
import torch.nn.functional as F

from ..core.errors import ConfigError

MODEL_TYPE = "smkit-dit"
TIME_FEATURES = 256          # sinusoidal features of sigma fed to the conditioning MLP
ROTARY_BASE = 10_000
# The paper's sizes (hidden, blocks, heads, conditioning width); all use L = 1024 and a 4x MLP.
PRESETS = {
    "tiny": {"hidden_size": 256, "num_layers": 8, "num_heads": 8, "cond_dim": 128},
    "small": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "cond_dim": 128},
    "medium": {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "cond_dim": 128},
}


@dataclass
class DiTConfig:
    """The shape of a DiT. `time_conditioning=False` (MDLM's setting) conditions every block on sigma = 0."""
    vocab_size: int
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    cond_dim: int = 128
    max_seq_len: int = 1024
    mlp_ratio: int = 4
    dropout: float = 0.0
    time_conditioning: bool = False

    def validate(self) -> "DiTConfig":
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "cond_dim", "max_seq_len", "mlp_ratio"):
            v = getattr(self, name)
            if type(v) is not int or v < 1:
                raise ConfigError(f"{name}={v!r}: must be an integer >= 1")
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ConfigError(f"hidden_size={self.hidden_size}, num_heads={self.num_heads}: the head width "
                              f"hidden_size / num_heads must be an even integer (rotary positions rotate pairs)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout!r}: must lie in [0, 1)")
        if not isinstance(self.time_conditioning, bool):
            raise ConfigError(f"time_conditioning={self.time_conditioning!r}: must be True or False")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict:
        """Plain values with `model_type`, as a checkpoint's manifest stores a backbone's config."""
        return {"model_type": MODEL_TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "DiTConfig":
        d = dict(d)
        if d.pop("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ConfigError(f"model_type={d.get('model_type')!r}: a DiT config has model_type {MODEL_TYPE!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"DiT config: unknown fields {unknown}; allowed: {sorted(known)}")
        return cls(**d).validate()


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class WeightOnlyLayerNorm(nn.Module):
    """LayerNorm with a weight and no bias, normalised in fp32 whatever the input dtype (the result is fp32)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), (x.shape[-1],)) * self.weight.float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotary_tables(seq_len: int, head_dim: int, device, base: float = ROTARY_BASE) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [L, head_dim] (fp32): frequency j = base^(-2j / head_dim), each used for dims j and j + d/2."""
    inv_freq = rotary_inv_freq(head_dim, device, base)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def rotary_inv_freq(head_dim: int, device=None, base: float = ROTARY_BASE) -> torch.Tensor:
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))


class TimestepEmbedder(nn.Module):
    """sigma [B] -> [B, cond_dim]: sinusoidal features (cos half, then sin half) through a 2-layer SiLU MLP."""

    def __init__(self, cond_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIME_FEATURES, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        half = TIME_FEATURES // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half)
        args = sigma.float()[:, None] * freqs[None]
        features = torch.cat((args.cos(), args.sin()), dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class DiTBlock(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.norm1 = WeightOnlyLayerNorm(d)
        self.attn_qkv = nn.Linear(d, 3 * d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.norm2 = WeightOnlyLayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(approximate="tanh"),
                                 nn.Linear(cfg.mlp_ratio * d, d))
        self.dropout = nn.Dropout(cfg.dropout)
        self.adaLN_modulation = nn.Linear(cfg.cond_dim, 6 * d)

    def attend(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, L, D = h.shape
        q, k, v = self.attn_qkv(h).view(B, L, 3, self.num_heads, D // self.num_heads).unbind(dim=2)
        cos, sin = cos.to(q.dtype)[:, None], sin.to(q.dtype)[:, None]     # [L, 1, head_dim] against [B, L, H, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return out.transpose(1, 2).reshape(B, L, D)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(cond)[:, None].chunk(6, dim=-1)
        dtype = self.attn_qkv.weight.dtype
        h = modulate(self.norm1(x), shift_a, scale_a).to(dtype)
        x = x + gate_a * self.dropout(self.attn_out(self.attend(h, cos, sin)))
        h = modulate(self.norm2(x), shift_m, scale_m).to(dtype)
        return x + gate_m * self.dropout(self.mlp(h))


class DiTOutputLayer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm_final = WeightOnlyLayerNorm(cfg.hidden_size)
        self.linear = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        self.adaLN_modulation = nn.Linear(cfg.cond_dim, 2 * cfg.hidden_size)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(cond)[:, None].chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale).to(self.linear.weight.dtype))


class DiT(nn.Module):
    """`logits = dit(input_ids)` or `dit(inputs_embeds=e)`: [B, L, V]. `sigma` [B] conditions the blocks when
    `config.time_conditioning`; otherwise sigma = 0 (one conditioning vector shared by the batch)."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config.validate()
        self.vocab_embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.sigma_map = TimestepEmbedder(config.cond_dim)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.num_layers))
        self.output_layer = DiTOutputLayer(config)
        self._rotary: dict = {}
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The paper's initialisation: the embedding like a linear layer's weight, adaLN and output at zero."""
        nn.init.kaiming_uniform_(self.vocab_embed.weight, a=math.sqrt(5))
        for module in [*(b.adaLN_modulation for b in self.blocks), self.output_layer.adaLN_modulation,
                       self.output_layer.linear]:
            module.weight.zero_()
            module.bias.zero_()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.vocab_embed

    def conditioning(self, batch: int, sigma: torch.Tensor | None, device) -> torch.Tensor:
        """silu(sigma_map(sigma)): [B, cond_dim], or [1, cond_dim] (broadcast) when sigma is 0 for the batch."""
        if sigma is None or not self.config.time_conditioning:
            sigma = torch.zeros(1, device=device)
        else:
            sigma = torch.as_tensor(sigma, dtype=torch.float32, device=device).reshape(-1).expand(batch)
        return F.silu(self.sigma_map(sigma))

    def rotary(self, seq_len: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (seq_len, str(device))
        if key not in self._rotary:
            self._rotary = {key: rotary_tables(seq_len, self.config.head_dim, device)}
        return self._rotary[key]

    def forward(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                sigma: torch.Tensor | None = None, **_unused) -> torch.Tensor:
        if (input_ids is None) == (inputs_embeds is None):
            raise ConfigError("DiT.forward: pass exactly one of input_ids and inputs_embeds")
        x = self.vocab_embed(input_ids) if inputs_embeds is None else inputs_embeds
        B, L, _ = x.shape
        if L > self.config.max_seq_len:
            raise ConfigError(f"sequence length {L} exceeds the DiT's max_seq_len={self.config.max_seq_len}")
        cond = self.conditioning(B, sigma, x.device)
        cos, sin = self.rotary(L, x.device)
        x = x.to(self.attn_dtype)
        for block in self.blocks:
            x = block(x, cos, sin, cond)
        return self.output_layer(x, cond)

    @property
    def attn_dtype(self) -> torch.dtype:
        return self.vocab_embed.weight.dtype


def dit_config_for(preset: str, vocab_size: int, **overrides) -> DiTConfig:
    """A `DiTConfig` of one of the paper's sizes (`PRESETS`), with fields overridden."""
    if preset not in PRESETS:
        raise ConfigError(f"preset={preset!r}: choose one of {sorted(PRESETS)}")
    return DiTConfig(vocab_size=vocab_size, **{**PRESETS[preset], **overrides}).validate()
