"""Differentiable sampling of one operation per edge from architecture logits.

Both samplers return a hard one-hot sample in the forward pass (the supernet runs exactly one
architecture) and a surrogate gradient in the backward pass:

- ``gumbel_st``: Gumbel-softmax straight-through (GDAS); the gradient is that of the tempered softmax.
- ``reinmax``: ReinMax (Liu et al., NeurIPS 2023), a second-order (Heun) correction of straight-through
  that MODNAS uses; at tau = 1 its expected gradient is exact for losses quadratic in the one-hot sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SAMPLERS = ("reinmax", "gumbel_st")


def _one_hot_sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    flat = probs.reshape(-1, probs.shape[-1])
    idx = torch.multinomial(flat.detach(), 1, generator=generator)
    return torch.zeros_like(flat).scatter_(-1, idx, 1.0).reshape(probs.shape)


def reinmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard one-hot samples over the last dim of ``logits`` with ReinMax gradients."""
    pi0 = logits.softmax(-1)
    sample = _one_hot_sample(pi0, generator)
    # pi1: the half-way point between the sample and the tempered distribution, re-expressed as a
    # softmax of the logits so that its Jacobian (not its value) carries the logits' gradient.
    half = (sample + (logits / tau).softmax(-1)) / 2
    pi1 = ((half.clamp_min(1e-20).log() - logits).detach() + logits).softmax(-1)
    pi2 = 2 * pi1 - 0.5 * pi0
    return pi2 - pi2.detach() + sample


def gumbel_st(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard one-hot Gumbel-softmax samples with straight-through gradients."""
    if generator is None:
        return F.gumbel_softmax(logits, tau=tau, hard=True, dim=-1)
    u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-10, 1 - 1e-10)
    soft = ((logits - (-u.log()).log()) / tau).softmax(-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def sample_ops(logits: torch.Tensor, tau: float, sampler: str = "reinmax",
               generator: torch.Generator | None = None) -> torch.Tensor:
    if sampler == "reinmax":
        return reinmax(logits, tau, generator)
    if sampler == "gumbel_st":
        return gumbel_st(logits, tau, generator)
    raise ValueError(f"unknown sampler {sampler!r}; accepted: {', '.join(SAMPLERS)}")
