"""Zero-cost proxies: one forward/backward at initialisation, no training; one family per module.

``common`` (the shared setup: ``_Proxy``, ``_BatchProxy``, ``draw_batch``, the OOM split
``_with_split``, the shared-pass cache ``_from_shared``), ``saliency`` (synflow, snip, grad_norm, fisher,
grasp), ``jacobian`` (jacov, naswot), ``ntk``, ``zico``, ``zen``, ``feature_spectra`` (AZ-NAS's
expressivity, progressivity, trainability), ``vkdnw`` (VKDNW); the analytic baselines params and macs
are in ``estimators/analytic.py``. Each new module documents its maths and what differs from the
authors' code.

Registered names (``get_estimator(name, **config)``); every score is HIGHER-IS-BETTER and every
raw value is kept in the record's ``terms``:

==========  ====================================================================================
synflow     Tanaka et al. 2020 / Abdelfattah et al. 2021: BN removed, all parameters and buffers
            replaced by their absolute values, float64, an all-ones input (batch_size identical
            images, default 1 as NASLib), R = sum(output) per image, S = sum over conv/linear
            weights of |theta * dR/dtheta|.
            score = log1p(S) (log space as NASLib stores it; a cell with no input-output path has
            S = 0 and scores 0, the lowest).
snip        Lee et al. 2019: sum over conv/linear weights of |theta * dL/dtheta| (cross-entropy).
grad_norm   sum over conv/linear layers of the Frobenius norm of dL/dW.
fisher      Turner et al. 2020 as in NASLib: per output channel k of each conv/linear layer,
            0.5 * mean_n (sum_spatial act * dL/dact)^2, broadcast to the layer's
            prod(W.shape[1:]) weights per channel and summed (NASLib's convention; the plain
            per-channel sum is kept as ``terms['fisher_channels']``).
grasp       Wang et al. 2020 as in NASLib: -sum theta * (H g), g = dL/dtheta of one pass,
            H g by double back-propagation, conv/linear weights only (hard-sigmoid/-swish are
            rewritten with relu6 for it: torch has no double backward for them).
jacov       NASLib's "jacov" (Mellor et al. v1): J = d(sum of logits)/dx per image,
            C = corrcoef(J), eigenvalues v, score = -sum(log(v + 1e-5) + 1/(v + 1e-5)).
naswot      Mellor et al. 2021: binary activation codes c (input > 0) of every ReLU-like module,
            K = c c^T + (1-c)(1-c)^T summed over layers, score = log|det K|.
ntk         TE-NAS (Chen et al. 2021) / KNAS: per-image gradients of the summed logits w.r.t. all
            ``*weight`` parameters, NTK = G G^T, cond = lambda_max / lambda_min,
            score = -cond (a lower condition number is better).
zico        Li et al. ICLR'23: per-batch weight gradients g_b (num_batches >= 2), per layer
            log(sum over weights with std > 0 of mean_b|g_b| / std_b(g_b)), summed over layers.
zen         Lin et al. 2021: N(0,1) re-initialisation of conv/linear weights (BN weight 1, bias 0),
            Gaussian input x and perturbation 0.01 * eps, Delta = mean_n sum|f(x) - f(x + 0.01 eps)|
            of the pre-global-pool features, score = log(Delta) + sum over BN layers of
            log sqrt(mean_channel batch-variance) (the paper's sigma_i, read with BN momentum 1;
            the authors' code reads running_var after the default momentum 0.1 instead).
vkdnw       Tybl & Neumann (CVPR 2025): entropy of the deciles of the Fisher-information spectrum over one
            scalar per parameter tensor; score = tensors + entropy / (2 log 9), VKDNW_single's order
            (``vkdnw.py``).
cka         MO-HDNAS's similarity (Sinha et al. 2024) as linear CKA (Kornblith et al. 2019) between the
            candidate's pooled features at initialisation and a reference network trained once on the
            proxy data, on one fixed batch (``similarity.py``: the checkpoint and its provenance).
expressivity, progressivity, trainability
            AZ-NAS (Lee & Ham, CVPR 2024): feature-map covariance entropy summed / its smallest gain
            between blocks / closeness of block-to-block back-propagation to norm-preserving
            (``feature_spectra.py``).
params      analytic trainable parameters (``space.params``), no forward (``estimators/analytic.py``).
macs        analytic multiply-accumulates (``space.macs``), no forward (``estimators/analytic.py``).
==========  ====================================================================================

Common behaviour

* The model is ``space.build(arch, num_classes, reduced)`` with initial weights fixed by
  (arch, seed) (``build_seeded``). ``reduced=False`` by default: on NB201 that is the full
  benchmark network (C=16, N=5), the one NASLib scored. ``num_classes=None`` means the data's
  label count; pass 100 to score NB201 with a CIFAR-100 head as NASLib did.
* The batch is ``batch_size * num_batches`` images drawn without replacement from ``data`` by a
  torch generator seeded by (arch, seed), so the same candidate sees the same images on any rank.
* BatchNorm: as NASLib, the data-dependent proxies run the freshly built network in train mode
  (batch statistics); synflow removes BN. ZiCo and NTK also run in train mode, as their authors do.
* CUDA out-of-memory: the batch is split into 2, 4, ... chunks and the gradients accumulated
  (each chunk's mean loss scaled by its share, so the sum equals the full-batch mean-loss
  gradient; only BN's batch statistics then differ). The split used is ``terms['split']``.
* ``estimate_many(names, ...)`` scores several proxies of one candidate, sharing passes where the
  maths allows: snip, grad_norm, fisher and jacov at one batch share one forward; expressivity,
  progressivity and trainability share one forward (same numbers as scoring each alone, tested).
* A non-finite result (NaN/inf, e.g. a cell with no path from input to output for jacov or
  naswot) is returned as is and the record is flagged by ``Estimator.estimate``; any exception
  becomes a failed record. Nothing here ends a run.

Defaults and what differs from the reference values (see ``tools/naslib_agreement.py``)

* batch_size 32, one batch for synflow's siblings (snip, grad_norm, fisher, grasp, jacov): the
  batch size of NASLib's zero-cost configs. naswot 128 (Mellor et al.), ntk 64 (TE-NAS on NB201),
  zico 2 x 64, zen 64.
* NASLib drew a fresh random CIFAR-100 training batch (100 labels, with crop/flip augmentation)
  for every proxy and cell; we draw from the reduced proxy data (e.g. 10 CIFAR-100 labels,
  no augmentation). synflow, params and macs do not depend on the data at all.

The rank agreement with NASLib's stored values on its NB201 cells is measured by
``tools/naslib_agreement.py``; the figures are in ``benchmarks/README.md``.
"""
from __future__ import annotations

