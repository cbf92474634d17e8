"""One SM update, shared by pretraining (`smkit.train`) and fine-tuning (`smkit.finetune`) (arXiv 2510.17206,
the two-pass training of its method section).

Both draw an update's randomness from a generator seeded by (seed, step), use the same optimizer groups (the
backbone's trainable parameters at `lr`, the three SM scalars at `sm_lr` without weight decay), the same
learning-rate factor (linear warmup, then constant or cosine), and `sm_update`: the loss (binary, or the
two-pass SM estimate), backward over micro-batches, clipping of the backbone's gradient norm, the step.
"""
from __future__ import annotations

import contextlib
import math

import torch

from .distributed import Runtime

LR_SCHEDULES = ("constant", "cosine")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator an update draws everything from: a resumed run replays an uninterrupted one."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))


def draw_soft_mask(generator: torch.Generator, soft_mask: bool, p_sm: float) -> bool:
    """Whether this update takes the two-pass SM estimate: Bernoulli(p_sm), drawn only when `soft_mask`."""
    return soft_mask and bool(torch.rand((), generator=generator) < p_sm)


def lr_factor(step: int, total: int, warmup_steps: int = 0, schedule: str = "constant") -> float:
    """The learning rates' multiplier at update `step` of `total`: linear warmup, then constant or cosine."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        frac = (step - warmup_steps) / max(1, total - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return 1.0


def make_optimizer(model, lr: float, sm_lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW with the groups "backbone" (the backbone's trainable parameters: all of them, or an adapter's; left
    out when there are none) and "soft_mask" (the three SM scalars, no weight decay)."""
    groups = []
    trainable = [p for p in model.backbone.parameters() if p.requires_grad]
    if trainable:
        groups.append({"params": trainable, "lr": lr, "weight_decay": weight_decay, "name": "backbone"})
    groups.append({"params": list(model.soft_mask.parameters()), "lr": sm_lr, "weight_decay": 0.0,
                   "name": "soft_mask"})
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)


def set_learning_rates(optimizer, lr: float, sm_lr: float, factor: float = 1.0) -> None:
    for group in optimizer.param_groups:
        group["lr"] = (lr if group["name"] == "backbone" else sm_lr) * factor


def sm_update(model, optimizer, batch: torch.Tensor, noised: tuple, use_sm: bool, *,
              fixed: torch.Tensor | None = None, micro_batch_size: int | None = None, grad_clip: float = 0.0,
              bf16: bool = False, runtime=None) -> torch.Tensor:
    """One optimizer step on `batch` [B, L] with the noise `noised` = (x_t, masked, weight) from `model.noise`:
    the loss (`use_sm`: the two-pass SM estimate) under bf16 autocast when `bf16`; backward over micro-batches of
    `micro_batch_size` rows (None: one pass; it must divide B; the update is the one pass's, up to float sums);
    the backbone's gradient norm clipped to `grad_clip` (0: off; the SM scalars are never clipped); the step.
    `fixed` [B, L]: positions never scored. `runtime`: a `smkit.training.distributed.Runtime` that wraps `model`
    (data-parallel training); None: this process alone. Returns this process's mean loss, detached."""
    if runtime is None:
        runtime = Runtime(model.device)
        runtime.wrap(model, optimizer)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    micro = micro_batch_size or len(batch)
    starts = range(0, len(batch), micro)
    scored = _scored(batch, fixed, slice(None))
    loss_sum = 0.0
    for i, start in enumerate(starts):
        part = slice(start, start + micro)
        # a micro-batch's loss is a mean over its scored tokens: weighed by its share of them, the parts add up
        # to the whole batch's mean
        share = 1.0 if len(starts) == 1 else _scored(batch, fixed, part) / max(scored, 1)
        sync = contextlib.nullcontext() if i == len(starts) - 1 else runtime.no_sync()
        with sync:
            with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = runtime.call(lambda m: m.loss(batch[part], soft_mask=use_sm,
                                                     noised=tuple(x[part] for x in noised),
                                                     fixed=None if fixed is None else fixed[part]))
            runtime.backward(loss if share == 1 else loss * share)
        loss_sum = loss.detach() if share == 1 else loss_sum + loss.detach() * share
    if grad_clip:
        runtime.clip_grad_norm_(model.backbone.parameters(), grad_clip)
    optimizer.step()
    return loss_sum


def _scored(batch: torch.Tensor, fixed: torch.Tensor | None, rows: slice) -> int:
    """Tokens the loss scores in `rows`: all of them, or those not `fixed`."""
    return batch[rows].numel() if fixed is None else int((~fixed[rows]).sum())
