"""The sampler (METHOD.md section 4): the ONE step loop, `iter_steps`, and `generate` that runs it.

A step: (1) a forward pass on the current state, plain token embeddings on the first step and, with
soft-masking, SM input embeddings at still-masked positions built from the previous pass; no pass at all
when the input is identical to the last one (the MDLM no-change cache); (2) entropy and top-k of the
distribution, computed once and shared by SM, the rule and the trace; (3) the rule (`smkit.strategies`)
picks positions to reveal / remask; (4) tokens for revealed positions drawn by Gumbel-max in float64 from
the temperature / top-k / top-p distribution (truncation touches sampling only, never SM); (5) lambda of
the next SM input from THIS pass at the positions still masked in the updated state.

A position remasked by ReMDM was unmasked in the pass that remasked it, so (SUBS) its distribution there is
one-hot on the old token: its SM input mixes [MASK] with that token, as the rule above says.

Sample i draws its randomness from its own generator, seeded from (seed, first_sample + i), and all
decisions are per row, so a sample does not depend on the batch it is decoded in (bit for bit wherever
the backbone's forward is batch-invariant; otherwise a float-level difference may flip a near tie).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Optional

import numpy as np
import torch

from .hooks import Decision, HookSet, StepState, StopSampling, collect
from .schedules import get_schedule
from .softmask import embed_mixture, mixture_weights, soft_mask_lambda
from .strategies import STRATEGIES, StepView, get_strategy
from .trace import StepRecord, Trace

LAMBDA_SCHEDULES = ("none", "linear", "stepwise")
REMDM_ETA = {"remdm-cap": 0.008, "remdm-rescale": 0.015, "remdm-conf": 0.0, "remdm-loop": 0.02}


@dataclass
class SamplingConfig:
    """Settings of one sampling call; `validate(model)` checks every field before any compute."""
    prompt: Optional[str] = None           # prefix text (or a list of token ids); kept fixed
    infill: Optional[str] = None           # template after the prompt; each [MASK] (the tokenizer's mask token) is generated, the rest kept; token ids with mask_id also accepted; a list of texts: one template per sample (same token count)
    num_samples: int = 1                   # samples decoded together
    length: int = 128                      # tokens per sample, prompt included (at most the model's seq_len)
    steps: int = 32                        # denoising steps (forward passes at most; +1 for noise removal)
    strategy: str = "confidence"           # unmasking rule: one of smkit.STRATEGIES
    soft_mask: bool = True                 # feed still-masked positions soft-masked inputs from the previous pass
    seed: int = 0                          # sample i uses a generator seeded from (seed, first_sample + i)
    first_sample: int = 0                  # index of the first sample (decode samples i.. of a bigger run)
    temperature: float = 1.0               # sampling temperature (> 0)
    top_k: Optional[int] = None            # sample among the top_k tokens only (SM untouched)
    top_p: Optional[float] = None          # nucleus mass in (0, 1] for sampling (SM untouched)
    k: Optional[int] = None                # SM top-k candidates (default: the model's)
    lambda_schedule: str = "none"          # none | linear (w_s x fraction masked) | stepwise (w_s while > half masked)
    sm_scale: Optional[float] = None       # override w_s in [0, 1] (default: the model's)
    sm_centre: Optional[float] = None      # override w_b (default: the model's)
    sm_steepness: Optional[float] = None   # override w_a > 0 (default: the model's)
    block_length: Optional[int] = None     # semi-autoregressive blocks over the generated span
    threshold: float = 0.9                 # strategy threshold: reveal where max prob > threshold, in (0, 1]
    eta: Optional[float] = None            # ReMDM eta in [0, 1] (default 0.008 cap, 0.015 rescale, 0.02 loop)
    t_on: float = 0.55                     # remdm-loop: start of the remasking loop
    t_off: float = 0.05                    # remdm-loop: end of the remasking loop
    alpha_on: float = 0.9                  # remdm-loop: alpha held during the loop, in (0, 1)
    k_trace: int = 5                       # top-k ids/probabilities kept per position in the trace
    noise_removal: bool = True             # fill positions still masked at the end by argmax of a last pass
    device: Optional[str] = None           # run on this device (moves the model); default: the model's

    def validate(self, model) -> "_Plan":
        return _plan(self, model)


# ---------------------------------------------------------------- validation (before any compute)

def _bad(name, value, allowed):
    return ValueError(f"{name}={value!r}: {allowed}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(v)


def _token_ids(value, name, model, allow_mask: bool) -> list[int]:
    vocab, mask_id = model.config.vocab_size, model.mask_id
    if isinstance(value, str):
        if model.tokenizer is None:
            raise _bad(name, value, "a text needs model.tokenizer; this model has none, pass token ids")
        ids = model.tokenizer(value, add_special_tokens=False)["input_ids"]
    elif isinstance(value, torch.Tensor):
        ids = value.flatten().tolist()
    elif isinstance(value, (list, tuple)) and all(_is_int(i) for i in value):
        ids = [int(i) for i in value]
    else:
        raise _bad(name, value, "give a string or a sequence of token ids")
    bad = [i for i in ids if not 0 <= i < vocab or (i == mask_id and not allow_mask)]
    if bad:
        what = f"token ids in [0, {mask_id})" + (f" or the mask id {mask_id}" if allow_mask else
                                                 f" (the mask id {mask_id} marks infill, not prompt, tokens)")
        raise _bad(name, value, f"holds {bad[:5]}; allowed: {what}")
    return ids


@dataclass
class _Plan:
    config: SamplingConfig
    init: torch.Tensor       # [L] initial tokens
    fixed: torch.Tensor      # [L] bool
    prompt_length: int
    blocks: list             # (start, end, steps)
    k: int
    kk: int                  # top-k width computed per step
    scale: float
    centre: float
    steepness: float
    eta: float
    device: torch.device


def _plan(cfg: SamplingConfig, model) -> _Plan:
    V, mask_id, ctx = model.config.vocab_size, model.mask_id, model.config.seq_len
    if not _is_int(mask_id) or not 0 <= mask_id < V:
        raise ValueError(f"model.mask_id={mask_id!r}: must be an id in [0, {V}) (model.config.vocab_size)")
    for name in ("num_samples", "length", "steps", "seed", "first_sample", "k_trace"):
        if not _is_int(getattr(cfg, name)):
            raise _bad(name, getattr(cfg, name), "must be an integer")
    if cfg.steps < 1:
        raise _bad("steps", cfg.steps, "must be >= 1")
    if cfg.num_samples < 1:
        raise _bad("num_samples", cfg.num_samples, "must be >= 1")
    if cfg.seed < 0 or cfg.first_sample < 0:
        raise _bad("seed" if cfg.seed < 0 else "first_sample", min(cfg.seed, cfg.first_sample), "must be >= 0")
    if cfg.strategy not in STRATEGIES:
        raise _bad("strategy", cfg.strategy, f"unknown unmasking rule; choose one of {sorted(STRATEGIES)}")
    if not isinstance(cfg.soft_mask, bool) or not isinstance(cfg.noise_removal, bool):
        name = "soft_mask" if not isinstance(cfg.soft_mask, bool) else "noise_removal"
        raise _bad(name, getattr(cfg, name), "must be True or False")
    if not _is_num(cfg.temperature) or cfg.temperature <= 0:
        raise _bad("temperature", cfg.temperature, "must be a number > 0")
    if cfg.top_k is not None and (not _is_int(cfg.top_k) or cfg.top_k < 1):
        raise _bad("top_k", cfg.top_k, "must be None or an integer >= 1")
    if cfg.top_p is not None and (not _is_num(cfg.top_p) or not 0 < cfg.top_p <= 1):
        raise _bad("top_p", cfg.top_p, "must be None or a number in (0, 1]")
    k = model.soft_mask.k if cfg.k is None else cfg.k
    if not _is_int(k) or not 1 <= k <= V - 1:
        raise _bad("k", cfg.k, f"the SM top-k must be an integer in [1, {V - 1}] (the vocabulary without [MASK])")
    if not 0 <= cfg.k_trace <= V - 1:
        raise _bad("k_trace", cfg.k_trace, f"must lie in [0, {V - 1}]")
    if cfg.lambda_schedule not in LAMBDA_SCHEDULES:
        raise _bad("lambda_schedule", cfg.lambda_schedule, f"choose one of {list(LAMBDA_SCHEDULES)}")
    if not _is_num(cfg.threshold) or not 0 < cfg.threshold <= 1:
        raise _bad("threshold", cfg.threshold, "must be a number in (0, 1]")
    eta = REMDM_ETA.get(cfg.strategy, 0.0) if cfg.eta is None else cfg.eta
    if not _is_num(eta) or not 0 <= eta <= 1:
        raise _bad("eta", cfg.eta, "the ReMDM remasking strength must be a number in [0, 1] (eta >= 0)")
    if not (_is_num(cfg.t_on) and _is_num(cfg.t_off) and 0 < cfg.t_off < cfg.t_on < 1):
        raise ValueError(f"t_on={cfg.t_on!r}, t_off={cfg.t_off!r}: need 0 < t_off < t_on < 1")
    if not _is_num(cfg.alpha_on) or not 0 < cfg.alpha_on < 1:
        raise _bad("alpha_on", cfg.alpha_on, "must be a number in (0, 1)")
    if cfg.strategy == "remdm-loop" and eta * cfg.alpha_on / (1 - cfg.alpha_on) > 1:
        raise _bad("eta", eta, f"remdm-loop reveals w.p. eta*alpha_on/(1-alpha_on), which must be <= 1: "
                               f"eta <= {(1 - cfg.alpha_on) / cfg.alpha_on:.4g} for alpha_on={cfg.alpha_on}")
    sm = {}
    for name, live in (("sm_scale", model.soft_mask.scale), ("sm_centre", model.soft_mask.centre),
                       ("sm_steepness", model.soft_mask.steepness)):
        v = getattr(cfg, name)
        if v is not None and not _is_num(v):
            raise _bad(name, v, "must be None or a finite number")
        sm[name] = float(live.detach()) if v is None else float(v)
    if not 0 <= sm["sm_scale"] <= 1:
        raise _bad("sm_scale", cfg.sm_scale, "w_s must lie in [0, 1]")
    if not sm["sm_steepness"] > 0:
        raise _bad("sm_steepness", cfg.sm_steepness, "w_a must be > 0")

    # layout: prompt | infill template | masks up to `length`
    prompt = [] if cfg.prompt is None else _token_ids(cfg.prompt, "prompt", model, allow_mask=False)
    P = len(prompt)
    if P >= ctx:
        raise _bad("prompt", _short(cfg.prompt), f"has {P} tokens; the context (model.config.seq_len) holds {ctx}, "
                                                 f"and at least one position must be left to generate")
    if not 1 <= cfg.length <= ctx:
        raise _bad("length", cfg.length, f"must lie in [1, {ctx}] (model.config.seq_len)")
    if cfg.length <= P:
        raise _bad("length", cfg.length, f"must exceed the prompt length ({P} tokens); it counts the prompt")
    templates = [[]]
    if cfg.infill is not None:
        templates = [_template(t, cfg, model, P) for t in _per_sample(cfg)]
        if len({len(t) for t in templates}) > 1:
            counts = sorted({len(t) for t in templates})
            raise _bad("infill", f"<{len(templates)} templates>", f"per-sample templates must have the same number "
                                                                   f"of tokens; got {counts}")
    init = torch.full((len(templates), cfg.length), mask_id, dtype=torch.long)
    init[:, :P] = torch.tensor(prompt, dtype=torch.long)
    init[:, P:P + len(templates[0])] = torch.tensor(templates, dtype=torch.long)
    if len(templates) == 1:
        init = init[0]         # one template for every sample: [L]; per-sample templates: [num_samples, L]
    fixed = init != mask_id

    span = cfg.length - P
    if cfg.block_length is None:
        bounds = [(P, cfg.length)]
    else:
        if not _is_int(cfg.block_length) or cfg.block_length < 1 or span % cfg.block_length:
            raise _bad("block_length", cfg.block_length, f"must be a positive divisor of the generated span "
                                                         f"({span} = length {cfg.length} - prompt {P})")
        bounds = [(a, a + cfg.block_length) for a in range(P, cfg.length, cfg.block_length)]
    if cfg.steps < len(bounds):
        raise _bad("steps", cfg.steps, f"must be at least the number of blocks ({len(bounds)})")
    base, extra = divmod(cfg.steps, len(bounds))
    blocks = [(a, b, base + (j < extra)) for j, (a, b) in enumerate(bounds)]

    device = torch.device(cfg.device) if cfg.device is not None else model.device
    kk = max(k if cfg.soft_mask else 0, cfg.k_trace, 2 if cfg.strategy == "margin" else 1)
    return _Plan(cfg, init, fixed, P, blocks, k, min(kk, V - 1), sm["sm_scale"], sm["sm_centre"],
                 sm["sm_steepness"], float(eta), device)


def _per_sample(cfg: SamplingConfig) -> list:
    """The infill templates: [infill] for one template, or the list of texts given one per sample."""
    texts = cfg.infill
    if not (isinstance(texts, (list, tuple)) and texts and all(isinstance(t, str) for t in texts)):
        return [texts]
    if len(texts) != cfg.num_samples:
        raise _bad("infill", f"<{len(texts)} templates>", f"gives {len(texts)} templates for num_samples="
                                                          f"{cfg.num_samples}: give one template, or one per sample")
    return list(texts)


def _template(infill, cfg: SamplingConfig, model, P: int) -> list[int]:
    mask_id = model.mask_id
    template = _token_ids(infill, "infill", model, allow_mask=True)
    if mask_id not in template:
        marker = model.tokenizer.mask_token if model.tokenizer is not None else f"id {mask_id}"
        raise _bad("infill", _short(infill), f"the template has no mask marker {marker!r} to fill")
    if P + len(template) > cfg.length:
        raise _bad("infill", _short(infill), f"prompt ({P}) + template ({len(template)} tokens) exceed "
                                             f"length={cfg.length}")
    return template


def _short(v):
    return v if not isinstance(v, str) or len(v) <= 60 else v[:57] + "..."


def sample_seed(seed: int, index: int) -> int:
    """The generator seed of sample `index` in a run seeded with `seed`."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] & (2**63 - 1))


