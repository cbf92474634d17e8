"""Reading a torch zip archive (`torch.save`, a Lightning `.ckpt`) without running anything it names.

A pickle is a small program: GLOBAL names an object by module and name, REDUCE calls it. An unrestricted load
calls whatever the file names (`os.system` included). Here every name goes through `_SafeUnpickler.find_class`,
which never hands out a foreign object:
- a short allow-list of harmless constructors (containers, numbers, bytes, `torch.Size`, dtypes) is run, and
  torch's tensor rebuilders are replaced by our own, which only record where each tensor's bytes lie (`LazyTensor`);
- any other name becomes a placeholder class. Instantiating it (NEWOBJ, as pickle protocol 2 does for ordinary
  objects) gives an inert `Placeholder` that keeps the state it was given and runs nothing. Calling it (REDUCE)
  is how a pickle runs code: refused with `UnsafePickleError` before the call, unless the name belongs to a
  package whose pickled objects are known to be data (a tokenizer from transformers or tokenizers, numpy arrays,
  omegaconf) -- then it is a placeholder too, never called.
After loading, omegaconf containers become plain dicts and lists (`omegaconf` itself is never imported), and the
remaining placeholders are listed with where they sit, so a caller can report what it did not load.
Tensors are read from the archive only when asked for (`LazyTensor.load`, `materialize`): a checkpoint's optimizer
state is never read.
"""
from __future__ import annotations

import builtins
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CheckpointError, SmkitError, UnsafePickleError  # noqa: F401  (raised here)


# packages whose pickled objects are data to smkit: calls into them (REDUCE) become inert placeholders
_DATA_PACKAGES = ("omegaconf", "transformers", "tokenizers", "numpy", "typing")

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
_SAFE_BUILTINS = {name: getattr(builtins, name) for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes",
                               "bytearray", "bool", "complex", "slice")}


# ---------------------------------------------------------------- what the unpickler hands out


class _PlaceholderMeta(type):
    """Calling a placeholder class is a pickle's REDUCE: refused unless the class comes from a data package."""

    def __call__(cls, *args, **kwargs):
        if cls._smkit_module.split(".")[0] not in _DATA_PACKAGES:
            shown = ", ".join(_short(a) for a in args)
            raise UnsafePickleError(
                f"the pickle calls {cls._smkit_module}.{cls._smkit_name}({shown}), which is not on smkit's "
                f"allow-list; the load stopped before calling it (nothing from the file was run). Open this file "
                f"only if you trust where it came from, and never with an unrestricted torch.load")
        return cls.__new__(cls, *args, **kwargs)


class Placeholder(metaclass=_PlaceholderMeta):
    """An inert stand-in for an object of a class smkit does not load: the class's module and name, the
    arguments it was built with and the state the pickle gave it. Nothing of the real class ever runs."""

    _smkit_module = ""
    _smkit_name = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        object.__setattr__(obj, "args", args)
        object.__setattr__(obj, "state", None)
        return obj

    def __setstate__(self, state):
        object.__setattr__(self, "state", state)

    @property
    def qualified_name(self) -> str:
        return f"{self._smkit_module}.{self._smkit_name}"

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.qualified_name}>"


def _placeholder_class(module: str, name: str) -> type:
    return _PlaceholderMeta(name, (Placeholder,), {"_smkit_module": module, "_smkit_name": name,
                                                   "__module__": "smkit.io.safe_pickle.placeholders"})


def _short(obj, limit: int = 60) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


class _Storage:
    """One storage of the archive (a `data/<key>` entry), read on first use."""
    __slots__ = ("archive", "key", "dtype", "numel", "_tensor")

    def __init__(self, archive: "TorchArchive", key: str, dtype: torch.dtype, numel: int):
        self.archive, self.key, self.dtype, self.numel, self._tensor = archive, key, dtype, numel, None

    def tensor(self) -> torch.Tensor:
        if self._tensor is None:
            self._tensor = self.archive.read_storage(self.key, self.dtype, self.numel)
        return self._tensor


class LazyTensor:
    """A tensor of the archive not read yet: its shape and dtype, and `load()` for the values."""
    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype

    def load(self) -> torch.Tensor:
        base = self.storage.tensor()
        extent = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1
        if 0 in self.shape:
            return base.new_empty(self.shape)
        if extent > base.numel():
            raise CheckpointError(f"{self.storage.archive.path}: a tensor of shape {self.shape} reaches past its "
                                  f"storage {self.storage.key!r} ({base.numel()} values); the file is corrupted")
        return base.as_strided(self.shape, self.stride, self.offset)

    def __repr__(self) -> str:
        return f"LazyTensor(shape={self.shape}, dtype={self.dtype})"


