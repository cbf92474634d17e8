"""PEFT adapters (LoRA, DoRA) on a denoiser's backbone; saved with the SM scalars and a note of their base.

`add_adapter` injects the adapter layers in place (the backbone keeps its type and module names) and freezes
every other backbone weight; the three SM scalars stay trainable beside the adapters. An adapter checkpoint
holds the adapter weights, the SM scalars, the model config, the tokenizer and what its base is (directory,
class, shape); `load_adapter` (or `smkit.load_pretrained`) rebuilds the base from that directory and puts the
adapter back.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as ckpt
from ..core.errors import AdapterError, SmkitError
from .hf import base_identity, from_hf
from .hf_load import load_hf_tokenizer
from .native_formats import NATIVE_FORMATS
from ..models.denoiser import DiffusionLM
from ..models.config import ModelConfig

ADAPTER_METHODS = ("lora", "dora")
ADAPTER_FILE = "adapter.safetensors"
ADAPTER_NAME = "default"
# The paper's recipe adapts the attention projections q, k, v, o; their names in common architectures.
ATTENTION_TARGETS = (
    ("q_proj", "k_proj", "v_proj", "o_proj"),                  # Llama, Qwen2, Mistral, Dream, ...
    ("query", "key", "value", "attention.output.dense"),        # BERT, RoBERTa
    ("attn.Wqkv", "attn.Wo"),                                   # ModernBERT (fused q, k, v)
    ("attn_qkv", "attn_out"),                                    # smkit's DiT (fused q, k, v)
)


def add_adapter(model: DiffusionLM, method: str = "dora", r: int = 16, alpha: float | None = None,
                target_modules=None, dropout: float = 0.0) -> DiffusionLM:
    """Add a LoRA or DoRA adapter to `model.backbone` in place and freeze the backbone's own weights.

    method: "lora" or "dora". r: rank. alpha: scaling numerator (default 2 r; the update is scaled by
    alpha / r). target_modules: names of the layers to adapt (a module matches when its name is the given one
    or ends with "." + it), a regular expression matched against full names, or "all-linear"; default: the
    attention projections q, k, v, o. dropout: on the adapter's input. Returns `model`."""
    spec = _spec(model, method, r, alpha, target_modules, dropout)
    inject(model, spec)
    return model


def _spec(model, method, r, alpha, target_modules, dropout) -> dict:
    if not isinstance(model, DiffusionLM):
        raise AdapterError(f"model: expected a smkit DiffusionLM (see smkit.from_hf), got {type(model).__name__}")
    if model.adapter is not None:
        raise AdapterError(f"the model already carries a {model.adapter['method']} adapter; one adapter per model")
    if method not in ADAPTER_METHODS:
        raise AdapterError(f"method={method!r}: choose one of {list(ADAPTER_METHODS)}")
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise AdapterError(f"r={r!r}: the adapter rank must be an integer >= 1")
    alpha = 2 * r if alpha is None else alpha
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise AdapterError(f"alpha={alpha!r}: must be a number > 0")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise AdapterError(f"dropout={dropout!r}: must lie in [0, 1)")
    targets = _check_targets(model.backbone, _decoder_names(model, target_modules))
    return {"method": method, "r": r, "alpha": alpha, "target_modules": targets, "dropout": float(dropout)}


def _decoder_names(model: DiffusionLM, target_modules):
    """A natively loaded model's layers under its authors' names (LLaDA's attn_out, ff_proj, ff_out, ...) -> their
    names in the transformers decoder smkit built it as (o_proj, gate_proj, down_proj, ...); others unchanged."""
    fmt = NATIVE_FORMATS.get((model.hf_source or {}).get("native"))
    if fmt is None or not isinstance(target_modules, (list, tuple, set)):
        return target_modules
    aliases = dict(fmt.module_aliases)
    return [aliases.get(t, t) if isinstance(t, str) else t for t in target_modules]


def _adaptable(backbone: nn.Module) -> dict[str, nn.Module]:
    """Modules PEFT's LoRA can wrap: linear, embedding and convolution layers, by full name."""
    kinds: tuple = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d)
    try:
        from transformers.pytorch_utils import Conv1D
        kinds += (Conv1D,)
    except ImportError:
        pass
    return {name: m for name, m in backbone.named_modules() if name and isinstance(m, kinds)}


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _check_targets(backbone: nn.Module, target_modules):
    layers = _adaptable(backbone)
    known = sorted({n.rsplit(".", 1)[-1] for n in layers})
    hint = f"layers it has: {known[:20]}" + (" ..." if len(known) > 20 else "")
    if target_modules is None:
        for names in ATTENTION_TARGETS:
            if all(any(_matches(n, t) for n in layers) for t in names):
                return list(names)
        raise AdapterError(f"target_modules=None: no attention projections under the usual names "
                           f"{[list(t) for t in ATTENTION_TARGETS]} in {type(backbone).__name__}; pass "
                           f"target_modules=[...]; {hint}")
    if target_modules == "all-linear":
        return target_modules
    if isinstance(target_modules, str):
        if not any(re.fullmatch(target_modules, n) for n in layers):
            raise AdapterError(f"target_modules={target_modules!r}: the pattern matches no adaptable layer of "
                               f"{type(backbone).__name__}; {hint}")
        return target_modules
    if not isinstance(target_modules, (list, tuple, set)) or not target_modules or \
            not all(isinstance(t, str) and t for t in target_modules):
        raise AdapterError(f"target_modules={target_modules!r}: give a list of module names, a regular "
                           f"expression, 'all-linear', or None for the attention projections")
    missing = [t for t in target_modules if not any(_matches(n, t) for n in layers)]
    if missing:
        raise AdapterError(f"target_modules: {missing} match no module of {type(backbone).__name__} that an "
                           f"adapter can wrap; {hint}")
    return sorted(target_modules)


