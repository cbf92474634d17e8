"""The sampler (arXiv 2510.17206, section 4): the ONE step loop, `iter_steps`, and `generate` that runs it.

A step: (1) a forward pass on the current state, plain token embeddings on the first step and, with
soft-masking, SM input embeddings at still-masked positions built from the previous pass; no pass at all
when the input is identical to the last one (the MDLM no-change cache; `cache="tokens"`: whenever no token
changed, as the paper's code does, so the next SM input is built from the reused output; the record says
`cached`); (2) entropy and top-k of the
distribution, computed once and shared by SM, the rule and the trace; (3) the rule (`smkit.strategies`)
picks positions to reveal / remask; (4) tokens for revealed positions drawn by Gumbel-max in float64 from
the temperature / top-k / top-p distribution (truncation touches sampling only, never SM); (5) lambda of
the next SM input from THIS pass at the positions still masked in the updated state.

In the code: `_Loop.run` iterates the scheduled steps, `_Loop._step` is (1)-(4) and hands the decision to
`_Loop._apply`, which the final noise-removal step shares: it applies the decision and does (5), the trace
record and the "step" hooks. The settings are checked before any compute (`smkit.sampling_plan`).

A position remasked by ReMDM was unmasked in the pass that remasked it, so (SUBS) its distribution there is
one-hot on the old token: its SM input mixes [MASK] with that token, as the rule above says.

Sample i draws its randomness from its own generator, seeded from (seed, first_sample + i), and all
decisions are per row, so a sample does not depend on the batch it is decoded in (bit for bit wherever
the backbone's forward is batch-invariant; otherwise a float-level difference may flip a near tie).
"""
from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import NamedTuple

import numpy as np
import torch

from ..core.config import ConfigError
from ..core.hooks import Decision, HookSet, StepState, StopSampling, collect
from .config import (LAMBDA_SCHEDULES, REMDM_ETA, Plan, SamplingConfig, _token_ids,  # noqa: F401
                            make_plan)
from ..core.schedules import get_schedule
from ..core.softmask import entropy_from_log_probs, soft_mask_inputs, soft_mask_lambda
from ..core.strategies import StepView, get_strategy
from ..core.trace import StepRecord, Trace
from .trace_sink import TraceSink, trace_target
from ..core.errors import ConfigError


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


@functools.lru_cache(maxsize=4096)
def _alpha(schedule, t: float) -> float:
    return float(schedule(torch.tensor(t, dtype=torch.float64))[0])


class _Stats(NamedTuple):
    """One pass's distribution as a step reads it. `log_probs` [B, L, V] (after any "logits" hook);
    `entropy` [B, L] and the `plan.top_width` most likely tokens, `top_log_probs` / `top_ids` [B, L, width],
    descending, each None when nothing reads it."""
    log_probs: torch.Tensor
    entropy: torch.Tensor | None
    top_log_probs: torch.Tensor | None
    top_ids: torch.Tensor | None


class _When(NamedTuple):
    """Where a scheduled step stands: its block and the block's positions left to decode (not fixed),
    t and s before / after it, whether it is the block's last, and the block's steps left (this one included)."""
    block: int
    region: torch.Tensor
    t: float
    s: float
    last: bool
    steps_left: int


