"""Backbones: Hugging Face encoders built from a config, taking `inputs_embeds` and returning logits.

ModernBERT is the default. Timed on this project's 2-core CPU at 256 wide x 4 layers (vocabulary 1024,
batch 32 x 128), BERT is the faster step (7.6k against 5.5k tokens/s; `python benchmarks/backbones.py`),
but BERT's post-LayerNorm blocks sit on the unigram plateau of the MDLM loss for thousands of updates: a
3000-update BERT run on Shakespeare ended at a validation bound of 5.74 nats/token, a model whose
predictions ignored the context. ModernBERT (pre-norm, rotary positions) leaves that plateau within
~100 updates (char-level Shakespeare, 2 layers: 3.35 nats after 200 updates against BERT's 3.70), so it
wins per unit of wall clock. BERT stays available (`backbone: bert`).

`dit` is the diffusion transformer of MDLM and the soft-masking paper (`smkit.models.dit`, smkit's own module):
adaLN conditioning, rotary attention, an output layer not tied to the embedding; `cond_dim` and
`time_conditioning` apply to it only, and its MLP is `intermediate_size / hidden_size` times wider than the model.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from ..core.errors import ConfigError
from .dit import MODEL_TYPE as DIT_MODEL_TYPE, DiT, DiTConfig

BACKBONES = ("bert", "modernbert", "dit")


@dataclass
class BackboneConfig:
    kind: str = "modernbert"
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    dropout: float = 0.0
    cond_dim: int = 128                 # dit: width of the conditioning vector feeding adaLN
    time_conditioning: bool = False     # dit: condition on sigma (MDLM: off, i.e. sigma = 0)

    def validate(self) -> "BackboneConfig":
        if self.kind not in BACKBONES:
            raise ConfigError(f"backbone={self.kind!r}: choose one of {BACKBONES}")
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r}: must be an integer >= 1")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout!r}: must lie in [0, 1)")
        if self.kind == "dit":
            dit_config(self, vocab_size=3, seq_len=2)    # the DiT's own checks (cond_dim, head width, MLP ratio)
        return self


def hf_config(cfg: BackboneConfig, vocab_size: int, seq_len: int):
    """The transformers config for a backbone of this shape."""
    from transformers import BertConfig, ModernBertConfig

    cfg.validate()
    if cfg.kind == "dit":
        return dit_config(cfg, vocab_size, seq_len)
    if cfg.kind == "bert":
        return BertConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                          num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
                          max_position_embeddings=seq_len, type_vocab_size=1, hidden_dropout_prob=cfg.dropout,
                          attention_probs_dropout_prob=cfg.dropout, pad_token_id=0)
    return ModernBertConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                            num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
                            max_position_embeddings=seq_len, global_attn_every_n_layers=1, local_attention=seq_len,
                            mlp_dropout=cfg.dropout, attention_dropout=cfg.dropout, embedding_dropout=cfg.dropout,
                            pad_token_id=0, bos_token_id=0, eos_token_id=0, cls_token_id=0, sep_token_id=0)


def build_from_hf_config(config_dict: dict) -> nn.Module:
    """A randomly initialised masked LM from a saved transformers config dict (no remote code)."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    d = dict(config_dict)
    if d.get("model_type") == DIT_MODEL_TYPE:
        return DiT(DiTConfig.from_dict(d))
    model_type = d.pop("model_type")
    config = AutoConfig.for_model(model_type, **d)
    config._attn_implementation = "sdpa"
    return AutoModelForMaskedLM.from_config(config)


def dit_config(cfg: BackboneConfig, vocab_size: int, seq_len: int) -> DiTConfig:
    """The `DiTConfig` of a `dit` backbone of this shape."""
    if cfg.intermediate_size % cfg.hidden_size:
        raise ConfigError(f"intermediate_size={cfg.intermediate_size}: a dit's MLP width must be a multiple of "
                          f"hidden_size={cfg.hidden_size} (the paper's: 4 x hidden_size)")
    return DiTConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                     num_heads=cfg.num_heads, cond_dim=cfg.cond_dim, max_seq_len=seq_len,
                     mlp_ratio=cfg.intermediate_size // cfg.hidden_size, dropout=cfg.dropout,
                     time_conditioning=cfg.time_conditioning).validate()


def dit_backbone_config(dit: DiTConfig) -> BackboneConfig:
    """The `BackboneConfig` of a DiT of this shape (the inverse of `dit_config`)."""
    return BackboneConfig("dit", dit.hidden_size, dit.num_layers, dit.num_heads, dit.mlp_ratio * dit.hidden_size,
                          dit.dropout, dit.cond_dim, dit.time_conditioning)
