"""The one entry point for model files: which format a path holds, and the reader or writer for it.

`load_pretrained(name_or_path)` takes a shipped model's name or a path and tells the format apart:
- an smkit checkpoint folder (`smkit.json`): a whole model ("model" or "hf" kind, `smkit.io.model_files`) or a
  PEFT adapter over a base (`smkit.io.adapters`).
`save_pretrained(model, path)` writes an smkit folder: an adapter checkpoint for a model carrying an adapter, else a
whole model. `DiffusionLM.save_pretrained` / `.load_pretrained` call these.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint as ckpt
from ..models.denoiser import DiffusionLM
from .adapters import load_adapter, save_adapter
from .model_files import checkpoint_kind, checkpoint_path, load_model, model_kind, save_model


def load_pretrained(name_or_path: str | Path | None = None, trust_remote_code: bool = False):
    """A shipped model by name (None: the default, `smkit.DEFAULT_PRETRAINED`) or the model at a path, in eval
    mode. `trust_remote_code` is passed on to Hugging Face only when True."""
    path = checkpoint_path(name_or_path)
    meta = ckpt.read_manifest(path)
    if checkpoint_kind(meta) == "adapter":
        return load_adapter(path, trust_remote_code=trust_remote_code)
    return load_model(path, DiffusionLM, trust_remote_code=trust_remote_code)


def save_pretrained(model, path, dtype: torch.dtype = torch.float32, extra: dict | None = None,
                    extra_files=None) -> Path:
    """Write `model` as an smkit checkpoint folder, atomically (see `smkit.io.model_files.save_model`; a model
    carrying a PEFT adapter saves the adapter, the SM scalars and a note of its base)."""
    if model_kind(model) == "adapter":
        return save_adapter(model, path, extra=extra, extra_files=extra_files)
    return save_model(model, path, dtype=dtype, extra=extra, extra_files=extra_files)