def _chunk_rows(rows: torch.Tensor, value_bytes: int = 4) -> int:
    """How many rows of [V] values to work on at once: about 1 MiB on a CPU, so that a chunk stays in cache while
    it is read several times (at a 50k vocabulary several times faster than whole passes); on a GPU all of them."""
    if rows.is_cuda:
        return max(1, rows.shape[0])
    return max(1, (1 << 20) // (value_bytes * rows.shape[-1]))


# ---------------------------------------------------------------- the step loop

class Steps:
    """Iterator over `StepRecord`s of one decoding run (what `iter_steps` returns). While or after iterating:
    `tokens` [B, L] the current state, `nfe` forward passes spent, `done` True once exhausted,
    `plan` the validated settings (a `Plan`). Runs under torch.no_grad and in eval mode, step by step."""

    def __init__(self, model, plan: Plan, hookset: HookSet, trace: bool):
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
    """The state of one decoding run, and the one place a step happens: `run` -> `_step` -> `_apply`."""

    def __init__(self, model, plan: Plan, hooks: HookSet, trace: bool):
        cfg = plan.config
        dev = plan.device
        if model.device != dev:
            model.to(dev)
        self.model, self.plan, self.cfg, self.hooks, self.trace = model, plan, cfg, hooks, trace
        B, L = cfg.num_samples, plan.length
        self.mask_id = model.mask_id
        # SUBS makes [MASK] the only -inf log-prob when it is the last id and every id is a token (`_stats`
        # then reads the other columns only)
        self.mask_last = (self.mask_id == model.config.vocab_size - 1
                          and getattr(model.config, "n_tokens", None) is None)
        self.x = plan.init.to(dev).expand(B, L).clone()
        self.fixed = plan.fixed.to(dev).expand(B, L).clone()
        self.no_edit = torch.zeros_like(self.fixed)
        self.n_free = (~self.fixed).sum(-1).clamp(min=1)
        self.gens = [torch.Generator(device=dev).manual_seed(sample_seed(cfg.seed, cfg.first_sample + i))
                     for i in range(B)]
        self.rule = get_strategy(cfg.strategy)
        self.schedule = get_schedule(model.config.schedule)
        self.conf = (torch.full((B, L), float("-inf"), dtype=torch.float64, device=dev)
                     if cfg.strategy == "remdm-conf" else None)
        self.need_entropy = cfg.soft_mask or trace or self.rule.reads_entropy or hooks.has("entropy")
        self.need_top = cfg.soft_mask or trace or self.rule.top_probs_read > 0 or hooks.has("topk")
        self.cache = None            # [B, L, V] raw log-probs of the last forward, per row
        self.dirty = torch.ones(B, dtype=torch.bool, device=dev)        # tokens changed since the row's last forward
        self.last_plain = torch.ones(B, dtype=torch.bool, device=dev)   # the row's last forward had plain input
        self.lam = None              # [B, L] lambda of the next input (None: plain input)
        self.top_ids = self.top_log_probs = None   # the top-k the next SM input mixes
        self.stats = None            # the `_Stats` of the current cache, or None
        self.cached = False          # the current step spent no forward pass
        self.nfe = 0
        self.step = 0
        self.stop_requested = False  # a "step" hook asked to stop after its step
        self.t0 = None

    def run(self):
        """The step loop: every scheduled step, then the noise-removal step."""
        self.t0 = time.perf_counter()
        try:
            for when in self._timetable():
                rec = self._step(when)
                if rec is not None:
                    yield rec
                if self.stop_requested:
                    break
        except StopSampling:
            pass                     # a hook ended decoding inside a step: that step leaves no record
        yield from self._noise_removal()

    def _timetable(self):
        """The scheduled steps, block by block, as `_When`s."""
        for j, (start, end, n) in enumerate(self.plan.blocks):
            region = torch.zeros_like(self.fixed)
            region[:, start:end] = True
            region &= ~self.fixed
            for i in range(n):
                yield _When(j, region, 1 - i / n, 1 - (i + 1) / n, i == n - 1, n - i)

    def _step(self, when: _When) -> StepRecord | None:
        """One denoising step; None (no pass, no record) when no row has anything left to do in the block."""
        masked = self.x == self.mask_id
        candidates, editable, active = self._positions(masked, when.region)
        if not bool(active.any()):
            return None
        state = self._state(when.block, when.t, when.s, masked)
        self.cached = not self._forward(active, state)
        stats = self._stats(state, masked)
        reveal, remask = self.rule(self._view(when, stats, candidates, editable, active))
        reveal = reveal & candidates
        remask = remask & editable if self.rule.remasks else torch.zeros_like(reveal)
        tokens, sampled = self._sample(stats.log_probs, reveal)
        return self._apply(Decision(reveal, remask, tokens), masked, state, stats, when.block, when.t, sampled)

    def _noise_removal(self):
        """The last step: what is still masked gets the argmax of one more pass (unless cfg.noise_removal=False)."""
        masked = self.x == self.mask_id
        if not self.cfg.noise_removal or not bool(masked.any()):
            return
        state = self._state(-1, 0.0, 0.0, masked)
        try:
            self.cached = not self._forward(masked.any(-1), state, always=self.cfg.cache == "tokens")
            stats = self._stats(state, masked)
            reveal = masked & ~self.fixed
            tokens = torch.where(reveal, stats.log_probs.argmax(-1), self.x)
            rec = self._apply(Decision(reveal, torch.zeros_like(reveal), tokens), masked, state, stats, -1, 0.0)
        except StopSampling:
            return
        yield rec

    def _apply(self, decision: Decision, masked, state, stats: _Stats, block: int, t: float,
               sampled=None) -> StepRecord:
        """Apply a step's decision, after the "reveal" hooks: new tokens, the no-change cache, remdm-conf memory,
        lambda of the next SM input; then the record, after the "step" hooks. `sampled`: (rows, positions,
        probabilities) of this step's draws, for remdm-conf."""
        if self.hooks.has("reveal"):
            decision = self.hooks.run("reveal", decision, state)
            self._check_decision(decision, masked)
        reveal, remask, tokens = decision.reveal, decision.remask, decision.tokens
        x_new = torch.where(reveal, tokens, self.x).masked_fill(remask, self.mask_id)
        changed = (reveal | remask).any(-1)
        self.dirty |= changed
        if bool(changed.any()):
            self.stats = None        # statistics are per masked row: recompute them for the new state
        if self.conf is not None:
            self.conf = self._confidence(reveal, remask, tokens, stats.log_probs, sampled)
        self.x = x_new
        self.lam = self._next_lambda(stats.entropy, x_new == self.mask_id, state)
        if self.lam is not None:
            self.top_ids, self.top_log_probs = stats.top_ids, stats.top_log_probs
        rec = self._finish_step(self._record(block, t, masked, reveal, remask, x_new, stats), state)
        self.step += 1
        return rec

    # -- (1) forward with the no-change cache
    def _forward(self, active, state, always: bool = False):
        """The pass of the rows that need one (True), or none at all (False: the cache serves the step).
        cache "inputs": a row needs a pass unless its input is its last pass's (same tokens, plain both times);
        "tokens": unless no token changed since its last pass (SM input or not). `always`: every active row."""
        lam = self.lam
        sm_rows = (lam != 0).any(-1) if lam is not None else torch.zeros_like(active)
        if always:
            need = active.clone()
        elif self.cfg.cache == "tokens":
            need = active & self.dirty
        else:
            need = active & (self.dirty | sm_rows | ~self.last_plain)
        if self.cache is None:
            need = torch.ones_like(active)
        if not bool(need.any()):
            return False
        if bool((sm_rows & need).any()):
            sm_k = self.plan.sm.k
            embeds = soft_mask_inputs(self.x, self.top_ids[..., :sm_k], self.top_log_probs[..., :sm_k], lam,
                                      self.mask_id, self.model.embedding_weight)
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

    # -- (2) entropy and top-k, once per pass
    def _stats(self, state, masked) -> _Stats:
        """The `_Stats` of the current cache, computed at the masked rows only: under SUBS an unmasked row is
        one-hot (entropy 0; top-k = the token with log-prob 0, then [MASK] with -inf). With a "logits" hook
        every row is computed from the hooked log-probs."""
        if self.stats is not None and not self.hooks.has("logits"):
            return self.stats
        log_probs = self.cache
        need_entropy, width = self.need_entropy, self.plan.top_width if self.need_top else 0
        entropy = top_log_probs = top_ids = None
        if self.hooks.has("logits"):
            log_probs = self.hooks.run("logits", log_probs, state)
            if need_entropy:
                entropy = entropy_from_log_probs(log_probs)
            if width:
                top_log_probs, top_ids = log_probs.topk(width, -1)
        elif width == 1 and not need_entropy:
            # every row at once: an unmasked SUBS row is one-hot, its best token is its own with log-prob 0
            if self.hooks.has("topk"):
                v, i = log_probs.max(-1)
                top_log_probs, top_ids = v.unsqueeze(-1), i.unsqueeze(-1)
            else:                      # only the rule reads it, and only the value: amax is the fast reduction
                top_log_probs = log_probs.amax(-1, keepdim=True)
        elif need_entropy or width:
            B, L = masked.shape
            bi, li = masked.nonzero(as_tuple=True)
            per_position = log_probs.reshape(B * L, -1)
            if self.mask_last:
                per_position = per_position[:, :-1]   # the [MASK] column (-inf) out: every log-prob left is finite
            flat = bi * L + li
            if width:
                top_log_probs = torch.full((B, L, width), float("-inf"), device=log_probs.device)
                top_log_probs[..., 0] = 0.0
                top_ids = torch.full((B, L, width), self.mask_id, dtype=torch.long, device=log_probs.device)
                top_ids[..., 0] = self.x
                top_v = torch.empty(len(flat), width, device=log_probs.device)
                top_i = torch.empty(len(flat), width, dtype=torch.long, device=log_probs.device)
            if need_entropy:
                entropy = torch.zeros(B, L, device=log_probs.device)
                ent = torch.empty(len(flat), device=log_probs.device)
            for start in range(0, len(flat), _chunk_rows(per_position)):
                # a few rows at a time, gathered, read while they sit in cache: at a 50k vocabulary this is
                # several times faster than one gather of every masked row followed by full passes over it
                part = slice(start, start + _chunk_rows(per_position))
                rows = per_position.index_select(0, flat[part])    # [n, V or V - 1], contiguous
                if width == 1:
                    v, i = rows.max(-1, keepdim=True)
                    top_v[part], top_i[part] = v, i
                elif width:
                    top_v[part], top_i[part] = rows.topk(width, -1)
                if need_entropy:
                    ent[part] = entropy_from_log_probs(rows, finite=self.mask_last)
            if width:
                top_log_probs[bi, li], top_ids[bi, li] = top_v, top_i
            if need_entropy:
                entropy[bi, li] = ent
        if entropy is not None and self.hooks.has("entropy"):
            entropy = self.hooks.run("entropy", entropy, state)
        if top_log_probs is not None and self.hooks.has("topk"):
            ids, probs = self.hooks.run("topk", (top_ids, top_log_probs.exp()), state)
            top_ids, top_log_probs = ids, probs.clamp(min=0).log()
        self.stats = _Stats(log_probs, entropy, top_log_probs, top_ids)
        return self.stats

    # -- (3) the rule
    def _positions(self, masked, region):
        """(candidates, editable, active): the masked positions of the block this step may reveal, the
        decoded ones it may remask (remasking rules only), and the rows with any of them."""
        candidates = masked & region
        if not self.rule.remasks:
            return candidates, self.no_edit, candidates.any(-1)
        editable = ~masked & region
        active = candidates.any(-1) | editable.any(-1)
        return candidates & active[:, None], editable & active[:, None], active

    def _view(self, when: _When, stats: _Stats, candidates, editable, active) -> StepView:
        cfg, top, n = self.cfg, stats.top_log_probs, when.steps_left
        return StepView(
            top_probs=top.exp() if top is not None else None, entropy=stats.entropy, candidates=candidates,
            editable=editable, n_reveal=(candidates.sum(-1) + n - 1) // n, t=when.t, s=when.s,
            alpha_t=_alpha(self.schedule, when.t), alpha_s=1.0 if when.last else _alpha(self.schedule, when.s),
            last=when.last, uniform=self._uniform(active) if self.rule.stochastic else None, conf=self.conf,
            threshold=cfg.threshold, eta=self.plan.eta, t_on=cfg.t_on, t_off=cfg.t_off, alpha_on=cfg.alpha_on)

    def _uniform(self, active):
        B, L = self.x.shape
        u = torch.ones(B, L, dtype=torch.float64, device=self.x.device)
        for b in active.nonzero().flatten().tolist():
            u[b] = torch.rand(L, generator=self.gens[b], dtype=torch.float64, device=self.x.device)
        return u

    # -- (4) the tokens
    def _sample(self, log_probs, reveal):
        """Tokens [B, L]: the current ones, with a draw at each revealed position; and, for remdm-conf,
        (rows, positions, probabilities under the sampling distribution) of the draws, else None."""
        cfg = self.cfg
        tokens = self.x.clone()
        rows, cols = reveal.nonzero(as_tuple=True)
        if rows.numel() == 0:
            return tokens, None
        dist = log_probs[rows, cols]
        if cfg.temperature != 1 or cfg.top_k is not None or cfg.top_p is not None or self.conf is not None:
            dist = truncate(dist, cfg.temperature, cfg.top_k, cfg.top_p)   # else: already normalised log-probs
        counts = torch.bincount(rows, minlength=len(self.gens)).tolist()
        V = dist.shape[-1]
        step = _chunk_rows(dist, value_bytes=8)       # the noise is float64
        ids, start = [], 0
        for b, c in enumerate(counts):   # `rows` is sorted: sample b's draws are rows start .. start + c - 1
            for first in range(start, start + c, step):   # a few rows at a time; the same stream of uniforms
                n = min(step, start + c - first)
                noise = torch.rand(n, V, generator=self.gens[b], dtype=torch.float64, device=dist.device)
                ids.append(gumbel_argmax(dist[first:first + n], noise))
            start += c
        ids = torch.cat(ids)
        tokens[rows, cols] = ids
        if self.conf is None:
            return tokens, None
        return tokens, (rows, cols, dist.gather(-1, ids[:, None]).squeeze(-1).exp())

    def _check_decision(self, d: Decision, masked):
        ok_reveal = masked & ~self.fixed
        ok_remask = ~masked & ~self.fixed
        if bool((d.reveal & ~ok_reveal).any()) or bool((d.remask & ~ok_remask).any()):
            raise ConfigError("reveal hook: reveal must mark masked, non-fixed positions and remask decoded, "
                             "non-fixed ones")
        if bool((d.reveal & (d.tokens == self.mask_id)).any()):
            raise ConfigError("reveal hook: a revealed position needs a token other than [MASK] in `tokens`")

    def _confidence(self, reveal, remask, tokens, log_probs, sampled):
        """remdm-conf memory: -p(token) where a token is decoded now (a draw's p under the sampling
        distribution, else the model's), kept until the position is remasked (then -inf)."""
        conf_new = -log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).exp().to(torch.float64)
        if sampled is not None:
            rows, cols, probs = sampled
            conf_new[rows, cols] = -probs
        return torch.where(reveal, conf_new, self.conf).masked_fill(remask, float("-inf"))

    # -- (5) lambda of the next SM input
    def _next_lambda(self, entropy, masked_after, state):
        if not self.cfg.soft_mask:
            return None
        p = self.plan
        lam = soft_mask_lambda(None, p.sm.scale, p.sm.centre, p.sm.steepness, entropy=entropy)
        if self.cfg.lambda_schedule != "none":
            frac = (masked_after & ~self.fixed).sum(-1) / self.n_free
            factor = frac if self.cfg.lambda_schedule == "linear" else (frac > 0.5).to(lam.dtype)
            lam = lam * factor[:, None]
        lam = torch.where(masked_after, lam, torch.zeros_like(lam))
        if self.hooks.has("lambda"):
            lam = self.hooks.run("lambda", lam, state)
            lam = torch.where(masked_after, lam, torch.zeros_like(lam))
        return lam

    # -- the record and the hooks around it
    def _state(self, block, t, s, masked):
        if not self.hooks:
            return None
        return StepState(self.step, block, t, s, self.x, masked, self.fixed, self.nfe, self.mask_id, self.model)

    def _record(self, block, t, masked, reveal, remask, x_new, stats: _Stats) -> StepRecord:
        B, L = x_new.shape
        lam = entropy = ids = probs = None
        if self.trace:
            k_trace = self.cfg.k_trace
            lam = self.lam if self.lam is not None else torch.zeros(B, L, device=x_new.device)
            entropy = stats.entropy
            ids, probs = stats.top_ids[..., :k_trace], stats.top_log_probs[..., :k_trace].exp()
        return StepRecord(step=self.step, block=block, t=torch.full((B,), float(t)), tokens=x_new,
                          masked_before=masked, revealed=reveal, remasked=remask, lam=lam, entropy=entropy,
                          topk_ids=ids, topk_probs=probs, nfe=self.nfe,
                          wall_time=time.perf_counter() - self.t0, fixed=self.fixed, mask_id=self.mask_id,
                          cached=self.cached)

    def _finish_step(self, rec: StepRecord, state) -> StepRecord:
        """Run the "step" hooks on the finished record: one may replace it, or ask to stop after it."""
        if not self.hooks.has("step"):
            return rec
        try:
            out = self.hooks.run("step", rec, state)
        except StopSampling:
            self.stop_requested = True
            return rec
        return rec if out is None else out


