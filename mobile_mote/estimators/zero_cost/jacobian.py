"""Proxies read from the network's response to a batch: jacov (input Jacobians), naswot (activation codes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register_estimator
from .common import _act_types, _BatchProxy, _chunks, _with_split


def jacov_score(jac: np.ndarray, k: float = 1e-5) -> tuple[float, float, float]:
    """(score, min eigenvalue, max eigenvalue) of corrcoef(J) for J of shape (N, D)."""
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac.astype(np.float64))
    if not np.all(np.isfinite(corr)):
        return float("nan"), float("nan"), float("nan")
    v = np.linalg.eigvalsh(corr)
    with np.errstate(all="ignore"):
        score = -float(np.sum(np.log(v + k) + 1.0 / (v + k)))
    return score, float(v.min()), float(v.max())


@register_estimator("jacov")
class JaCov(_BatchProxy):
    """NASLib's jacov: eigen-spectrum of the correlation of input Jacobians."""

    def _compute(self, space, arch, data, seed, device):
        import torch
        # in estimate_many, snip/grad_norm/fisher's forward at the same batch holds the Jacobian
        hit = (self._shared or {}).get(self._shared_key("loss_gradient"), {})
        if "jacobian" in hit:
            score, vmin, vmax = jacov_score(hit["jacobian"].cpu().double().numpy())
            return score, {"jacov": score, "eig_min": vmin, "eig_max": vmax, "split": 1, "batch": len(hit["jacobian"]),
                           "shared_pass": True}
        model, x, _ = self._model_and_batch(space, arch, data, seed, device)
        n = len(x)

        def run(split):
            rows = []
            for a, b in _chunks(n, split):
                xc = x[a:b].detach().clone().requires_grad_(True)
                model.zero_grad(set_to_none=True)
                out = model(xc)
                (g,) = torch.autograd.grad(out, xc, torch.ones_like(out), allow_unused=True)
                rows.append(torch.zeros_like(xc) if g is None else g.detach())
            return torch.cat(rows).reshape(n, -1).cpu().double().numpy()

        jac, split = _with_split(run, n, model)
        score, vmin, vmax = jacov_score(jac)
        return score, {"jacov": score, "eig_min": vmin, "eig_max": vmax, "split": split, "batch": n}


@register_estimator("naswot")
class NASWOT(_BatchProxy):
    """log |det K| of the Hamming-similarity kernel of binary activation codes (Mellor et al.)."""

    @dataclass
    class Config(_BatchProxy.Config):
        batch_size: int = 128

    def _compute(self, space, arch, data, seed, device):
        import torch
        model, x, _ = self._model_and_batch(space, arch, data, seed, device)
        n = len(x)
        acts = [m for m in model.modules() if isinstance(m, _act_types())]
        codes: dict[int, list] = {}

        def make_hook(i):
            def pre(mod, inp):
                codes.setdefault(i, []).append((inp[0].detach().reshape(inp[0].shape[0], -1) > 0))
            return pre

        handles = [m.register_forward_pre_hook(make_hook(i)) for i, m in enumerate(acts)]
        try:
            def run(split):
                codes.clear()
                with torch.no_grad():
                    for a, b in _chunks(n, split):
                        model(x[a:b])
                k = torch.zeros((n, n), dtype=torch.float64, device=device)
                for parts in codes.values():
                    # c c^T + (1-c)(1-c)^T = 2 c c^T - s 1^T - 1 s^T + D (s: each image's count of
                    # active units, D: units): one float32 product, exact, since every entry is a
                    # whole count below 2**24
                    c = torch.cat(parts).to(torch.float32)
                    if c.shape[1] >= 2 ** 24:
                        c = c.double()
                    cc = (c @ c.T).double()
                    s = c.sum(1, dtype=torch.float64)
                    k += 2 * cc - s[:, None] - s[None, :] + c.shape[1]
                return k
            k, split = _with_split(run, n, model)
        finally:
            for h in handles:
                h.remove()
        sign, logdet = torch.linalg.slogdet(k)
        score = float(logdet) if float(sign) > 0 else float("-inf")
        return score, {"naswot": score, "sign": float(sign), "layers": len(codes), "split": split, "batch": n}