def _ints(value, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise CheckpointError(f"a tensor's {what} is {_short(value)}, not a tuple of non-negative integers")
    return tuple(value)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """Stands in for torch._utils._rebuild_tensor_v2: records the tensor, reads nothing."""
    if not isinstance(storage, _Storage) or type(offset) is not int or offset < 0:
        raise CheckpointError(f"a tensor in the pickle does not point into a storage of the archive")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointError(f"a tensor's size {size} and stride {stride} differ in length")
    return LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


def _latin1_encode(text, encoding="latin1"):
    """Stands in for _codecs.encode, which protocol-2 pickles use to store bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"the pickle calls _codecs.encode with {_short(encoding)}; only latin1 is allowed")
    return text.encode("latin1")


def _plain_dict(*args):
    """Stands in for collections.defaultdict: a plain dict (the default factory is never needed to read data)."""
    return {}


def _reconstructor(cls, base, state=None):
    """Stands in for copyreg._reconstructor (protocol 0/1 objects): only placeholder classes are built."""
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        return cls.__new__(cls)
    raise UnsafePickleError(f"the pickle rebuilds an object of {_short(cls)} with copyreg; not allowed")


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): _plain_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("torch", "device"): torch.device,
    ("_codecs", "encode"): _latin1_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: "TorchArchive"):
        super().__init__(file)
        self._archive = archive
        self._storages: dict[str, _Storage] = {}
        self._placeholders: dict[tuple, type] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        key = (module, name)
        if key not in self._placeholders:
            self._placeholders[key] = _placeholder_class(module, name)
        return self._placeholders[key]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and type(pid[4]) is int):
            raise CheckpointError(f"{self._archive.path}: the pickle refers to {_short(pid)}, not to a tensor "
                                  f"storage of a torch archive")
        _, kind, key, _location, numel = pid
        if key not in self._storages:
            self._storages[key] = _Storage(self._archive, key, kind.dtype, numel)
        return self._storages[key]


# ---------------------------------------------------------------- the archive


class TorchArchive:
    """A torch zip archive opened for reading: `load()` unpickles its object tree safely, tensors stay lazy."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"path={str(path)!r} is not a file")
        try:
            self._zip = zipfile.ZipFile(self.path)
            names = self._zip.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointError(f"{self.path} is not a torch checkpoint (a zip archive written by torch.save, "
                                  f"as Lightning writes .ckpt files): {err}. It may be truncated") from None
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{self.path} is a zip archive but not one written by torch.save (expected one "
                                  f"'<name>/data.pkl', found {pickles[:3]})")
        self.prefix = pickles[0][: -len("data.pkl")]
        order = self._read(self.prefix + "byteorder").decode() if self.prefix + "byteorder" in names else "little"
        if order != "little":
            raise CheckpointError(f"{self.path} was written on a {order}-endian machine; smkit reads little-endian")

    def _read(self, name: str) -> bytes:
        try:
            return self._zip.read(name)
        except KeyError:
            raise CheckpointError(f"{self.path} is incomplete: {name} is missing from the archive") from None
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise CheckpointError(f"{self.path} is corrupted or truncated ({name}: {err})") from None

    def read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        name = f"{self.prefix}data/{key}"
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            raise CheckpointError(f"{self.path} is incomplete: tensor storage {key!r} is missing") from None
        if info.file_size < nbytes:
            raise CheckpointError(f"{self.path}: storage {key!r} holds {info.file_size} bytes, its tensors need "
                                  f"{nbytes}; the file is truncated or corrupted")
        buf = bytearray(nbytes)
        try:
            with self._zip.open(info) as f:
                got = f.readinto(buf)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise CheckpointError(f"{self.path} is corrupted or truncated (storage {key!r}: {err})") from None
        if got != nbytes:
            raise CheckpointError(f"{self.path}: storage {key!r} ended after {got} of {nbytes} bytes (truncated)")
        return torch.frombuffer(buf, dtype=dtype) if nbytes else torch.empty(0, dtype=dtype)

    def load(self) -> "Unpickled":
        raw = self._read(self.prefix + "data.pkl")
        try:
            tree = _SafeUnpickler(io.BytesIO(raw), self).load()
        except SmkitError:
            raise
        except Exception as err:   # a malformed pickle: the stack machine fails on it
            raise CheckpointError(f"{self.path}: its pickle cannot be read ({type(err).__name__}: {err}); the "
                                  f"file is corrupted or not a checkpoint") from None
        placeholders: list[tuple[str, str]] = []
        return Unpickled(_plain(tree, "", placeholders), placeholders, self)


@dataclass
class Unpickled:
    """What a safe load gives: the object tree (plain containers, numbers, strings, `LazyTensor` leaves, and
    `Placeholder` objects), the placeholders as (where, class) pairs, and the archive the tensors are read from."""
    data: Any
    placeholders: list = field(default_factory=list)
    archive: TorchArchive | None = None


def load(path) -> Unpickled:
    """Unpickle the torch archive at `path` without running anything it names (see the module's docstring)."""
    return TorchArchive(path).load()


def materialize(tree):
    """The same tree with every `LazyTensor` read into a tensor."""
    if isinstance(tree, LazyTensor):
        return tree.load()
    if isinstance(tree, dict):
        return type(tree)((k, materialize(v)) for k, v in tree.items()) if isinstance(tree, OrderedDict) \
            else {k: materialize(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(materialize(v) for v in tree)
    return tree


# ---------------------------------------------------------------- omegaconf containers -> plain values


def _plain(obj, where: str, placeholders: list):
    """Replace omegaconf containers by dicts/lists and value nodes by their values; list other placeholders."""
    if isinstance(obj, Placeholder):
        module = obj._smkit_module
        state = obj.state if isinstance(obj.state, dict) else {}
        if module.startswith("omegaconf") and "_content" in state:
            return _plain(state["_content"], where, placeholders)
        if module.startswith("omegaconf") and "_val" in state:
            return _plain(state["_val"], where, placeholders)
        placeholders.append((where or "<root>", obj.qualified_name))
        return obj
    if isinstance(obj, dict):
        return type(obj)((k, _plain(v, _join(where, k), placeholders)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_plain(v, _join(where, i), placeholders) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return tuple(_plain(v, _join(where, i), placeholders) for i, v in enumerate(obj))
    return obj


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)
