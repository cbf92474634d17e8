"""Noise schedules alpha_t (probability a token is still clean at time t) and the ELBO weight
-alpha'_t / (1 - alpha_t) of the continuous-time MDLM bound (MDLM, arXiv 2406.07524, as recapped in the SM
paper, arXiv 2510.17206)."""
from __future__ import annotations

import math
from typing import Callable

import torch
from .errors import ConfigError

EPS = 1e-3


def _loglinear(t):
    # alpha_t = 1 - (1 - eps) t  (MDLM "log-linear": sigma_t = -log(1 - (1 - eps) t)); weight 1/t.
    alpha = 1 - (1 - EPS) * t
    return alpha, (1 - EPS) / (1 - alpha)


def _linear(t, sigma_min=1e-4, sigma_max=20.0):
    # total noise sigma_t linear in t, alpha_t = exp(-sigma_t).
    sigma = sigma_min + t * (sigma_max - sigma_min)
    return torch.exp(-sigma), (sigma_max - sigma_min) / torch.expm1(sigma)


def _cosine(t):
    # alpha_t = (1 - eps) cos(pi t / 2) + eps... kept > 0 at t = 1 and < 1 at t = 0.
    alpha = EPS + (1 - 2 * EPS) * torch.cos(0.5 * math.pi * t)
    dalpha = -(1 - 2 * EPS) * 0.5 * math.pi * torch.sin(0.5 * math.pi * t)
    return alpha, -dalpha / (1 - alpha)


SCHEDULES: dict[str, Callable] = {"loglinear": _loglinear, "linear": _linear, "cosine": _cosine}


def get_schedule(name: str) -> Callable:
    """A function t -> (alpha_t, weight_t) for tensors t in (0, 1]."""
    if name not in SCHEDULES:
        raise ConfigError(f"schedule={name!r}: unknown noise schedule; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name]


def alpha(name: str, t: torch.Tensor) -> torch.Tensor:
    return get_schedule(name)(t)[0]


def sample_t(batch_size: int, generator=None, t_min: float = EPS, t_max: float = 1.0,
             antithetic: bool = True, device=None) -> torch.Tensor:
    """Times in [t_min, t_max]; antithetic (stratified): one uniform offset, evenly spaced over the batch."""
    if antithetic:
        u0 = torch.rand((), generator=generator, device=device)
        u = (u0 + torch.arange(batch_size, device=device) / batch_size) % 1.0
    else:
        u = torch.rand(batch_size, generator=generator, device=device)
    return t_min + (t_max - t_min) * u
