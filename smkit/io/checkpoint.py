"""Checkpoint files: safetensors + JSON, written atomically, checked on load; no pickle anywhere.

A checkpoint is a folder whose `smkit.json` lists every other file with its SHA-256. Writing goes to a
hidden sibling folder that is renamed into place only once complete, so an interrupted write leaves the
previous checkpoint intact; a folder that holds something else is never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.errors import CheckpointError, SmkitError

MANIFEST = "smkit.json"
FORMAT = "smkit-checkpoint"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")  # internal: json.dumps' protocol for a type it cannot write


def is_checkpoint(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_checkpoint(path, fill: Callable[[Path], dict]) -> Path:
    """Atomically (re)write checkpoint folder `path`. `fill(tmp_dir)` writes the files and returns the
    metadata stored in the manifest."""
    path = Path(path).expanduser()
    if path.exists() and not (path.is_dir() and (is_checkpoint(path) or not any(path.iterdir()))):
        raise CheckpointError(f"path={str(path)!r} exists and is not an smkit checkpoint; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        meta = fill(tmp)
        files = {f.name: _sha256(f) for f in sorted(tmp.iterdir()) if f.is_file()}
        write_json(tmp / MANIFEST, {"format": FORMAT, "format_version": FORMAT_VERSION, "files": files, **meta})
        for f in tmp.iterdir():  # make the bytes durable before the rename publishes them
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_manifest(path) -> dict:
    """The manifest of a checkpoint after checking that every listed file is present and intact."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"path={str(path)!r} is not a folder; expected an smkit checkpoint folder")
    if not is_checkpoint(path):
        raise CheckpointError(f"path={str(path)!r} is not an smkit checkpoint (no {MANIFEST})")
    try:
        meta = json.loads((path / MANIFEST).read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path / MANIFEST} is corrupted: {err}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path / MANIFEST}: format {meta.get('format')!r} is not {FORMAT!r}")
    for name, digest in meta.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: {name} is missing")
        if _sha256(f) != digest:
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or truncated: {name} fails its checksum")
    return meta


def save_tensors(tensors: dict[str, torch.Tensor], file: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(file))


def load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file} cannot be read as safetensors: {err}") from None


def flatten_optimizer(state: dict) -> tuple[dict, dict]:
    """torch optimizer state_dict -> (tensors for safetensors, JSON-able rest)."""
    tensors, scalars = {}, {}
    for idx, st in state["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{idx}.{key}"] = val
            else:
                scalars[f"{idx}.{key}"] = val
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict, rest: dict) -> dict:
    state: dict = {}
    for name, val in list(tensors.items()) + list(rest["scalars"].items()):
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = val
    return {"state": state, "param_groups": rest["param_groups"]}
