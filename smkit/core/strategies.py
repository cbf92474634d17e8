"""Unmasking and remasking rules (arXiv 2510.17206: sampling with SM, whatever the rule), each a small pure
function in a registry.

A rule reads one step's `StepView` and returns `(reveal, remask)`, two bool [B, L] tensors: which masked
positions get their sampled token, and which decoded positions go back to [MASK]. The sampler draws the
tokens (Gumbel-max, float64) after the rule has chosen the positions, so rules never see sampling noise
other than `view.uniform`. Scores come from the model's untruncated distribution at temperature 1.

    ancestral       MDLM posterior q(x_s | x_t): each masked position revealed w.p. (a_s - a_t) / (1 - a_t)
    random          top-n by a uniform score
    confidence      top-n by max probability p1
    margin          top-n by p1 - p2
    entropy         top-n by negative entropy
    threshold       every position with p1 > threshold, at least one per step (Fast-dLLM style)
    remdm-cap       ReMDM, sigma_t = min(eta, (1 - a_s) / a_t)
    remdm-rescale   ReMDM, sigma_t = eta * min(1, (1 - a_s) / a_t)
    remdm-conf      ReMDM, sigma_t^l = softmax_l(-p(x^l) at decode time) * min(1, (1 - a_s) / a_t)
    remdm-loop      ReMDM loop: MDLM to alpha_on by t_on, remask at constant alpha_on with sigma = eta
                    until t_off, then MDLM to the end (alpha linear in t within each phase)

"top-n" rules reveal `view.n_reveal[b]` positions of sample b (the masked count left in the block divided by
the steps left, rounded up), so a block is complete after its last step. Every rule reveals all that is
left on a block's last step (there alpha_s = 1). ReMDM (Wang et al. 2025, "Remasking discrete diffusion
models with inference-time scaling"): a decoded token is remasked w.p. sigma_t, a masked one revealed
w.p. (a_s - (1 - sigma_t) a_t) / (1 - a_t).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from .errors import ConfigError

STRATEGIES: dict[str, Callable] = {}


def register(name: str, remasks: bool = False, stochastic: bool = False, top_probs: int = 2, paced: bool = False,
             entropy: bool = True):
    """Add a rule `fn(view) -> (reveal, remask)` to `STRATEGIES`. `remasks`: it may remask decoded tokens;
    `stochastic`: it reads `view.uniform` (the sampler draws uniforms only for such rules). `top_probs`: how
    many of the most likely tokens' probabilities it reads per position (0: none), `entropy`: whether it
    reads `view.entropy`. `paced`: it reveals at least one position per step while any is left and never
    remasks, so a block of c masked positions is done after c steps (the sampler then plans no more). The sampler computes what a rule reads whatever else is on (soft-masking, trace,
    hooks); the defaults give a rule both, the built-in rules ask for only what they read."""
    if not isinstance(top_probs, int) or isinstance(top_probs, bool) or top_probs < 0:
        raise ConfigError(f"top_probs={top_probs!r}: how many top probabilities the rule reads, an integer >= 0")

    def deco(fn):
        fn.strategy_name, fn.remasks, fn.stochastic, fn.paced = name, remasks, stochastic, bool(paced)
        fn.top_probs_read, fn.reads_entropy = top_probs, bool(entropy)
        STRATEGIES[name] = fn
        return fn
    return deco


def get_strategy(name: str) -> Callable:
    if name not in STRATEGIES:
        raise ConfigError(f"strategy={name!r}: unknown unmasking rule; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[name]


@dataclass(frozen=True)
class StepView:
    """Everything a rule may read about one step. B samples, L positions. `top_probs` ranks at least the
    number of tokens the rule registered (`register(top_probs=)`); it may be None where that is 0, and
    `entropy` where the rule registered entropy=False."""
    top_probs: torch.Tensor | None  # [B, L, n] probabilities of the n most likely tokens, descending
    entropy: torch.Tensor | None    # [B, L] entropy (nats) of the full distribution
    candidates: torch.Tensor       # [B, L] bool: masked positions this step may reveal (block, not fixed)
    editable: torch.Tensor         # [B, L] bool: decoded positions this step may remask (block, not fixed)
    n_reveal: torch.Tensor         # [B] long: how many positions a top-n rule reveals
    t: float                       # time before the step (1 -> 0 within a block)
    s: float                       # time after the step
    alpha_t: float                 # model schedule at t (probability a token is clean)
    alpha_s: float                 # model schedule at s (1 on a block's last step)
    last: bool                     # the block's final step
    uniform: torch.Tensor | None = None  # [B, L] float64 uniforms in [0, 1), stochastic rules only
    conf: torch.Tensor | None = None     # [B, L] remdm-conf memory: -p(token) when decoded, -inf if not decoded
    threshold: float = 0.9
    eta: float = 0.02
    t_on: float = 0.55
    t_off: float = 0.05
    alpha_on: float = 0.9


def _none(view: StepView) -> torch.Tensor:
    return torch.zeros_like(view.candidates)


def top_n(scores: torch.Tensor, candidates: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: the n[b] candidates of row b with the highest score (ties: lower position first)."""
    scores = torch.where(candidates, scores.to(torch.float64), torch.tensor(float("-inf"), dtype=torch.float64,
                                                                             device=scores.device))
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    ranks = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device)
                                             .expand_as(order))
    return candidates & (ranks < n[:, None])


