"""Saliency proxies from one or two backward passes: synflow, snip, grad_norm, fisher, grasp.

snip, grad_norm and fisher come from one mean cross-entropy backward (``loss_gradient_pass``),
shared between them inside ``estimate_many``; synflow needs no images; grasp back-propagates twice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..options import whole
from ..registry import register_estimator
from .common import _BatchProxy, _ce_backward, _chunks, _Proxy, _strip_bn, _twice_differentiable, _weight_layers, _with_split


@register_estimator("synflow")
class SynFlow(_Proxy):
    """Synaptic flow at initialisation, log space (see the ``zero_cost`` package docstring); reads no images."""

    @dataclass
    class Config(_Proxy.Config):
        batch_size: int = 1  # all-ones images, R averaged over them (NASLib: one image)
        resolution: int | None = None  # None: the data's image size, else the space's default

    OPTIONS = {"resolution": whole(1, optional=True)}

    def _compute(self, space, arch, data, seed, device):
        import torch
        model = _strip_bn(self._model(space, arch, data, seed, device, train=False)).double()
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.abs_()
        hw = self._input_hw(space, data)
        ones = torch.ones((max(1, int(self.config.batch_size)), 3) + hw, dtype=torch.float64, device=device)
        model.zero_grad(set_to_none=True)
        out = model(ones)
        r = out.sum() / ones.shape[0]  # identical images: the value does not depend on batch_size
        r.backward()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for m in _weight_layers(model):
            if m.weight.grad is not None:
                total = total + (m.weight * m.weight.grad).abs().sum()
        s = float(total.detach())
        score = math.log1p(s) if s >= 0 and math.isfinite(s) else float("nan")
        return score, {"synflow": s, "log_synflow": score, "R": float(r.detach()), "dtype": "float64",
                       "input_hw": list(hw)}


def loss_gradient_pass(model, x, y, input_jacobian: bool = False):
    """One mean cross-entropy backward giving snip, grad_norm and fisher together.

    Fisher is accumulated by hooks on every conv/linear output (activation times its
    gradient, summed over space, squared, averaged over images). Returns a dict of raw terms.
    ``input_jacobian``: jacov's input Jacobian (d sum(logits) / dx per image) from the same forward,
    by a second backward through the kept graph (``terms['jacobian']``); the values are those of
    jacov's own forward, since the forward is the same.
    """
    import torch
    import torch.nn.functional as F
    layers = _weight_layers(model)
    acc: dict[int, torch.Tensor] = {}
    listening = [True]  # fisher hears the loss's backward only, not jacov's

    def make_hook(i):
        def fwd(mod, inp, out):
            if not out.requires_grad:
                return
            act = out.detach()

            def bwd(grad):
                if not listening[0]:
                    return
                prod = act * grad.detach()
                g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
                d = 0.5 * g_nk.double().pow(2).sum(0)  # summed over images; / N at the end
                acc[i] = d if i not in acc else acc[i] + d
            out.register_hook(bwd)
        return fwd

    jac = {}
    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(layers)]
    try:
        def run(split):
            acc.clear()
            listening[0] = True
            if not input_jacobian or split > 1:
                _ce_backward(model, x, y, split)
                return
            model.zero_grad(set_to_none=True)
            xc = x.detach().clone().requires_grad_(True)
            out = model(xc)
            (F.cross_entropy(out, y) * 1.0).backward(retain_graph=True)  # as _ce_backward's one chunk
            listening[0] = False
            (g,) = torch.autograd.grad(out, xc, torch.ones_like(out), allow_unused=True)
            jac["jacobian"] = (torch.zeros_like(xc) if g is None else g.detach()).reshape(len(xc), -1)
        _, split = _with_split(run, len(y), model)
    finally:
        for h in handles:
            h.remove()
    n = len(y)
    snip = grad_norm = fisher = channels = 0.0
    with torch.no_grad():
        for i, m in enumerate(layers):
            g = m.weight.grad
            if g is not None:
                snip += float((m.weight * g).abs().sum(dtype=torch.float64))
                grad_norm += float(g.double().norm())
            if i in acc:
                per_ch = float(acc[i].sum()) / n
                channels += per_ch
                fisher += per_ch * int(np.prod(m.weight.shape[1:]))
    return {"snip": snip, "grad_norm": grad_norm, "fisher": fisher, "fisher_channels": channels,
            "split": split, "batch": n, **jac}


class _LossGradientProxy(_BatchProxy):
    """snip, grad_norm and fisher: one backward pass, shared within ``estimate_many``."""

    _key = "snip"

    def _compute(self, space, arch, data, seed, device):
        def compute():
            model = self._model(space, arch, data, seed, device)
            x, y = self._batch(data, arch, seed, device)
            # jacov asked for in the same call, at the same batch: its Jacobian from this forward
            wants_jacobian = self._shared is not None and "jacov" in self._shared.get("names", ())
            return loss_gradient_pass(model, x, y, input_jacobian=wants_jacobian)
        terms = self._from_shared("loss_gradient", compute)
        terms.pop("jacobian", None)
        return terms[self._key], terms


@register_estimator("snip")
class Snip(_LossGradientProxy):
    """Connection sensitivity: sum |theta * dL/dtheta| over conv/linear weights."""
    _key = "snip"


@register_estimator("grad_norm")
class GradNorm(_LossGradientProxy):
    """Sum over conv/linear layers of ||dL/dW||_F."""
    _key = "grad_norm"


@register_estimator("fisher")
class Fisher(_LossGradientProxy):
    """Channel-wise Fisher information of conv/linear outputs (NASLib's broadcast sum)."""
    _key = "fisher"


@register_estimator("grasp")
class Grasp(_BatchProxy):
    """Gradient signal preservation: -sum theta * (H g) over conv/linear weights.

    GraSP is noisy at initialisation: two seeds of our own rank cells far less alike than the
    other proxies do (``tools/naslib_agreement.py --repeat-seed``), so average several seeds before
    trusting a GraSP ranking.
    """

    def _compute(self, space, arch, data, seed, device):
        import torch
        import torch.nn.functional as F
        model = _twice_differentiable(self._model(space, arch, data, seed, device))
        x, y = self._batch(data, arch, seed, device)
        weights = [m.weight for m in _weight_layers(model)]
        n = len(y)

        def run(split):
            # One forward per chunk serves both passes: g = dL/dW (detached) and, through
            # create_graph, H g = d(g . dL/dW)/dW. NASLib runs a second forward on the same
            # batch, which gives the same numbers in train-mode BN.
            model.zero_grad(set_to_none=True)
            chunks = _chunks(n, split)
            if len(chunks) == 1:
                loss = F.cross_entropy(model(x), y)
                gf = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
                z = sum((g1.detach() * g1).sum() for g1 in gf if g1 is not None)
                if torch.is_tensor(z) and z.requires_grad:
                    z.backward()
                return
            g = [None] * len(weights)
            for a, b in chunks:
                loss = F.cross_entropy(model(x[a:b]), y[a:b]) * ((b - a) / n)
                gs = torch.autograd.grad(loss, weights, allow_unused=True)
                g = [g0 if gi is None else (gi.detach() if g0 is None else g0 + gi.detach())
                     for g0, gi in zip(g, gs)]
            for a, b in chunks:
                loss = F.cross_entropy(model(x[a:b]), y[a:b]) * ((b - a) / n)
                gf = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
                z = sum((g0 * g1).sum() for g0, g1 in zip(g, gf) if g0 is not None and g1 is not None)
                if torch.is_tensor(z) and z.requires_grad:
                    z.backward()

        _, split = _with_split(run, n, model)
        total = 0.0
        with torch.no_grad():
            for w in weights:
                if w.grad is not None:
                    total += float(-(w * w.grad).sum(dtype=torch.float64))
        return total, {"grasp": total, "split": split, "batch": n}
