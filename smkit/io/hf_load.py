"""Hugging Face models and tokenizers from local folders: the Auto class a directory needs, its weights and
tokenizer, and a backbone rebuilt from what a wrapped model's checkpoint recorded. Nothing here builds a smkit
model: `smkit.hf` wraps what this loads, `smkit.saving` reads wrapped checkpoints with it. Code shipped with a
model runs only with an explicit `trust_remote_code=True`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError
from ..core.errors import DenoiserError, SmkitError

_AUTO_ORDER = ("AutoModelForMaskedLM", "AutoModel", "AutoModelForCausalLM")  # for models that ship their code


def load_backbone(path: Path, trust_remote_code: bool, dtype=None) -> nn.Module:
    import transformers

    if not (path / "config.json").is_file():
        raise DenoiserError(f"model={str(path)!r}: not a local model directory (no config.json there); "
                            f"models are loaded from local folders only, nothing is downloaded")
    auto = _auto_class(json.loads((path / "config.json").read_text()), path, trust_remote_code)
    kwargs = {"trust_remote_code": True} if trust_remote_code else {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    return getattr(transformers, auto).from_pretrained(str(path), **kwargs).eval()


def _auto_class(config: dict, path: Path, trust_remote_code: bool) -> str:
    """The transformers Auto class to load a directory with; remote code is refused unless trusted."""
    from transformers.models.auto import modeling_auto
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type, auto_map = config.get("model_type"), config.get("auto_map") or {}
    if model_type not in CONFIG_MAPPING_NAMES or (trust_remote_code and auto_map):
        if not auto_map:
            raise DenoiserError(f"model={str(path)!r}: model_type {model_type!r} is unknown to this transformers "
                                f"and the directory ships no code (no auto_map in config.json)")
        if not trust_remote_code:
            raise DenoiserError(f"model={str(path)!r} runs code shipped with it ({sorted(set(auto_map.values()))}); "
                                f"read that code, then pass trust_remote_code=True to run it")
        for name in _AUTO_ORDER:
            if name in auto_map:
                return name
        raise DenoiserError(f"model={str(path)!r}: its auto_map names no model class among {list(_AUTO_ORDER)}")
    if model_type in modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "AutoModelForMaskedLM"
    if model_type in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "AutoModelForCausalLM"
    return "AutoModel"


def has_tokenizer(path: Path) -> bool:
    return any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))


def load_hf_tokenizer(path, trust_remote_code: bool = False):
    """The tokenizer saved beside a wrapped model's checkpoint, or None when there is none."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not has_tokenizer(path):
        return None
    return AutoTokenizer.from_pretrained(str(path), **({"trust_remote_code": True} if trust_remote_code else {}))


# ---------------------------------------------------------------- checks and choices


def input_embedding(backbone: nn.Module) -> nn.Module:
    """The model's input embedding module (a 2-D `.weight`), or a clear error."""
    get = getattr(backbone, "get_input_embeddings", None)
    try:
        emb = get() if callable(get) else None
    except (NotImplementedError, AttributeError):
        emb = None
    weight = getattr(emb, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise DenoiserError(f"the model ({type(backbone).__name__}) has no input embedding matrix: "
                            f"get_input_embeddings() gave {type(emb).__name__}; soft-masking mixes rows of that "
                            f"matrix, so the model needs one (an nn.Embedding) and must accept inputs_embeds")
    return emb



def backbone_from_manifest(meta: dict, path, trust_remote_code: bool = False) -> nn.Module:
    """A model of the class and config a checkpoint recorded, for its weights to be loaded into: a transformers
    class built from the saved config (on the meta device for a LLaDA / Dream decoder), or (a class shipped as code) the base directory loaded again, which
    needs trust_remote_code=True."""
    import transformers
    from transformers import AutoConfig, PreTrainedModel

    name = meta.get("backbone_class")
    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
        d = dict(meta["backbone"])
        config = AutoConfig.for_model(d.pop("model_type"), **d)
        if (meta.get("hf_source") or {}).get("native"):
            # a LLaDA / Dream decoder: built empty (no memory, no random init); smkit.io.model_files assigns the
            # stored tensors to it, so an 8B model is allocated once, in the dtype it was saved in
            with torch.device("meta"):
                return cls(config)
        return cls(config)
    base = (meta.get("hf_source") or {}).get("path")
    if not trust_remote_code or base is None or not Path(base).is_dir():
        why = ("pass trust_remote_code=True to run that code again" if base and Path(base).is_dir() else
               f"its base directory {base!r} is gone")
        raise CheckpointError(f"checkpoint {str(path)!r}: the backbone class {name!r} is code shipped with the "
                              f"model in {base!r}, not part of transformers; {why}")
    backbone = load_backbone(Path(base), trust_remote_code=True)
    rows = meta["model"]["vocab_size"]
    if input_embedding(backbone).weight.shape[0] != rows:       # grown by add_mask_token
        backbone.resize_token_embeddings(rows, mean_resizing=False)
    if (meta.get("hf_source") or {}).get("bidirectional"):
        backbone.config.is_causal = False
    return backbone
