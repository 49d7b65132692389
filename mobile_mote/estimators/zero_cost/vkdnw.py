"""VKDNW (Týbl & Neumann, CVPR 2025): the spread of the Fisher-information spectrum at initialisation.

The empirical Fisher information of the network's categorical likelihood is taken with respect to
one scalar of every parameter tensor (its first element), so it is a P x P matrix for a network of P
parameter tensors:

    F = mean_n J_n^T (diag(p_n) - p_n p_n^T) J_n,   J_n = d logits_n / d theta   (C x P),

p_n the softmax of the logits smoothed as the authors do, (1 - 0.05) p + 0.05 / C. Its eigenvalues
lambda give the nine deciles q_1..q_9 (quantiles 0.1..0.9), normalised to sum 1, and

    vkdnw_entropy = -sum_k q_k log q_k          (higher: a flatter spectrum)

VKDNW_single ranks networks by the number of parameter tensors first and the entropy second; this
estimator's ``score`` is that order as one number, ``dim + entropy / (2 log 9)`` (the entropy of nine
values is at most log 9, so the count always decides first). ``terms`` keep ``vkdnw_dim``,
``vkdnw_entropy`` and the deciles.

As the authors' NB201 runs (``compute_vkdnw_score.py`` and ``tss_general_.py`` of ``ondratybl/VKDNW``,
read, not copied): weights re-initialised Kaiming-normal (fan-in), eval mode with BN on batch statistics
of each image alone (their BN keeps no running statistics and every image passes alone, i.e. instance
normalisation with BN's affine parameters), a batch of 32 Gaussian images (``input="data"`` reads
the proxy data instead).

How it is computed here: the per-image derivative of a logit with respect to the first element of a
conv weight is the sum over output positions of that output channel's gradient times the input
value that the element multiplies; likewise for linear and norm parameters. So C backward passes
(one per class, to the layer outputs only) give the whole Jacobian, without per-image passes.
What differs: the authors multiply J by the Cholesky factor of the covariance from the left, which
gives J^T L^T L J; here the Fisher is J^T (diag p - p p^T) J as the paper defines it. The eigenvalues
are singular values of the float64 Fisher (the authors' ``svd``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..options import choice
from ..registry import register_estimator
from ..base import seeded_generator
from .common import _BatchProxy, draw_batch, kaiming_fan_in, no_inplace

_ALPHA = 0.05
_QUANTILES = tuple(round(0.1 * k, 1) for k in range(1, 10))


def _instance_bn(bn):
    """BN on each image's own statistics (a batch of one image), keeping BN's affine parameters."""
    import types

    import torch
    import torch.nn.functional as F

    def forward(self, x):
        x = F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        # timm's BatchNormAct2d applies its dropout and activation after the norm: keep them
        if isinstance(getattr(self, "drop", None), torch.nn.Module):
            x = self.drop(x)
        if isinstance(getattr(self, "act", None), torch.nn.Module):
            x = self.act(x)
        return x
    bn.forward = types.MethodType(forward, bn)


def _param_owners(model):
    """[(module, 'weight' | 'bias')] in ``named_parameters`` order; refuses a parameter it cannot differentiate."""
    from torch import nn
    owners = []
    for name, _ in model.named_parameters():
        mod_name, _, attr = name.rpartition(".")
        mod = model.get_submodule(mod_name) if mod_name else model
        ok = isinstance(mod, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)) and attr in ("weight", "bias")
        if not ok:
            raise ValueError(f"vkdnw: parameter {name!r} of a {type(mod).__name__} is not supported; "
                             "accepted: conv, linear and batch-norm parameters")
        if isinstance(mod, nn.Conv2d) and not (isinstance(mod.padding, tuple) and mod.padding_mode == "zeros"):
            raise ValueError(f"vkdnw: conv {mod_name!r} pads {mod.padding!r}/{mod.padding_mode!r}; accepted: zero padding by numbers")
        owners.append((mod, attr))
    return owners


def first_element_jacobian(model, x):
    """(logits (B, C), J (B, C, P)): per-image derivatives of every logit with respect to the first
    element of each of the model's P parameter tensors."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    owners = _param_owners(no_inplace(model))
    seen: dict = {}  # module -> (its input, its output), for the one call each module gets

    def hook(mod, inp, out):
        seen[mod] = (inp[0].detach(), out)

    mods = list(dict.fromkeys(m for m, _ in owners))
    handles = [m.register_forward_hook(hook) for m in mods]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    used = [m for m in mods if m in seen]
    outs = [seen[m][1] for m in used]
    # what each parameter's first element multiplies, per image and output position
    factors = {}
    for m in used:
        inp = seen[m][0]
        if isinstance(m, nn.Conv2d):
            ph, pw = m.padding
            sh, sw = m.stride
            ho, wo = seen[m][1].shape[2:]
            xin = F.pad(inp[:, :1], (pw, pw, ph, ph))
            factors[m] = xin[:, 0, : sh * (ho - 1) + 1: sh, : sw * (wo - 1) + 1: sw]
        elif isinstance(m, nn.Linear):
            factors[m] = inp[..., 0]
        else:  # batch norm as instance norm: the normalised input multiplies the weight
            factors[m] = F.instance_norm(inp[:, :1], eps=m.eps)[:, 0]
    n, c = logits.shape
    jac = torch.zeros((n, c, len(owners)), dtype=torch.float64, device=logits.device)
    index = {id(m): i for i, m in enumerate(used)}
    for k in range(c):
        grads = torch.autograd.grad(logits[:, k].sum(), outs, retain_graph=True, allow_unused=True)
        for p, (m, attr) in enumerate(owners):
            i = index.get(id(m))
            g = None if i is None else grads[i]
            if g is None:
                continue
            g0 = g[:, 0].double()
            if attr == "bias":
                val = g0.reshape(n, -1).sum(1)
            else:
                val = (g0 * factors[m].double()).reshape(n, -1).sum(1)
            jac[:, k, p] = val
    return logits.detach(), jac


