"""Named hook points of the sampler, TransformerLens-style.

A hook is `fn(value, state) -> replacement or None` attached to a point by name. `state` is the
`StepState` of the step in progress. Points, in the order a step passes them:

| point     | value                                                  | shape / type |
|-----------|--------------------------------------------------------|--------------|
| "mixture" | input embeddings of the next forward (SM inputs)       | [B, L, D]    |
| "logits"  | SUBS log-probabilities of the forward (or the cache)   | [B, L, V]    |
| "entropy" | entropy (nats) of the full distribution                | [B, L]       |
| "topk"    | `(ids, probs)` of the most likely tokens, descending   | [B, L, k], [B, L, k] |
| "reveal"  | a `Decision(reveal, remask, tokens)` about to apply    | [B, L] each  |
| "lambda"  | lambda of the next SM input (0 where not masked)       | [B, L]       |
| "step"    | the finished `StepRecord`                              | StepRecord   |

A "step" hook may return `STOP` (or raise `StopSampling`) to end the loop after this step; the final
noise-removal step still runs. "mixture" is passed only when a forward pass takes SM input embeddings.

    with smkit.add_hooks(model, {"lambda": lambda lam, s: lam.clamp(max=0.5)}):
        g = smkit.generate(model)

or for one call only: `smkit.generate(model, hooks={"lambda": ...})`.

A point with no hook costs nothing: the sampler checks `hookset.has(name)` before building anything.
"""
from __future__ import annotations

import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
from .errors import ConfigError

HOOK_POINTS = ("mixture", "logits", "entropy", "topk", "reveal", "lambda", "step")


class StopSampling(Exception):
    """Raised by a hook (or returned as `STOP` from a "step" hook) to end decoding early."""


STOP = StopSampling  # a "step" hook may `return STOP`


@dataclass
class Decision:
    """What a step is about to change: `reveal` [B, L] bool (masked positions to fill), `remask` [B, L] bool
    (decoded positions to mask again), `tokens` [B, L] long (the token each revealed position gets)."""
    reveal: torch.Tensor
    remask: torch.Tensor
    tokens: torch.Tensor


@dataclass
class StepState:
    """What a hook can read about the step in progress (tensors are the sampler's own: do not modify in place)."""
    step: int                 # index of this step (0-based; the noise-removal step comes last)
    block: int                # semi-autoregressive block (0 without blocks; -1 for noise removal)
    t: float                  # time before the step, 1 -> 0 within a block
    s: float                  # time after the step
    tokens: torch.Tensor      # [B, L] tokens before the step
    masked: torch.Tensor      # [B, L] bool, masked before the step
    fixed: torch.Tensor       # [B, L] bool, prompt / infill positions (never change)
    nfe: int                  # forward passes spent so far
    mask_id: int
    model: object = None


def _as_pairs(hooks) -> list:
    if hooks is None:
        return []
    items = hooks.items() if isinstance(hooks, dict) else hooks
    pairs = []
    for item in items:
        try:
            name, fns = item
        except (TypeError, ValueError):
            raise ConfigError(f"hooks: give a dict {{point: fn}} or a list of (point, fn) pairs; got {item!r}") from None
        for fn in (fns if isinstance(fns, (list, tuple)) else [fns]):
            if name not in HOOK_POINTS:
                raise ConfigError(f"hooks: unknown hook point {name!r}; choose one of {list(HOOK_POINTS)}")
            if not callable(fn):
                raise ConfigError(f"hooks[{name!r}]={fn!r} is not callable: a hook is fn(value, state)")
            pairs.append((name, fn))
    return pairs


class HookSet:
    """Hooks grouped by point; `run(name, value, state)` passes `value` through each hook in order."""

    def __init__(self, hooks=None):
        self._by_point: dict[str, list[Callable]] = {}
        for name, fn in _as_pairs(hooks):
            self._by_point.setdefault(name, []).append(fn)

    def has(self, name: str) -> bool:
        return name in self._by_point

    def __bool__(self) -> bool:
        return bool(self._by_point)

    def run(self, name: str, value, state: StepState):
        for fn in self._by_point.get(name, ()):
            out = fn(value, state)
            if out is STOP or isinstance(out, StopSampling):
                raise StopSampling(name)
            if out is not None:
                value = out
        return value


_MODEL_HOOKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@contextmanager
def add_hooks(model, hooks):
    """Attach hooks (dict {point: fn or [fns]} or list of (point, fn)) to every sampling call on `model`
    inside the block; they are always removed on exit, even after an error."""
    pairs = _as_pairs(hooks)
    entries = _MODEL_HOOKS.setdefault(model, [])
    entries.extend(pairs)
    try:
        yield model
    finally:
        for pair in pairs:
            for i in range(len(entries) - 1, -1, -1):
                if entries[i] is pair:
                    del entries[i]
                    break
        if not entries:
            _MODEL_HOOKS.pop(model, None)



def collect(model, extra=None) -> HookSet:
    """The hooks active for one sampling call: those attached to `model` plus `extra` (the call's own)."""
    return HookSet(list(_MODEL_HOOKS.get(model, ())) + _as_pairs(extra))