def _top_n_rule(scores_fn):
    def rule(view: StepView):
        return top_n(scores_fn(view), view.candidates, view.n_reveal), _none(view)
    rule.__doc__ = scores_fn.__doc__
    return rule


@register("ancestral", stochastic=True, top_probs=0, entropy=False)
def ancestral(view: StepView):
    """MDLM ancestral step: reveal each masked position w.p. (alpha_s - alpha_t) / (1 - alpha_t)."""
    p = min(max((view.alpha_s - view.alpha_t) / max(1.0 - view.alpha_t, 1e-12), 0.0), 1.0)
    if view.last:
        return view.candidates.clone(), _none(view)
    return view.candidates & (view.uniform < p), _none(view)


register("random", stochastic=True, top_probs=0, entropy=False, paced=True)(_top_n_rule(lambda v: v.uniform))
register("confidence", top_probs=1, entropy=False, paced=True)(_top_n_rule(lambda v: v.top_probs[..., 0]))
register("margin", top_probs=2, entropy=False, paced=True)(
    _top_n_rule(lambda v: v.top_probs[..., 0] - v.top_probs[..., 1]))
register("entropy", top_probs=0, paced=True)(_top_n_rule(lambda v: -v.entropy))


@register("threshold", top_probs=1, entropy=False, paced=True)
def threshold(view: StepView):
    """Reveal every masked position with p1 > threshold; at least one per step, all on the block's last step."""
    p1 = view.top_probs[..., 0]
    floor = view.candidates.sum(-1) if view.last else torch.ones_like(view.n_reveal)
    return (view.candidates & (p1 > view.threshold)) | top_n(p1, view.candidates, floor), _none(view)


def _sigma_max(alpha_t: float, alpha_s: float) -> float:
    return min(1.0, (1.0 - alpha_s) / alpha_t) if alpha_t > 0 else 1.0


def remdm_transition(view: StepView, sigma, alpha_t: float, alpha_s: float):
    """The ReMDM posterior: decoded -> [MASK] w.p. sigma; [MASK] -> token w.p. (a_s - (1 - sigma) a_t) / (1 - a_t).
    `sigma` is a float or a [B, L] tensor (0 at masked positions)."""
    sigma_t = torch.as_tensor(sigma, dtype=torch.float64, device=view.candidates.device).clamp(0.0, 1.0)
    p_reveal = ((alpha_s - (1.0 - sigma_t) * alpha_t) / max(1.0 - alpha_t, 1e-12)).clamp(0.0, 1.0)
    u = view.uniform
    reveal = view.candidates & (u < p_reveal)
    remask = view.editable & (u < sigma_t)
    if view.last:
        reveal, remask = view.candidates.clone(), _none(view)
    return reveal, remask


@register("remdm-cap", remasks=True, stochastic=True, top_probs=0, entropy=False)
def remdm_cap(view: StepView):
    """ReMDM max-capped: sigma_t = min(eta, (1 - alpha_s) / alpha_t)."""
    cap = (1.0 - view.alpha_s) / view.alpha_t if view.alpha_t > 0 else float("inf")
    return remdm_transition(view, min(view.eta, cap), view.alpha_t, view.alpha_s)


@register("remdm-rescale", remasks=True, stochastic=True, top_probs=0, entropy=False)
def remdm_rescale(view: StepView):
    """ReMDM rescaled: sigma_t = eta * min(1, (1 - alpha_s) / alpha_t)."""
    return remdm_transition(view, view.eta * _sigma_max(view.alpha_t, view.alpha_s), view.alpha_t, view.alpha_s)


@register("remdm-conf", remasks=True, stochastic=True, top_probs=0, entropy=False)
def remdm_conf(view: StepView):
    """ReMDM confidence: sigma_t^l = softmax over decoded l of (-p(x^l) when decoded) * sigma_max; the least
    confident decoded tokens are the likeliest to be remasked."""
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float64, device=view.conf.device)
    score = torch.where(view.editable, view.conf.to(torch.float64), neg_inf)
    has = view.editable.any(-1, keepdim=True)
    weights = torch.where(has, torch.softmax(torch.where(has, score, torch.zeros_like(score)), -1), 0.0)
    weights = torch.where(view.editable, weights, 0.0)
    return remdm_transition(view, weights * _sigma_max(view.alpha_t, view.alpha_s), view.alpha_t, view.alpha_s)


@register("remdm-loop", remasks=True, stochastic=True, top_probs=0, entropy=False)
def remdm_loop(view: StepView):
    """ReMDM loop: t > t_on MDLM with alpha = (1 - t) alpha_on / (1 - t_on); t <= t_off MDLM with
    alpha = 1 - t (1 - alpha_on) / t_off; between them alpha = alpha_on and sigma = eta."""
    t, s, on, off, a_on = view.t, view.s, view.t_on, view.t_off, view.alpha_on
    if t > on:
        a_t, a_s = (1 - t) * a_on / (1 - on), (1 - s) * a_on / (1 - on)
        return remdm_transition(view, 0.0, a_t, min(a_s, 1.0))
    if t <= off:
        a_t, a_s = 1 - t * (1 - a_on) / off, 1 - s * (1 - a_on) / off
        return remdm_transition(view, 0.0, a_t, a_s)
    return remdm_transition(view, view.eta, a_on, a_on)
