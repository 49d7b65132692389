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


_NPZ_HINT = "expected one written by `mote make-rd`"


def _read_provenance(npz: Path) -> dict:
    """The provenance JSON beside ``npz`` ({} when there is none); a file that is not a JSON object is an error."""
    prov_path = npz.with_suffix(".json")
    if not prov_path.is_file():
        return {}
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ProxyDataError(f"provenance {prov_path} beside {npz.name} is not a text file; expected the JSON "
                             "`mote make-rd` writes (or no file)") from None
    except json.JSONDecodeError as e:
        raise ProxyDataError(f"provenance {prov_path} beside {npz.name} is not JSON ({e.msg} at line {e.lineno}, "
                             f"column {e.colno}); expected the JSON `mote make-rd` writes (or no file)") from None
    if not isinstance(prov, dict):
        raise ProxyDataError(f"provenance {prov_path} beside {npz.name} holds a JSON {type(prov).__name__}, "
                             "not an object; expected the JSON `mote make-rd` writes (or no file)")
    return prov


def _load_npz(path: Path) -> ProxyData:
    """A make-rd .npz, checked: a zip of arrays x (N, H, W, 3) uint8, y (N,) whole numbers in 0..r-1,
    labels (r,), optionally x_test / y_test of the same form."""
    import zipfile
    if not zipfile.is_zipfile(path):  # a text or .npy file renamed .npz: numpy would ask about pickles
        raise ProxyDataError(f"{path} is not a .npz archive ({_NPZ_HINT})")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in ("x", "y", "labels") if k not in keys]
            if missing:
                held = ", ".join(sorted(keys)) or "nothing"
                raise ProxyDataError(f"{path} lacks {', '.join(missing)} (it holds {held}); "
                                     f"a proxy .npz has x, y and labels ({_NPZ_HINT})")
            arrays = {k: z[k] for k in ("x", "y", "labels", "x_test", "y_test") if k in keys}
    except ProxyDataError:
        raise
    except Exception as e:  # a damaged archive, object arrays
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "allow_pickle" in msg or "pickled" in msg:
            msg = "it holds Python objects, not plain arrays"
        raise ProxyDataError(f"{path} is not a readable proxy .npz ({msg}; {_NPZ_HINT})") from None
    x, y, labels = arrays["x"], arrays["y"], arrays["labels"]
    if labels.ndim != 1 or len(labels) == 0:
        raise ProxyDataError(f"{path}: labels must list the class names, shape (r,) with r > 0; got shape "
                             f"{labels.shape}")
    labels = [str(s) for s in labels]
    x, y = _check_split(path, x, y, len(labels), "x", "y")
    x_test = y_test = None
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise ProxyDataError(f"{path} has {have} but no {lack}; a test split needs both")
    if "x_test" in arrays:
        x_test, y_test = _check_split(path, arrays["x_test"], arrays["y_test"], len(labels), "x_test", "y_test",
                                      allow_empty=True)
        if x_test.shape[1:] != x.shape[1:]:
            raise ProxyDataError(f"{path}: x_test images are {x_test.shape[1:]}, x images {x.shape[1:]}; "
                                 "both splits need the same image size")
    return ProxyData(x, y, labels, str(path), x_test, y_test, _read_provenance(path))


def _check_split(path: Path, x: np.ndarray, y: np.ndarray, r: int, xk: str, yk: str, allow_empty: bool = False):
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ProxyDataError(f"{path}: {xk} must be uint8 images of shape (N, H, W, 3); got {x.dtype} "
                             f"{tuple(x.shape)}")
    if len(x) == 0 and not allow_empty:
        raise ProxyDataError(f"{path} holds no images; expected a make-rd .npz with {xk} of shape (N, 32, 32, 3) "
                             "and N > 0")
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise ProxyDataError(f"{path}: {yk} must be whole-number labels of shape (N,); got {y.dtype} {tuple(y.shape)}")
    if len(x) != len(y):
        raise ProxyDataError(f"{path}: {xk} holds {len(x)} images but {yk} {len(y)} labels; one label per image")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= r):
        raise ProxyDataError(f"{path}: {yk} labels must lie in 0..{r - 1} (one per name in labels); "
                             f"found {int(y.min())}..{int(y.max())}")
    return x, y


def load_proxy_data(path: str | Path, size: int | None = 32) -> ProxyData:
    """An ImageFolder tree (with optional train/ and test/ splits) or an .npz file."""
    path = Path(path)
    if not path.exists():
        raise ProxyDataError(f"proxy data {path} does not exist; accepted: an ImageFolder directory "
                             "(<label>/<image>, optionally under train/ and test/) or an .npz from `mote make-rd`")
    if path.is_file():
        if path.suffix != ".npz":
            raise ProxyDataError(f"{path}: accepted proxy data files are .npz (from `mote make-rd`)")
        return _two_labels(_load_npz(path))
    train = path / "train"
    if train.is_dir():
        x, y, labels = read_image_folder(train, size)
        x_test = y_test = None
        if (path / "test").is_dir():
            x_test, y_test, _ = read_image_folder(path / "test", size, labels=labels)
        return _two_labels(ProxyData(x, y, labels, str(path), x_test, y_test))
    x, y, labels = read_image_folder(path, size)
    return _two_labels(ProxyData(x, y, labels, str(path)))


def _two_labels(data: ProxyData) -> ProxyData:
    """Classification needs two labels at least: with one, every candidate's training scores nothing."""
    present = len(np.unique(data.y))
    if present < 2:
        held = f"{len(data.labels)} label name(s), {present} of them with images"
        raise ProxyDataError(f"{data.source} holds {held}; accepted: images of 2 labels or more (`mote make-rd "
                             "--r 10` keeps ten)")
    return data
