"""What every zero-cost proxy shares: the seeded network, the seeded batch, the OOM split, the helpers.

``_Proxy`` builds the network with initial weights fixed by (arch, seed) and seeds anything that
still draws from the global RNG; ``_BatchProxy`` adds the batch drawn from the proxy data. Each
proxy's ``Config`` inherits its parent's and changes only what differs (a default, a new option).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..base import PROFILES, Estimator, arch_seed, build_seeded, seeded_generator
from ..options import flag, whole

# -- data and model helpers -----------------------------------------------------------------

_TENSOR_CACHE: dict = {}


def _data_tensors(data):
    """Normalised CPU tensors of ``data``, made once per ProxyData object."""
    key = id(data)
    hit = _TENSOR_CACHE.get(key)
    if hit is not None and hit[0]() is data:
        return hit[1], hit[2]
    x, y = data.tensors("cpu")
    _TENSOR_CACHE.clear()  # keep one data set alive at most
    _TENSOR_CACHE[key] = (weakref.ref(data), x, y)
    return x, y


def draw_batch(data, arch: str, seed: int, n: int, device="cpu"):
    """``n`` images and labels from ``data``, chosen by a generator seeded by (arch, seed)."""
    import torch
    if data is None:
        raise ValueError("this proxy needs proxy data (images and labels); got none")
    x, y = _data_tensors(data)
    g = seeded_generator(arch, seed)
    if n <= len(y):
        idx = torch.randperm(len(y), generator=g)[:n]
    else:  # fewer images than asked for: draw with replacement
        idx = torch.randint(len(y), (n,), generator=g)
    return x[idx].to(device), y[idx].to(device)


def _weight_layers(model):
    from torch import nn
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _is_oom(e: BaseException) -> bool:
    return "out of memory" in str(e).lower()


def _with_split(fn, n: int, model=None):
    """``fn(split)`` with split = 1, 2, 4, ... on CUDA out-of-memory; returns (result, split)."""
    import torch
    split = 1
    while True:
        try:
            return fn(split), split
        except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if not _is_oom(e) or split >= n:
                raise
        # Out of the except block, so the failed attempt's frames and tensors are released.
        if model is not None:
            model.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        split = min(2 * split, n)


def _chunks(n: int, split: int):
    """(start, stop) slices of a batch of ``n`` cut into ``split`` nearly equal chunks."""
    bounds = np.linspace(0, n, split + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _ce_backward(model, x, y, split: int):
    """Mean cross-entropy gradient of the whole batch, accumulated over ``split`` chunks."""
    import torch.nn.functional as F
    model.zero_grad(set_to_none=True)
    n = len(y)
    for a, b in _chunks(n, split):
        loss = F.cross_entropy(model(x[a:b]), y[a:b]) * ((b - a) / n)
        loss.backward()


def _strip_bn(model):
    """Replace every BatchNorm with identity (NASLib's ``bn=False`` copy).

    timm's fused BN + activation (``BatchNormAct2d``) keeps its activation.
    """
    from torch import nn
    for _, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                act = getattr(child, "act", None)
                setattr(mod, cname, act if isinstance(act, nn.Module) else nn.Identity())
    return model


def feature_modules(model) -> list:
    """The modules whose outputs are a network's successive feature maps: the model's own
    ``feature_modules()`` (NB201, NAS-Bench-Macro), else a timm EfficientNet/MobileNet's stem and blocks."""
    from torch import nn
    own = getattr(model, "feature_modules", None)
    if callable(own):
        return list(own())
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.Sequential) and hasattr(model, "bn1"):
        return [model.bn1] + [b for stage in blocks for b in (stage if isinstance(stage, nn.Sequential) else [stage])]
    raise ValueError(f"{type(model).__name__} does not say where its feature maps are (no feature_modules())")


def no_inplace(model):
    """Turn off in-place activations, so that a hooked layer output keeps its own value and gradient."""
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    return model


def kaiming_fan_in(model, arch: str, seed: int):
    """Re-initialise as AZ-NAS and VKDNW do before scoring: conv/linear weights Kaiming-normal (fan-in,
    ReLU gain), biases 0, norm weights 1 and biases 0; the draws seeded by (arch, seed) alone."""
    import torch
    from torch import nn
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch_seed(arch, seed) ^ 0x4A1D)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    w = torch.empty_like(m.weight, device="cpu")
                    nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
                    m.weight.copy_(w)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and m.affine:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
    return model


def _global_pool(model):
    """The last global-pooling module (its input is the pre-GAP feature map), or None."""
    from torch import nn
    last = None
    for m in model.modules():
        if isinstance(m, nn.AdaptiveAvgPool2d) or type(m).__name__ == "SelectAdaptivePool2d":
            last = m
    return last