def fisher_spectrum_terms(logits, jac) -> dict:
    """VKDNW's terms from the logits and the first-element Jacobian."""
    import torch
    n, c, p_dim = jac.shape
    prob = torch.softmax(logits.double(), dim=1) * (1 - _ALPHA) + _ALPHA / c
    cov = torch.diag_embed(prob) - prob.unsqueeze(2) * prob.unsqueeze(1)
    fisher = (jac.transpose(1, 2) @ cov @ jac).mean(0)
    lam = torch.linalg.svdvals(fisher).cpu().numpy()
    q = np.quantile(lam, _QUANTILES)
    t = q / (np.abs(q).sum() + 1e-10)
    entropy = float(-(t * np.log(t + 1e-10)).sum())
    if not math.isfinite(entropy):
        entropy = float("nan")
    return {"vkdnw_dim": int(p_dim), "vkdnw_entropy": entropy,
            "vkdnw_deciles": [float(v) for v in q], "fisher_trace": float(np.sum(lam))}


@register_estimator("vkdnw")
class VKDNW(_BatchProxy):
    """VKDNW_single: (number of parameter tensors, entropy of the Fisher spectrum's deciles)."""

    carries = ("vkdnw_dim", "vkdnw_entropy")

    @dataclass
    class Config(_BatchProxy.Config):
        input: str = "gaussian"  # the authors' NB201 runs: Gaussian images; "data": the proxy data

    OPTIONS = {"input": choice("gaussian", "data")}

    def _compute(self, space, arch, data, seed, device):
        import torch
        model = self._model(space, arch, data, seed, device, train=False)
        kaiming_fan_in(model, arch, seed)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                _instance_bn(m)
        n = int(self.config.batch_size) * max(1, int(self.config.num_batches))
        if self.config.input == "data":
            x, _ = draw_batch(data, arch, seed, n, device)
        else:
            hw = self._input_hw(space, data)
            g = seeded_generator(arch, seed ^ 0x6A55)
            x = torch.randn((n, 3) + tuple(hw), generator=g).to(device)
        logits, jac = first_element_jacobian(model, x)
        terms = fisher_spectrum_terms(logits, jac)
        score = terms["vkdnw_dim"] + terms["vkdnw_entropy"] / (2 * math.log(9))
        return score, dict(terms, vkdnw=score, batch=n, input=self.config.input)
