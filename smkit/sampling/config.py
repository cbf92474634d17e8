"""The settings of a sampling call, checked before any compute: `SamplingConfig` -> `Plan`.

A bad setting raises `ConfigError` (a `smkit.SmkitError`, itself a ValueError) whose message names the
setting, the value and what is allowed. `make_plan` runs three groups of checks: the settings one by one
(`_check_settings`, `_soft_mask_values`, `_remdm_eta`), the layout of the sequence (prompt | infill template |
masks, `_layout`) and the semi-autoregressive blocks (`_blocks`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..core.config import ConfigError, is_int, is_number
from ..core.notices import SamplingWarning, notify
from ..core.soft_mask_params import SoftMaskParams
from ..core.strategies import STRATEGIES

LAMBDA_SCHEDULES = ("none", "linear", "stepwise")
CACHE_MODES = ("inputs", "tokens")
DEFAULT_LENGTH = 128   # tokens per sample when neither length nor an infill template says
REMDM_ETA = {"remdm-cap": 0.008, "remdm-rescale": 0.015, "remdm-conf": 0.0, "remdm-loop": 0.02}


@dataclass
class SamplingConfig:
    """Settings of one sampling call; `validate(model)` checks every field before any compute."""
    prompt: Optional[str] = None           # prefix text (or a list of token ids); kept fixed
    infill: Optional[str] = None           # template after the prompt; each [MASK] (the tokenizer's mask token) is generated, the rest kept; token ids with mask_id also accepted; a list of texts or id lists (or a 2-D id tensor): one template per sample (same token count)
    num_samples: int = 1                   # samples decoded together
    length: Optional[int] = None           # tokens per sample, prompt included (at most the model's seq_len); None: prompt + infill template, else min(128, seq_len)
    steps: int = 32                        # denoising steps (forward passes at most; +1 for noise removal)
    strategy: str = "confidence"           # unmasking rule: one of smkit.STRATEGIES
    soft_mask: bool = True                 # feed still-masked positions soft-masked inputs from the previous pass
    seed: int = 0                          # sample i uses a generator seeded from (seed, first_sample + i)
    first_sample: int = 0                  # index of the first sample (decode samples i.. of a bigger run)
    temperature: float = 1.0               # sampling temperature (> 0)
    top_k: Optional[int] = None            # sample among the top_k tokens only (SM untouched)
    top_p: Optional[float] = None          # nucleus mass in (0, 1] for sampling (SM untouched)
    sm: Optional[dict] = None              # override some SM values: {"k", "scale", "centre", "steepness"} (default: the model's)
    lambda_schedule: str = "none"          # none | linear (scale x fraction masked) | stepwise (scale while > half masked)
    block_length: Optional[int] = None     # semi-autoregressive blocks over the generated span
    threshold: float = 0.9                 # strategy threshold: reveal where max prob > threshold, in (0, 1]
    eta: Optional[float] = None            # ReMDM eta in [0, 1] (default 0.008 cap, 0.015 rescale, 0.02 loop)
    t_on: float = 0.55                     # remdm-loop: start of the remasking loop
    t_off: float = 0.05                    # remdm-loop: end of the remasking loop
    alpha_on: float = 0.9                  # remdm-loop: alpha held during the loop, in (0, 1)
    k_trace: int = 5                       # top-k ids/probabilities kept per position in the trace
    noise_removal: bool = True             # fill positions still masked at the end by argmax of a last pass
    cache: str = "inputs"                  # no-change cache: inputs (skip a sample's pass only when its input is the last pass's; with SM that input changes every step) or tokens (skip it whenever no token changed since that pass, reusing its output and the SM input built from it, as the paper's _ddpm_caching_update; noise removal always runs)
    device: Optional[str] = None           # run on this device (moves the model); default: the model's

    def validate(self, model) -> "Plan":
        """The `Plan` this config runs with on `model`; a bad setting raises `ConfigError`."""
        return make_plan(self, model)


@dataclass
class Plan:
    """A validated sampling call: the config, the initial sequence and what the step loop reads from it."""
    config: SamplingConfig
    init: torch.Tensor       # [L] initial tokens ([num_samples, L] with one infill template per sample)
    fixed: torch.Tensor      # bool, shaped like init: prompt / template tokens, never changed
    prompt_length: int
    blocks: list             # (start, end, steps) of each semi-autoregressive block
    length: int              # tokens per sample, prompt included (config.length, or its default resolved)
    sm: SoftMaskParams       # the SM values this call uses: the model's, with config.sm's overrides
    top_width: int           # most likely tokens a step ranks per position: for SM, the trace and the rule
    eta: float               # ReMDM remasking strength (the strategy's default unless config.eta)
    device: torch.device




def make_plan(cfg: SamplingConfig, model) -> Plan:
    """Check every setting of `cfg` against `model` and lay out the initial sequence."""
    vocab = model.config.vocab_size
    _check_model(model)
    _check_settings(cfg, vocab)
    sm = model.soft_mask.params().overridden(cfg.sm).validate("sm", vocab)
    eta = _remdm_eta(cfg)
    init, fixed, prompt_length = _layout(cfg, model)
    length = init.shape[-1]
    blocks = _paced(_blocks(cfg, prompt_length, length), fixed, cfg)
    top_width = max(sm.k if cfg.soft_mask else 0, cfg.k_trace, STRATEGIES[cfg.strategy].top_probs_read, 1)
    device = torch.device(cfg.device) if cfg.device is not None else model.device
    return Plan(cfg, init, fixed, prompt_length, blocks, length, sm, min(top_width, vocab - 1), eta, device)


def _bad(name, value, allowed) -> ConfigError:
    return ConfigError(f"{name}={value!r}: {allowed}")


# ---------------------------------------------------------------- the settings, one by one

def _check_model(model) -> None:
    vocab, mask_id = model.config.vocab_size, model.mask_id
    if not is_int(mask_id) or not 0 <= mask_id < vocab:
        raise _bad("model.mask_id", mask_id, f"must be an id in [0, {vocab}) (model.config.vocab_size)")


def _check_settings(cfg: SamplingConfig, vocab: int) -> None:
    for name in ("num_samples", "steps", "seed", "first_sample", "k_trace"):
        if not is_int(getattr(cfg, name)):
            raise _bad(name, getattr(cfg, name), "must be an integer")
    if cfg.steps < 1:
        raise _bad("steps", cfg.steps, "must be >= 1")
    if cfg.num_samples < 1:
        raise _bad("num_samples", cfg.num_samples, "must be >= 1")
    if cfg.seed < 0 or cfg.first_sample < 0:
        raise _bad("seed" if cfg.seed < 0 else "first_sample", min(cfg.seed, cfg.first_sample), "must be >= 0")
    if cfg.strategy not in STRATEGIES:
        raise _bad("strategy", cfg.strategy, f"unknown unmasking rule; choose one of {sorted(STRATEGIES)}")
    for name in ("soft_mask", "noise_removal"):
        if not isinstance(getattr(cfg, name), bool):
            raise _bad(name, getattr(cfg, name), "must be True or False")
    if not is_number(cfg.temperature) or cfg.temperature <= 0:
        raise _bad("temperature", cfg.temperature, "must be a number > 0")
    if cfg.top_k is not None and (not is_int(cfg.top_k) or cfg.top_k < 1):
        raise _bad("top_k", cfg.top_k, "must be None or an integer >= 1")
    if cfg.top_p is not None and (not is_number(cfg.top_p) or not 0 < cfg.top_p <= 1):
        raise _bad("top_p", cfg.top_p, "must be None or a number in (0, 1]")
    if not 0 <= cfg.k_trace <= vocab - 1:
        raise _bad("k_trace", cfg.k_trace, f"must lie in [0, {vocab - 1}]")
    if cfg.lambda_schedule not in LAMBDA_SCHEDULES:
        raise _bad("lambda_schedule", cfg.lambda_schedule, f"choose one of {list(LAMBDA_SCHEDULES)}")
    if cfg.cache not in CACHE_MODES:
        raise _bad("cache", cfg.cache, f"choose one of {list(CACHE_MODES)}")
    if not is_number(cfg.threshold) or not 0 < cfg.threshold <= 1:
        raise _bad("threshold", cfg.threshold, "must be a number in (0, 1]")
    if not (is_number(cfg.t_on) and is_number(cfg.t_off) and 0 < cfg.t_off < cfg.t_on < 1):
        raise ConfigError(f"t_on={cfg.t_on!r}, t_off={cfg.t_off!r}: need 0 < t_off < t_on < 1")
    if not is_number(cfg.alpha_on) or not 0 < cfg.alpha_on < 1:
        raise _bad("alpha_on", cfg.alpha_on, "must be a number in (0, 1)")


def _remdm_eta(cfg: SamplingConfig) -> float:
    eta = REMDM_ETA.get(cfg.strategy, 0.0) if cfg.eta is None else cfg.eta
    if not is_number(eta) or not 0 <= eta <= 1:
        raise _bad("eta", cfg.eta, "the ReMDM remasking strength must be a number in [0, 1] (eta >= 0)")
    if cfg.strategy == "remdm-loop" and eta * cfg.alpha_on / (1 - cfg.alpha_on) > 1:
        raise _bad("eta", eta, f"remdm-loop reveals w.p. eta*alpha_on/(1-alpha_on), which must be <= 1: "
                               f"eta <= {(1 - cfg.alpha_on) / cfg.alpha_on:.4g} for alpha_on={cfg.alpha_on}")
    return float(eta)


# ---------------------------------------------------------------- the layout: prompt | infill template | masks

def _layout(cfg: SamplingConfig, model) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(init, fixed, prompt_length): the initial tokens, which of them never change, the prompt's length."""
    mask_id, ctx = model.mask_id, model.config.seq_len
    prompt = [] if cfg.prompt is None else _token_ids(cfg.prompt, "prompt", model, allow_mask=False)
    P = len(prompt)
    if P >= ctx:
        raise _bad("prompt", _short(cfg.prompt), f"has {P} tokens; the context (model.config.seq_len) holds {ctx}, "
                                                 f"and at least one position must be left to generate")
    if cfg.length is not None and (not is_int(cfg.length) or not 1 <= cfg.length <= ctx):
        raise _bad("length", cfg.length, f"must be None or an integer in [1, {ctx}] (model.config.seq_len)")
    templates = [[]]
    if cfg.infill is not None:
        templates = [_template(t, model) for t in _per_sample(cfg)]
        if len({len(t) for t in templates}) > 1:
            counts = sorted({len(t) for t in templates})
            raise _bad("infill", f"<{len(templates)} templates>", f"per-sample templates must have the same number "
                                                                   f"of tokens; got {counts}")
    T = len(templates[0])
    length = cfg.length if cfg.length is not None else P + T if T else min(DEFAULT_LENGTH, ctx)
    if P + T > ctx:
        raise _bad("infill", _short(cfg.infill), f"prompt ({P}) + template ({T} tokens) exceed the context "
                                                 f"(model.config.seq_len = {ctx})")
    if P + T > length:
        raise _bad("infill", _short(cfg.infill), f"prompt ({P}) + template ({T} tokens) exceed length={length}")
    if length <= P:
        raise _bad("length", length, f"must exceed the prompt length ({P} tokens); it counts the prompt")
    init = torch.full((len(templates), length), mask_id, dtype=torch.long)
    init[:, :P] = torch.tensor(prompt, dtype=torch.long)
    init[:, P:P + len(templates[0])] = torch.tensor(templates, dtype=torch.long)
    if len(templates) == 1:
        init = init[0]         # one template for every sample: [L]; per-sample templates: [num_samples, L]
    return init, init != mask_id, P