# ---------------------------------------------------------------- pieces of a step

def gumbel_argmax(logits: torch.Tensor, noise_uniform: torch.Tensor) -> torch.Tensor:
    """argmax(logits + Gumbel) in float64; `noise_uniform` holds uniforms in [0, 1) of the same shape
    (u = 0 gives Gumbel -inf: that draw never wins). Overwrites `noise_uniform`."""
    g = noise_uniform.to(torch.float64).log_().neg_().log_().neg_()
    return g.add_(logits.to(torch.float64)).argmax(-1)


def truncate(logits: torch.Tensor, temperature: float, top_k, top_p) -> torch.Tensor:
    """float64 log-probabilities of the sampling distribution: temperature, then top-k, then top-p."""
    lp = torch.log_softmax(logits.to(torch.float64) / temperature, -1)
    if top_k is not None and top_k < lp.shape[-1]:
        kth = lp.topk(top_k, -1).values[..., -1:]
        lp = lp.masked_fill(lp < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_lp, order = lp.sort(-1, descending=True)
        p = sorted_lp.exp()
        drop = (p.cumsum(-1) - p) >= top_p          # keep the smallest prefix whose mass reaches top_p
        lp = lp.scatter(-1, order, sorted_lp.masked_fill(drop, float("-inf")))
    return torch.log_softmax(lp, -1)


def _mixture(x, lam, top_ids, top_logp, k, weight):
    """SM input embeddings (METHOD.md section 2) from the step's shared top-k: slot 0 is the input token
    ([MASK] at masked positions), slots 1..k the candidates; weights from `softmask.mixture_weights`."""
    ids = torch.cat([x.unsqueeze(-1), top_ids[..., :k]], -1)
    return embed_mixture(ids, mixture_weights(lam, top_logp[..., :k]), weight)


def _entropy_of_logp(rows: torch.Tensor, mask_last: bool) -> torch.Tensor:
    """Entropy (nats) of SUBS log-prob rows [N, V] of masked positions. Their -inf entries ([MASK], and ids no
    token uses) have p = 0 and add nothing; `mask_last`: [MASK] is the last id and the only -inf (sliced away)."""
    if mask_last:
        return -(rows[:, :-1].exp() * rows[:, :-1]).sum(-1)
    return -(rows.exp() * rows.masked_fill(torch.isneginf(rows), 0.0)).sum(-1)


def _alpha(schedule, t: float) -> float:
    return float(schedule(torch.tensor(t, dtype=torch.float64))[0])


# ---------------------------------------------------------------- the step loop

class Steps:
    """Iterator over `StepRecord`s of one decoding run (see `iter_steps`). While or after iterating:
    `tokens` [B, L] the current state, `nfe` forward passes spent, `done` True once exhausted,
    `plan` the validated settings. Runs under torch.no_grad and in eval mode, step by step."""

    def __init__(self, model, plan: _Plan, hookset: HookSet, trace: bool):
        self.model, self.plan, self.trace = model, plan, trace
        self.config = plan.config
        self.done = False
        self._loop = _Loop(model, plan, hookset, trace)
        self._gen = self._loop.run()

    @property
    def tokens(self) -> torch.Tensor:
        return self._loop.x

    @property
    def nfe(self) -> int:
        return self._loop.nfe

    def __iter__(self):
        return self

    def __next__(self) -> StepRecord:
        training = self.model.training
        if training:
            self.model.eval()
        try:
            with torch.no_grad():
                return next(self._gen)
        except StopIteration:
            self.done = True
            raise
        finally:
            if training:
                self.model.train(True)


class _Loop:
    def __init__(self, model, plan: _Plan, hooks: HookSet, trace: bool):
        cfg = plan.config
        dev = plan.device
        if model.device != dev:
            model.to(dev)
        self.model, self.plan, self.cfg, self.hooks, self.trace = model, plan, cfg, hooks, trace
        B, L = cfg.num_samples, cfg.length
        self.mask_id = model.mask_id
        self.mask_last = (self.mask_id == model.config.vocab_size - 1
                          and getattr(model.config, "n_tokens", None) is None)
        self.x = plan.init.to(dev).expand(B, L).clone()
        self.fixed = plan.fixed.to(dev).expand(B, L).clone()
        self.n_free = (~self.fixed).sum(-1).clamp(min=1)
        self.gens = [torch.Generator(device=dev).manual_seed(sample_seed(cfg.seed, cfg.first_sample + i))
                     for i in range(B)]
        self.rule = get_strategy(cfg.strategy)
        self.schedule = get_schedule(model.config.schedule)
        self.conf = (torch.full((B, L), float("-inf"), dtype=torch.float64, device=dev)
                     if cfg.strategy == "remdm-conf" else None)
        self.need_entropy = cfg.soft_mask or trace or cfg.strategy == "entropy" or hooks.has("entropy")
        self.need_top = (cfg.soft_mask or trace or cfg.strategy in ("confidence", "margin", "threshold")
                         or hooks.has("topk"))
        self.cache = None            # [B, L, V] raw log-probs of the last forward, per row
        self.dirty = torch.ones(B, dtype=torch.bool, device=dev)        # tokens changed since the row's last forward
        self.last_plain = torch.ones(B, dtype=torch.bool, device=dev)   # the row's last forward had plain input
        self.lam = None              # [B, L] lambda of the next input (None: plain input)
        self.top_ids = self.top_logp = None
        self.stats = None            # (logp, entropy, top_logp, top_ids) of the current cache, or None
        self.nfe = 0
        self.step = 0
        self.t0 = None

    # -- forward with the no-change cache
    def _forward(self, active, state):
        lam = self.lam
        sm_rows = (lam != 0).any(-1) if lam is not None else torch.zeros_like(active)
        need = active & (self.dirty | sm_rows | ~self.last_plain)
        if self.cache is None:
            need = torch.ones_like(active)
        if not bool(need.any()):
            return False
        if bool((sm_rows & need).any()):
            embeds = _mixture(self.x, lam, self.top_ids, self.top_logp, self.plan.k, self.model.embedding_weight)
            if self.hooks.has("mixture"):
                embeds = self.hooks.run("mixture", embeds, state)
            out = self.model(self.x, inputs_embeds=embeds)
        else:
            out = self.model(self.x)
        self.nfe += 1
        if self.cache is None or bool(need.all()):
            self.cache = out
        else:
            self.cache = torch.where(need[:, None, None], out, self.cache)
        self.dirty = self.dirty & ~need
        self.last_plain = torch.where(need, ~sm_rows, self.last_plain)
        self.stats = None
        return True

    def _stats(self, state, masked):
        """(logp, entropy [B, L], top_logp [B, L, kk], top_ids [B, L, kk]) of the current cache, computed at the
        masked rows only: under SUBS an unmasked row is one-hot (entropy 0; top-k = the token with log-prob 0,
        then [MASK] with -inf). With a "logits" hook every row is computed from the hooked log-probs."""
        if self.stats is not None and not self.hooks.has("logits"):
            return self.stats
        logp = self.cache
        need_entropy, kk = self.need_entropy, self.plan.kk if self.need_top else 0
        entropy = top_logp = top_ids = None
        if self.hooks.has("logits"):
            logp = self.hooks.run("logits", logp, state)
            if need_entropy:
                entropy = torch.special.entr(logp.exp()).sum(-1)
            if kk:
                top_logp, top_ids = logp.topk(kk, -1)
        elif kk == 1 and not need_entropy:
            v, i = logp.max(-1)        # an unmasked SUBS row is one-hot: its max is its own token, log-prob 0
            top_logp, top_ids = v.unsqueeze(-1), i.unsqueeze(-1)
        elif need_entropy or kk:
            B, L = masked.shape
            bi, li = masked.nonzero(as_tuple=True)
            rows = logp.view(B * L, -1) if bi.numel() == B * L else logp[bi, li]   # [N, V]
            if kk:
                top_logp = torch.full((B, L, kk), float("-inf"), device=logp.device)
                top_logp[..., 0] = 0.0
                top_ids = torch.full((B, L, kk), self.mask_id, dtype=torch.long, device=logp.device)
                top_ids[..., 0] = self.x
                if kk == 1:
                    v, i = rows.max(-1)
                    top_logp[bi, li], top_ids[bi, li] = v.unsqueeze(-1), i.unsqueeze(-1)
                else:
                    top_logp[bi, li], top_ids[bi, li] = rows.topk(kk, -1)
            if need_entropy:
                entropy = torch.zeros(B, L, device=logp.device)
                entropy[bi, li] = _entropy_of_logp(rows, self.mask_last)
        if entropy is not None and self.hooks.has("entropy"):
            entropy = self.hooks.run("entropy", entropy, state)
        if top_logp is not None and self.hooks.has("topk"):
            ids, probs = self.hooks.run("topk", (top_ids, top_logp.exp()), state)
            top_ids, top_logp = ids, probs.clamp(min=0).log()
        self.stats = (logp, entropy, top_logp, top_ids)
        return self.stats

    def _uniform(self, active):
        B, L = self.x.shape
        u = torch.ones(B, L, dtype=torch.float64, device=self.x.device)
        for b in active.nonzero().flatten().tolist():
            u[b] = torch.rand(L, generator=self.gens[b], dtype=torch.float64, device=self.x.device)
        return u

    def _sample(self, logp, reveal):
        """Tokens [B, L] (the current state where not revealed) and, for remdm-conf, the probability of each
        sampled token under the sampling distribution."""
        cfg = self.cfg
        tokens = self.x.clone()
        bi, li = reveal.nonzero(as_tuple=True)
        if bi.numel() == 0:
            return tokens, None, (bi, li)
        rows = logp[bi, li]
        if cfg.temperature != 1 or cfg.top_k is not None or cfg.top_p is not None or self.conf is not None:
            rows = truncate(rows, cfg.temperature, cfg.top_k, cfg.top_p)   # else: already normalised log-probs
        counts = torch.bincount(bi, minlength=len(self.gens)).tolist()
        V = rows.shape[-1]
        noise = torch.cat([torch.rand(c, V, generator=self.gens[b], dtype=torch.float64, device=rows.device)
                           for b, c in enumerate(counts) if c])
        ids = gumbel_argmax(rows, noise)
        tokens[bi, li] = ids
        probs = rows.gather(-1, ids[:, None]).squeeze(-1).exp() if self.conf is not None else None
        return tokens, probs, (bi, li)

    def _next_lambda(self, entropy, masked_after, state):
        if not self.cfg.soft_mask:
            return None
        p = self.plan
        lam = soft_mask_lambda(None, p.scale, p.centre, p.steepness, entropy=entropy)
        if self.cfg.lambda_schedule != "none":
            frac = (masked_after & ~self.fixed).sum(-1) / self.n_free
            factor = frac if self.cfg.lambda_schedule == "linear" else (frac > 0.5).to(lam.dtype)
            lam = lam * factor[:, None]
        lam = torch.where(masked_after, lam, torch.zeros_like(lam))
        if self.hooks.has("lambda"):
            lam = self.hooks.run("lambda", lam, state)
            lam = torch.where(masked_after, lam, torch.zeros_like(lam))
        return lam

    def _state(self, block, t, s, masked):
        if not self.hooks:
            return None
        return StepState(self.step, block, t, s, self.x, masked, self.fixed, self.nfe, self.mask_id, self.model)

    def _check_decision(self, d: Decision, masked):
        ok_reveal = masked & ~self.fixed
        ok_remask = ~masked & ~self.fixed
        if bool((d.reveal & ~ok_reveal).any()) or bool((d.remask & ~ok_remask).any()):
            raise ValueError("reveal hook: reveal must mark masked, non-fixed positions and remask decoded, "
                             "non-fixed ones")
        if bool((d.reveal & (d.tokens == self.mask_id)).any()):
            raise ValueError("reveal hook: a revealed position needs a token other than [MASK] in `tokens`")

    def _record(self, block, t, masked, reveal, remask, x_new, entropy, top_logp, top_ids):
        B, L = x_new.shape
        kt = self.cfg.k_trace
        lam = entropy_out = ids = probs = None
        if self.trace:
            lam = self.lam if self.lam is not None else torch.zeros(B, L, device=x_new.device)
            entropy_out = entropy
            ids, probs = top_ids[..., :kt], top_logp[..., :kt].exp()
        return StepRecord(step=self.step, block=block, t=torch.full((B,), float(t)), tokens=x_new,
                          masked_before=masked, revealed=reveal, remasked=remask, lam=lam, entropy=entropy_out,
                          topk_ids=ids, topk_probs=probs, nfe=self.nfe,
                          wall_time=time.perf_counter() - self.t0, fixed=self.fixed, mask_id=self.mask_id)

    def _finish_step(self, rec, state):
        """Run "step" hooks; True when one asks to stop."""
        if not self.hooks.has("step"):
            return rec, False
        try:
            out = self.hooks.run("step", rec, state)
        except StopSampling:
            return rec, True
        return (rec if out is None else out), False

    def run(self):
        cfg, plan = self.cfg, self.plan
        mask_id = self.mask_id
        self.t0 = time.perf_counter()
        remasks = self.rule.remasks
        no_edit = torch.zeros_like(self.fixed)
        alphas = {}
        alpha = lambda t: alphas[t] if t in alphas else alphas.setdefault(t, _alpha(self.schedule, t))
        stop = False
        try:
            for j, (start, end, n) in enumerate(plan.blocks):
                region = torch.zeros_like(self.fixed)
                region[:, start:end] = True
                region &= ~self.fixed
                for i in range(n):
                    t, s, last = 1 - i / n, 1 - (i + 1) / n, i == n - 1
                    masked = self.x == mask_id
                    cand = masked & region
                    if remasks:
                        editable = ~masked & region
                        active = cand.any(-1) | editable.any(-1)
                        cand, editable = cand & active[:, None], editable & active[:, None]
                    else:
                        editable, active = no_edit, cand.any(-1)
                    if not bool(active.any()):
                        continue
                    state = self._state(j, t, s, masked)
                    self._forward(active, state)
                    logp, entropy, top_logp, top_ids = self._stats(state, masked)
                    remaining = cand.sum(-1)
                    view = StepView(
                        top_probs=top_logp.exp() if top_logp is not None else None, entropy=entropy,
                        candidates=cand, editable=editable, n_reveal=(remaining + (n - i) - 1) // (n - i), t=t, s=s,
                        alpha_t=alpha(t), alpha_s=1.0 if last else alpha(s),
                        last=last, uniform=self._uniform(active) if self.rule.stochastic else None,
                        conf=self.conf, threshold=cfg.threshold, eta=plan.eta, t_on=cfg.t_on, t_off=cfg.t_off,
                        alpha_on=cfg.alpha_on)
                    reveal, remask = self.rule(view)
                    reveal = reveal & cand
                    remask = remask & editable if remasks else no_edit
                    tokens, probs, (bi, li) = self._sample(logp, reveal)
                    x_new = tokens       # the current tokens with the revealed ones filled in
                    if self.hooks.has("reveal"):
                        d = self.hooks.run("reveal", Decision(reveal, remask, tokens), state)
                        self._check_decision(d, masked)
                        reveal, remask, tokens = d.reveal, d.remask, d.tokens
                        x_new = torch.where(reveal, tokens, self.x)
                    if remasks:
                        x_new = x_new.masked_fill(remask, mask_id)
                    changed = (reveal | remask).any(-1) if remasks else reveal.any(-1)
                    self.dirty |= changed
                    if bool(changed.any()):
                        self.stats = None    # statistics are per masked row: recompute for the new state
                    if self.conf is not None:
                        conf_new = -logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).exp().to(torch.float64)
                        if probs is not None:
                            conf_new[bi, li] = -probs
                        self.conf = torch.where(reveal, conf_new, self.conf).masked_fill(remask, float("-inf"))
                    self.x = x_new
                    self.lam = self._next_lambda(entropy, x_new == mask_id, state)
                    if self.lam is not None:
                        self.top_ids, self.top_logp = top_ids, top_logp
                    rec, stop = self._finish_step(
                        self._record(j, t, masked, reveal, remask, x_new, entropy, top_logp, top_ids), state)
                    self.step += 1
                    yield rec
                    if stop:
                        break
                if stop:
                    break
        except StopSampling:
            pass
        yield from self._noise_removal()

    def _noise_removal(self):
        masked = self.x == self.mask_id
        if not self.cfg.noise_removal or not bool(masked.any()):
            return
        active = masked.any(-1)
        state = self._state(-1, 0.0, 0.0, masked)
        try:
            self._forward(active, state)
            logp, entropy, top_logp, top_ids = self._stats(state, masked)
            reveal = masked & ~self.fixed
            tokens = torch.where(reveal, logp.argmax(-1), self.x)
            remask = torch.zeros_like(reveal)
            if self.hooks.has("reveal"):
                d = self.hooks.run("reveal", Decision(reveal, remask, tokens), state)
                self._check_decision(d, masked)
                reveal, remask, tokens = d.reveal, d.remask, d.tokens
        except StopSampling:
            return
        x_new = torch.where(reveal, tokens, self.x).masked_fill(remask, self.mask_id)
        self.x = x_new
        self.lam = self._next_lambda(entropy, x_new == self.mask_id, state) if entropy is not None else None
        rec, _ = self._finish_step(self._record(-1, 0.0, masked, reveal, remask, x_new, entropy, top_logp, top_ids),
                                   state)
        self.step += 1
        yield rec