from . import jacobian, ntk, saliency, zen, zico  # noqa: F401  (each registers its proxies)
from .common import _with_split, draw_batch
from .jacobian import jacov_score
from .saliency import loss_gradient_pass


def estimate_many(names, space, arch, data, seed: int = 0, device="cpu", **config) -> dict:
    """Records for several proxies of one candidate, sharing what can be shared.

    What is shared (the first proxy of a group carries the time; the others say
    ``terms['shared_pass'] = True``): snip, grad_norm, fisher and jacov at the same batch come from one
    forward (one loss backward, and a second backward for jacov's input Jacobian); expressivity,
    progressivity and trainability from one forward. Separate passes remain where a proxy changes
    the network (synflow's absolute weights, vkdnw's re-initialised instance-norm network, grasp's
    twice-differentiable activations) or reads another batch (naswot's 128 images, zico's two
    batches). The records are the same as calling each estimator's ``estimate`` alone (tested).
    The returned dict keeps the order of ``names``. ``config`` applies to every
    proxy that accepts the option (e.g. ``num_classes``, ``reduced``).
    """
    from dataclasses import fields

    from ..registry import estimator_class

    shared: dict = {"names": tuple(names)}
    out = {}
    # the loss-gradient family first, so that jacov finds its Jacobian in their forward
    family = ("snip", "grad_norm", "fisher")
    for name in sorted(names, key=lambda n: (n not in family, list(names).index(n))):
        cls = estimator_class(name)
        known = {f.name for f in fields(cls.Config)}
        est = cls(**{k: v for k, v in config.items() if k in known})
        if hasattr(est, "_shared"):  # proxies that can reuse a pass another proxy of the call made
            est._shared = shared
        out[name] = est.estimate(space, arch, data, seed, device)
    return {name: out[name] for name in names}


__all__ = ["draw_batch", "estimate_many", "jacov_score", "loss_gradient_pass", "_with_split"]