def _token_ids(value, name, model, allow_mask: bool) -> list[int]:
    vocab, mask_id = model.config.vocab_size, model.mask_id
    if isinstance(value, str):
        if model.tokenizer is None:
            raise _bad(name, value, "a text needs model.tokenizer; this model has none: pass token ids, or load "
                       "the model with one (smkit.load_pretrained(path, tokenizer=<a tokenizer object or a folder "
                       "holding tokenizer.json>), GPT-2's for the paper's models)")
        ids = model.tokenizer(value, add_special_tokens=False)["input_ids"]
    elif isinstance(value, torch.Tensor):
        ids = value.flatten().tolist()
    elif isinstance(value, (list, tuple)) and all(is_int(i) for i in value):
        ids = [int(i) for i in value]
    else:
        raise _bad(name, value, "give a string or a sequence of token ids")
    bad = [i for i in ids if not 0 <= i < vocab or (i == mask_id and not allow_mask)]
    if bad:
        what = f"token ids in [0, {mask_id})" + (f" or the mask id {mask_id}" if allow_mask else
                                                 f" (the mask id {mask_id} marks infill, not prompt, tokens)")
        raise _bad(name, value, f"holds {bad[:5]}; allowed: {what}")
    return ids


def _per_sample(cfg: SamplingConfig) -> list:
    """The infill templates: [infill] for one template, or the ones given per sample (a list of texts, a list of
    token-id lists, or a [num_samples, T] tensor of ids)."""
    texts = cfg.infill
    if isinstance(texts, torch.Tensor) and texts.dim() == 2:
        texts = texts.tolist()
    if not (isinstance(texts, (list, tuple)) and texts
            and (all(isinstance(t, str) for t in texts) or all(isinstance(t, (list, tuple)) for t in texts))):
        return [texts]
    if len(texts) != cfg.num_samples:
        raise _bad("infill", f"<{len(texts)} templates>", f"gives {len(texts)} templates for num_samples="
                                                          f"{cfg.num_samples}: give one template, or one per sample")
    return list(texts)


