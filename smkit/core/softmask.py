"""The soft-masking (SM) operator (arXiv 2510.17206, section 2): the one place its formulas live, for training
and decoding alike.

A still-masked position l is fed back as
    e_l = (1 - lambda_l) E[m] + lambda_l * sum_{i in topk(p_l)} pi_i E[v_i]
    pi   = softmax over the top-k logits (= renormalised top-k probabilities)
    lambda_l = scale * sigmoid(steepness * (-H(p_l) - centre))
with H the entropy of the full distribution (nats). The paper's names: scale = w_s, steepness = w_a,
centre = w_b.

Layers, each built on the one before: `entropy_from_log_probs` -> `soft_mask_lambda`; `sparse_mixture` (the k+1
ids and weights from a top-k already computed) -> `soft_mask_inputs` (their embeddings) ->
`soft_mask_embeddings` (from logits: lambda and top-k computed here). Training (`SoftMask.forward`) and the
sampler (which computes one top-k per step and shares it with the rule and the trace) both end in
`soft_mask_inputs`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from .soft_mask_params import EPS, SoftMaskParams

DEFAULT = SoftMaskParams()


def entropy_from_log_probs(log_probs: torch.Tensor, finite: bool = False) -> torch.Tensor:
    """Entropy (nats) of normalised log-probabilities over the last axis; -inf entries (p = 0) contribute 0.
    `finite=True` promises there is no -inf entry and skips looking for them."""
    terms = log_probs if finite else log_probs.masked_fill(torch.isneginf(log_probs), 0.0)
    p = log_probs.exp()
    if torch.is_grad_enabled() and log_probs.requires_grad:
        return -(p * terms).sum(-1)
    return -p.mul_(terms).sum(-1)   # no gradient to keep: in place, one [..., V] buffer fewer (the sampler's case)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits) over the last axis; -inf logits contribute 0."""
    return entropy_from_log_probs(torch.log_softmax(logits.float(), dim=-1))


def soft_mask_lambda(logits, scale, centre, steepness, entropy=None) -> torch.Tensor:
    """lambda per position from the full softmax of `logits` [..., V] -> [...] (or from `entropy` [...])."""
    h = entropy_from_logits(logits) if entropy is None else entropy
    return scale * torch.sigmoid(steepness * (-h - centre))


def mixture_weights(lam, top_logits) -> torch.Tensor:
    """[..., k+1]: 1 - lambda for slot 0 (the mask), lambda * pi_i for the k candidates, with pi the softmax of
    the top-k logits (= their renormalised probabilities). The one place this formula lives."""
    pi = torch.softmax(top_logits.float(), dim=-1)
    return torch.cat([(1 - lam).unsqueeze(-1), lam.unsqueeze(-1) * pi], dim=-1)


def sparse_mixture(input_ids, top_ids, top_logits, lam, mask_id: int):
    """The sparse mixture from a top-k already computed: ids [B, L, k+1] and weights [B, L, k+1] of the
    embedding rows to add. `top_ids`, `top_logits` [B, L, k]: the k most likely tokens and their logits (or
    log-probs), descending; `lam` [B, L].

    Slot 0 is the mask token at masked positions (weight 1 - lambda) and the input token elsewhere
    (weight 1: lambda is forced to 0 wherever `input_ids` is not `mask_id`); slots 1..k are the candidates
    with weight lambda * pi_i.
    """
    lam = torch.where(input_ids == mask_id, lam, torch.zeros_like(lam))
    ids = torch.cat([input_ids.unsqueeze(-1), top_ids], dim=-1)
    return ids, mixture_weights(lam, top_logits)


def embed_mixture(ids, weights, embedding_weight) -> torch.Tensor:
    """sum_j weights[..., j] * E[ids[..., j]]: a fused gather of k+1 rows (embedding_bag), never a dense
    [B, L, V] product. Weights (1, 0, ..., 0) give the exact embedding of ids[..., 0]."""
    k1 = ids.shape[-1]
    out = F.embedding_bag(ids.reshape(-1, k1), embedding_weight, mode="sum",
                          per_sample_weights=weights.reshape(-1, k1).to(embedding_weight.dtype))
    return out.view(*ids.shape[:-1], embedding_weight.shape[-1])


def soft_mask_inputs(input_ids, top_ids, top_logits, lam, mask_id: int, embedding_weight) -> torch.Tensor:
    """Input embeddings [B, L, D] for the next forward pass from a top-k already computed: SM at masked
    positions, the exact token embedding elsewhere. The one function both training and decoding build SM
    inputs with."""
    ids, weights = sparse_mixture(input_ids, top_ids, top_logits, lam, mask_id)
    return embed_mixture(ids, weights, embedding_weight)


def soft_mask_embeddings(input_ids, logits, embedding_weight, mask_id, k, scale, centre, steepness):
    """Input embeddings [B, L, D] for the next forward pass: SM at masked positions, exact tokens elsewhere."""
    lam = soft_mask_lambda(logits, scale, centre, steepness)
    top_logits, top_ids = logits.float().topk(k, dim=-1)
    return soft_mask_inputs(input_ids, top_ids, top_logits, lam, mask_id, embedding_weight)


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class SoftMask(nn.Module):
    """Exactly three trainable scalars, kept in range by construction (arXiv 2510.17206, section 2):
    scale = sigmoid(raw_scale) in [0, 1], steepness = softplus(raw) + 1e-6 > 0,
    centre = -softplus(raw) - 1e-6 < 0. scale = 0 (raw = -inf) switches SM off exactly; scale = 1 is raw = +inf.
    Defaults and bounds: `SoftMaskParams`."""

    def __init__(self, k: int = DEFAULT.k, scale: float = DEFAULT.scale, centre: float = DEFAULT.centre,
                 steepness: float = DEFAULT.steepness):
        super().__init__()
        SoftMaskParams(k, scale, centre, steepness).validate("soft_mask")
        self.k = k
        raw_s = -math.inf if scale == 0 else math.inf if scale == 1 else math.log(scale / (1 - scale))
        self.raw_scale = nn.Parameter(torch.tensor(raw_s))
        self.raw_centre = nn.Parameter(torch.tensor(_inv_softplus(-centre - EPS)))
        self.raw_steepness = nn.Parameter(torch.tensor(_inv_softplus(steepness - EPS)))

    @property
    def scale(self) -> torch.Tensor:
        return torch.sigmoid(self.raw_scale)

    @property
    def centre(self) -> torch.Tensor:
        return -F.softplus(self.raw_centre) - EPS

    @property
    def steepness(self) -> torch.Tensor:
        return F.softplus(self.raw_steepness) + EPS

    def params(self) -> SoftMaskParams:
        """The live values as a SoftMaskParams."""
        return SoftMaskParams(**self.values())

    def values(self) -> dict:
        """The live scalars as floats: {'scale', 'centre', 'steepness', 'k'}."""
        with torch.no_grad():
            return {"k": self.k, "scale": self.scale.item(), "centre": self.centre.item(),
                    "steepness": self.steepness.item()}

    def lam(self, logits, entropy=None) -> torch.Tensor:
        return soft_mask_lambda(logits, self.scale, self.centre, self.steepness, entropy)

    def forward(self, input_ids, logits, embedding_weight, mask_id: int, k: int | None = None):
        return soft_mask_embeddings(input_ids, logits, embedding_weight, mask_id, self.k if k is None else k,
                                    self.scale, self.centre, self.steepness)

    def extra_repr(self) -> str:
        v = self.values()
        return f"k={v['k']}, scale={v['scale']:.4f}, centre={v['centre']:.4f}, steepness={v['steepness']:.4f}"
