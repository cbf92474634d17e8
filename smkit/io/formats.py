"""The one entry point for model files: which format a path holds, and the reader or writer for it.

`load_pretrained(name_or_path)` takes a shipped model's name or a path and tells the format apart:
- an smkit checkpoint folder (`smkit.json`): a whole model ("model" or "hf" kind, `smkit.io.model_files`) or a
  PEFT adapter over a base (`smkit.io.adapters`);
- a Lightning `.ckpt` of the soft-masking paper's code, or a folder in MDLM's Hugging Face layout
  (`smkit.io.paper_formats`: the DiT, read without running the file's code; `ema=` picks the weights);
- a LLaDA or Dream folder (`smkit.io.native_hf`: transformers' own decoders, none of the folder's code run),
  wrapped by `smkit.from_hf`.
`save_pretrained(model, path)` writes an smkit folder: an adapter checkpoint for a model carrying an adapter, else a
whole model. `DiffusionLM.save_pretrained` / `.load_pretrained` call these.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import checkpoint as ckpt
from ..models.denoiser import DiffusionLM
from .adapters import load_adapter, save_adapter
from .hf import from_hf
from .model_files import checkpoint_kind, checkpoint_path, load_model, model_kind, save_model
from .native_hf import CONFIG, native_format_of, read_config, supported_types
from .paper_formats import load_paper_model, paper_format


def load_pretrained(name_or_path: str | Path | None = None, trust_remote_code: bool = False, *,
                    ema: bool | None = None, tokenizer=None):
    """A shipped model by name (None: the default, `smkit.DEFAULT_PRETRAINED`) or the model at a path, in eval
    mode. `trust_remote_code` is passed on to Hugging Face only when True.

    For a paper-format file (a Lightning .ckpt, an MDLM Hugging Face folder): `ema` None takes its EMA weights when
    it has them, True requires them, False takes the raw ones (`model.source` says which); `tokenizer` is a tokenizer
    object or a local folder (GPT-2's for the paper's models; without one, ids decode only as ids). An smkit folder
    holds one set of weights and its own tokenizer: `ema=True` and `tokenizer=` are errors there.

    For a LLaDA or Dream folder: `tokenizer` (a tokenizer object or a local folder) replaces the folder's own;
    `smkit.from_hf` takes the same folders with more options (dtype, seq_len, mask_id, sm)."""
    path = checkpoint_path(name_or_path)
    if paper_format(path) is not None:
        return load_paper_model(path, ema=ema, tokenizer=tokenizer)
    if native_format_of(path) is not None:
        if ema is not None:
            raise ckpt.CheckpointError(f"ema={ema!r} applies to the paper's formats; {str(path)!r} is a "
                                       f"{read_config(path)['model_type']} folder with one set of weights")
        return from_hf(path, tokenizer=tokenizer).eval()
    if path.is_dir() and not ckpt.is_checkpoint(path) and (path / CONFIG).is_file():
        raise ckpt.CheckpointError(f"{str(path)!r} is a Hugging Face folder of model_type "
                                   f"{read_config(path).get('model_type')!r}; load_pretrained reads smkit folders, "
                                   f"the paper's formats and folders of the model types it builds natively "
                                   f"(supported: {supported_types()}); wrap any other denoiser with "
                                   f"smkit.from_hf(path, ...)")
    if ema or tokenizer is not None:
        given = "ema=True" if ema else "tokenizer="
        raise ckpt.CheckpointError(f"{given} applies to the paper's formats (a Lightning .ckpt, an MDLM Hugging "
                                   f"Face folder); {str(path)!r} is an smkit folder with one set of weights and its "
                                   f"own tokenizer")
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