def _template(infill, model) -> list[int]:
    mask_id = model.mask_id
    template = _token_ids(infill, "infill", model, allow_mask=True)
    if mask_id not in template:
        marker = model.tokenizer.mask_token if model.tokenizer is not None else f"id {mask_id}"
        raise _bad("infill", _short(infill), f"the template has no mask marker {marker!r} to fill")
    return template


def _short(v):
    return v if not isinstance(v, str) or len(v) <= 60 else v[:57] + "..."


# ---------------------------------------------------------------- the blocks

def _blocks(cfg: SamplingConfig, P: int, length: int) -> list[tuple[int, int, int]]:
    """(start, end, steps) of each block of the generated span [P, length); the steps split as evenly as they go."""
    span = length - P
    if cfg.block_length is None:
        bounds = [(P, length)]
    else:
        if not is_int(cfg.block_length) or cfg.block_length < 1 or span % cfg.block_length:
            raise _bad("block_length", cfg.block_length, f"must be a positive divisor of the generated span "
                                                         f"({span} = length {length} - prompt {P})")
        bounds = [(a, a + cfg.block_length) for a in range(P, length, cfg.block_length)]
    if cfg.steps < len(bounds):
        raise _bad("steps", cfg.steps, f"must be at least the number of blocks ({len(bounds)})")
    base, extra = divmod(cfg.steps, len(bounds))
    return [(a, b, base + (j < extra)) for j, (a, b) in enumerate(bounds)]


def _paced(blocks: list, fixed: torch.Tensor, cfg: SamplingConfig) -> list[tuple[int, int, int]]:
    """A paced rule (one position at least per step, no remasking) is done with a block of c free positions after c
    steps: plan no more, and say so once, so that a progress bar counts the steps that will run."""
    if not STRATEGIES[cfg.strategy].paced:
        return blocks
    free = (~fixed.reshape(-1, fixed.shape[-1]))
    paced = [(a, b, min(n, int(free[:, a:b].sum(-1).max()))) for a, b, n in blocks]
    planned, running = sum(n for *_, n in blocks), sum(n for *_, n in paced)
    if running < planned:
        notify(f"steps={cfg.steps}: strategy {cfg.strategy!r} reveals at least one token per step and {running} "
               f"positions are left to generate, so {running} steps will run", SamplingWarning)
    return paced