def iter_steps(model, prompt=None, *, config: SamplingConfig | None = None, hooks=None, trace: bool = True,
               **options) -> Steps:
    """The step loop: an iterator of `StepRecord`s, one per denoising step (plus a last noise-removal step
    when positions are still masked). Settings are `SamplingConfig` fields, given as `config=` or keywords.
    Bad settings raise ValueError here, before any compute. `trace=False` leaves the per-position
    statistics (lam, entropy, top-k) out of the records. `hooks`: {point: fn} for this call only (see
    `smkit.hooks`). Step it by hand: `it = iter_steps(m, steps=32); next(it); it.tokens`."""
    if config is None:
        config = SamplingConfig(prompt=prompt, **_check_options(options))
    elif options or prompt is not None:
        raise ValueError("iter_steps: give either config= or keyword settings, not both")
    hookset = collect(model, hooks)
    plan = _plan(config, model)
    return Steps(model, plan, hookset, trace)


def _check_options(options: dict) -> dict:
    names = {f.name for f in fields(SamplingConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"unknown sampling setting(s) {unknown}; allowed: {sorted(names)}")
    return options


@dataclass
class Generation:
    """What `generate` returns. tokens [B, L] (CPU, long), texts (decoded, prompt included; None without a
    tokenizer), nfe (forward passes spent), trace (a `Trace`, or None with trace=False)."""
    tokens: torch.Tensor
    texts: list | None
    nfe: int
    trace: Trace | None
    steps: int
    wall_time: float
    prompt_length: int
    config: SamplingConfig = field(repr=False)
    tokenizer: object = field(default=None, repr=False)

    @property
    def completions(self) -> list | None:
        """The decoded generated part of each sample (prompt left out)."""
        if self.tokenizer is None:
            return None
        return [self.tokenizer.decode(r) for r in self.tokens[:, self.prompt_length:].tolist()]


def generate(model, prompt=None, num_samples: int = 1, length: int = 128, steps: int = 32,
             strategy: str = "confidence", soft_mask: bool = True, seed: int = 0, trace: bool = True, hooks=None,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, k: int | None = None,
             lambda_schedule: str = "none", sm_scale: float | None = None, sm_centre: float | None = None,
             sm_steepness: float | None = None, block_length: int | None = None, infill=None,
             threshold: float = 0.9, eta: float | None = None, t_on: float = 0.55, t_off: float = 0.05,
             alpha_on: float = 0.9, k_trace: int = 5, noise_removal: bool = True, device=None,
             first_sample: int = 0, progress: bool = False) -> Generation:
    """Decode `num_samples` sequences of `length` tokens (prompt included) in `steps` steps.

    prompt: text or token ids kept as a prefix. infill: a template placed after the prompt in which every
    mask token (the tokenizer's "[MASK]", or mask_id among ids) is generated and the rest kept fixed;
    positions after the template are generated too; a list of texts gives each sample its own template
    (num_samples of them, all of the same token count). strategy: one of `smkit.STRATEGIES`. soft_mask: SM
    inputs at still-masked positions from the previous pass (k, w_s, w_b, w_a from the model unless given
    as k / sm_scale / sm_centre / sm_steepness); lambda_schedule none | linear | stepwise. temperature,
    top_k, top_p shape sampling only. block_length: semi-autoregressive blocks (steps split over them).
    threshold: for strategy="threshold". eta, t_on, t_off, alpha_on: ReMDM. k_trace: top-k kept per position
    in the trace. noise_removal: argmax-fill what is still masked after the last step (one more pass if
    needed). hooks: {point: fn}, see `smkit.hooks`. Returns a `Generation`."""
    cfg = SamplingConfig(prompt=prompt, infill=infill, num_samples=num_samples, length=length, steps=steps,
                         strategy=strategy, soft_mask=soft_mask, seed=seed, first_sample=first_sample,
                         temperature=temperature, top_k=top_k, top_p=top_p, k=k, lambda_schedule=lambda_schedule,
                         sm_scale=sm_scale, sm_centre=sm_centre, sm_steepness=sm_steepness,
                         block_length=block_length, threshold=threshold, eta=eta, t_on=t_on, t_off=t_off,
                         alpha_on=alpha_on, k_trace=k_trace if trace else 0, noise_removal=noise_removal,
                         device=None if device is None else str(device))
    it = iter_steps(model, config=cfg, hooks=hooks, trace=trace)
    records, n = [], 0
    bar = None
    if progress:
        from .progress import progress_bar
        bar = progress_bar(total=steps, desc="sampling", unit="step")
    t0 = time.perf_counter()
    for rec in it:
        n += 1
        if trace:
            records.append(rec.cpu())
        if bar is not None:
            bar.update(1)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    tokens = it.tokens.cpu()
    tok = model.tokenizer
    texts = [tok.decode(r) for r in tokens.tolist()] if tok is not None else None
    tr = None
    if trace and records:
        tr = Trace.from_records(records, meta=_meta(it.plan, model), tokenizer=tok)
    return Generation(tokens=tokens, texts=texts, nfe=it.nfe, trace=tr, steps=n, wall_time=wall,
                      prompt_length=it.plan.prompt_length, config=cfg, tokenizer=tok)


def _meta(plan: _Plan, model) -> dict:
    cfg = asdict(plan.config)
    for name in ("prompt", "infill"):
        if isinstance(cfg[name], torch.Tensor):
            cfg[name] = cfg[name].tolist()
        elif isinstance(cfg[name], tuple):
            cfg[name] = list(cfg[name])
    return {"config": cfg, "mask_id": model.mask_id, "prompt_length": plan.prompt_length,
            "blocks": [list(b) for b in plan.blocks], "k": plan.k, "sm_scale": plan.scale,
            "sm_centre": plan.centre, "sm_steepness": plan.steepness, "eta": plan.eta,
            "schedule": model.config.schedule}
