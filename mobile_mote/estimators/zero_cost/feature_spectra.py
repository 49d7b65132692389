"""AZ-NAS's three feature-map proxies (Lee & Ham, CVPR 2024): expressivity, progressivity, trainability.

All three read one forward pass of a batch through the network at initialisation, taken at the
outputs of the network's successive blocks (``feature_modules``: the stem, then each cell / block):

* **expressivity**: for each feature map F (b, c, h, w), the b*h*w positions as samples of a
  c-dimensional vector; the eigenvalues s of their covariance, p = s / sum(s), entropy -sum p log p;
  summed over the feature maps (a network whose features spread over many directions is more expressive).
* **progressivity**: the smallest increase of that entropy from one feature map to the next.
* **trainability**: for each consecutive pair (F_in, F_out), a random +-1 vector g_out back-propagated
  to g_in = dF_out/dF_in^T g_out (pixel-unshuffled to F_out's size where the stride is 2), the
  matrix M = g_in^T g_out / (b*h*w) and its largest singular value s; the pair scores -s - 1/s + 2
  (0 when s = 1, the norm-preserving case); trainability is the mean over pairs. A pair whose g_in
  equals g_out (the block computes the identity) scores -inf, as the authors' code does.

As the authors: BN in train mode (batch statistics), conv/linear weights re-initialised
Kaiming-normal (fan-in, ReLU gain), biases 0, BN weight 1 and bias 0, a batch of 64 images.
AZ-NAS's fourth component, complexity, is the network's MACs (the ``macs`` estimator).

What differs from the authors' code (``compute_az_nas_score.py`` of ``ondratybl/VKDNW``, read, not copied):

* the eigen/singular values are computed in float64 (the authors' float32 can give slightly
  negative eigenvalues and a NaN entropy, which they then turn into -inf);
* a layer that passes its input through unchanged (NAS-Bench-Macro's ``id`` after the first layer of a
  stage: the same tensor comes out) is not a feature map: it computes nothing, so it would give every
  such network a -inf trainability without telling networks apart;
* a feature map that does not depend on the previous one at all (an NB201 cell of ``none`` edges)
  back-propagates zeros: s = 0 and the pair scores about -1e6 instead of raising.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..base import seeded_generator
from ..registry import register_estimator
from .common import _BatchProxy, feature_modules, kaiming_fan_in, no_inplace


def capture_features(model):
    """Forward hooks that collect the outputs of ``feature_modules(model)`` in call order, skipping
    pass-through layers. Returns (list the outputs land in, hook handles)."""
    feats: list = []

    def hook(mod, inp, out):
        if inp and out is inp[0]:
            return  # a layer that passes its input through computes nothing
        feats.append(out)

    handles = [m.register_forward_hook(hook) for m in feature_modules(model)]
    return feats, handles


def entropy_of_covariance(feat) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of a (b, c, h, w) feature map."""
    import torch
    f = feat.detach().double()
    f = f.reshape(f.shape[0], f.shape[1], -1).permute(0, 2, 1).reshape(-1, f.shape[1]) if f.dim() > 2 else f
    f = f - f.mean(dim=0, keepdim=True)
    sigma = f.T @ f / f.shape[0]
    s = torch.linalg.eigvalsh(sigma)
    p = s / s.sum()
    return float((-p * torch.log(p + 1e-8)).sum())


def feature_terms(feats, arch: str, seed: int, wanted=("expressivity", "progressivity", "trainability")) -> dict:
    """AZ-NAS's terms from the captured feature maps (their graph kept for trainability)."""
    import torch
    from torch import nn
    terms: dict = {"feature_maps": len(feats)}
    if "expressivity" in wanted or "progressivity" in wanted:
        per = np.array([entropy_of_covariance(f) for f in feats])
        expressivity = float(per.sum())
        progressivity = float(np.min(per[1:] - per[:-1])) if len(per) > 1 else float("nan")
        terms.update(expressivity=expressivity if math.isfinite(expressivity) else float("-inf"),
                     progressivity=progressivity if math.isfinite(progressivity) else float("-inf"),
                     expressivity_per_layer=[float(v) for v in per])
    if "trainability" in wanted:
        # the +-1 vectors come from a generator of their own, so the value does not depend on what
        # else ran in this process (the shared pass runs other proxies on the same model)
        gen = seeded_generator(arch, seed ^ 0x7A17, device=feats[0].device.type if feats else "cpu")
        scores = []
        for i in reversed(range(1, len(feats))):
            f_out, f_in = feats[i], feats[i - 1]
            g_out = (torch.bernoulli(torch.full(f_out.shape, 0.5, device=f_out.device), generator=gen) - 0.5) * 2
            (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
            g_in = torch.zeros_like(f_in) if g_in is None else g_in
            if g_out.shape == g_in.shape and bool(torch.equal(g_in, g_out)):
                scores.append(float("-inf"))
                continue
            if g_in.dim() == 4 and g_out.shape[2:] != g_in.shape[2:]:
                g_in = nn.functional.pixel_unshuffle(g_in, int(g_in.shape[2] // g_out.shape[2]))
            co, ci = g_out.shape[1], g_in.shape[1]
            go = g_out.detach().double().movedim(1, -1).reshape(-1, co)
            gi = g_in.detach().double().movedim(1, -1).reshape(-1, ci)
            mat = gi.T @ go / go.shape[0]
            s = float(torch.linalg.svdvals(mat).max())
            scores.append(-s - 1.0 / (s + 1e-6) + 2.0)
        t = float(np.mean(scores)) if scores else float("nan")
        terms.update(trainability=t if not math.isnan(t) else float("-inf"), trainability_pairs=len(scores))
    return terms


class _FeatureSpectrum(_BatchProxy):
    """One AZ-NAS component; the three share one forward (and ``estimate_many`` runs it once)."""

    carries = ("expressivity", "progressivity", "trainability")  # any one record holds all three

    @dataclass
    class Config(_BatchProxy.Config):
        batch_size: int = 64

    _key = "expressivity"

    def _compute(self, space, arch, data, seed, device):
        terms = self._from_shared("features", lambda: features_pass(self, space, arch, data, seed, device))
        return terms[self._key], terms


def features_pass(proxy, space, arch, data, seed, device) -> dict:
    """The forward AZ-NAS's three components share: Kaiming re-initialised network, train-mode BN."""
    model = no_inplace(proxy._model(space, arch, data, seed, device))
    kaiming_fan_in(model, arch, seed)
    x, _ = proxy._batch(data, arch, seed, device)
    feats, handles = capture_features(model)
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return dict(feature_terms(feats, arch, seed), batch=len(x))


# One registered estimator per component, each reading its own key of the shared pass's terms.
for _key, _doc in (
        ("expressivity", "AZ-NAS: summed entropy of the feature maps' channel-covariance spectra."),
        ("progressivity", "AZ-NAS: the smallest gain of expressivity from one feature map to the next."),
        ("trainability", "AZ-NAS: how close block-to-block back-propagation is to norm-preserving (mean over pairs).")):
    register_estimator(_key)(type(_key.capitalize(), (_FeatureSpectrum,), {"_key": _key, "__doc__": _doc,
                                                                             "__module__": __name__}))
