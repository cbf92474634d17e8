"""A filmstrip: one sample of a decode shown as plain text at a few steps (before the first, then after about
T/8, 2T/8, ..., T of its T steps), so that a saved notebook or its HTML page shows the decode without a kernel.

    print(filmstrip(generation.trace, sample=0))                   # texts, one masked token shown as `mask_text`
    print(filmstrip(trace, render=board))                           # any rendering: board(tokens, new) -> str
"""
from __future__ import annotations

import torch

from .errors import TraceError
from .tokens import text_of

MASK_TEXT = "\u00b7"   # a middle dot: one masked token


def frame_steps(num_steps: int, frames: int = 8) -> list[int]:
    """The frames of a decode of `num_steps` steps: 0 (nothing decoded yet) and the ends of steps
    round(j * num_steps / frames), j = 1..frames, each once."""
    if num_steps < 1 or frames < 1:
        raise TraceError(f"filmstrip: num_steps={num_steps} and frames={frames} must both be >= 1")
    out = [0]
    for j in range(1, frames + 1):
        s = max(1, round(j * num_steps / frames))
        if s != out[-1]:
            out.append(s)
    return out


def states(trace, sample: int = 0) -> torch.Tensor:
    """[S + 1, L] token ids of one sample: before the first step, then after each of the trace's S steps."""
    if not 0 <= sample < trace.num_samples:
        raise TraceError(f"sample={sample}: the trace holds samples 0..{trace.num_samples - 1}")
    first = trace[0]
    start = torch.where(first.masked_before[sample], torch.full_like(first.tokens[sample], trace.meta["mask_id"]),
                        first.tokens[sample])
    return torch.cat([start[None], trace.tokens[:, sample]])


def filmstrip(trace, sample: int = 0, frames: int = 8, render=None, tokenizer=None, mask_text: str = MASK_TEXT,
              indent: str = "    ") -> str:
    """One sample of `trace` at the steps of `frame_steps`. Each frame: a header (the step, how many tokens are
    still masked, the forward passes spent) and the sample, rendered by `render(tokens, new)` (tokens: a list of
    ids; new: a list of bools, True where a token appeared since the previous frame) or else decoded with
    `tokenizer` (default: the trace's), a masked token shown as `mask_text`."""
    tok = tokenizer if tokenizer is not None else trace.tokenizer
    if render is None and tok is None:
        raise TraceError("filmstrip needs a tokenizer or a render function: this trace has no tokenizer")
    mask_id = trace.meta["mask_id"]
    rows = states(trace, sample)
    T = len(trace)
    lines = []
    previous = rows[0]
    for s in frame_steps(T, frames):
        ids = rows[s]
        masked = int((ids == mask_id).sum())
        nfe = 0 if s == 0 else int(trace.nfe[s - 1])
        head = "before the first step" if s == 0 else f"after step {s} of {T}"
        lines.append(f"{head}: {masked} of {len(ids)} still masked, {nfe} forward passes")
        new = ((previous == mask_id) & (ids != mask_id)).tolist()
        body = render(ids.tolist(), new) if render is not None else text_of(ids.tolist(), tok, mask_id, mask_text)
        lines.extend(indent + line for line in str(body).split("\n"))
        previous = ids
    return "\n".join(lines)
