"""What a LLaDA or a Dream folder means: its config.json read as a `DecoderShape`, the name each of its weights
has in the transformers decoder that replaces the authors' code, where the mask id comes from, and whether logits
are shifted. Facts read from the authors' public modeling code (LLaDA's `configuration_llada.py` /
`modeling_llada.py`, Dream's `configuration_dream.py` / `modeling_dream.py`); no code of theirs runs.

A setting absent from config.json takes the value the authors' config class gives it. A setting whose value the
replacement decoder does not compute the same way is refused by name, before any weight is read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..core.config import is_int
from ..core.errors import DenoiserError
from ..models.bidirectional import DecoderShape


@dataclass(frozen=True)
class NativeFormat:
    model_type: str          # config.json's model_type
    name: str                # for messages
    shift_logits: bool       # logits for position i come from the output at i - 1
    shape: Callable[[dict, str], DecoderShape]
    to_folder: Callable[[str], str]   # decoder weight name -> the folder's weight name
    mask_id: Callable[[dict], object]
    # the authors' layer names -> the decoder's, for adapters' target_modules
    module_aliases: tuple[tuple[str, str], ...] = ()


def _sizes(cfg: dict, where: str, names: dict[str, object]) -> dict:
    """The integer settings `names` (name -> default, or ... when required), each checked to be >= 1."""
    out = {}
    for name, default in names.items():
        value = cfg.get(name, default)
        if value is ...:
            raise DenoiserError(f"{where}: config.json has no {name!r}; it is needed to build the model")
        if not is_int(value) or value < 1:
            raise DenoiserError(f"{where}: config.json has {name}={value!r}; it must be an integer >= 1")
        out[name] = value
    return out


def _float(cfg: dict, where: str, name: str, default: float) -> float:
    value = cfg.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise DenoiserError(f"{where}: config.json has {name}={value!r}; it must be a number > 0")
    return float(value)


def _heads(where: str, hidden: int, heads: int, kv_heads: int, names: tuple[str, str, str]) -> None:
    h, q, kv = names
    if hidden % heads:
        raise DenoiserError(f"{where}: config.json has {h}={hidden}, not divisible by {q}={heads}")
    if heads % kv_heads:
        raise DenoiserError(f"{where}: config.json has {q}={heads}, not divisible by {kv}={kv_heads}")


def _unsupported(where: str, cfg: dict, required: dict[str, tuple[object, object]], kind: str) -> None:
    """Refuse settings (name -> (the authors' default, the values supported)) this loader does not reproduce."""
    bad = []
    for name, (default, allowed) in required.items():
        value = cfg.get(name, default)
        if value not in allowed:
            bad.append(f"{name}={value!r} (supported: {', '.join(map(repr, allowed))})")
    if bad:
        raise DenoiserError(f"{where}: this {kind} folder uses settings smkit's native loader does not reproduce: "
                            f"{'; '.join(bad)}. The published LLaDA and Dream checkpoints use the supported ones")


# ---------------------------------------------------------------- LLaDA (OLMo-style blocks of the "llama" type)

# name: (the authors' default when absent, the values whose arithmetic a Llama decoder reproduces)
_LLADA_FIXED = {
    "block_type": ("sequential", ("llama",)),
    "activation_type": ("swiglu", ("silu",)),
    "layer_norm_type": ("default", ("rms",)),
    "rope": (False, (True,)),
    "alibi": (False, (False,)),
    "include_bias": (False, (False,)),
    "include_qkv_bias": (False, (False, None)),
    "bias_for_layer_norm": (None, (False, None)),
    "layer_norm_with_affine": (True, (True,)),
    "attention_layer_norm": (False, (False,)),
    "input_emb_norm": (False, (False,)),
    "scale_logits": (False, (False,)),
    "block_group_size": (1, (1,)),
}


def _llada_shape(cfg: dict, where: str) -> DecoderShape:
    _unsupported(where, cfg, _LLADA_FIXED, "LLaDA")
    s = _sizes(cfg, where, {"d_model": ..., "n_heads": ..., "n_layers": ..., "vocab_size": ...})
    rows = cfg.get("embedding_size") or s["vocab_size"]
    if not is_int(rows) or rows < s["vocab_size"]:
        raise DenoiserError(f"{where}: config.json has embedding_size={rows!r}; it must be an integer >= "
                            f"vocab_size={s['vocab_size']}")
    kv = cfg.get("n_kv_heads")
    if kv is None:
        kv = 1 if cfg.get("multi_query_attention") else s["n_heads"]
    kv = _sizes({"n_kv_heads": kv}, where, {"n_kv_heads": ...})["n_kv_heads"]
    _heads(where, s["d_model"], s["n_heads"], kv, ("d_model", "n_heads", "n_kv_heads"))
    if cfg.get("mlp_hidden_size") is not None:
        mlp = _sizes(cfg, where, {"mlp_hidden_size": ...})["mlp_hidden_size"]
    else:
        mlp = _sizes(cfg, where, {"mlp_ratio": 4})["mlp_ratio"] * s["d_model"]
    tied = cfg.get("weight_tying", True)
    if not isinstance(tied, bool):
        raise DenoiserError(f"{where}: config.json has weight_tying={tied!r}; it must be true or false")
    return DecoderShape(family="llama", vocab_rows=rows, hidden=s["d_model"], layers=s["n_layers"],
                        heads=s["n_heads"], kv_heads=kv, intermediate=mlp,
                        max_positions=_sizes(cfg, where, {"max_sequence_length": 1024})["max_sequence_length"],
                        rms_eps=_float(cfg, where, "rms_norm_eps", 1e-5),
                        rope_theta=_float(cfg, where, "rope_theta", 10000.0), tied=tied, pad_id=None)


_LLADA_BLOCK = {
    "self_attn.q_proj": "q_proj", "self_attn.k_proj": "k_proj", "self_attn.v_proj": "v_proj",
    "self_attn.o_proj": "attn_out", "mlp.gate_proj": "ff_proj", "mlp.up_proj": "up_proj",
    "mlp.down_proj": "ff_out", "input_layernorm": "attn_norm", "post_attention_layernorm": "ff_norm",
}
_LLADA_TOP = {"model.embed_tokens.weight": "model.transformer.wte.weight", "model.norm.weight":
              "model.transformer.ln_f.weight", "lm_head.weight": "model.transformer.ff_out.weight"}
_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")


def _llada_name(name: str) -> str:
    if name in _LLADA_TOP:
        return _LLADA_TOP[name]
    m = _LAYER.fullmatch(name)
    if m is None or m.group(2) not in _LLADA_BLOCK:
        raise DenoiserError(f"no LLaDA name for the decoder weight {name!r}")
    return f"model.transformer.blocks.{m.group(1)}.{_LLADA_BLOCK[m.group(2)]}.{m.group(3)}"


# ---------------------------------------------------------------- Dream (Qwen2 blocks, q/k/v biases)

_DREAM_FIXED = {
    # Dream's attention ignores sliding windows (its SDPA path never applies one): any value is fine.
    "hidden_act": ("silu", ("silu", "gelu", "relu", "gelu_new", "gelu_pytorch_tanh")),
}


def _dream_shape(cfg: dict, where: str) -> DecoderShape:
    _unsupported(where, cfg, _DREAM_FIXED, "Dream")
    rope = cfg.get("rope_scaling")
    if rope is not None and (rope.get("rope_type") or rope.get("type")) != "default":
        raise DenoiserError(f"{where}: config.json has rope_scaling={rope!r}; smkit's native loader reproduces "
                            f"only plain rotary positions (rope_scaling null, as Dream-7B has)")
    s = _sizes(cfg, where, {"hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
                            "num_attention_heads": 32, "vocab_size": 151936, "max_position_embeddings": 32768})
    kv = cfg.get("num_key_value_heads")
    kv = _sizes({"n": s["num_attention_heads"] if kv is None else kv}, where, {"n": ...})["n"]
    _heads(where, s["hidden_size"], s["num_attention_heads"], kv,
           ("hidden_size", "num_attention_heads", "num_key_value_heads"))
    tied = cfg.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise DenoiserError(f"{where}: config.json has tie_word_embeddings={tied!r}; it must be true or false")
    pad = cfg.get("pad_token_id", 151643)
    if pad is not None and (not is_int(pad) or not 0 <= pad < s["vocab_size"]):
        raise DenoiserError(f"{where}: config.json has pad_token_id={pad!r}, not an id in [0, {s['vocab_size']})")
    return DecoderShape(family="qwen2", vocab_rows=s["vocab_size"], hidden=s["hidden_size"],
                        layers=s["num_hidden_layers"], heads=s["num_attention_heads"], kv_heads=kv,
                        intermediate=s["intermediate_size"], max_positions=s["max_position_embeddings"],
                        rms_eps=_float(cfg, where, "rms_norm_eps", 1e-6),
                        rope_theta=_float(cfg, where, "rope_theta", 10000.0), tied=tied,
                        activation=cfg.get("hidden_act", "silu"), pad_id=pad)


LLADA = NativeFormat("llada", "LLaDA", shift_logits=False, shape=_llada_shape, to_folder=_llada_name,
                     mask_id=lambda cfg: cfg.get("mask_token_id", 50256),
                     module_aliases=(("attn_out", "o_proj"), ("ff_proj", "gate_proj"), ("ff_out", "down_proj"),
                                     ("attn_norm", "input_layernorm"), ("ff_norm", "post_attention_layernorm")))
DREAM = NativeFormat("Dream", "Dream", shift_logits=True, shape=_dream_shape, to_folder=lambda name: name,
                     mask_id=lambda cfg: cfg.get("mask_token_id", 151666))
NATIVE_FORMATS = {f.model_type: f for f in (LLADA, DREAM)}
