"""The record of a decoding run: one `StepRecord` per step, stacked into a `Trace` (struct of arrays).

Shapes: B samples, L positions, S steps, k = k_trace. A trace keeps top-k ids and probabilities, never the
full distribution: memory is O(S x B x L x k) (about S*B*L*(8*k + 19) bytes: int32 ids, float32 probs,
int32 tokens, float32 lambda and entropy, four bool masks).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from .errors import TraceError

FORMAT = "smkit-trace/1"


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

    With `trace=False` the sampler leaves lam, entropy, topk_ids and topk_probs as None.
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

    @property
    def masked(self) -> torch.Tensor:
        """[B, L] bool, masked after the step."""
        if self.mask_id is None:
            raise TraceError("this record does not know its mask id")
        return self.tokens == self.mask_id

    def cpu(self) -> "StepRecord":
        """A copy with every tensor on the CPU, ids as int32, floats as float32."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.detach().to("cpu")
                v = v.to(torch.int32) if f.name in _INT32 else v.float() if v.is_floating_point() else v
            out[f.name] = v
        return StepRecord(**out)


_INT32 = ("tokens", "topk_ids")
_SCALARS = ("step", "block", "nfe", "wall_time")
_TENSORS = ("t", "tokens", "masked_before", "revealed", "remasked", "lam", "entropy", "topk_ids", "topk_probs",
            "fixed")


