"""Reader for trace files of format 1 ("smkit-trace/1"): one safetensors file of dense arrays [S, B, L, ...]
(int32 ids, float32 statistics) with the settings and tokenizer as JSON in its header. Read whole, then held
as a format-2 trace in memory (float32: the values stay exact)."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import TraceError

FORMAT_1 = "smkit-trace/1"
_SCALARS = ("step", "block", "nfe", "wall_time")
_TENSORS = ("t", "tokens", "masked_before", "revealed", "remasked", "lam", "entropy", "topk_ids", "topk_probs",
            "fixed")


def read_v1(path) -> tuple[list, dict, dict]:
    """(one dict of StepRecord fields per step, meta, head) of a format-1 file; head holds the tokenizer JSON
    and mask token if any."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("smkit")
            if raw is None:
                raise TraceError(f"{str(path)!r} is not an smkit trace file (no 'smkit' header)")
            header = json.loads(raw)
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as err:
        raise TraceError(f"{str(path)!r} is not a readable trace file: it is cut short or damaged ({err})") from None
    except (ValueError, TypeError) as err:
        if isinstance(err, TraceError):
            raise
        raise TraceError(f"{str(path)!r}: the trace header is damaged ({err})") from None
    fmt = header.get("format")
    if fmt != FORMAT_1:
        raise TraceError(f"{str(path)!r}: trace format {fmt!r}; this smkit reads {FORMAT_1!r} and format 2 "
                         "(a newer smkit wrote it? upgrade smkit)")
    missing = [n for n in ("tokens", "step") if n not in arrays]
    if missing:
        raise TraceError(f"{str(path)!r}: a format-1 trace without {missing} (a damaged file)")
    meta = header.get("meta", {})
    mask_id = meta.get("mask_id")
    records = []
    for i in range(arrays["step"].shape[0]):
        kw = {n: (float(arrays[n][i]) if n == "wall_time" else int(arrays[n][i])) for n in _SCALARS}
        kw.update({n: arrays[n][i] if n in arrays else None for n in _TENSORS})
        records.append(dict(kw, mask_id=mask_id))
    head = {k: header[k] for k in ("tokenizer", "mask_token") if k in header}
    return records, meta, head