def _twice_differentiable(model):
    """Swap hard-sigmoid/hard-swish modules for the same functions written with relu6.

    torch has no double backward for ``hardsigmoid`` (GraSP needs one); the values are equal.
    """
    import torch.nn.functional as F
    from torch import nn

    class _HSigmoid(nn.Module):
        def forward(self, x):
            return F.relu6(x + 3.0) / 6.0

    class _HSwish(nn.Module):
        def forward(self, x):
            return x * F.relu6(x + 3.0) / 6.0

    for _, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.Hardsigmoid) or type(child).__name__ in ("HardSigmoid", "HardSigmoidMe"):
                setattr(mod, cname, _HSigmoid())
            elif isinstance(child, nn.Hardswish) or type(child).__name__ in ("HardSwish", "HardSwishMe"):
                setattr(mod, cname, _HSwish())
    return model


_ACT_TYPES = None


def _act_types():
    global _ACT_TYPES
    if _ACT_TYPES is None:
        from torch import nn
        _ACT_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.SiLU, nn.GELU)
    return _ACT_TYPES


# -- the shared estimator plumbing ----------------------------------------------------------

class _Proxy(Estimator):
    """Shared plumbing: the seeded model, the input size, and the seeded global RNG."""

    zero_cost = True

    @dataclass
    class Config:
        batch_size: int = 32
        reduced: bool = False
        num_classes: int | None = None  # None: the data's label count

    OPTIONS = {"batch_size": whole(1), "reduced": flag(), "num_classes": whole(1, optional=True)}
    # The profiles size the training run; a proxy costs one batch, so every profile keeps its authors'
    # batch (before, ``tiny``'s training batch of 64 leaked into the proxies' ``batch_size``).
    PROFILES = {name: {} for name in PROFILES}

    def _num_classes(self, space, data) -> int:
        if self.config.num_classes:
            return int(self.config.num_classes)
        if data is not None:
            return int(data.num_classes)
        return int(space.num_classes)

    def _input_hw(self, space, data) -> tuple[int, int]:
        """``config.resolution`` if set, else the data's image size, else the space's default."""
        if getattr(self.config, "resolution", None):
            return (int(self.config.resolution),) * 2
        if data is not None:
            return tuple(data.x.shape[1:3])
        return (space.default_resolution(self.config.reduced),) * 2

    def _terms(self, space, arch, data, seed, device):
        # Anything that still draws from the global RNG (functional dropout in a timm head, say)
        # is seeded by (arch, seed) too, and the caller's RNG state is left as it was.
        import torch
        dev = torch.device(device)
        cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(arch_seed(arch, seed) ^ 0x5EED)
            return self._compute(space, arch, data, seed, device)

    def _compute(self, space, arch, data, seed, device):
        raise NotImplementedError

    # set by estimate_many to one dict per (space, arch, data, seed, device): proxies that share a
    # pass find there what another proxy of the same call computed
    _shared: dict | None = None

    def _shared_key(self, group: str) -> tuple:
        return (group, tuple(kv for kv in sorted(self.config_dict().items()) if kv[0] != "estimator"))

    def _from_shared(self, group: str, compute) -> dict:
        """The terms of pass ``group`` at this configuration: computed once per ``estimate_many`` call
        (``shared_pass`` False for the proxy that ran it, True for the others), or here when alone."""
        key, shared = self._shared_key(group), self._shared
        if shared is not None and key in shared:
            return dict(shared[key], shared_pass=True)
        terms = compute()
        if shared is not None:
            shared[key] = terms
        return dict(terms, shared_pass=False)

    def _model(self, space, arch, data, seed, device, train=True):
        """The seeded network; in train mode BN uses batch statistics, dropout stays off."""
        from torch import nn
        model = build_seeded(space, arch, seed, self._num_classes(space, data), self.config.reduced, device)
        model.train(train)
        for m in model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd) or type(m).__name__ == "DropPath":
                m.eval()
        return model


class _BatchProxy(_Proxy):
    """A proxy that reads ``batch_size * num_batches`` images drawn from the proxy data."""

    @dataclass
    class Config(_Proxy.Config):
        num_batches: int = 1

    OPTIONS = {"num_batches": whole(1)}

    def _batch(self, data, arch, seed, device):
        n = int(self.config.batch_size) * max(1, int(self.config.num_batches))
        return draw_batch(data, arch, seed, n, device)

    def _model_and_batch(self, space, arch, data, seed, device):
        """(seeded network in train mode, images, labels): the setup every batch proxy starts from."""
        return (self._model(space, arch, data, seed, device), *self._batch(data, arch, seed, device))