class Trace:
    """Step records stacked along a leading step axis: `trace.tokens` is [S, B, L], `trace.topk_ids`
    [S, B, L, k], `trace.nfe` [S], ... (same names as `StepRecord`). `trace[i]` gives step i back as a
    `StepRecord`; `len(trace)` is S. Memory O(S x B x L x k_trace); see the module docstring.

    `meta` holds the sampling settings (JSON-able); `tokenizer` (optional) decodes `texts_at`.
    """

    def __init__(self, arrays: dict, meta: dict | None = None, tokenizer=None):
        self._arrays = arrays
        self.meta = dict(meta or {})
        self.tokenizer = tokenizer

    # ------------------------------------------------------------ building
    @classmethod
    def from_records(cls, records, meta: dict | None = None, tokenizer=None) -> "Trace":
        records = [r if r.tokens.device.type == "cpu" else r.cpu() for r in records]
        if not records:
            raise TraceError("Trace.from_records: no step records")
        arrays = {}
        for name in _SCALARS:
            dtype = torch.float64 if name == "wall_time" else torch.int64
            arrays[name] = torch.tensor([getattr(r, name) for r in records], dtype=dtype)
        for name in _TENSORS:
            values = [getattr(r, name) for r in records]
            if any(v is None for v in values):
                continue
            arrays[name] = torch.stack(values)
        meta = dict(meta or {})
        if "mask_id" not in meta and records[0].mask_id is not None:
            meta["mask_id"] = records[0].mask_id
        return cls(arrays, meta, tokenizer)

    def __len__(self) -> int:
        return int(self._arrays["step"].shape[0])

    def __getattr__(self, name):
        arrays = self.__dict__.get("_arrays", {})
        if name in arrays:
            return arrays[name]
        if name in _TENSORS:
            return None
        raise AttributeError(name)

    def __getitem__(self, i: int) -> StepRecord:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"step {i} out of range for a trace of {n} steps")
        kw = {}
        for name in _SCALARS:
            v = self._arrays[name][i]
            kw[name] = float(v) if name == "wall_time" else int(v)
        for name in _TENSORS:
            kw[name] = self._arrays[name][i] if name in self._arrays else None
        return StepRecord(**kw, mask_id=self.meta.get("mask_id"))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def num_samples(self) -> int:
        return int(self._arrays["tokens"].shape[1])

    @property
    def length(self) -> int:
        return int(self._arrays["tokens"].shape[2])

    @property
    def masked(self) -> torch.Tensor:
        """[S, B, L] bool, masked after each step."""
        return self._arrays["tokens"] == self.meta["mask_id"]

    def nbytes(self) -> int:
        return sum(a.numel() * a.element_size() for a in self._arrays.values())

    def __repr__(self) -> str:
        k = self._arrays["topk_ids"].shape[-1] if "topk_ids" in self._arrays else 0
        return (f"Trace(steps={len(self)}, samples={self.num_samples}, length={self.length}, k_trace={k}, "
                f"nfe={int(self._arrays['nfe'][-1])}, {self.nbytes() / 2**20:.1f} MiB)")

    # ------------------------------------------------------------ views
    def texts_at(self, step: int, tokenizer=None, mask_text: str | None = None) -> list[str]:
        """The samples' texts after `step` (negative counts from the end). Masked positions show as the
        tokenizer's mask token, or as `mask_text` when given."""
        tok = tokenizer if tokenizer is not None else self.tokenizer
        if tok is None:
            raise TraceError("texts_at needs a tokenizer: this trace has none; pass tokenizer=...")
        mask_id = self.meta["mask_id"]
        rows = self[step].tokens.tolist()
        if mask_text is None:
            return [tok.decode(r) for r in rows]
        out = []
        for r in rows:
            parts, run = [], []
            for i in r + [None]:
                if i is None or i == mask_id:
                    if run:
                        parts.append(tok.decode(run))
                        run = []
                    if i is not None:
                        parts.append(mask_text)
                else:
                    run.append(i)
            out.append("".join(parts))
        return out

    def to_pandas(self):
        """One row per (sample, step, position). Columns: sample, step, position, block, t, token, masked
        (after the step), masked_before, revealed, remasked, fixed, lam, entropy, topk_ids, topk_probs
        (arrays of length k), nfe, wall_time."""
        import numpy as np
        import pandas as pd

        a = self._arrays
        S, B, L = a["tokens"].shape
        rows = lambda x: np.ascontiguousarray(np.swapaxes(np.asarray(x), 0, 1)).reshape(B * S * L, *np.shape(x)[3:])
        per_step = lambda v: np.tile(np.repeat(np.asarray(v), L), B)
        cols = {"sample": np.repeat(np.arange(B), S * L), "step": per_step(a["step"].numpy()),
                "position": np.tile(np.arange(L), B * S), "block": per_step(a["block"].numpy()),
                "t": rows(np.broadcast_to(a["t"].numpy()[:, :, None], (S, B, L))),
                "token": rows(a["tokens"].numpy()), "masked": rows(self.masked.numpy())}
        for name in ("masked_before", "revealed", "remasked", "fixed", "lam", "entropy"):
            if name in a:
                cols[name] = rows(a[name].numpy())
        df = pd.DataFrame(cols)
        if "topk_ids" in a:
            df["topk_ids"] = list(rows(a["topk_ids"].numpy()))
            df["topk_probs"] = list(rows(a["topk_probs"].numpy()))
        df["nfe"] = per_step(a["nfe"].numpy())
        df["wall_time"] = per_step(a["wall_time"].numpy())
        return df

    # ------------------------------------------------------------ files
    def save(self, path) -> Path:
        """Write a portable file (safetensors; settings and tokenizer as JSON in its header), atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        header = {"format": FORMAT, "meta": self.meta}
        if self.tokenizer is not None:
            header["tokenizer"] = self.tokenizer.backend_tokenizer.to_str()
            header["mask_token"] = self.tokenizer.mask_token
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in self._arrays.items()}, str(tmp),
                  metadata={"smkit": json.dumps(header)})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "Trace":
        """Read a file written by `save` (no pickle)."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("smkit")
            if raw is None:
                raise TraceError(f"{str(path)!r} is not an smkit trace file (no 'smkit' header)")
            header = json.loads(raw)
            arrays = {k: f.get_tensor(k) for k in f.keys()}
        if header.get("format") != FORMAT:
            raise TraceError(f"{str(path)!r}: trace format {header.get('format')!r}, expected {FORMAT!r}")
        tokenizer = None
        if "tokenizer" in header:
            from tokenizers import Tokenizer
            from transformers import PreTrainedTokenizerFast
            tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(header["tokenizer"]),
                                                mask_token=header.get("mask_token"),
                                                clean_up_tokenization_spaces=False)
        return cls(arrays, header.get("meta", {}), tokenizer)
