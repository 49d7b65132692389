"""``cka``: MO-HDNAS's training-free score, the similarity of a candidate's representations at
initialisation to those of a reference network trained once on the proxy data.

The paper (Sinha et al., CVPR 2024 workshops) names a representation-similarity metric; we use linear
CKA (Kornblith et al., ICML 2019): for the globally pooled pre-classifier features X (candidate, at
initialisation, BN on batch statistics) and Y (the trained reference) of one fixed batch,
``CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with Xc, Yc centred over the batch. Higher is
more similar (score in [0, 1]).

The batch is the same for every candidate (drawn by the key ``"reference"`` and the seed), so scores
compare. The reference is ``reference_arch`` (default: the space's default architecture), built with
the run's seed, trained ``reference_epochs`` epochs with Adam on the whole proxy training split; its
checkpoint and a provenance JSON beside it are kept in ``reference_dir`` (default
``~/.cache/mobile_mote/reference``), keyed by space, architecture, training settings and a hash of
the data, and reused by every later candidate and run. ``reference``: an explicit checkpoint instead.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError
from ..options import text, whole
from ..registry import register_estimator
from .common import _BatchProxy, _global_pool, draw_batch

_REFERENCES: dict = {}  # (checkpoint path, device, batch key) -> the reference's pooled features


def linear_cka(X, Y) -> float:
    """Linear CKA of two (n, d) feature matrices (torch tensors), float64."""
    X = X.double() - X.double().mean(0, keepdim=True)
    Y = Y.double() - Y.double().mean(0, keepdim=True)
    cross = (Y.T @ X).norm() ** 2
    denom = (X.T @ X).norm() * (Y.T @ Y).norm()
    return float(cross / denom) if float(denom) > 0 else float("nan")


def pooled_features(model, x):
    """The output of the model's last global pooling, flattened (the features its classifier reads)."""
    import torch
    pool = _global_pool(model)
    if pool is None:
        raise RuntimeError("the network has no global pooling layer to read features from")
    got = []
    handle = pool.register_forward_hook(lambda m, i, o: got.append(o.detach().flatten(1)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return got[-1]


def data_hash(data) -> str:
    import torch
    x, y = data.tensors("cpu")
    h = hashlib.sha256(x.contiguous().numpy().tobytes())
    h.update(y.to(torch.int64).numpy().tobytes())
    return h.hexdigest()[:16]


@register_estimator("cka")
class RepresentationSimilarity(_BatchProxy):
    """Linear CKA to a reference network trained once on the proxy data (MO-HDNAS's similarity)."""

    @dataclass
    class Config(_BatchProxy.Config):
        batch_size: int = 64
        reference: str = ""  # a checkpoint (state dict of reference_arch); "" = train once and cache
        reference_arch: str = ""  # "" = the space's default architecture
        reference_epochs: int = 10
        reference_batch: int = 128
        reference_lr: float = 1e-3
        reference_dir: str = ""  # "" = ~/.cache/mobile_mote/reference

    OPTIONS = {"reference": text(), "reference_arch": text(), "reference_epochs": whole(1),
               "reference_batch": whole(1), "reference_dir": text()}
    EXECUTION_KEYS = ("reference_dir",)
    # the reference's training is this proxy's only cost that scales: ``tiny`` (tests, CPU demos) trains it 1 epoch
    PROFILES = {**_BatchProxy.PROFILES, "tiny": {"reference_epochs": 1}}

    def __init__(self, **config):
        super().__init__(**config)
        if self.config.reference and not Path(self.config.reference).is_file():
            raise InputError(f"cka reference checkpoint {self.config.reference} does not exist; accepted: a state dict "
                             "saved by a previous cka run, or reference '' (train one on the proxy data)")

    def _compute(self, space, arch, data, seed, device):
        ref, info = self._reference_features(space, data, seed, device)
        model = self._model(space, arch, data, seed, device)
        x, _ = draw_batch(data, "reference", seed, int(self.config.batch_size), device)
        score = linear_cka(pooled_features(model, x), ref)
        return score, {"cka": score, "batch": len(x), **info}

    # -- the reference ----------------------------------------------------------------------------------
    def _reference_arch(self, space) -> str:
        a = self.config.reference_arch or space.default_arch()
        try:
            return space.canonical(a)
        except Exception as e:
            raise InputError(f"cka reference_arch {a!r} is not a {space.name} architecture: {e}") from None

    def _checkpoint(self, space, data, seed) -> tuple[Path, dict]:
        if self.config.reference:
            p = Path(self.config.reference)
            if not p.is_file():
                raise InputError(f"cka reference checkpoint {p} does not exist; accepted: a state dict saved by a "
                                 "previous cka run, or reference '' (train one on the proxy data)")
            return p, {"reference": str(p)}
        arch = self._reference_arch(space)
        spec = {"space": space.name, "arch": arch, "seed": seed, "epochs": int(self.config.reference_epochs),
                "batch": int(self.config.reference_batch), "lr": float(self.config.reference_lr),
                "reduced": bool(self.config.reduced), "num_classes": self._num_classes(space, data),
                "data": data_hash(data), "optimiser": "Adam, cross-entropy, no augmentation"}
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        root = Path(self.config.reference_dir or os.path.join(os.path.expanduser("~"), ".cache", "mobile_mote",
                                                              "reference"))
        return root / f"{space.name}-{key}.pt", spec

    def _reference_features(self, space, data, seed, device):
        import torch
        path, spec = self._checkpoint(space, data, seed)
        cache_key = (str(path), str(device), seed, int(self.config.batch_size), id(data))
        hit = _REFERENCES.get(cache_key)
        if hit is not None:
            return hit
        if not path.is_file():
            self._train_reference(space, data, seed, path, spec)
        arch = self._reference_arch(space)
        model = self._model(space, arch, data, seed, device)
        try:
            model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        except (RuntimeError, OSError, ValueError) as e:
            raise InputError(f"cka reference checkpoint {path} does not fit {arch} on {space.name}: "
                             f"{str(e).splitlines()[0]}") from None
        model.eval()  # the trained reference uses its running statistics
        x, _ = draw_batch(data, "reference", seed, int(self.config.batch_size), device)
        out = (pooled_features(model, x), {"reference_checkpoint": str(path), "reference_arch": arch})
        _REFERENCES.clear()
        _REFERENCES[cache_key] = out
        return out

    def _train_reference(self, space, data, seed, path: Path, spec: dict) -> None:
        import time

        import torch

        from ...atomic import atomic_path
        from ...provenance import provenance
        from ..proxy_train import train_epochs
        from .common import _data_tensors
        t0 = time.perf_counter()
        model = self._model(space, spec["arch"], data, seed, "cpu")
        x, y = _data_tensors(data)
        g = torch.Generator().manual_seed(int(seed))
        run = train_epochs(model, x, y, spec["epochs"], spec["batch"], spec["lr"], g)
        model.eval()
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:2048]  # the split is sorted by label
        with torch.no_grad():
            acc = float((model(x[pick]).argmax(1) == y[pick]).float().mean())
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
        meta = {**spec, "checkpoint": path.name, "train_losses": run.losses, "train_accuracy_2048_seeded": acc,
                "seconds": round(time.perf_counter() - t0, 1), "provenance": provenance()}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