def _peft_config(spec: dict):
    from peft import LoraConfig

    return LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], target_modules=spec["target_modules"],
                      lora_dropout=spec["dropout"], use_dora=spec["method"] == "dora", bias="none")


def inject(model: DiffusionLM, spec: dict) -> None:
    """Put fresh adapter layers described by `spec` into `model.backbone`; only they (and SM) stay trainable."""
    from peft import inject_adapter_in_model

    inject_adapter_in_model(_peft_config(spec), model.backbone, adapter_name=ADAPTER_NAME)
    for name, p in model.backbone.named_parameters():
        p.requires_grad_(".lora_" in name)
    model.adapter = dict(spec)


def adapter_parameters(model: DiffusionLM) -> list[nn.Parameter]:
    """The backbone parameters being trained: the adapter's when there is one, else the whole backbone's."""
    return [p for p in model.backbone.parameters() if p.requires_grad]


def adapter_state(model: DiffusionLM) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model.backbone, adapter_name=ADAPTER_NAME)


# ---------------------------------------------------------------- files

def save_adapter(model: DiffusionLM, path, extra: dict | None = None, extra_files=None) -> Path:
    """Write the adapter weights, the SM scalars (exact, float32), the model config, the tokenizer and the base
    it needs, atomically. `model.save_pretrained` comes here for a model that carries an adapter."""
    if model.adapter is None:
        raise AdapterError("the model carries no adapter; add one with smkit.add_adapter or save the whole model "
                           "with model.save_pretrained")

    def fill(tmp: Path) -> dict:
        tensors = {f"backbone.{k}": v for k, v in adapter_state(model).items()}
        tensors.update({f"soft_mask.{k}": v.float() for k, v in model.soft_mask.state_dict().items()})
        ckpt.save_tensors(tensors, tmp / ADAPTER_FILE)
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(str(tmp))
        if extra_files is not None:
            extra_files(tmp)
        return {"adapter": model.adapter, "model": replace(model.config, sm=model.soft_mask.params()).to_dict(),
                "soft_mask": model.soft_mask.values(), "base": model.hf_source, **(extra or {})}
    return ckpt.write_checkpoint(path, fill)


def load_adapter(path, base=None, *, trust_remote_code: bool = False, tokenizer=None, dtype=None) -> DiffusionLM:
    """A model rebuilt from an adapter checkpoint: its base (the directory it records, or `base=`: a directory,
    a Hugging Face module, or a DiffusionLM, which gets the adapter in place), then the adapter and the SM
    scalars. `trust_remote_code` is passed on only when True; `dtype` loads the base's weights in that dtype.
    Returned in eval mode, on the CPU unless `base` sat elsewhere (move it with `.to(device)`)."""
    from peft import set_peft_model_state_dict

    path = Path(path).expanduser()
    meta = ckpt.read_manifest(path)
    if "adapter" not in meta:
        raise ckpt.CheckpointError(f"path={str(path)!r} is a whole-model checkpoint, not an adapter; use "
                                   f"smkit.load_pretrained")
    cfg, source = ModelConfig.from_dict(meta["model"]), meta.get("base") or {}
    if isinstance(base, DiffusionLM):
        model = base
        if model.adapter is not None:
            raise AdapterError("base= already carries an adapter; pass a model without one")
    else:
        base = source.get("path") if base is None else base
        if base is None:
            raise AdapterError(f"adapter {str(path)!r} records no base directory (its base was built in memory); "
                               f"pass base= (a directory, a Hugging Face model or a DiffusionLM)")
        if tokenizer is None:
            tokenizer = load_hf_tokenizer(path, trust_remote_code)
        model = from_hf(base, tokenizer, mask_id=cfg.mask_id, add_mask_token=bool(source.get("add_mask_token")),
                        shift_logits=cfg.shift_logits, bidirectional=bool(source.get("bidirectional")),
                        trust_remote_code=trust_remote_code, seq_len=cfg.seq_len, dtype=dtype, sm=cfg.sm,
                        schedule=cfg.schedule)
        model.hf_source = {**source, "path": str(Path(base).resolve()) if isinstance(base, (str, Path)) else None}
    _check_base(path, model, cfg, source)
    tensors = ckpt.load_tensors(path / ADAPTER_FILE)
    inject(model, meta["adapter"])
    weights = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    expected = set(adapter_state(model))
    if set(weights) != expected:
        raise ckpt.CheckpointError(f"adapter {str(path)!r} does not fit its config: missing "
                                   f"{sorted(expected - set(weights))[:5]}, unexpected {sorted(set(weights) - expected)[:5]}")
    set_peft_model_state_dict(model.backbone, weights, adapter_name=ADAPTER_NAME)
    sm = {k[len("soft_mask."):]: v for k, v in tensors.items() if k.startswith("soft_mask.")}
    model.soft_mask.k = cfg.sm.k
    model.soft_mask.load_state_dict(sm, strict=True)
    return model.eval()


def _check_base(path, model: DiffusionLM, cfg, source: dict) -> None:
    mine = base_identity(model.backbone)
    wrong = {k: (mine[k], source[k]) for k in mine if k in source and source[k] is not None and mine[k] != source[k]}
    for name in ("vocab_size", "mask_id", "n_tokens", "shift_logits"):
        have, want = getattr(model.config, name), getattr(cfg, name)
        if name == "mask_id":
            have = model.mask_id
        if want is not None and have != want:
            wrong[name] = (have, want)
    if wrong:
        raise AdapterError(f"adapter {str(path)!r} was trained on another base: " +
                           ", ".join(f"{k} is {have!r} here but {want!r} in the adapter" for k, (have, want)
                                     in wrong.items()))

