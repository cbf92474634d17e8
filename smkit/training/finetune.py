"""Fine-tuning a wrapped denoiser with SM (arXiv 2510.17206: its recipe for large pretrained diffusion LMs).

Examples are prompt/response pairs (the prompt is never masked and never scored) or plain blocks. Each update
draws its batch, one t for the whole batch from the narrowed range [t_min, t_max], the Bernoulli(p_sm) that
picks the two-pass SM estimate, and its noise from a generator seeded by (seed, step); the loss is
`DiffusionLM.loss` with `fixed=` marking the prompts. The update is pretraining's (`smkit.training.update.sm_update`:
micro-batches, clipping, bf16 autocast), with its two optimizer groups (the backbone's trainable parameters,
the adapter's after `smkit.add_adapter`, at `lr`; the three SM scalars at `sm_lr` without weight decay) and its
learning-rate schedule (warmup, then constant or cosine). Responses are padded with `pad_id` (default: the
tokenizer's EOS, else its pad token); padding belongs to the response and is scored, so the model learns where
an answer ends.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..core.config import ConfigError, check, is_int, with_overrides
from .distributed import Runtime
from ..models.denoiser import DiffusionLM
from ..core.precision import resolve_bf16
from ..core.progress import progress_bar
from ..core.schedules import sample_t
from .update import LR_SCHEDULES, draw_soft_mask, lr_factor, set_learning_rates, sm_update, step_generator
from .update import make_optimizer as _make_optimizer

HISTORY_COLUMNS = ["step", "loss", "soft_mask", "t", "scale", "steepness", "centre"]


@dataclass
class FinetuneConfig:
    """Every setting of `finetune`; defaults follow the paper's fine-tuning recipe."""
    steps: int = 100                     # number of updates
    batch_size: int = 8
    lr: float = 1e-5                     # adapters (or the whole backbone when it has no adapter)
    sm_lr: float = 1e-2                  # the SM scalars (no weight decay on them)
    weight_decay: float = 0.0            # on the adapter / backbone group only
    soft_mask: bool = True               # use the two-pass SM estimate (with probability p_sm)
    p_sm: float = 0.8                    # probability that an update uses the two-pass SM estimate
    t_min: float = 0.2                   # lower end of the sampled time range
    t_max: float = 0.8                   # upper end
    one_t_per_batch: bool = True         # one t shared by the batch (else stratified t over the batch)
    seq_len: int | None = None           # padded length of pairs (default: the longest example)
    grad_clip: float = 1.0               # max gradient norm of the adapter / backbone group (0: off)
    warmup_steps: int = 0                # updates of linear learning-rate warmup
    lr_schedule: str = "constant"        # after warmup: constant or cosine
    micro_batch_size: int | None = None  # rows per forward pass (gradients accumulated); None: the whole batch
    seed: int = 0
    log_every: int = 1                   # updates between history rows
    bf16: bool | None = None             # bf16 autocast; None: on where it pays (CUDA with bf16, CPUs with AMX), fp32 elsewhere
    progress: bool = False

    def validate(self) -> "FinetuneConfig":
        for name in ("steps", "batch_size", "log_every"):
            v = getattr(self, name)
            check(is_int(v) and v >= 1, name, v, "must be an integer >= 1")
        for name in ("lr", "sm_lr", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            check(isinstance(v, (int, float)) and v >= 0, name, v, "must be a number >= 0")
        check(isinstance(self.p_sm, (int, float)) and 0 <= self.p_sm <= 1, "p_sm", self.p_sm, "must lie in [0, 1]")
        check(isinstance(self.t_min, (int, float)) and 0 < self.t_min <= 1, "t_min", self.t_min,
              "the t-range must lie in (0, 1]")
        check(isinstance(self.t_max, (int, float)) and 0 < self.t_max <= 1, "t_max", self.t_max,
              "the t-range must lie in (0, 1]")
        check(self.t_min <= self.t_max, "t_min", self.t_min, f"must not exceed t_max={self.t_max} (reversed range)")
        for name in ("soft_mask", "one_t_per_batch", "progress"):
            check(isinstance(getattr(self, name), bool), name, getattr(self, name), "must be True or False")
        check(self.bf16 is None or isinstance(self.bf16, bool), "bf16", self.bf16, "must be None, True or False")
        check(self.seq_len is None or (is_int(self.seq_len) and self.seq_len >= 2), "seq_len",
              self.seq_len, "must be None or an integer >= 2")
        check(is_int(self.seed) and self.seed >= 0, "seed", self.seed, "must be an integer >= 0")
        check(is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps", self.warmup_steps, "must be an integer >= 0")
        check(self.lr_schedule in LR_SCHEDULES, "lr_schedule", self.lr_schedule, "constant or cosine")
        check(self.micro_batch_size is None or (is_int(self.micro_batch_size) and self.micro_batch_size >= 1
                                                and self.batch_size % self.micro_batch_size == 0),
              "micro_batch_size", self.micro_batch_size, f"must divide batch_size={self.batch_size}, or be None")
        return self


@dataclass
class FinetuneResult:
    model: DiffusionLM
    history: "object"  # pandas.DataFrame with HISTORY_COLUMNS, one row per logged update


def encode_examples(examples, tokenizer=None, seq_len: int | None = None, pad_id: int | None = None):
    """(input_ids [N, L], fixed [N, L] bool) from prompt/response pairs, given as (prompt, response) or
    {"prompt": ..., "response": ...} with texts or token-id lists; `fixed` marks the prompts. Plain blocks, a
    LongTensor [N, L], come back with nothing fixed; an (input_ids, fixed) pair of tensors comes back checked.
    Pairs are padded with `pad_id` to `seq_len` (default: the longest); longer responses are cut, with a warning."""
    if isinstance(examples, torch.Tensor):
        _check_ids(examples, "examples")
        return examples.long(), torch.zeros_like(examples, dtype=torch.bool)
    if isinstance(examples, tuple) and len(examples) == 2 and all(isinstance(e, torch.Tensor) for e in examples):
        ids, fixed = examples
        _check_ids(ids, "examples[0] (input_ids)")
        if fixed.dtype != torch.bool or fixed.shape != ids.shape:
            raise ConfigError(f"examples[1] (fixed): must be a bool tensor shaped like input_ids {tuple(ids.shape)}")
        return ids.long(), fixed
    if not isinstance(examples, (list, tuple)) or not examples:
        raise ConfigError("examples: give a non-empty list of (prompt, response) pairs, a LongTensor of blocks "
                          "[N, L], or an (input_ids, fixed) pair of tensors")
    pairs = [_pair(e, i, tokenizer) for i, e in enumerate(examples)]
    longest = max(len(p) + len(r) for p, r in pairs)
    L = longest if seq_len is None else seq_len
    if not isinstance(L, int) or L < 2:
        raise ConfigError(f"seq_len={seq_len!r}: must be an integer >= 2")
    if pad_id is None and tokenizer is not None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
    if pad_id is None and any(len(p) + len(r) < L for p, r in pairs):
        raise ConfigError("pad_id=None: the tokenizer has no EOS or pad token to pad responses with; pass pad_id=")
    ids = torch.full((len(pairs), L), -1 if pad_id is None else pad_id, dtype=torch.long)
    fixed = torch.zeros(len(pairs), L, dtype=torch.bool)
    cut = 0
    for i, (prompt, response) in enumerate(pairs):
        if len(prompt) >= L:
            raise ConfigError(f"examples[{i}]: the prompt has {len(prompt)} tokens, seq_len={L} leaves no room "
                              f"for a response")
        seq = (prompt + response)[:L]
        cut += len(prompt) + len(response) > L
        ids[i, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        fixed[i, :len(prompt)] = True
    if cut:
        warnings.warn(f"{cut} of {len(pairs)} responses were cut to fit seq_len={L}", stacklevel=2)
    return ids, fixed


def _pair(example, i, tokenizer):
    if isinstance(example, dict):
        if set(example) != {"prompt", "response"}:
            raise ConfigError(f"examples[{i}]: a dict needs exactly the keys 'prompt' and 'response'; got "
                              f"{sorted(example)}")
        example = (example["prompt"], example["response"])
    if not isinstance(example, (tuple, list)) or len(example) != 2:
        raise ConfigError(f"examples[{i}]: expected a (prompt, response) pair or a dict; got {type(example).__name__}")
    out = []
    for part, value in zip(("prompt", "response"), example):
        if isinstance(value, str):
            if tokenizer is None:
                raise ConfigError(f"examples[{i}] {part}: a text needs a tokenizer; pass token ids instead")
            value = tokenizer(value, add_special_tokens=False)["input_ids"]
        if not isinstance(value, (list, tuple)) or not all(isinstance(t, int) for t in value):
            raise ConfigError(f"examples[{i}] {part}: give a text or a list of token ids")
        out.append(list(value))
    if not out[1]:
        raise ConfigError(f"examples[{i}]: the response is empty; there is nothing to learn from it")
    return out[0], out[1]


def _check_ids(ids, name):
    if ids.dim() != 2 or ids.dtype not in (torch.int32, torch.int64) or ids.numel() == 0:
        raise ConfigError(f"{name}: must be a non-empty integer tensor [N, L]; got {ids.dtype} {tuple(ids.shape)}")


def _check_against_model(ids, model: DiffusionLM):
    limit = model.config.n_tokens or model.config.vocab_size
    bad = (ids < 0) | (ids >= limit) | (ids == model.mask_id)
    if bool(bad.any()):
        raise ConfigError(f"examples hold token ids {sorted(set(ids[bad].tolist()))[:5]}: allowed are ids in "
                          f"[0, {limit}) other than the mask id {model.mask_id}")
    if ids.shape[1] > model.config.seq_len:
        raise ConfigError(f"examples are {ids.shape[1]} tokens long; the model takes at most "
                          f"{model.config.seq_len} (model.config.seq_len); pass seq_len=")


def make_optimizer(model: DiffusionLM, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """AdamW with the groups "backbone" (trainable backbone parameters: the adapter's) and "soft_mask"."""
    return _make_optimizer(model, cfg.lr, cfg.sm_lr, cfg.weight_decay)


def finetune(model: DiffusionLM, examples, config: FinetuneConfig | dict | None = None, *,
             pad_id: int | None = None, **overrides) -> FinetuneResult:
    """Fine-tune `model` in place (see the module docstring). `examples`: see `encode_examples`. Settings are
    `FinetuneConfig` fields (`config=` or keywords). Returns the model (in eval mode) and the history."""
    import pandas as pd

    cfg = with_overrides(config, FinetuneConfig, overrides, what="fine-tuning option").validate()
    if not isinstance(model, DiffusionLM):
        raise ConfigError(f"model: expected a smkit DiffusionLM (see smkit.from_hf), got {type(model).__name__}")
    ids, fixed = encode_examples(examples, model.tokenizer, cfg.seq_len, pad_id)
    _check_against_model(ids, model)

    device = model.device
    bf16 = resolve_bf16(cfg.bf16, device)
    runtime = Runtime(device)
    optimizer = runtime.wrap(model, make_optimizer(model, cfg))
    rows = []
    bar = progress_bar(total=cfg.steps, desc="finetune", disable=not cfg.progress, dynamic_ncols=True)
    for step in range(cfg.steps):
        gen = step_generator(cfg.seed, step)
        idx = torch.randint(len(ids), (cfg.batch_size,), generator=gen)
        batch, batch_fixed = ids[idx].to(device), fixed[idx].to(device)
        use_sm = draw_soft_mask(gen, cfg.soft_mask, cfg.p_sm)
        t = sample_t(1, gen, cfg.t_min, cfg.t_max, antithetic=False) if cfg.one_t_per_batch else None
        noised = model.noise(batch, t, gen, cfg.t_min, cfg.t_max, fixed=batch_fixed)
        set_learning_rates(optimizer, cfg.lr, cfg.sm_lr, lr_factor(step, cfg.steps, cfg.warmup_steps, cfg.lr_schedule))
        loss = sm_update(model, optimizer, batch, noised, use_sm, fixed=batch_fixed,
                         micro_batch_size=cfg.micro_batch_size, grad_clip=cfg.grad_clip, bf16=bf16, runtime=runtime)
        bar.update(1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            w = model.soft_mask.values()
            rows.append([step + 1, float(loss), use_sm, float(t) if t is not None else float("nan"),
                         w["scale"], w["steepness"], w["centre"]])
            bar.set_postfix(loss=f"{rows[-1][1]:.3f}", scale=f"{w['scale']:.3f}", refresh=False)
    bar.close()
    model.eval()
    return FinetuneResult(model, pd.DataFrame(rows, columns=HISTORY_COLUMNS))
