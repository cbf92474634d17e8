"""Format 2 of a decoding trace, one step at a time: what a `StepRecord` becomes (a *frame*: a few small numpy
arrays and a JSON line) and how frames give back the dense per-step arrays.

A frame stores what the step changed, not the whole state:
- events: the flat positions (sample * L + position) whose token changed, and their new tokens ([MASK] for a
  remask). Tokens after step s are the tokens of the last *keyframe* at or before s (every `KEYFRAME_EVERY`
  steps a frame also holds the whole state) with the later frames' events applied; masked_before, revealed
  and remasked follow from the states before and after the step (kept explicitly only where a record
  disagrees with them, e.g. a "step" hook that rewrote its record).
- statistics (lam, entropy, top-k ids and probabilities) only at the step's *stat rows*: by default the
  positions masked before or after the step, where they mean something (elsewhere the sampler's values are
  fixed: lambda 0, entropy 0, top-1 = the token with probability 1, then [MASK] with 0). A writer may give
  its own rows (the Hugging Face trace keeps every position of the block being denoised).
- ids in the smallest unsigned type that holds every id ([MASK] included): uint8 up to 256 ids, uint16 up to
  65536 (GPT-2's 50258 too), uint32 above; statistics in float16 (files, by default) or float32.

float16 keeps 11 significant bits: a relative error at most 2**-11 (0.05 %), so lambda and probabilities in
[0, 1] come back within 2.5e-4 of the sampler's float32 values (probabilities below 6e-5 within 3e-8), and an
entropy below 16 nats within 0.004 nats (below 4 nats within 0.001).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import TraceError

KEYFRAME_EVERY = 32
PRECISIONS = ("float16", "float32")
ROW_FIELDS = ("lam", "entropy", "topk_ids", "topk_probs")
FLAG_FIELDS = ("masked_before", "revealed", "remasked")
# StepRecord fields a frame stores in its own way; any other int / float / bool field is kept as a scalar
KNOWN = {"step", "block", "t", "tokens", "fixed", "mask_id", "nfe", "wall_time", *ROW_FIELDS, *FLAG_FIELDS}


def id_dtype(n_ids: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids 0 .. n_ids - 1."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n_ids <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.int64)


@dataclass
class Layout:
    """What every frame of one trace shares (the head of a file): shapes, the [MASK] id, dtypes, which
    statistics it keeps, the tokens before the first step and the fixed (prompt / template) positions."""
    samples: int
    length: int
    k: int
    mask_id: int
    n_ids: int                       # ids lie in [0, n_ids): the vocabulary (and the [MASK] id)
    precision: str = "float32"
    fields: tuple = ROW_FIELDS       # the statistics kept (a trace without lambda leaves "lam" out)
    keyframe_every: int = KEYFRAME_EVERY
    init: np.ndarray | None = field(default=None, repr=False)    # [B, L] tokens before step 0
    fixed: np.ndarray | None = field(default=None, repr=False)   # [B, L] bool

    @property
    def ids(self) -> np.dtype:
        return id_dtype(self.n_ids)

    @property
    def flat(self) -> np.dtype:
        return id_dtype(self.samples * self.length)

    @property
    def floats(self) -> np.dtype:
        return np.dtype(np.float16 if self.precision == "float16" else np.float32)

    def to_json(self) -> dict:
        return {"samples": self.samples, "length": self.length, "k": self.k, "mask_id": self.mask_id,
                "n_ids": self.n_ids, "precision": self.precision, "fields": list(self.fields),
                "keyframe_every": self.keyframe_every}

    @classmethod
    def from_json(cls, d: dict, init: np.ndarray, fixed: np.ndarray) -> "Layout":
        return cls(int(d["samples"]), int(d["length"]), int(d["k"]), int(d["mask_id"]), int(d["n_ids"]),
                   d["precision"], tuple(d["fields"]), int(d["keyframe_every"]), init, fixed)

    def head_arrays(self) -> dict:
        return {"init": self.init.reshape(-1).astype(self.ids), "fixed": np.packbits(self.fixed.reshape(-1))}

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise TraceError(f"precision={self.precision!r}: choose one of {PRECISIONS}")


def _np(x, dtype=None) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        if x.dtype.is_floating_point and x.dtype not in _TORCH_NUMPY_FLOATS:
            x = x.float()
        x = x.numpy()
    x = np.asarray(x)
    return x if dtype is None else x.astype(dtype, copy=False)


try:
    import torch as _torch
    _TORCH_NUMPY_FLOATS = (_torch.float16, _torch.float32, _torch.float64)
except ImportError:  # pragma: no cover - torch is a dependency
    _TORCH_NUMPY_FLOATS = ()


def _bits(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask.reshape(-1))


def _unbits(packed: np.ndarray, shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), count=n).astype(bool).reshape(shape)


class StepEncoder:
    """Turns a run's StepRecords into frames, in order (it remembers the tokens of the previous step)."""

    def __init__(self, layout: Layout):
        layout.check()
        self.layout = layout
        self.prev = np.asarray(layout.init, dtype=np.int64).reshape(layout.samples, layout.length).copy()
        self.fixed = np.asarray(layout.fixed, dtype=bool).reshape(self.prev.shape)
        self.count = 0

    def encode(self, rec, stat_rows=None) -> tuple[dict, dict]:
        """(arrays, info) of record `rec`, the next step. `stat_rows` [B, L] bool: where to keep the statistics
        (default: positions masked before or after the step)."""
        lay = self.layout
        B, L, mask = lay.samples, lay.length, lay.mask_id
        after = _np(rec.tokens, np.int64)
        if after.shape != (B, L):
            raise TraceError(f"step {rec.step}: tokens of shape {after.shape}, this trace holds {(B, L)}")
        before = self.prev
        changed = after != before
        flat = np.flatnonzero(changed)
        arrays = {"ev_pos": flat.astype(lay.flat), "ev_tok": after.reshape(-1)[flat].astype(lay.ids)}
        if self.count % lay.keyframe_every == 0:
            arrays["tokens"] = after.reshape(-1).astype(lay.ids)
        masked_before, masked_after = before == mask, after == mask
        implied = {"masked_before": masked_before, "revealed": changed & masked_before & ~masked_after,
                   "remasked": changed & ~masked_before & masked_after}
        flags = {}
        for name in FLAG_FIELDS:
            got = _np(getattr(rec, name), bool)
            flags[name] = got
            if not np.array_equal(got, implied[name]):
                arrays[name] = _bits(got)
        fixed = _np(rec.fixed, bool)
        if not np.array_equal(fixed, self.fixed):
            arrays["fixed"] = _bits(fixed)
        rows = flags["masked_before"] | masked_after
        if stat_rows is not None:
            stat_rows = _np(stat_rows, bool)
            if not np.array_equal(stat_rows, rows):
                arrays["stat"] = _bits(stat_rows)
            rows = stat_rows
        where = np.flatnonzero(rows)
        arrays["rows"] = rows.sum(-1).astype(np.uint32)
        for name in lay.fields:
            v = getattr(rec, name, None)
            if v is None:
                raise TraceError(f"step {rec.step}: the record has no {name}; this trace keeps {list(lay.fields)}")
            v = _np(v)
            v = v.reshape(B * L, *v.shape[2:])[where]
            if name == "topk_ids":
                arrays[name] = v[:, :lay.k].astype(lay.ids)
            elif name == "topk_probs":
                arrays[name] = v[:, :lay.k].astype(lay.floats)
            else:
                arrays[name] = v.astype(lay.floats)
        arrays["t"] = _np(rec.t, np.float32).reshape(-1)
        info = {"step": int(rec.step), "block": int(rec.block), "nfe": int(rec.nfe),
                "wall_time": float(rec.wall_time)}
        extra = {}
        for name, value in vars(rec).items():
            if name not in KNOWN and isinstance(value, (bool, int, float, np.integer, np.floating)):
                extra[name] = value.item() if hasattr(value, "item") else value
        if extra:
            info["extra"] = extra
        self.prev = after
        self.count += 1
        return arrays, info


