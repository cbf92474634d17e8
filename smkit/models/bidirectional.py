"""Decoders that attend both ways, built from transformers' own Llama and Qwen2 classes.

LLaDA's blocks are Llama's (RMSNorm, rotary positions, SwiGLU, no biases) and Dream's are Qwen2's (the same with
biases on q, k and v); both attend without a causal mask. transformers 5 drops the causal mask of these classes
when `config.is_causal` is False (its mask builder then makes a bidirectional one, or none, and tells SDPA
`is_causal=False`), so no class of our own is needed. The decoder is built on the meta device (no memory, no random
initialisation: an 8B model would take minutes) and gets its weights from `with_weights`. No file I/O here:
`smkit.io.native_hf` reads folders.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.errors import DenoiserError

FAMILIES = ("llama", "qwen2")   # llama: no biases (LLaDA); qwen2: q, k, v biases (Dream)


@dataclass(frozen=True)
class DecoderShape:
    """Everything that decides a decoder's weights and arithmetic."""
    family: str
    vocab_rows: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_positions: int
    rms_eps: float
    rope_theta: float
    tied: bool = False
    activation: str = "silu"
    pad_id: int | None = None     # an embedding row that gets no gradient (Dream's padding_idx); None: none

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def parameter_count(self) -> int:
        kv = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv
        if self.family == "qwen2":
            attention += self.hidden + 2 * kv
        block = attention + 3 * self.hidden * self.intermediate + 2 * self.hidden
        head = 0 if self.tied else self.vocab_rows * self.hidden
        return self.vocab_rows * self.hidden + self.layers * block + self.hidden + head


def decoder_config(shape: DecoderShape):
    """The transformers config of a bidirectional decoder of this shape."""
    from transformers import LlamaConfig, Qwen2Config

    if shape.family not in FAMILIES:
        raise DenoiserError(f"family={shape.family!r}: choose one of {FAMILIES}")
    common = dict(vocab_size=shape.vocab_rows, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                  num_key_value_heads=shape.kv_heads, hidden_act=shape.activation,
                  max_position_embeddings=shape.max_positions, rms_norm_eps=shape.rms_eps,
                  rope_parameters={"rope_type": "default", "rope_theta": float(shape.rope_theta)},
                  tie_word_embeddings=shape.tied, pad_token_id=shape.pad_id, bos_token_id=None, eos_token_id=None,
                  use_cache=False, attention_dropout=0.0)
    if shape.family == "llama":
        config = LlamaConfig(attention_bias=False, mlp_bias=False, **common)
    else:
        config = Qwen2Config(use_sliding_window=False, **common)
    config.is_causal = False
    return config


def empty_decoder(shape: DecoderShape) -> nn.Module:
    """A `LlamaForCausalLM` / `Qwen2ForCausalLM` of this shape on the meta device, attending both ways."""
    from transformers import LlamaForCausalLM, Qwen2ForCausalLM

    cls = LlamaForCausalLM if shape.family == "llama" else Qwen2ForCausalLM
    with torch.device("meta"):
        return cls(decoder_config(shape))


def expected_weights(decoder: nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight the decoder needs (an output layer tied to the input embedding left out)."""
    shapes = {name: tuple(t.shape) for name, t in decoder.state_dict().items()}
    if decoder.config.tie_word_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes


def with_weights(decoder: nn.Module, weights: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> nn.Module:
    """The meta decoder holding `weights` (its own names, every one of `expected_weights`), in eval mode; the
    tensors are taken, not copied, when already in `dtype` (None: as given). Rotary tables are rebuilt on the
    weights' device."""
    if dtype is not None:
        weights = {k: v.to(dtype) for k, v in weights.items()}
    decoder.load_state_dict(weights, strict=False, assign=True)
    if decoder.config.tie_word_embeddings:
        decoder.lm_head.weight = decoder.get_input_embeddings().weight
    device = decoder.get_input_embeddings().weight.device
    for parent in list(decoder.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__.endswith("RotaryEmbedding"):   # buffers computed at init, never saved
                with torch.device(device):
                    setattr(parent, name, type(child)(decoder.config))
    left = [n for n, t in [*decoder.named_parameters(), *decoder.named_buffers()] if t.is_meta]
    if left:
        raise DenoiserError(f"no weights were given for {left[:8]}")
    return decoder.eval()


def random_decoder(shape: DecoderShape, dtype: torch.dtype = torch.float32, seed: int = 0, std: float = 0.02):
    """A decoder of this shape with random weights (benchmarks, tests): normal(0, std) matrices, unit norms,
    zero biases; drawn directly in `dtype`, one tensor at a time."""
    decoder = empty_decoder(shape)
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, size in expected_weights(decoder).items():
        if name.endswith("norm.weight"):
            weights[name] = torch.ones(size, dtype=dtype)
        elif name.endswith(".bias"):
            weights[name] = torch.zeros(size, dtype=dtype)
        else:
            weights[name] = torch.randn(size, generator=gen, dtype=torch.float32).to(dtype).mul_(std)
    return with_weights(decoder, weights)
