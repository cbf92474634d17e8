"""The record of a decoding run: one `StepRecord` per step, kept in a `Trace` that stores what each step changed.

Shapes: B samples, L positions, S steps, k = k_trace. A trace keeps, per step, the positions whose token
changed (with the new token) and the statistics (lambda, entropy, top-k ids and probabilities) only where a
position is masked before or after the step; ids in the smallest integer type that holds the vocabulary
(trace_codec.py says exactly what is kept and how precisely). Memory and file size grow with
sum over steps of the masked positions (about S x B x L / 2 rows of 2 + 2 + 4 k bytes in float16 files, 8 + 8 k
in memory), not with S x B x L x k. `trace[s]` rebuilds step s alone; nothing holds the dense [S, B, L] arrays
unless asked (`trace.tokens` and the other stacked names build them: fine for small traces).

Files (format 2, trace_file.py): `Trace.save` writes one; `generate(..., trace="run.trace")` writes it while
decoding (memory: one step); `Trace.open` maps it and reads only the steps asked for; `Trace.load` reads
formats 1 and 2 into memory.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import TraceError, TraceStepError
from .tokens import text_of
from .trace_codec import PRECISIONS, ROW_FIELDS, Layout, StepDecoder, StepEncoder

FORMAT = "smkit-trace/2"


@dataclass
class StepRecord:
    """One denoising step. Tensors are on the sampler's device while streaming, on the CPU inside a Trace.

    step           int        index of the step (0-based; the noise-removal step, if any, comes last)
    block          int        semi-autoregressive block of the step; -1 for the noise-removal step
    t              [B]        time before the step (1 -> 0 within a block; 0 for noise removal)
    tokens         [B, L]     tokens after the step ([MASK] where still masked)
    masked_before  [B, L]     bool, masked when the step began (what the model saw as [MASK] or SM input)
    revealed       [B, L]     bool, filled this step
    remasked       [B, L]     bool, decoded before and masked again this step (ReMDM)
    lam            [B, L]     lambda used to build the NEXT input; 0 where not masked after the step
    entropy        [B, L]     entropy (nats) of this step's full distribution (0 at unmasked positions)
    topk_ids       [B, L, k]  most likely tokens of this step's distribution, descending
    topk_probs     [B, L, k]  their probabilities (untruncated, temperature 1)
    nfe            int        forward passes spent so far (cumulative, this step included)
    wall_time      float      seconds since decoding began, at the end of this step
    fixed          [B, L]     bool, prompt / infill positions (never change)
    mask_id        int        the [MASK] id (so `masked` can be derived)
    cached         bool       True when the step spent no forward pass: it reused the last pass's output (the
                              no-change cache), and the next soft-masked input is built from that output

    With `trace=False` the sampler leaves lam, entropy, topk_ids and topk_probs as None. A trace keeps any
    further int / float / bool field a record carries, step by step (trace_codec.KNOWN lists the others).
    """
    step: int
    block: int
    t: torch.Tensor
    tokens: torch.Tensor
    masked_before: torch.Tensor
    revealed: torch.Tensor
    remasked: torch.Tensor
    lam: torch.Tensor | None
    entropy: torch.Tensor | None
    topk_ids: torch.Tensor | None
    topk_probs: torch.Tensor | None
    nfe: int
    wall_time: float
    fixed: torch.Tensor
    mask_id: int | None = None
    cached: bool = False

    @property
    def masked(self) -> torch.Tensor:
        """[B, L] bool, masked after the step."""
        if self.mask_id is None:
            raise TraceError("this record does not know its mask id")
        return self.tokens == self.mask_id

    def cpu(self) -> "StepRecord":
        """A copy with every tensor on the CPU (ids as int64, floats as float32)."""
        out = {}
        for name, v in vars(self).items():
            if isinstance(v, torch.Tensor):
                v = v.detach().to("cpu")
                v = v.float() if v.is_floating_point() else v.long() if v.dtype != torch.bool else v
            out[name] = v
        return type(self)(**out)


_DENSE = ("t", "tokens", "masked_before", "revealed", "remasked", "lam", "entropy", "topk_ids", "topk_probs",
          "fixed", "step", "block", "nfe", "wall_time")


class _Memory:
    """Frames held in memory (a trace built from records, or read whole)."""

    def __init__(self, layout: Layout, head: dict, frames=None, complete: bool = True, stopped=None):
        self.layout, self.head = layout, head
        self.frames = list(frames or [])
        self.complete, self.stopped, self.path = complete, stopped, None
        self.encoder = None

    def frame(self, s: int):
        return self.frames[s]

    def __len__(self) -> int:
        return len(self.frames)

    def nbytes(self) -> int:
        return sum(a.nbytes for arrays, _ in self.frames for a in arrays.values()) + \
            self.layout.init.nbytes + self.layout.fixed.nbytes

    def close(self) -> None:
        pass


def layout_of(first: StepRecord, n_ids: int | None = None, precision: str = "float32", init=None) -> Layout:
    """The Layout of a run whose first record is `first`: shapes, kept statistics and, unless given, the
    tokens before it (where it began masked: [MASK]; elsewhere its tokens)."""
    tokens = first.tokens.detach().cpu().long()
    B, L = tokens.shape
    mask_id = first.mask_id
    if mask_id is None:
        raise TraceError("the step records do not know their mask id (StepRecord.mask_id)")
    fields = tuple(n for n in ROW_FIELDS if getattr(first, n) is not None)
    k = int(first.topk_ids.shape[-1]) if first.topk_ids is not None else 0
    if init is None:
        init = torch.where(first.masked_before.detach().cpu(), torch.full_like(tokens, mask_id), tokens)
    init = torch.as_tensor(init).detach().cpu().long().expand(B, L).numpy()
    fixed = first.fixed.detach().cpu().bool().expand(B, L).numpy()
    if n_ids is None:
        n_ids = max(int(mask_id) + 1, int(tokens.max()) + 1, int(init.max()) + 1)
    return Layout(B, L, k, int(mask_id), int(n_ids), precision, fields, init=init, fixed=fixed)


def tokenizer_head(tokenizer) -> dict:
    """What a trace file keeps of a tokenizer: its JSON and mask token (a fast Hugging Face tokenizer)."""
    if tokenizer is None or not hasattr(tokenizer, "backend_tokenizer"):
        return {}
    return {"tokenizer": tokenizer.backend_tokenizer.to_str(), "mask_token": tokenizer.mask_token}


def model_fingerprint(model) -> dict:
    """What a trace records of the model that made it, for `Trace.check_model`: vocabulary and [MASK] id
    (the tokenizer travels whole with the trace)."""
    return {"vocab_size": int(model.config.vocab_size), "mask_id": int(model.mask_id)}


class Trace:
    """The steps of one decode. `len(trace)` is S; `trace[s]` is step s as a `StepRecord` (negative counts from
    the end; rebuilt from the stored changes, reading that step's frame and at most a keyframe's worth of
    earlier events); `trace.at(s, samples=[...])` the same as numpy arrays for some samples;
    `trace.sample_maps(b)` one sample over every step (what the explorer's heatmaps draw). The stacked
    names of a StepRecord (`trace.tokens` [S, B, L], `trace.topk_ids` [S, B, L, k], `trace.nfe` [S], ...)
    build dense tensors of the whole trace.

    `meta` holds the sampling settings (JSON-able); `tokenizer` (optional) decodes `texts_at`. A trace read
    from a file knows its `path`; `complete` is False when the decode stopped early (then `stopped` says why).
    """

    def __init__(self, store, tokenizer=None):
        self._store = store
        self._decoder = StepDecoder(store.layout, store.frame)
        self.meta = dict(store.head.get("meta") or {})
        self._tokenizer = tokenizer
        self._dense_cache = None

    # ------------------------------------------------------------ building
    @classmethod
    def from_records(cls, records, meta: dict | None = None, tokenizer=None, n_ids: int | None = None,
                     stat_rows=None) -> "Trace":
        """A trace in memory (float32 statistics) of `records`, in order. `n_ids`: ids lie in [0, n_ids) (default:
        the largest seen); `stat_rows`: one [B, L] bool per record, where to keep its statistics (default: the
        positions masked before or after the step)."""
        records = list(records)
        if not records:
            raise TraceError("Trace.from_records: no step records")
        meta = dict(meta or {})
        first = records[0]
        if first.mask_id is None and "mask_id" in meta:
            records = [_with_mask(r, meta["mask_id"]) for r in records]
            first = records[0]
        if n_ids is None:
            n_ids = max([int(first.mask_id) + 1] + [int(r.tokens.max()) + 1 for r in records] +
                        [int(r.topk_ids.max()) + 1 for r in records if r.topk_ids is not None and r.topk_ids.numel()])
        layout = layout_of(first, n_ids)
        meta.setdefault("mask_id", layout.mask_id)
        store = _Memory(layout, {"meta": meta, "format": FORMAT})
        store.encoder = StepEncoder(layout)
        rows = [None] * len(records) if stat_rows is None else list(stat_rows)
        if len(rows) != len(records):
            raise TraceError(f"stat_rows: {len(rows)} masks for {len(records)} records")
        store.frames = [store.encoder.encode(r, w) for r, w in zip(records, rows)]
        return cls(store, tokenizer)

    def append(self, record: StepRecord) -> None:
        """Add the next step of the same run (a trace in memory built by `from_records`: a live decode)."""
        encoder = getattr(self._store, "encoder", None)
        if encoder is None:
            raise TraceError("append: only a trace built in memory by Trace.from_records grows step by step")
        self._store.frames.append(encoder.encode(record))
        self._dense_cache = None

    @classmethod
    def open(cls, path, partial: bool = False) -> "Trace":
        """Open a trace file lazily: format 2 is memory-mapped and each step is read when asked for; a format-1
        file is read whole. `partial=True` also opens a format-2 file without its index (a decode killed before
        it closed the file, or a cut copy): its whole steps are read."""
        from .trace_file import TraceFile
        if _is_format_1(path):
            return cls.load(path)
        f = TraceFile(path, lazy=True, partial=partial)
        return cls(_FileStore(f))

    @classmethod
    def load(cls, path, partial: bool = False) -> "Trace":
        """Read a trace file (format 1 or 2; no pickle) into memory: the file may move or go afterwards."""
        from .trace_file import TraceFile
        from .trace_v1 import read_v1
        if _is_format_1(path):
            steps, meta, head = read_v1(path)
            tr = cls.from_records([StepRecord(**kw) for kw in steps], meta)
            tr._store.head.update(head)
            return tr
        return cls(_FileStore(TraceFile(path, lazy=False, partial=partial)))

    # ------------------------------------------------------------ shape and settings
    @property
    def layout(self) -> Layout:
        return self._store.layout

    def __len__(self) -> int:
        return len(self._store)

    @property
    def num_samples(self) -> int:
        return self.layout.samples

    @property
    def length(self) -> int:
        return self.layout.length

    @property
    def k_trace(self) -> int:
        return self.layout.k

    @property
    def mask_id(self) -> int:
        return self.layout.mask_id

    @property
    def fields(self) -> tuple:
        """The per-position statistics this trace keeps (a subset of lam, entropy, topk_ids, topk_probs)."""
        return self.layout.fields

    @property
    def precision(self) -> str:
        return self.layout.precision

    @property
    def path(self) -> Path | None:
        return self._store.path

    @property
    def complete(self) -> bool:
        return self._store.complete

    @property
    def stopped(self) -> str | None:
        return self._store.stopped

    @property
    def model_info(self) -> dict | None:
        """The fingerprint of the model that made this trace (`model_fingerprint`), when recorded."""
        return self._store.head.get("model")

    @property
    def tokenizer(self):
        if self._tokenizer is None and self._store.head.get("tokenizer"):
            from tokenizers import Tokenizer
            from transformers import PreTrainedTokenizerFast
            self._tokenizer = PreTrainedTokenizerFast(
                tokenizer_object=Tokenizer.from_str(self._store.head["tokenizer"]),
                mask_token=self._store.head.get("mask_token"), clean_up_tokenization_spaces=False)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value) -> None:
        self._tokenizer = value

    def check_model(self, model) -> None:
        """Raise TraceError when `model` is not the kind of model this trace came from (another [MASK] id,
        vocabulary or tokenizer), naming what differs."""
        if model is None:
            return
        have = self.model_info or {}
        diffs = []
        if int(model.mask_id) != self.mask_id:
            diffs.append(f"[MASK] id {self.mask_id} in the trace, {int(model.mask_id)} in the model")
        vocab = int(model.config.vocab_size)
        if have.get("vocab_size") not in (None, vocab):
            diffs.append(f"vocabulary {have['vocab_size']} in the trace, {vocab} in the model")
        elif self.layout.n_ids > vocab + 1:
            diffs.append(f"ids up to {self.layout.n_ids - 1} in the trace, a vocabulary of {vocab} in the model")
        mine, theirs = self._tokenizer_json(), tokenizer_head(getattr(model, "tokenizer", None)).get("tokenizer")
        if mine is not None and theirs is not None and mine != theirs:
            diffs.append("another tokenizer")
        if diffs:
            raise TraceError("model=: the trace comes from another model (" + "; ".join(diffs) + "); pass the "
                             "model that decoded it, or none (the trace carries its settings and tokenizer)")

    def _tokenizer_json(self) -> str | None:
        if self._store.head.get("tokenizer"):
            return self._store.head["tokenizer"]
        return tokenizer_head(self._tokenizer).get("tokenizer")

    # ------------------------------------------------------------ steps
    def _index(self, i) -> int:
        n = len(self)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TraceError(f"step {i!r}: give an integer step index")
        if not -n <= i < n:
            raise TraceStepError(f"step {int(i)} out of range for a trace of {n} steps "
                                 f"(0..{n - 1}, or -{n}..-1 from the end)")
        return int(i) % n

    def at(self, step: int, samples=None) -> dict:
        """Step `step` as numpy arrays (see trace_codec.StepDecoder.step), for the listed samples (None: all)."""
        s = self._index(step)
        if samples is not None:
            samples = self._samples(samples)
        return self._decoder.step(s, samples)

    def __getitem__(self, i) -> StepRecord:
        d = self.at(i)
        kw = {n: d.get(n) for n in ("step", "block", "nfe", "wall_time")}
        for n in ("t", "tokens", "masked_before", "revealed", "remasked", "fixed", *ROW_FIELDS):
            kw[n] = torch.from_numpy(np.ascontiguousarray(d[n])) if n in d else None
        extra = {n: v for n, v in d.items() if n not in kw and n not in _DENSE}
        names = set(StepRecord.__dataclass_fields__)
        kw.update({n: v for n, v in extra.items() if n in names})
        return StepRecord(**kw, mask_id=self.mask_id)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def sample_maps(self, sample: int) -> dict:
        """One sample over every step, as numpy arrays (trace_codec.StepDecoder.sample_maps)."""
        (b,) = self._samples([sample])
        return self._decoder.sample_maps(b, len(self))

    def tokens_after(self, step: int) -> np.ndarray:
        """[B, L] int64 tokens after `step` (reads the events up to it, not the statistics)."""
        return self._decoder.tokens_after(self._index(step)).copy()

    def _samples(self, samples) -> list[int]:
        B = self.num_samples
        if isinstance(samples, (int, np.integer)) and not isinstance(samples, bool):
            samples = [samples]
        out = []
        for b in samples:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not -B <= b < B:
                raise TraceError(f"sample {b!r}: this trace holds samples 0..{B - 1}")
            out.append(int(b) % B)
        return out

    # ------------------------------------------------------------ dense views
    def __getattr__(self, name):
        if name in _DENSE and "_store" in self.__dict__:
            if name in ROW_FIELDS and name not in self.fields:
                return None
            return self._dense()[name]
        raise AttributeError(name)

    def _dense(self) -> dict:
        """Every step stacked: {name: tensor [S, ...]}. Kept for small traces (under 64 MiB)."""
        if self._dense_cache is not None:
            return self._dense_cache
        steps = [self._decoder.step(s) for s in range(len(self))]
        out = {}
        for n in _DENSE:
            if n not in steps[0]:
                continue
            v = np.stack([np.asarray(d[n]) for d in steps])
            out[n] = torch.from_numpy(np.ascontiguousarray(v))
        if sum(v.numel() * v.element_size() for v in out.values()) < 64 * 2**20:
            self._dense_cache = out
        return out

    @property
    def masked(self) -> torch.Tensor:
        """[S, B, L] bool, masked after each step."""
        return self._dense()["tokens"] == self.mask_id

    def nbytes(self) -> int:
        """Bytes the trace holds: its frames in memory, or the size of its file."""
        return self._store.nbytes()

    def __repr__(self) -> str:
        where = f", file={str(self.path)!r}" if self.path is not None else ""
        state = "" if self.complete else f", stopped early: {self.stopped}"
        nfe = self._store.frame(len(self) - 1)[1]["nfe"] if len(self) else 0
        return (f"Trace(steps={len(self)}, samples={self.num_samples}, length={self.length}, k_trace={self.k_trace}, "
                f"nfe={nfe}, {self.nbytes() / 2**20:.1f} MiB{where}{state})")

    # ------------------------------------------------------------ text and tables
    def texts_at(self, step: int, tokenizer=None, mask_text: str | None = None) -> list[str]:
        """The samples' texts after `step` (negative counts from the end). Masked positions show as the
        tokenizer's mask token, or as `mask_text` when given."""
        tok = tokenizer if tokenizer is not None else self.tokenizer
        if tok is None:
            raise TraceError("texts_at needs a tokenizer: this trace has none; pass tokenizer=...")
        rows = self.tokens_after(step).tolist()
        if mask_text is None:
            return [tok.decode(r) for r in rows]
        return [text_of(r, tok, self.mask_id, mask_text) for r in rows]

    def to_pandas(self, steps=None, samples=None, positions=None):
        """One row per (sample, step, position), for the steps / samples / positions asked (each an int, a list,
        a range or a slice; None: all); only those steps are read. Columns: sample, step, position, block, t,
        token, masked (after the step), masked_before, revealed, remasked, fixed, lam, entropy, topk_ids,
        topk_probs (arrays of length k), nfe, wall_time."""
        import pandas as pd

        S, B, L = len(self), self.num_samples, self.length
        steps = [self._index(s) for s in _pick(steps, S, "steps")]
        bs = self._samples(_pick(samples, B, "samples"))
        pos = _pick(positions, L, "positions")
        for p in pos:
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not -L <= p < L:
                raise TraceError(f"position {p!r}: this trace holds positions 0..{L - 1}")
        pos = np.asarray([int(p) % L for p in pos], dtype=np.int64)
        nS, nB, nP = len(steps), len(bs), len(pos)
        per = [self._decoder.step(s, bs) for s in steps]
        grid = lambda name: np.stack([d[name][:, pos] for d in per], 1).reshape(nB * nS * nP, *per[0][name].shape[2:]) \
            if per else np.zeros((0,) + per[0][name].shape[2:])
        step_col = lambda name: np.tile(np.repeat(np.asarray([d[name] for d in per]), nP), nB)
        cols = {"sample": np.repeat(np.asarray(bs, dtype=np.int64), nS * nP), "step": step_col("step"),
                "position": np.tile(pos, nB * nS), "block": step_col("block")}
        cols["t"] = np.repeat(np.stack([d["t"] for d in per], 1).reshape(-1), nP) if per else np.zeros(0)
        cols["token"] = grid("tokens")
        cols["masked"] = cols["token"] == self.mask_id
        for name in ("masked_before", "revealed", "remasked", "fixed", "lam", "entropy"):
            if per and name in per[0]:
                cols[name] = grid(name)
        df = pd.DataFrame(cols)
        if per and "topk_ids" in per[0]:
            df["topk_ids"] = list(grid("topk_ids"))
            df["topk_probs"] = list(grid("topk_probs"))
        df["nfe"] = step_col("nfe")
        df["wall_time"] = step_col("wall_time")
        return df

    # ------------------------------------------------------------ files
    def save(self, path, precision: str = "float16", overwrite: bool = False) -> Path:
        """Write a format-2 trace file (trace_file.py; no pickle), atomically: statistics in `precision`
        (float16, the default, or float32: trace_codec.py says what float16 keeps). An existing file is
        replaced only with overwrite=True."""
        from .trace_file import TraceWriter, writable_path
        if precision not in PRECISIONS:
            raise TraceError(f"precision={precision!r}: choose one of {PRECISIONS}")
        path = writable_path(path, overwrite)
        lay = self.layout
        layout = Layout(lay.samples, lay.length, lay.k, lay.mask_id, lay.n_ids, precision, lay.fields,
                        lay.keyframe_every, lay.init, lay.fixed)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
        except OSError as err:
            raise TraceError(f"cannot write the trace file {str(path)!r}: {err.strerror or err}") from None
        try:
            writer = TraceWriter(tmp, overwrite=True, layout=layout, head=self._head())
            floats = layout.floats
            for s in range(len(self)):
                arrays, info = self._store.frame(s)
                arrays = {n: (np.asarray(a).astype(floats) if n in ("lam", "entropy", "topk_probs") else a)
                          for n, a in arrays.items()}
                writer.add_frame(arrays, info)
            writer.close(self.complete, self.stopped)
            os.replace(tmp, path)
        except TraceError as err:
            _remove(tmp)
            raise TraceError(str(err).replace(str(tmp), str(path))) from None
        except BaseException:
            _remove(tmp)
            raise
        return path

    def _head(self) -> dict:
        head = {k: v for k, v in self._store.head.items() if k not in ("layout", "kind")}
        head["format"] = FORMAT
        head["meta"] = self.meta
        if "tokenizer" not in head and self._tokenizer is not None:
            head.update(tokenizer_head(self._tokenizer))
        return head

    def close(self) -> None:
        """Release the mapped file (a trace from `open`); the trace cannot be read afterwards."""
        self._store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _FileStore:
    """A format-2 file as the store of a Trace."""

    def __init__(self, f):
        self.file = f
        self.layout, self.head = f.layout, f.head
        self.complete, self.stopped, self.path = f.complete, f.stopped, f.path

    def frame(self, s: int):
        return self.file.frame(s)

    def __len__(self) -> int:
        return len(self.file)

    def nbytes(self) -> int:
        return self.file.nbytes()

    def close(self) -> None:
        self.file.close()


def _with_mask(rec: StepRecord, mask_id: int) -> StepRecord:
    out = StepRecord(**{n: getattr(rec, n) for n in StepRecord.__dataclass_fields__})
    out.mask_id = int(mask_id)
    return out


def _pick(which, n: int, name: str) -> list:
    if which is None:
        return list(range(n))
    if isinstance(which, slice):
        return list(range(n))[which]
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        return [which]
    try:
        return list(which)
    except TypeError:
        raise TraceError(f"{name}={which!r}: give an int, a list, a range or a slice") from None


def _is_format_1(path) -> bool:
    """A safetensors file (format 1) rather than a format-2 trace; missing files are left to the readers."""
    try:
        with open(path, "rb") as f:
            start = f.read(12)
    except OSError as err:
        raise TraceError(f"cannot read the trace file {str(path)!r}: {err.strerror or err}") from None
    return len(start) >= 9 and start != b"smkit-trace\x00"[:len(start)] and start[8:9] == b"{"


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
