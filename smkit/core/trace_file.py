"""The trace file, format 2: written step by step while decoding, read lazily (memory-mapped) step by step.

    16 bytes   b"smkit-trace\\0" and the format version (uint32 little-endian, 2)
    frames     each an 8-byte little-endian length n and n bytes holding one safetensors buffer (its arrays, and
               its JSON in the metadata key "smkit"): first the head (shapes, dtypes, settings, tokenizer, the
               tokens before the first step, the fixed positions), then one frame per step (trace_codec.py),
               then the index (where each step's frame starts, each step's scalars)
    16 bytes   the index frame's offset (uint64) and b"smkitEND": present once the writer closed the file

A decode that stops early (an error, Ctrl-C) still writes the index, marked incomplete; a killed process or a
cut copy leaves no index: `Trace.open(path, partial=True)` then reads every whole step frame. Any frame is a
valid safetensors buffer (`safetensors.numpy.load(frame_bytes)` reads it), so other tools can read the
steps without smkit.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from pathlib import Path

import numpy as np

from .errors import TraceError
from .trace_codec import Layout, StepEncoder

SUFFIX = ".trace"   # the file name ending smkit writes and docs/traces.md uses (the format is not one safetensors file)
MAGIC = b"smkit-trace\x00"
VERSION = 2
END = b"smkitEND"
_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16, "U32": np.uint32,
           "I32": np.int32, "U64": np.uint64, "I64": np.int64, "F16": np.float16, "F32": np.float32,
           "F64": np.float64}


def _frame_bytes(arrays: dict, info: dict) -> bytes:
    from safetensors.numpy import save
    body = save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata={"smkit": json.dumps(info)})
    return struct.pack("<Q", len(body)) + body


def writable_path(path, overwrite: bool) -> Path:
    """`path` as a Path once it is known that a trace may be written there (no compute has run yet)."""
    path = Path(path)
    if path.is_dir():
        raise TraceError(f"trace path {str(path)!r} is a folder: give a file name, e.g. {str(path / 'run.trace')!r}")
    if not path.parent.is_dir():
        raise TraceError(f"trace path {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if path.exists() and not overwrite:
        raise TraceError(f"trace path {str(path)!r}: a file is already there; pass overwrite=True to replace it")
    if not os.access(path.parent, os.W_OK):
        raise TraceError(f"trace path {str(path)!r}: the folder {str(path.parent)!r} is not writable")
    return path


class TraceWriter:
    """Writes a format-2 trace file as the steps arrive: `start(layout, head)` once, `add(record)` per step,
    `close()` at the end. The file is created at construction, so a path that cannot be written fails before
    any decoding; the head follows with `start` (or `layout=` here). Memory: one step."""

    def __init__(self, path, overwrite: bool = False, layout: Layout | None = None, head: dict | None = None):
        self.path = writable_path(path, overwrite)
        try:
            self._f = open(self.path, "wb" if overwrite else "xb")
        except FileExistsError:
            raise TraceError(f"trace path {str(self.path)!r}: a file is already there; pass overwrite=True to "
                             "replace it") from None
        except OSError as err:
            raise TraceError(f"cannot write the trace file {str(self.path)!r}: {err.strerror or err}") from None
        self.offsets, self.infos, self.rows, self.ts = [], [], [], []
        self.closed = False
        self.layout = self.encoder = None
        try:
            self._write(MAGIC + struct.pack("<I", VERSION))
            if layout is not None:
                self.start(layout, head or {})
        except BaseException:
            self._f.close()
            raise

    @property
    def started(self) -> bool:
        return self.encoder is not None

    def start(self, layout: Layout, head: dict) -> None:
        """Write the head: the trace's layout and `head` (JSON: settings, tokenizer, ...)."""
        self.encoder = StepEncoder(layout)
        self.layout = layout
        self._write(_frame_bytes(layout.head_arrays(), {"kind": "head", "layout": layout.to_json(), **head}))
        self._f.flush()

    def _write(self, data: bytes) -> None:
        try:
            self._f.write(data)
        except OSError as err:
            raise TraceError(f"writing the trace file {str(self.path)!r} failed: {err.strerror or err}") from None

    def add(self, rec, stat_rows=None) -> None:
        """Encode and append one StepRecord (`stat_rows`: see StepEncoder.encode)."""
        if not self.started:
            raise TraceError("TraceWriter.add: call start(layout, head) first")
        arrays, info = self.encoder.encode(rec, stat_rows)
        self.add_frame(arrays, info)

    def add_frame(self, arrays: dict, info: dict) -> None:
        """Append an encoded step (from StepEncoder, or copied from another trace)."""
        self.offsets.append(self._f.tell())
        self._write(_frame_bytes(arrays, {"kind": "step", **info}))
        self._f.flush()  # whole frames reach the file as they are made: a killed decode leaves them readable
        self.infos.append(info)
        self.rows.append(np.asarray(arrays["rows"], dtype=np.uint32))
        self.ts.append(np.asarray(arrays["t"], dtype=np.float32))

    def close(self, complete: bool = True, stopped: str | None = None) -> Path | None:
        """Write the index (marked incomplete with the reason when `complete` is False) and close the file.
        A writer that never started (no step arrived) removes its file and returns None."""
        if self.closed:
            return self.path if self.started else None
        if not self.started:
            self._f.close()
            self.closed = True
            try:
                os.unlink(self.path)
            except OSError:
                pass
            return None
        B = self.layout.samples
        try:
            at = self._f.tell()
            arrays = {"offsets": np.asarray(self.offsets, dtype=np.uint64),
                      "rows": np.asarray(self.rows, dtype=np.uint32).reshape(-1, B),
                      "t": np.asarray(self.ts, dtype=np.float32).reshape(-1, B)}
            self._write(_frame_bytes(arrays, {"kind": "index", "steps": self.infos, "complete": bool(complete),
                                              "stopped": stopped}))
            self._write(struct.pack("<Q", at) + END)
        finally:
            self._f.close()
            self.closed = True
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        self.close(complete=kind is None, stopped=None if kind is None else f"{kind.__name__}: {err}")