class StepDecoder:
    """Dense per-step arrays from frames. `frame(s)` -> (arrays, info) is the trace's store; states are cached
    so that moving one step forward (a slider, a scan over the steps) applies one frame's events."""

    def __init__(self, layout: Layout, frame):
        self.layout = layout
        self.frame = frame
        B, L = layout.samples, layout.length
        self.init = np.asarray(layout.init, dtype=np.int64).reshape(B, L)
        self.fixed = np.asarray(layout.fixed, dtype=bool).reshape(B, L)
        self._state = (-1, self.init)    # (s, tokens after step s); s = -1: before the first step

    # ---------------------------------------------------------------- tokens
    def tokens_after(self, s: int) -> np.ndarray:
        """[B, L] int64 tokens after step s (s = -1: before the first step). Do not modify the result."""
        if s < 0:
            return self.init
        have, state = self._state
        if have == s:
            return state
        key = s - s % self.layout.keyframe_every
        if key <= have < s:
            state = state.copy()
        else:
            arrays, _ = self.frame(key)
            if "tokens" not in arrays:
                raise TraceError(f"step {key}: the keyframe's tokens are missing (a damaged trace)")
            state = np.array(arrays["tokens"], dtype=np.int64).reshape(self.init.shape)
            have = key
        flat = state.reshape(-1)
        for j in range(have + 1, s + 1):
            arrays, _ = self.frame(j)
            flat[np.asarray(arrays["ev_pos"], dtype=np.int64)] = arrays["ev_tok"]
        self._state = (s, state)
        return state

    # ---------------------------------------------------------------- one step
    def step(self, s: int, samples=None) -> dict:
        """Every field of step s as numpy arrays, for `samples` (a list of sample indices; None: all):
        tokens, masked_before, revealed, remasked, fixed [b, L]; lam, entropy [b, L] float32 (absent when
        the trace keeps none); topk_ids [b, L, k] int64, topk_probs [b, L, k] float32; t [b]; and the scalars
        step, block, nfe, wall_time (plus any extra scalar the records carried)."""
        lay = self.layout
        B, L = lay.samples, lay.length
        arrays, info = self.frame(s)
        before = self.tokens_after(s - 1)
        after = self.tokens_after(s)
        sel = np.arange(B) if samples is None else np.asarray(samples, dtype=np.int64)
        out = {"step": info["step"], "block": info["block"], "nfe": info["nfe"], "wall_time": info["wall_time"]}
        out.update(info.get("extra", {}))
        flags = self._flags(arrays, before, after)
        out["tokens"] = after[sel].copy()
        for name in FLAG_FIELDS:
            out[name] = flags[name][sel]
        out["fixed"] = (_unbits(arrays["fixed"], (B, L)) if "fixed" in arrays else self.fixed)[sel].copy()
        out["t"] = np.asarray(arrays["t"], dtype=np.float32)[sel]
        rows = self._rows(arrays, flags["masked_before"], after)
        counts = np.asarray(arrays["rows"], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])
        pick = np.concatenate([np.arange(starts[b], starts[b + 1]) for b in sel]) if len(sel) else np.zeros(0, int)
        sub_rows = rows[sel]
        mask = lay.mask_id
        if "lam" in lay.fields:
            out["lam"] = self._scatter(arrays["lam"], pick, sub_rows, 0.0)
        if "entropy" in lay.fields:
            out["entropy"] = self._scatter(arrays["entropy"], pick, sub_rows, 0.0)
        if "topk_ids" in lay.fields:
            k = lay.k
            ids = np.full(sub_rows.shape + (k,), mask, dtype=np.int64)
            probs = np.zeros(sub_rows.shape + (k,), dtype=np.float32)
            if k:
                ids[..., 0] = out["tokens"]
                probs[..., 0] = 1.0
                ids[sub_rows] = np.asarray(arrays["topk_ids"])[pick]
                probs[sub_rows] = np.asarray(arrays["topk_probs"])[pick]
            out["topk_ids"], out["topk_probs"] = ids, probs
        return out

    def _flags(self, arrays, before, after) -> dict:
        B, L = before.shape
        mask = self.layout.mask_id
        changed = after != before
        mb, ma = before == mask, after == mask
        implied = {"masked_before": mb, "revealed": changed & mb & ~ma, "remasked": changed & ~mb & ma}
        return {n: _unbits(arrays[n], (B, L)) if n in arrays else implied[n] for n in FLAG_FIELDS}

    def _rows(self, arrays, masked_before, after) -> np.ndarray:
        B, L = after.shape
        if "stat" in arrays:
            return _unbits(arrays["stat"], (B, L))
        return masked_before | (after == self.layout.mask_id)

    @staticmethod
    def _scatter(values, pick, where, fill) -> np.ndarray:
        out = np.full(where.shape, fill, dtype=np.float32)
        out[where] = np.asarray(values)[pick]
        return out

    # ---------------------------------------------------------------- one sample, every step
    def sample_maps(self, b: int, steps: int) -> dict:
        """Sample b over steps 0 .. steps-1: tokens [S, L] int64, masked_before / revealed / remasked / stat /
        fixed [S, L] bool, lam / entropy [S, L] float32 (0 outside the stat rows), top1 [S, L] float32 (the
        top-1 probability; 1 outside the stat rows), t [S], nfe [S]. Reads each frame's events and this
        sample's rows only, then builds the maps in whole-array operations."""
        lay = self.layout
        B, L, mask = lay.samples, lay.length, lay.mask_id
        lo, hi = b * L, (b + 1) * L
        ev_step, ev_pos, ev_tok, spans, explicit = [], [], [], {n: [] for n in ("lam", "entropy", "top1")}, []
        t = np.zeros(steps, dtype=np.float32)
        nfe = np.zeros(steps, dtype=np.int64)
        for s in range(steps):
            arrays, info = self.frame(s)
            pos = np.asarray(arrays["ev_pos"])
            inside = (pos >= lo) & (pos < hi)
            if inside.any():
                ev_pos.append(pos[inside].astype(np.int64) - lo)
                ev_tok.append(np.asarray(arrays["ev_tok"])[inside])
                ev_step.append(np.full(int(inside.sum()), s, dtype=np.int64))
            counts = np.asarray(arrays["rows"], dtype=np.int64)
            start = int(counts[:b].sum())
            span = slice(start, start + int(counts[b]))
            for n in ("lam", "entropy"):
                if n in arrays:
                    spans[n].append(arrays[n][span])
            if "topk_probs" in arrays and lay.k:
                spans["top1"].append(arrays["topk_probs"][span, 0])
            if any(n in arrays for n in (*FLAG_FIELDS, "stat", "fixed")):
                explicit.append(s)
            t[s] = arrays["t"][b]
            nfe[s] = info["nfe"]
        # tokens after each step: the last event at or before it, else the tokens before the first step
        last = np.full((steps, L), -1, dtype=np.int64)
        value = np.zeros((steps, L), dtype=np.int64)
        if ev_step:
            es, ep = np.concatenate(ev_step), np.concatenate(ev_pos)
            last[es, ep] = es
            value[es, ep] = np.concatenate(ev_tok)
        last = np.maximum.accumulate(last, axis=0)
        cols = np.arange(L)
        tokens = np.where(last >= 0, value[np.maximum(last, 0), cols], self.init[b][None, :])
        before = np.concatenate([self.init[b][None, :], tokens[:-1]])
        changed = tokens != before
        mb, ma = before == mask, tokens == mask
        flags = {"masked_before": mb, "revealed": changed & mb & ~ma, "remasked": changed & ~mb & ma}
        fixed = np.broadcast_to(self.fixed[b], (steps, L)).copy()
        for s in explicit:        # frames that state a field outright (a rewritten record, the HF trace's rows)
            arrays, _ = self.frame(s)
            for n in FLAG_FIELDS:
                if n in arrays:
                    flags[n][s] = _unbits(arrays[n], (B, L))[b]
            if "fixed" in arrays:
                fixed[s] = _unbits(arrays["fixed"], (B, L))[b]
        stat = flags["masked_before"] | ma
        for s in explicit:
            arrays, _ = self.frame(s)
            if "stat" in arrays:
                stat[s] = _unbits(arrays["stat"], (B, L))[b]
        where = np.nonzero(stat)               # row-major: each step's rows in position order, as stored
        maps = {}
        for n, parts in spans.items():
            if n == "top1" and not (lay.k and "topk_probs" in lay.fields) or n != "top1" and n not in lay.fields:
                continue
            m = np.full((steps, L), 1.0 if n == "top1" else 0.0, dtype=np.float32)
            if parts:
                m[where] = np.concatenate(parts)
            maps[n] = m
        return {"tokens": tokens, **flags, "stat": stat, **maps, "fixed": fixed, "t": t, "nfe": nfe}
