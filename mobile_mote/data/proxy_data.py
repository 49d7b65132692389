"""Reduced ("proxy") data sets as tensors: read from an ImageFolder tree or an .npz file.

The .npz layout (written by `mote make-rd`): ``x`` uint8 (N, H, W, 3), ``y`` int64 (N,),
``labels`` str (r,), optional ``x_test``/``y_test``. A provenance JSON may sit beside it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


class ProxyDataError(InputError):
    """Unreadable or malformed proxy data; the message says what is accepted."""


@dataclass
class ProxyData:
    x: np.ndarray  # uint8 (N, H, W, 3)
    y: np.ndarray  # int64 (N,)
    labels: list[str]
    source: str = ""
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.y)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        x = self.x.reshape(-1, 3).astype(np.float64) / 255.0
        return x.mean(0).astype(np.float32), (x.std(0) + 1e-6).astype(np.float32)

    def tensors(self, device="cpu", dtype=None, test: bool = False):
        """Normalised (N, 3, H, W) float images and int64 labels on ``device``, made once."""
        import torch
        mean, std = self.mean_std()
        x = self.x_test if test else self.x
        y = self.y_test if test else self.y
        if x is None:
            raise ProxyDataError(f"{self.source}: no test split")
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        xt = (xt - torch.from_numpy(mean).to(device)[:, None, None]) / torch.from_numpy(std).to(device)[:, None, None]
        if dtype is not None:
            xt = xt.to(dtype)
        return xt.contiguous(), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)

    def subset(self, n_per_class: int, seed: int = 0) -> "ProxyData":
        """At most ``n_per_class`` images per label (train and test) after a seeded shuffle (tiny profiles)."""
        rng = np.random.default_rng(seed)

        def pick(y: np.ndarray) -> np.ndarray:
            keep = [rng.permutation(np.flatnonzero(y == c))[:n_per_class] for c in range(self.num_classes)]
            return np.sort(np.concatenate(keep).astype(np.int64))

        k = pick(self.y)
        xt = yt = None
        if self.y_test is not None:
            kt = pick(self.y_test)
            xt, yt = self.x_test[kt], self.y_test[kt]
        return ProxyData(self.x[k], self.y[k], list(self.labels), self.source + f"[{n_per_class}/class]",
                         xt, yt, dict(self.provenance))

    def save_npz(self, path: str | Path) -> None:
        """Write atomically (temp file, then rename) so a kill never leaves half a file."""
        import os

        from ..atomic import atomic_path
        path = Path(path)
        extra = {} if self.x_test is None else {"x_test": self.x_test, "y_test": self.y_test}
        # numpy appends .npz to a name without it, so the temporary keeps the suffix
        with atomic_path(path, tmp=path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")) as tmp:
            np.savez_compressed(tmp, x=self.x, y=self.y, labels=np.asarray(self.labels), **extra)


def _read_image(path: Path, size: int | None) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size and im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        return np.asarray(im, dtype=np.uint8)


def read_image_folder(root: str | Path, size: int | None = 32, labels: list[str] | None = None,
                      max_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/<label>/*.jpg`` into (x uint8 NHWC, y, labels), labels sorted unless given."""
    root = Path(root)
    classes = labels or sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ProxyDataError(f"{root} has no label folders; expected {root}/<label>/<image>{IMAGE_EXTS[0]}")
    xs, ys = [], []
    for ci, name in enumerate(classes):
        d = root / name
        if not d.is_dir():
            raise ProxyDataError(f"{root} has no folder for label {name!r}")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if max_per_class:
            files = files[:max_per_class]
        if not files:
            raise ProxyDataError(f"{d} holds no images ({', '.join(IMAGE_EXTS)})")
        for f in files:
            try:
                xs.append(_read_image(f, size))
            except Exception as e:  # a corrupt image names itself
                raise ProxyDataError(f"cannot read image {f}: {e}") from None
            ys.append(ci)
    shapes = {a.shape for a in xs}
    if len(shapes) != 1:
        raise ProxyDataError(f"{root}: images differ in size {sorted(shapes)[:3]}; pass a size to resize them")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), list(classes)


def load_proxy_data(path: str | Path, size: int | None = 32) -> ProxyData:
    """An ImageFolder tree (with optional train/ and test/ splits) or an .npz file."""
    path = Path(path)
    if not path.exists():
        raise ProxyDataError(f"proxy data {path} does not exist; accepted: an ImageFolder directory "
                             "(<label>/<image>, optionally under train/ and test/) or an .npz from `mote make-rd`")
    if path.is_file():
        if path.suffix != ".npz":
            raise ProxyDataError(f"{path}: accepted proxy data files are .npz (from `mote make-rd`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                x, y, labels = z["x"], z["y"].astype(np.int64), [str(s) for s in z["labels"]]
                x_test = z["x_test"] if "x_test" in z else None
                y_test = z["y_test"].astype(np.int64) if "y_test" in z else None
        except Exception as e:
            raise ProxyDataError(f"{path} is not a readable proxy .npz (keys x, y, labels): {e}") from None
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8 or len(x) != len(y):
            raise ProxyDataError(f"{path}: x must be uint8 (N, H, W, 3) with one label per image")
        if y.min() < 0 or y.max() >= len(labels):
            raise ProxyDataError(f"{path}: labels y must lie in 0..{len(labels) - 1}")
        prov_path = path.with_suffix(".json")
        prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
        return ProxyData(x, y, labels, str(path), x_test, y_test, prov)
    train = path / "train"
    if train.is_dir():
        x, y, labels = read_image_folder(train, size)
        x_test = y_test = None
        if (path / "test").is_dir():
            x_test, y_test, _ = read_image_folder(path / "test", size, labels=labels)
        return ProxyData(x, y, labels, str(path), x_test, y_test)
    x, y, labels = read_image_folder(path, size)
    return ProxyData(x, y, labels, str(path))