# -------------------------------------------------------------------- reading

def _parse(buf, at: int, end: int, path) -> tuple[dict, dict, int]:
    """(arrays as views into buf, the frame's JSON, offset after the frame) of the frame at `at`."""
    if at + 8 > end:
        raise _cut(path, at)
    (n,) = struct.unpack_from("<Q", buf, at)
    start, stop = at + 8, at + 8 + n
    if stop > end or n < 8:
        raise _cut(path, at)
    (h,) = struct.unpack_from("<Q", buf, start)
    data = start + 8 + h
    if data > stop:
        raise _cut(path, at)
    try:
        header = json.loads(bytes(buf[start + 8:data]))
        info = json.loads(header.pop("__metadata__")["smkit"])
    except (ValueError, KeyError, TypeError):
        raise TraceError(f"{str(path)!r}: the frame at byte {at} is damaged (unreadable header)") from None
    arrays = {}
    for name, spec in header.items():
        a, b = spec["data_offsets"]
        dt = np.dtype(_DTYPES[spec["dtype"]])
        if data + b > stop:
            raise TraceError(f"{str(path)!r}: the frame at byte {at} is damaged (an array past its end)")
        arrays[name] = np.frombuffer(buf, dtype=dt, count=(b - a) // dt.itemsize, offset=data + a).reshape(
            spec["shape"])
    return arrays, info, stop


class _Cut(TraceError):
    pass


def _cut(path, at) -> TraceError:
    return _Cut(f"{str(path)!r}: the file ends inside the frame at byte {at} (a cut copy or an interrupted write)")