def iter_steps(model, prompt=None, *, config: SamplingConfig | None = None, hooks=None, trace: bool = True,
               **options) -> Steps:
    """The step loop: an iterator of `StepRecord`s, one per denoising step (plus a last noise-removal step
    when positions are still masked), as a `Steps`. Settings are `SamplingConfig` fields, given as `config=` or
    keywords (the keywords replace the config's fields); a bad one raises `smkit.ConfigError` here, before any compute.
    `trace=False` leaves the per-position statistics (lam, entropy, top-k) out of the records. `hooks`:
    {point: fn} for this call only (see `smkit.hooks`). Step it by hand: `it = iter_steps(m, steps=32);
    next(it); it.tokens`."""
    config = sampling_config(config, prompt, options)
    hookset = collect(model, hooks)
    plan = make_plan(config, model)
    return Steps(model, plan, hookset, trace)


def sampling_config(config: SamplingConfig | None, prompt, overrides: dict) -> SamplingConfig:
    """`config` (or the defaults) with `prompt` and the named fields replaced; an unknown name is a ConfigError."""
    if config is not None and not isinstance(config, SamplingConfig):
        raise ConfigError(f"config={config!r}: give a smkit.SamplingConfig (or None) and settings as keywords")
    names = {f.name for f in fields(SamplingConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        hint = "; the soft-masking values go in sm={...}" if set(unknown) & RENAMED_SM else ""
        raise ConfigError(f"unknown sampling setting(s) {unknown}; allowed: {sorted(names)}{hint}")
    if prompt is not None:
        overrides = {**overrides, "prompt": prompt}
    return replace(config or SamplingConfig(), **overrides)


RENAMED_SM = {"k", "sm_scale", "sm_centre", "sm_steepness", "scale", "centre", "steepness"}


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


def generate(model, prompt=None, config: SamplingConfig | None = None, *, trace=True, hooks=None,
             progress: bool = False, **overrides) -> Generation:
    """Decode with the settings of `config` (a `SamplingConfig`; default: every field's default) and `overrides`
    (any `SamplingConfig` field by name, e.g. `steps=64, strategy="margin", sm={"scale": 0.5}`), in the manner
    of Hugging Face's `generate(inputs, generation_config, **kwargs)`. `prompt`: text or token ids kept as a prefix.
    Every field, its default and what it allows: `SamplingConfig`. trace: True keeps a `Trace` in memory; a file
    path (or `smkit.TraceFile(path, overwrite=..., precision=...)`) writes it there while decoding (memory: one
    step; an existing file is kept unless overwrite=True; the path is checked before any compute) and returns it
    opened lazily; False keeps none. hooks: {point: fn}, see `smkit.hooks`. progress: a progress bar over the
    steps that will run. Returns a `Generation`."""
    cfg = sampling_config(config, prompt, overrides)
    trace = trace_target(trace)
    if not trace:
        cfg = replace(cfg, k_trace=0)
    it = iter_steps(model, config=cfg, hooks=hooks, trace=bool(trace))
    sink = TraceSink(trace, it.plan, model, _meta(it.plan, model)) if trace else None
    n = 0
    bar = None
    if progress:
        from ..core.progress import progress_bar
        bar = progress_bar(total=sum(n for *_, n in it.plan.blocks), desc="sampling", unit="step")
    t0 = time.perf_counter()
    try:
        for rec in it:
            n += 1
            if sink is not None:
                sink.add(rec)
            if bar is not None:
                bar.update(1)
    except BaseException as err:
        if sink is not None:
            sink.abort(err)
        raise
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    tokens = it.tokens.cpu()
    tok = model.tokenizer
    texts = [tok.decode(r) for r in tokens.tolist()] if tok is not None else None
    tr = sink.finish() if sink is not None else None
    return Generation(tokens=tokens, texts=texts, nfe=it.nfe, trace=tr, steps=n, wall_time=wall,
                      prompt_length=it.plan.prompt_length, config=cfg, tokenizer=tok)


def _meta(plan: Plan, model) -> dict:
    cfg = asdict(plan.config)
    for name in ("prompt", "infill"):
        if isinstance(cfg[name], torch.Tensor):
            cfg[name] = cfg[name].tolist()
        elif isinstance(cfg[name], tuple):
            cfg[name] = list(cfg[name])
    return {"config": cfg, "mask_id": model.mask_id, "prompt_length": plan.prompt_length,
            "blocks": [list(b) for b in plan.blocks], "sm": plan.sm.to_dict(), "eta": plan.eta,
            "schedule": model.config.schedule}
