"""The neural tangent kernel's condition number at initialisation (TE-NAS, KNAS)."""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import register_estimator
from .common import _BatchProxy, _chunks, _with_split


@register_estimator("ntk")
class NTKCond(_BatchProxy):
    """Negative condition number of the empirical NTK (TE-NAS / KNAS)."""

    @dataclass
    class Config(_BatchProxy.Config):
        batch_size: int = 64

    def _compute(self, space, arch, data, seed, device):
        import torch
        model, x, _ = self._model_and_batch(space, arch, data, seed, device)
        n = len(x)
        params = [p for name, p in model.named_parameters() if "weight" in name and p.requires_grad]

        def run(split):
            rows = []
            for a, b in _chunks(n, split):
                out = model(x[a:b])
                for i in range(b - a):
                    gs = torch.autograd.grad(out[i].sum(), params, retain_graph=True, allow_unused=True)
                    rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                           for p, g in zip(params, gs)]).detach())
                del out
            grads = torch.stack(rows)  # float32 (n, P); the kernel is summed in float64 blocks
            ntk = torch.zeros((len(rows), len(rows)), dtype=torch.float64, device=grads.device)
            for c in range(0, grads.shape[1], 1 << 18):
                blk = grads[:, c:c + (1 << 18)].double()
                ntk += blk @ blk.T
            return ntk

        ntk, split = _with_split(run, n, model)
        eig = torch.linalg.eigvalsh(ntk)
        lmin, lmax = float(eig[0]), float(eig[-1])
        cond = lmax / lmin if lmin > 0 else float("inf") if lmax > 0 else float("nan")
        return -cond, {"ntk_cond": cond, "eig_min": lmin, "eig_max": lmax, "split": split, "batch": n}
