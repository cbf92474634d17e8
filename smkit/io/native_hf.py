"""LLaDA and Dream folders opened without their code: config.json and safetensors weights (one file, or shards
named by `model.safetensors.index.json`) become transformers' own Llama / Qwen2 decoder run both ways
(`smkit.models.bidirectional`), the weights mapped by name (`smkit.io.native_formats`).

Every check runs on config.json and the safetensors headers before a weight is read or anything is computed:
the model type, the settings, the weight names (missing and extra ones listed), the files an index names,
each weight's shape against the config, the mask id. Nothing in the folder is imported or executed: `.py` files
and `auto_map` are ignored, the tokenizer is read with transformers' own classes from its data files.
`smkit.from_hf` and `smkit.load_pretrained` come here for such folders.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.config import is_int
from ..core.errors import CheckpointError, DenoiserError
from ..models.bidirectional import DecoderShape, empty_decoder, expected_weights, with_weights
from .native_formats import NATIVE_FORMATS, NativeFormat

CONFIG = "config.json"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}
_PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.ckpt")


@dataclass
class NativeModel:
    """A loaded folder: the decoder and what the wrapper needs to know about it."""
    backbone: nn.Module
    format: NativeFormat
    shape: DecoderShape
    mask_id: int


def read_config(path: Path) -> dict:
    file = Path(path) / CONFIG
    try:
        config = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file} cannot be read as JSON: {err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(config).__name__}")
    return config


def native_format_of(path) -> NativeFormat | None:
    """The native format of a local folder (LLaDA, Dream), or None when it is not one (or not a model folder)."""
    path = Path(path).expanduser()
    if not (path / CONFIG).is_file():
        return None
    return NATIVE_FORMATS.get(read_config(path).get("model_type"))


def supported_types() -> list[str]:
    return sorted(NATIVE_FORMATS)


# ---------------------------------------------------------------- weights: names, files, shapes (headers only)

def weight_files(path: Path) -> dict[str, Path]:
    """Weight name -> the safetensors file holding it."""
    index, single = path / INDEX, path / SINGLE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text()).get("weight_map")
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            raise CheckpointError(f"{index} cannot be read as a shard index: {err}") from None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CheckpointError(f"{index}: expected a 'weight_map' object of weight name -> file name")
        missing = sorted({f for f in weight_map.values() if not (path / f).is_file()})
        if missing:
            raise CheckpointError(f"{index} names shard files that are not in {str(path)!r}: {missing}")
        return {name: path / f for name, f in weight_map.items()}
    if single.is_file():
        return {name: single for name in _header(single)}
    pickled = [f for f in _PICKLED if (path / f).is_file()]
    if pickled:
        raise CheckpointError(f"model={str(path)!r} holds its weights as pickle ({pickled}); smkit reads only "
                              f"safetensors ({SINGLE} or {INDEX} with its shards), which cannot run code")
    raise CheckpointError(f"model={str(path)!r} holds no weights: expected {SINGLE} or {INDEX} with its shards")


def _header(file: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, dtype) of every tensor in a safetensors file, from its header alone."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n)) if 0 < n <= size - 8 else None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{file} cannot be read as safetensors: {err}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file} cannot be read as safetensors: no valid header")
    return {name: (tuple(meta["shape"]), meta["dtype"]) for name, meta in header.items() if name != "__metadata__"}


def _found_weights(files: dict[str, Path]) -> dict[str, tuple[tuple[int, ...], str]]:
    headers = {f: _header(f) for f in sorted(set(files.values()))}
    found, absent = {}, []
    for name, f in files.items():
        if name in headers[f]:
            found[name] = headers[f][name]
        else:
            absent.append(f"{name} (in {f.name})")
    if absent:
        raise CheckpointError(f"the shard index names weights its files do not hold: {_listed(absent)}")
    return found


def _listed(names, most: int = 12) -> str:
    names = sorted(names)
    more = f" ... and {len(names) - most} more" if len(names) > most else ""
    return f"{names[:most]}{more}"


def check_weights(path: Path, fmt: NativeFormat, decoder: nn.Module) -> tuple[dict[str, Path], torch.dtype]:
    """Folder name -> file of every weight the decoder needs, after checking names and shapes; and the dtype the
    input embedding is stored in."""
    files = weight_files(path)
    found = _found_weights(files)
    expected = {fmt.to_folder(name): size for name, size in expected_weights(decoder).items()}
    missing, extra = set(expected) - set(found), set(found) - set(expected)
    if missing or extra:
        parts = ([f"missing {len(missing)}: {_listed(missing)}"] if missing else []) + \
                ([f"not part of a {fmt.name} model of this config {len(extra)}: {_listed(extra)}"] if extra else [])
        raise CheckpointError(f"model={str(path)!r}: the weights do not match a {fmt.name} model built from its "
                              f"config.json; {'; '.join(parts)}")
    wrong = [f"{name}: {found[name][0]} in the weights, {size} from config.json"
             for name, size in expected.items() if tuple(found[name][0]) != tuple(size)]
    if wrong:
        raise DenoiserError(f"model={str(path)!r}: config.json and the weights disagree on sizes: {_listed(wrong, 6)}")
    stored = found[fmt.to_folder("model.embed_tokens.weight")][1]
    if stored not in _DTYPES:
        raise CheckpointError(f"model={str(path)!r}: the input embedding is stored as {stored}; expected one of "
                              f"{sorted(_DTYPES)}")
    return {name: files[name] for name in expected}, _DTYPES[stored]


# ---------------------------------------------------------------- the model

def load_native(path, mask_id: int | None = None, dtype: torch.dtype | None = None) -> NativeModel:
    """The decoder of a LLaDA or Dream folder with its weights (in `dtype`; None: as stored), in eval mode,
    and its mask id (`mask_id`, else config.json's). Raises before reading any weight when something is off."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if not (path / CONFIG).is_file():
        raise DenoiserError(f"model={str(path)!r}: not a local model folder (no {CONFIG} there)")
    config = read_config(path)
    fmt = NATIVE_FORMATS.get(config.get("model_type"))
    if fmt is None:
        raise DenoiserError(f"model={str(path)!r}: model_type {config.get('model_type')!r} is not one smkit loads "
                            f"natively; supported: {supported_types()} (other models: smkit.from_hf)")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise DenoiserError(f"dtype={dtype!r}: give a floating torch dtype (torch.float32, torch.bfloat16, ...) "
                            f"or None to keep the stored one")
    where = str(path)
    shape = fmt.shape(config, where)
    mask = fmt.mask_id(config) if mask_id is None else mask_id
    source = "mask_id" if mask_id is not None else f"{CONFIG}'s mask_token_id"
    if not is_int(mask) or not 0 <= mask < shape.vocab_rows:
        raise DenoiserError(f"model={where!r}: the mask id {mask!r} ({source}) is outside the vocabulary: the "
                            f"model has {shape.vocab_rows} embedding rows, ids 0..{shape.vocab_rows - 1}")
    decoder = empty_decoder(shape)
    names, stored = check_weights(path, fmt, decoder)
    dtype = stored if dtype is None else dtype
    back = {fmt.to_folder(n): n for n in expected_weights(decoder)}
    weights = {}
    for file in sorted(set(names.values())):
        for name, tensor in load_file(str(file)).items():
            if name in back:
                weights[back[name]] = tensor if tensor.dtype == dtype else tensor.to(dtype)
    return NativeModel(with_weights(decoder, weights), fmt, shape, int(mask))


# ---------------------------------------------------------------- the tokenizer

def native_tokenizer(path, mask_id: int, required: bool = False):
    """The folder's tokenizer read from data files by transformers' own classes (tokenizer.json, else a byte-level
    BPE vocab.json + merges.txt as Dream ships), with its mask token set to `mask_id`; None when it has none
    (an error when `required`)."""
    from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

    path = Path(path).expanduser()
    if (path / "tokenizer.json").is_file():
        tok = PreTrainedTokenizerFast.from_pretrained(str(path))
    elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        tok = Qwen2Tokenizer.from_pretrained(str(path))
    elif required:
        raise DenoiserError(f"tokenizer={str(path)!r}: no tokenizer.json, nor vocab.json with merges.txt, there")
    else:
        return None
    if tok.mask_token_id is None and mask_id < len(tok):
        tok.mask_token = tok.convert_ids_to_tokens(mask_id)
    if tok.mask_token_id is not None and tok.mask_token_id != mask_id:
        raise DenoiserError(f"model={str(path)!r}: the tokenizer's mask token {tok.mask_token!r} has id "
                            f"{tok.mask_token_id}, but the model's mask id is {mask_id}; pass mask_id= or "
                            f"tokenizer= to say which is meant")
    return tok