class TraceFile:
    """A format-2 trace file opened for reading: its head (layout, JSON) and its step frames, parsed when asked
    for (`frame(s)`). `source` is the path; the bytes are memory-mapped (`lazy=True`) or read at once."""

    def __init__(self, path, lazy: bool = True, partial: bool = False):
        self.path = Path(path)
        self._file = None
        try:
            size = self.path.stat().st_size
            if lazy and size:
                self._file = open(self.path, "rb")
                self.buf = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            else:
                self.buf = self.path.read_bytes()
        except OSError as err:
            raise TraceError(f"cannot read the trace file {str(self.path)!r}: {err.strerror or err}") from None
        try:
            self._read_head()
            self._read_steps(partial)
        except BaseException:
            self.close()
            raise
        self._frames: dict[int, tuple] = {}

    def _read_head(self) -> None:
        buf, path = self.buf, self.path
        if len(buf) < 16:
            raise TraceError(f"{str(path)!r}: {len(buf)} bytes, too short for a trace file (empty, or cut short)")
        if bytes(buf[:12]) != MAGIC:
            raise TraceError(f"{str(path)!r} is not an smkit trace file of format 2")
        (version,) = struct.unpack_from("<I", buf, 12)
        if version != VERSION:
            raise TraceError(f"{str(path)!r}: trace format {version}; this smkit reads formats 1 and {VERSION} "
                             f"(a newer smkit wrote it: upgrade smkit)" if version > VERSION else
                             f"{str(path)!r}: unknown trace format {version}")
        try:
            arrays, info, self._first = _parse(buf, 16, len(buf), path)
        except _Cut:
            raise TraceError(f"{str(path)!r}: the file ends inside its head (a cut copy, or a write that "
                             "failed at once); no step can be read") from None
        if info.get("kind") != "head":
            raise TraceError(f"{str(path)!r}: the first frame is not the head (a damaged file)")
        lay = info.pop("layout")
        B, L = int(lay["samples"]), int(lay["length"])
        init = arrays["init"].astype(np.int64).reshape(B, L)
        fixed = np.unpackbits(arrays["fixed"], count=B * L).astype(bool).reshape(B, L)
        self.layout = Layout.from_json(lay, init, fixed)
        self.head = info

    def _read_steps(self, partial: bool) -> None:
        buf, path = self.buf, self.path
        n = len(buf)
        self.complete, self.stopped = False, None
        if n >= self._first + 16 and bytes(buf[n - 8:]) == END:
            (at,) = struct.unpack_from("<Q", buf, n - 16)
            arrays, info, _ = _parse(buf, at, n - 16, path)
            if info.get("kind") != "index":
                raise TraceError(f"{str(path)!r}: the index frame is damaged")
            self.offsets = [int(o) for o in arrays["offsets"]]
            self.infos = info["steps"]
            self.rows, self.t = arrays["rows"], arrays["t"]
            self.complete, self.stopped = bool(info.get("complete")), info.get("stopped")
            if not self.complete:
                self.stopped = self.stopped or "stopped early"
            return
        offsets, infos, rows, ts, at, cut = [], [], [], [], self._first, None
        while at < n:
            try:
                arrays, info, after = _parse(buf, at, n, path)
            except _Cut:
                cut = at
                break
            if info.get("kind") != "step":
                break
            offsets.append(at)
            infos.append({k: v for k, v in info.items() if k != "kind"})
            rows.append(np.asarray(arrays["rows"]))
            ts.append(np.asarray(arrays["t"]))
            at = after
        B = self.layout.samples
        if not partial:
            tail = f" and {n - cut} bytes of a cut frame" if cut is not None else ""
            raise TraceError(f"{str(path)!r} has no index: it holds {len(offsets)} whole steps{tail} (the decode "
                             f"was interrupted, or the copy is cut short). Trace.open(path, partial=True) reads "
                             f"those {len(offsets)} steps")
        self.offsets, self.infos = offsets, infos
        self.rows = np.asarray(rows, dtype=np.uint32).reshape(-1, B)
        self.t = np.asarray(ts, dtype=np.float32).reshape(-1, B)
        self.stopped = "no index: the file ends after step {}".format(len(offsets) - 1)

    def __len__(self) -> int:
        return len(self.offsets)

    def frame(self, s: int) -> tuple[dict, dict]:
        """(arrays, info) of step s: views into the mapped file."""
        got = self._frames.get(s)
        if got is None:
            arrays, info, _ = _parse(self.buf, self.offsets[s], len(self.buf), self.path)
            info = {k: v for k, v in info.items() if k != "kind"}
            got = (arrays, info)
            if len(self._frames) > 4096:
                self._frames.clear()
            self._frames[s] = got
        return got

    def nbytes(self) -> int:
        return len(self.buf)

    def close(self) -> None:
        buf = getattr(self, "buf", None)
        if isinstance(buf, mmap.mmap):
            self._frames = {}
            try:
                buf.close()
            except BufferError:  # arrays handed out still view the map: it closes with them
                pass
        if self._file is not None:
            self._file.close()
            self._file = None
