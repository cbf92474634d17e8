"""Saving and loading a `DiffusionLM`: the one module that tells a checkpoint's kind and reads and writes it.

Three kinds, told apart by the manifest (`checkpoint_kind`) or by the model (`model_kind`):
- "model": a backbone built by smkit: its config, the weights (safetensors) and tokenizer.json;
- "hf": a wrapped Hugging Face backbone (`smkit.from_hf`): the same files plus the backbone's class and the folder
  it came from, so that the backbone can be built again;
- "adapter": a PEFT adapter, the SM scalars and a note of the base (`smkit.io.adapters` reads and writes those).
A model trained by `smkit.train` carries its TrainConfig as a dict (`model.train_config`), saved and read back.
`smkit.io.formats` is the one entry point that tells every format apart and calls the reader here.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import torch

from . import checkpoint as ckpt
from ..models.backbones import build_from_hf_config
from ..models.bidirectional import with_weights
from .data import load_tokenizer
from .hf_load import backbone_from_manifest, load_hf_tokenizer
from ..models.config import ModelConfig

KINDS = ("model", "hf", "adapter")
WEIGHTS_FILE = "model.safetensors"
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
# The shipped models (scripts/ship_pretrained.py): SM / binary twins continued from one binary base per corpus,
# and a sudoku solver pair. The default is the model where SM acts most (docs/results.md: its gate opened and
# SM changes half its answers; the text models decode with lambda ~ 0).
PRETRAINED = ("python-sm", "python-binary", "shakespeare-sm", "shakespeare-binary", "sudoku-sm", "sudoku-binary")
DEFAULT_PRETRAINED = "sudoku-sm"


def model_kind(model) -> str:
    if model.adapter is not None:
        return "adapter"
    return "hf" if model.config.backbone is None else "model"


def checkpoint_kind(meta: dict) -> str:
    """The kind of the checkpoint whose manifest is `meta`."""
    if "adapter" in meta:
        return "adapter"
    return "hf" if meta["model"].get("backbone") is None else "model"


def train_config_of(meta: dict) -> dict | None:
    """The TrainConfig (as a dict) a checkpoint records: a final model's own, or a training checkpoint's."""
    return meta.get("train_config") or meta.get("trainer", {}).get("train_config")


def checkpoint_path(name_or_path: str | Path | None = None) -> Path:
    """The folder of a shipped model given by name (None: the default one), else `name_or_path` as a path to an
    existing checkpoint folder."""
    name_or_path = DEFAULT_PRETRAINED if name_or_path is None else name_or_path
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED:
        return PRETRAINED_DIR / name_or_path
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ckpt.CheckpointError(f"name_or_path={str(name_or_path)!r} is neither a shipped model {PRETRAINED} "
                                   f"nor an existing checkpoint folder")
    return path



def save_model(model, path, dtype: torch.dtype = torch.float32, extra: dict | None = None,
               extra_files=None) -> Path:
    """Write `model` (a whole model, not an adapter) to the checkpoint folder `path` atomically. `dtype` stores
    floating weights smaller (the SM scalars stay float32); `extra`: more manifest entries; `extra_files(tmp_dir)`
    may add files to the same folder."""
    kind = model_kind(model)

    def fill(tmp: Path) -> dict:
        tensors, tied = _untied_tensors(model, dtype)
        ckpt.save_tensors(tensors, tmp / WEIGHTS_FILE)
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(str(tmp))
        if extra_files is not None:
            extra_files(tmp)
        meta = {"model": replace(model.config, sm=model.soft_mask.params()).to_dict(),
                "backbone": model.backbone.config.to_dict(), "tied": tied, "soft_mask": model.soft_mask.values()}
        if model.train_config is not None:
            meta["train_config"] = model.train_config
        if getattr(model, "source", None) is not None:
            meta["source"] = model.source
        if kind == "hf":
            meta["backbone_class"] = type(model.backbone).__name__
            meta["hf_source"] = model.hf_source
        return {**meta, **(extra or {})}
    return ckpt.write_checkpoint(path, fill)


def _untied_tensors(model, dtype: torch.dtype) -> tuple[dict, dict]:
    """(tensors, tied): the state dict with each shared tensor stored once, `tied` mapping the other names to
    it; floating weights in `dtype`, the SM scalars as they are."""
    tensors, tied, seen = {}, {}, {}
    for name, value in model.state_dict().items():
        key = (value.data_ptr(), tuple(value.shape), value.dtype)
        if key in seen:
            tied[name] = seen[key]
            continue
        seen[key] = name
        if value.is_floating_point() and not name.startswith("soft_mask."):
            value = value.to(dtype)
        tensors[name] = value
    return tensors, tied


def load_model(path, model_class, trust_remote_code: bool = False):
    """The whole model in the checkpoint folder `path`, in eval mode, built as `model_class(config, backbone,
    tokenizer)` with its weights. `trust_remote_code` is passed on only when True."""
    path = Path(path).expanduser()
    meta = ckpt.read_manifest(path)
    kind = checkpoint_kind(meta)
    if kind == "adapter":
        raise ckpt.CheckpointError(f"{str(path)!r} is an adapter checkpoint: load it with smkit.load_pretrained")
    if kind == "hf":
        backbone = backbone_from_manifest(meta, path, trust_remote_code)
        tokenizer = load_hf_tokenizer(path, trust_remote_code)
    else:
        backbone = build_from_hf_config(meta["backbone"])
        tokenizer = load_tokenizer(path) if (path / "tokenizer.json").is_file() else None
    model = model_class(ModelConfig.from_dict(meta["model"]), backbone, tokenizer)
    model.hf_source = meta.get("hf_source")
    model.train_config = train_config_of(meta)
    model.source = meta.get("source")
    _load_weights(model, path, meta)
    return model.eval()


def _load_weights(model, path: Path, meta: dict) -> None:
    tensors = ckpt.load_tensors(path / WEIGHTS_FILE)
    for alias, source in meta.get("tied", {}).items():
        tensors[alias] = tensors[source]
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise ckpt.CheckpointError(f"checkpoint {str(path)!r} does not match its config: missing {missing[:5]}, "
                                   f"unexpected {unexpected[:5]}")
    for name, value in tensors.items():
        if value.shape != own[name].shape:
            raise ckpt.CheckpointError(f"checkpoint {str(path)!r}: {name} has shape {tuple(value.shape)}, "
                                       f"config says {tuple(own[name].shape)}")
    empty = any(t.is_meta for t in own.values())
    if empty:
        # a backbone built empty (hf_load.backbone_from_manifest) takes the stored tensors as they are; the rest
        # (the SM scalars) is copied below
        prefix = "backbone."
        with_weights(model.backbone, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        tensors = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=not empty)
