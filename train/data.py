"""Training and validation data: webdataset shards (``train.shards``) or an ImageFolder tree.

Training (``train_loader``) resamples shards with replacement, an endless stream cut into epochs of
``epoch_size`` images over all processes. Node splitting is by seeding: every (seed, rank, worker,
epoch) draws its own shard sequence and its own sample-shuffle order, so ranks and workers read
different data without a shared list to split. Validation (``val_loader``) must see every image
exactly once over all processes: rank r takes whole shards ``i % world_size == r`` of the sorted
shard list, its DataLoader workers take disjoint subsets of those (``wds.split_by_worker``), nothing is
resampled, shuffled or padded; each process counts what it saw and ``check_val_total`` checks the sum.

Corrupt samples (undecodable image, missing ``jpg``/``cls``, unreadable tar member) are skipped,
logged and counted, never fatal: every batch carries the number skipped since the previous one back
from its worker, so ``loader.skipped`` (this pass) and ``loader.skipped_total`` are right with any
``num_workers``. Only a stream where nothing decodes (``MAX_CONSECUTIVE_SKIPS`` in a row) raises.

Pass these loaders to the training loop as they are, not through ``accelerator.prepare`` (which would
split them across processes a second time). With exact-once validation, ranks may get different
numbers of batches: accumulate per-rank sums locally and reduce once after the loop.

webdataset 1.0.2 notes: ``wds.split_by_node``/``wds.split_by_worker`` are generator stages over the
shard-URL stream (``islice(src, rank, None, world)``; rank from RANK/WORLD_SIZE or torch.distributed,
worker from ``torch.utils.data.get_worker_info()``). ``wds.ResampledShards`` reseeds at each
``__iter__`` from ``(worker_seed(), epoch, seed)``; its ``epoch`` counter lives in the object, which
a DataLoader copies into fresh workers every pass, so this module sets it explicitly each pass.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import io
import logging
import math
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from mobile_mote.errors import InputError

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_SKIPS = 1000
IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
DEFAULT_INTERPOLATION = "bicubic"
# what a training transform gets when the recipe does not say (timm's MobileNetV3 / EfficientNet recipe)
DEFAULT_TRAIN_AUG = {"auto_augment": "rand-m9-mstd0.5", "re_prob": 0.2, "re_mode": "pixel",
                     "interpolation": DEFAULT_INTERPOLATION}

# timm train.py argument names -> create_transform / Mixup argument names
_ALIASES = {"img_size": "input_size", "aa": "auto_augment", "reprob": "re_prob", "remode": "re_mode",
            "recount": "re_count", "mixup": "mixup_alpha", "cutmix": "cutmix_alpha", "smoothing": "label_smoothing"}
_TRANSFORM_KEYS = ("input_size", "no_aug", "train_crop_mode", "scale", "ratio", "hflip", "vflip", "color_jitter",
                   "color_jitter_prob", "grayscale_prob", "gaussian_blur_prob", "auto_augment", "interpolation",
                   "mean", "std", "re_prob", "re_mode", "re_count", "re_num_splits", "crop_pct", "crop_mode",
                   "crop_border_pixels")
_EVAL_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode", "crop_border_pixels")


# ----------------------------------------------------------------------------------------- recipes

def _flat_recipe(recipe: dict | None) -> dict:
    """Recipe keys under their create_transform/Mixup names; one level of nested sections merged."""
    out: dict = {}
    for k, v in (recipe or {}).items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out.setdefault(_ALIASES.get(k2, k2), v2)
    for k, v in (recipe or {}).items():
        if not isinstance(v, dict):
            out[_ALIASES.get(k, k)] = v
    return out


def _size(v):
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v)
    return int(v)


def make_transform(recipe: dict | None = None, is_training: bool = True):
    """A timm transform from a recipe dict of ``timm.data.create_transform`` argument names.

    timm ``train.py`` names are accepted too (``img_size``, ``aa``, ``reprob``, ``remode``, ``recount``,
    ``train_interpolation``; ``eval_interpolation`` for evaluation); other keys (lr, epochs, ...) are
    ignored. Training defaults when the recipe is silent: ``DEFAULT_TRAIN_AUG`` (RandAugment m9 mstd0.5, random erasing 0.2 pixel mode,
    bicubic); evaluation: bicubic, timm's crop_pct 0.875. A key given as None is passed as None.
    """
    from timm.data import create_transform

    r = _flat_recipe(recipe)
    if is_training:
        kw = {k: r[k] for k in _TRANSFORM_KEYS if k in r}
        if "train_interpolation" in r:
            kw["interpolation"] = r["train_interpolation"]
        for k, v in DEFAULT_TRAIN_AUG.items():
            kw.setdefault(k, v)
    else:
        kw = {k: r[k] for k in _EVAL_KEYS if k in r}
        if "eval_interpolation" in r:
            kw["interpolation"] = r["eval_interpolation"]
        kw.setdefault("interpolation", DEFAULT_INTERPOLATION)
    kw["input_size"] = _size(kw.get("input_size", 224))
    for k in ("scale", "ratio", "mean", "std"):
        if kw.get(k) is not None:
            kw[k] = tuple(float(x) for x in kw[k])
    return create_transform(is_training=is_training, **kw)


def _as_transform(transform, is_training: bool):
    if transform is None or isinstance(transform, dict):
        return make_transform(transform, is_training=is_training)
    if not callable(transform):
        raise InputError(f"transform {transform!r} is neither callable nor a recipe dict")
    return transform


def make_mixup(recipe: dict | None, num_classes: int):
    """``timm.data.Mixup`` (mixup/cutmix with label smoothing folded into the soft targets) or None.

    Keys (timm train.py names in brackets): ``mixup_alpha`` (mixup), ``cutmix_alpha`` (cutmix),
    ``cutmix_minmax``, ``mixup_prob``, ``mixup_switch_prob``, ``mixup_mode``, ``label_smoothing``
    (smoothing, default 0.1). None when neither mixup nor cutmix is on: then use plain (label
    smoothing) cross entropy, see ``train_criterion``. Apply in the loop: ``x, y = mixup(x, y)``
    (the batch size must be even; training loaders here always give full batches).
    """
    from timm.data import Mixup

    r = _flat_recipe(recipe)
    mixup_alpha = float(r.get("mixup_alpha") or 0.0)
    cutmix_alpha = float(r.get("cutmix_alpha") or 0.0)
    minmax = r.get("cutmix_minmax")
    if mixup_alpha <= 0 and cutmix_alpha <= 0 and minmax is None:
        return None
    if int(num_classes) < 2:
        raise InputError(f"mixup needs at least 2 classes, got num_classes={num_classes}")
    return Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
                 cutmix_minmax=tuple(minmax) if minmax is not None else None,
                 prob=float(r.get("mixup_prob", 1.0)), switch_prob=float(r.get("mixup_switch_prob", 0.5)),
                 mode=str(r.get("mixup_mode", "batch")), label_smoothing=float(r.get("label_smoothing", 0.1)),
                 num_classes=int(num_classes))


def train_criterion(recipe: dict | None, mixup) -> torch.nn.Module:
    """The loss that goes with ``make_mixup``'s answer: soft-target CE with mixup, else (smoothed) CE."""
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    if mixup is not None:
        return SoftTargetCrossEntropy()
    smoothing = float(_flat_recipe(recipe).get("label_smoothing", 0.1) or 0.0)
    return LabelSmoothingCrossEntropy(smoothing) if smoothing > 0 else torch.nn.CrossEntropyLoss()


# ------------------------------------------------------------------------------------------ shards

def read_index(path) -> dict:
    """A ``PREFIX-index.json`` written by ``train.shards`` (or ``tools/make_shards.py``)."""
    from .shards import load_index

    return load_index(path)


def _is_remote(url: str) -> bool:
    return "://" in url or url.startswith("pipe:")


def _index_beside(url: str) -> Path | None:
    m = re.match(r"^(.*)-\d{6}\.tar$", url)
    if m and not _is_remote(url):
        p = Path(m.group(1) + "-index.json")
        if p.is_file():
            return p
    return None


def resolve_shards(spec) -> tuple[list[str], dict | None]:
    """Shard URLs (in shard order) and the index if one is known.

    ``spec``: a ``PREFIX-index.json``; a brace pattern ``dir/imagenet-val-{000000..000063}.tar``; a
    folder (its single ``*-index.json``, else every ``*.tar``); one ``.tar``; or a list of paths/URLs.
    The index is found beside a pattern or list of ``PREFIX-NNNNNN.tar`` files when it is there.
    """
    import braceexpand

    index = None
    if isinstance(spec, (list, tuple)):
        urls = [str(u) for u in spec]
    else:
        s = str(spec)
        p = Path(s)
        if s.endswith(".json"):
            index = read_index(p)
            urls = [str(p.parent / e["file"]) for e in index["shards"]]
        elif "{" in s:
            urls = list(braceexpand.braceexpand(s))
        elif p.is_dir():
            indexes = sorted(p.glob("*-index.json"))
            if len(indexes) > 1:
                raise InputError(f"{p} holds several shard sets ({', '.join(i.name for i in indexes)}); "
                                 "pass one PREFIX-index.json or a brace pattern")
            if indexes:
                return resolve_shards(indexes[0])
            urls = sorted(glob.glob(str(p / "*.tar")))
        else:
            urls = [s]
    if not urls:
        raise InputError(f"no shards found in {spec!r}; accepted: PREFIX-index.json, a brace pattern "
                         "(dir/name-{000000..000099}.tar), a folder of .tar files, or a list of paths")
    missing = [u for u in urls if not _is_remote(u) and not os.path.isfile(u)]
    if missing:
        raise InputError(f"{len(missing)} of {len(urls)} shards do not exist, e.g. {missing[0]}")
    if index is None:
        beside = _index_beside(urls[0])
        if beside is not None:
            idx = read_index(beside)
            names = [str(beside.parent / e["file"]) for e in idx["shards"]]
            if names == urls:
                index = idx
    return urls, index


def check_val_shards(spec) -> int | None:
    """Check a validation shard set before any training: returns the image count, or None when unknown.

    Validation must see every image exactly once, and ``check_val_total`` only finds out after an
    epoch; this finds the same problems up front, as InputErrors: a pattern or list covering only part
    of the shards an index beside them lists (e.g. ``{000000..000062}`` of 64), an index that
    ``make_shards`` did not finish, per-shard counts that do not add up to the index's total, and a
    local shard whose size is not the one recorded (truncated or rewritten).
    """
    urls, index = resolve_shards(spec)
    if index is None:
        beside = _index_beside(urls[0])
        if beside is not None:
            listed = [str(beside.parent / e["file"]) for e in read_index(beside)["shards"]]
            absent = [u for u in listed if u not in set(urls)]
            if absent:
                raise InputError(f"validation shards: {len(urls)} given, but {beside.name} lists {len(listed)} "
                                 f"(missing e.g. {Path(absent[0]).name}); accepted: the index itself or a "
                                 "pattern covering every shard, so each image is validated once")
        return None
    where = f"validation index {index.get('prefix', 'of the shards')}-index.json"
    if index.get("complete") is False:
        raise InputError(f"{where} is incomplete (make_shards was interrupted); rerun the same make_shards "
                         "command to finish it")
    shards = index.get("shards") or []
    listed = sum(int(e.get("samples", 0)) for e in shards)
    total = int(index["totals"]["samples"])
    if listed != total:
        raise InputError(f"{where}: its {len(shards)} shards hold {listed} images but its total says {total}; "
                         "accepted: an index written by make_shards (rerun it with --overwrite)")
    for url, e in zip(urls, shards):
        if _is_remote(url) or e.get("bytes") is None:
            continue
        size = os.path.getsize(url)
        if size != int(e["bytes"]):
            raise InputError(f"validation shard {url} is {size} bytes, its index records {e['bytes']} (truncated "
                             "or rewritten); rerun make_shards to rewrite it")
    return total


def _mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes, unlike hash() of strings)."""
    return int.from_bytes(hashlib.sha256(repr(tuple(int(p) for p in parts)).encode()).digest()[:8], "little") >> 1


def _worker() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _rank_worker_seed(rank: int) -> int:
    """``ResampledShards(worker_seed=...)``: distinct per (rank, DataLoader worker)."""
    return _mix_seed(rank, _worker()[0])


def _dist_info(rank, world_size) -> tuple[int, int]:
    if rank is None or world_size is None:
        from webdataset.utils import pytorch_worker_info

        r, w, _, _ = pytorch_worker_info()
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    rank, world_size = int(rank), int(world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise InputError(f"rank {rank} / world size {world_size}: need world_size >= 1 and 0 <= rank < world_size")
    return rank, world_size


class CorruptSample(ValueError):
    """A sample whose image or label cannot be decoded."""


class SkipCounter:
    """A webdataset exception handler that logs and counts instead of raising (one per process and pass)."""

    def __init__(self, max_consecutive: int = MAX_CONSECUTIVE_SKIPS):
        self.count = 0
        self.reported = 0
        self.consecutive = 0
        self.max_consecutive = max_consecutive

    def __call__(self, exn: BaseException) -> bool:
        self.count += 1
        self.consecutive += 1
        if self.count <= 20 or self.count % 1000 == 0:
            log.warning("skipped corrupt sample #%d: %s", self.count, _one_line(exn))
        if self.consecutive >= self.max_consecutive:
            raise RuntimeError(f"{self.consecutive} samples in a row failed to load (last: {_one_line(exn)}); "
                               "the data or the pipeline is broken, not a few corrupt images") from exn
        return True

    def ok(self) -> None:
        self.consecutive = 0

    def take(self) -> int:
        """Skips since the last call (carried back to the main process with the next batch)."""
        n, self.reported = self.count - self.reported, self.count
        return n


def _one_line(exn: BaseException) -> str:
    text = f"{type(exn).__name__}: {exn.args[0] if exn.args else exn}"
    return " ".join(str(text).split())[:300]


class _Decode:
    """sample dict -> (image tensor, class index, key); decode failures raise CorruptSample."""

    def __init__(self, transform, counter: SkipCounter):
        self.transform = transform
        self.counter = counter

    def __call__(self, sample: dict):
        from PIL import Image

        key = sample.get("__key__")
        try:
            data = next((sample[k] for k in IMAGE_KEYS if k in sample), None)
            if data is None:
                raise KeyError(f"no image ({'/'.join(IMAGE_KEYS)}) among {sorted(k for k in sample if k[0] != '_')}")
            target = int(sample["cls"])
            with Image.open(io.BytesIO(data)) as im:
                img = im.convert("RGB")  # decodes fully: truncated files fail here
        except Exception as e:
            raise CorruptSample(f"{key} in {sample.get('__url__')}: {_one_line(e)}") from None
        self.counter.ok()
        return self.transform(img), target, key


def _batches(src: Iterable, batch_size: int, counter: SkipCounter, partial: bool, keys: bool):
    """Collate (x, y, key) into (images, targets, keys, skipped-since-last-batch)."""
    buf: list = []
    for x, y, k in src:
        buf.append((x, y, k))
        if len(buf) == batch_size:
            yield _collate(buf, counter, keys)
            buf = []
    if buf and partial:
        yield _collate(buf, counter, keys)
    elif counter.count > counter.reported:  # skips after the last batch still get reported
        yield torch.empty(0), torch.empty(0, dtype=torch.long), [], counter.take()


def _collate(buf: list, counter: SkipCounter, keys: bool):
    from torch.utils.data import default_collate

    return (default_collate([b[0] for b in buf]), torch.tensor([b[1] for b in buf], dtype=torch.long),
            [b[2] for b in buf] if keys else [], counter.take())


class _TrainStream(IterableDataset):
    """Endless resampled stream of full batches for one rank; reseeded per (seed, rank, worker, epoch)."""

    def __init__(self, urls, batch_size, transform, seed, rank, shuffle_buffer, shuffle_initial):
        super().__init__()
        self.urls, self.batch_size, self.transform = list(urls), int(batch_size), transform
        self.seed, self.rank, self.epoch = int(seed), int(rank), 0
        self.shuffle_buffer, self.shuffle_initial = int(shuffle_buffer), int(shuffle_initial)

    def __iter__(self):
        import webdataset as wds

        counter = SkipCounter()
        shards = wds.ResampledShards(self.urls, seed=self.seed, deterministic=True,
                                     worker_seed=functools.partial(_rank_worker_seed, self.rank))
        shards.epoch = self.epoch - 1  # ResampledShards.__iter__ adds one first
        worker = _worker()[0]
        src = wds.tarfile_to_samples(handler=counter)(iter(shards))
        if self.shuffle_buffer > 1:
            src = wds.shuffle(self.shuffle_buffer, self.shuffle_initial,
                              seed=_mix_seed(self.seed, self.rank, worker, self.epoch, 1))(src)
        src = wds.map(_Decode(self.transform, counter), handler=counter)(src)
        yield from _batches(src, self.batch_size, counter, partial=False, keys=False)


class _ValStream(IterableDataset):
    """This rank's shards once, split across workers, in order, partial last batch kept."""

    def __init__(self, urls, batch_size, transform, return_keys):
        super().__init__()
        self.urls, self.batch_size, self.transform, self.return_keys = list(urls), int(batch_size), transform, return_keys
        self.epoch = 0

    def __iter__(self):
        import webdataset as wds

        counter = SkipCounter()
        src = wds.split_by_worker(iter(dict(url=u) for u in self.urls))  # worker w: shards w, w+W, ...
        src = wds.tarfile_to_samples(handler=counter)(src)
        src = wds.map(_Decode(self.transform, counter), handler=counter)(src)
        yield from _batches(src, self.batch_size, counter, partial=True, keys=self.return_keys)


class Loader:
    """Iterable of ``(images, targets)`` (``(images, targets, keys)`` with ``return_keys``) batches.

    ``seen`` / ``skipped``: images yielded / corrupt samples skipped in the current (or last) pass;
    ``seen_total`` / ``skipped_total``: over all passes. ``len()`` is the number of batches per pass
    when it is known. Each ``iter()`` is one epoch; ``set_epoch(e)`` picks the epoch explicitly (resume).
    """

    def __init__(self, dataset, *, batches: int | None, num_workers: int, pin_memory: bool, seed: int, rank: int,
                 return_keys: bool = False, even: bool = False, sampler=None, collate_fn=None, batch_size=None,
                 expected: int | None = None, drop_last: bool = False):
        self.dataset, self.batches, self.num_workers = dataset, batches, int(num_workers)
        self.pin_memory, self.seed, self.rank, self.return_keys, self.even = pin_memory, seed, rank, return_keys, even
        self.sampler, self.collate_fn, self.batch_size, self.drop_last = sampler, collate_fn, batch_size, drop_last
        self.expected = expected  # images this rank should see per pass, when known
        self.epoch = 0
        self.seen = self.skipped = self.seen_total = self.skipped_total = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.batches is None:
            raise TypeError("number of batches unknown (no shard index); iterate to count")
        return self.batches

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        if hasattr(self.dataset, "epoch"):
            self.dataset.epoch = epoch
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        gen = torch.Generator()
        gen.manual_seed(_mix_seed(self.seed, self.rank, epoch, 2) & 0x7FFFFFFFFFFFFFFF)
        kw = dict(num_workers=self.num_workers, pin_memory=self.pin_memory, generator=gen,
                  persistent_workers=False)
        if self.sampler is None:
            dl = DataLoader(self.dataset, batch_size=None, **kw)
        else:
            dl = DataLoader(self.dataset, batch_size=self.batch_size, sampler=self.sampler,
                            collate_fn=self.collate_fn, drop_last=self.drop_last, **kw)
        self.seen = self.skipped = 0
        n = 0
        it = iter(dl)
        try:
            for images, targets, keys, skipped in it:
                self.skipped += int(skipped)
                self.skipped_total += int(skipped)
                if self.even and len(targets) % 2:  # only after a skip (ImageFolder): Mixup needs pairs
                    images, targets, keys = images[:-1], targets[:-1], keys[:-1]
                if len(targets) == 0:
                    continue
                self.seen += len(targets)
                self.seen_total += len(targets)
                yield (images, targets, keys) if self.return_keys else (images, targets)
                n += 1
                if isinstance(self.dataset, _TrainStream) and n >= self.batches:
                    break  # an endless stream: the epoch ends here
        finally:
            del it  # shuts the workers down (the training stream never ends by itself)


def train_loader(shards, batch_size: int, transform=None, epoch_size: int | None = None, seed: int = 0,
                 num_workers: int = 4, *, rank: int | None = None, world_size: int | None = None,
                 shuffle_buffer: int = 2000, shuffle_initial: int = 500, pin_memory: bool = False) -> Loader:
    """Resampled training batches ``(images, targets)`` for this rank.

    ``shards``: see ``resolve_shards``. ``transform``: a callable on PIL images, or a recipe dict for
    ``make_transform(is_training=True)``. ``epoch_size``: images per epoch over all ranks (default:
    the index's total); each rank yields ``epoch_size // (batch_size * world_size)`` full batches per
    ``iter()``. ``rank``/``world_size`` default to RANK/WORLD_SIZE or torch.distributed. Shards are
    drawn with replacement per (seed, rank, worker, epoch); the shuffle buffer holds encoded samples.
    """
    urls, index = resolve_shards(shards)
    rank, world_size = _dist_info(rank, world_size)
    if int(batch_size) < 1:
        raise InputError(f"batch size {batch_size} must be positive")
    if epoch_size is None:
        if index is None:
            raise InputError("epoch_size not given and no shard index found to read the image count from")
        epoch_size = int(index["totals"]["samples"])
    batches = max(1, int(epoch_size) // (int(batch_size) * world_size))
    ds = _TrainStream(urls, batch_size, _as_transform(transform, True), seed, rank, shuffle_buffer, shuffle_initial)
    return Loader(ds, batches=batches, num_workers=num_workers, pin_memory=pin_memory, seed=seed, rank=rank)


def rank_shards(urls: Sequence[str], rank: int, world_size: int) -> list[str]:
    """Whole shards for one rank: shard i goes to rank ``i % world_size`` (what wds.split_by_node does)."""
    return list(urls)[rank::world_size]


def val_loader(shards, batch_size: int, transform=None, rank: int | None = None, world_size: int | None = None,
               *, num_workers: int = 4, return_keys: bool = False, pin_memory: bool = False) -> Loader:
    """Validation batches seeing every image exactly once over all ranks and workers.

    Rank r reads shards ``i % world_size == r`` of the sorted list; its worker w of W reads that list's
    shards ``w, w+W, ...``; no resampling, no shuffling, no padding; the last batch of each worker may
    be short. After the pass, ``loader.seen`` is this rank's count: gather them and call
    ``check_val_total(counts, expected_val_total(index))``. ``loader.expected`` is this rank's share
    when the index is known. ``transform``: callable or recipe dict (``make_transform(is_training=False)``).
    """
    urls, index = resolve_shards(shards)
    rank, world_size = _dist_info(rank, world_size)
    if int(batch_size) < 1:
        raise InputError(f"batch size {batch_size} must be positive")
    mine = rank_shards(urls, rank, world_size)
    if not mine:
        log.warning("rank %d of %d gets no validation shard (%d shards); use more shards than processes",
                    rank, world_size, len(urls))
    expected = batches = None
    if index is not None:
        counts = [e["samples"] for e in index["shards"]][rank::world_size]
        expected = sum(counts)
        workers = max(1, int(num_workers))
        batches = sum(math.ceil(sum(counts[w::workers]) / int(batch_size)) for w in range(workers))
    ds = _ValStream(mine, batch_size, _as_transform(transform, False), return_keys)
    return Loader(ds, batches=batches, num_workers=num_workers if mine else 0, pin_memory=pin_memory, seed=0,
                  rank=rank, return_keys=return_keys, expected=expected)


class ValCountError(RuntimeError):
    """Validation did not see every image exactly once."""


def expected_val_total(index) -> int:
    """Images in a shard set: ``index`` is a dict or a path to ``PREFIX-index.json``."""
    if not isinstance(index, dict):
        index = read_index(index)
    return int(index["totals"]["samples"])


def check_val_total(counts_per_rank: Sequence[int], expected) -> int:
    """Raise ValCountError unless the images seen over all ranks add up to ``expected``.

    ``expected``: an int (50,000 for ImageNet val), an index dict or a path to the index JSON.
    Returns the total.
    """
    if not isinstance(expected, int):
        expected = expected_val_total(expected)
    counts = [int(c) for c in (counts_per_rank.tolist() if hasattr(counts_per_rank, "tolist") else counts_per_rank)]
    total = sum(counts)
    if total != expected:
        raise ValCountError(f"validation saw {total} images over {len(counts)} process(es) {counts}, expected "
                            f"{expected} ({'missing' if total < expected else 'extra'} {abs(total - expected)}): "
                            "corrupt or missing shards, or a sampler that pads/duplicates")
    return total


# ------------------------------------------------------------------------------------- ImageFolder

def _pil_rgb(path: str):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


class _SafeImageFolder(Dataset):
    """torchvision ImageFolder whose unreadable images come back as None (skipped by the collate)."""

    def __init__(self, root, transform):
        from torchvision.datasets import ImageFolder

        self.folder = ImageFolder(str(root))
        self.root, self.transform = Path(root), transform

    def __len__(self):
        return len(self.folder.samples)

    def __getitem__(self, i):
        path, target = self.folder.samples[i]
        try:
            img = _pil_rgb(path)
        except Exception as e:
            log.warning("skipped corrupt image %s: %s", path, _one_line(e))
            return None
        return self.transform(img), target, Path(path).relative_to(self.root).with_suffix("").as_posix()


def _collate_skip(batch):
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), [], skipped
    return (torch.stack([b[0] for b in good]), torch.tensor([b[1] for b in good], dtype=torch.long),
            [b[2] for b in good], skipped)


class StridedSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, ...``: every index on exactly one rank, no padding (unlike DistributedSampler)."""

    def __init__(self, n: int, rank: int, world_size: int):
        self.n, self.rank, self.world_size = int(n), int(rank), int(world_size)

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self):
        return len(range(self.rank, self.n, self.world_size))


def imagefolder_loaders(root, batch_size: int, train_transform=None, val_transform=None, *, rank: int | None = None,
                        world_size: int | None = None, num_workers: int = 4, seed: int = 0,
                        train_dir: str | None = "train", val_dir: str | None = "val", return_keys: bool = False,
                        pin_memory: bool = False) -> tuple[Loader | None, Loader | None]:
    """(train, val) loaders over ``root/train`` and ``root/val`` ImageFolder trees (None for a dir set to None).

    Training: DistributedSampler (shuffled per seed and epoch, rank's share), full batches only,
    corrupt images skipped and counted (a batch that lost one keeps an even size for Mixup).
    Validation: ``StridedSampler`` (index i on rank ``i % world_size``, no padding), so
    ``check_val_total`` works exactly as for shards.
    """
    from torch.utils.data.distributed import DistributedSampler

    rank, world_size = _dist_info(rank, world_size)
    root = Path(root)
    out: list[Loader | None] = []
    for sub, training in ((train_dir, True), (val_dir, False)):
        if sub is None:
            out.append(None)
            continue
        d = root / sub
        if not d.is_dir():
            raise InputError(f"ImageFolder split {d} does not exist; accepted: ROOT/{sub}/<class>/<images>")
        try:
            ds = _SafeImageFolder(d, _as_transform(train_transform if training else val_transform, training))
        except (FileNotFoundError, RuntimeError) as e:  # torchvision: no class folders / no images
            raise InputError(f"cannot read ImageFolder {d}: {e}") from None
        if training:
            sampler = DistributedSampler(ds, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                         drop_last=False)
            batches = len(sampler) // int(batch_size)
        else:
            sampler = StridedSampler(len(ds), rank, world_size)
            batches = math.ceil(len(sampler) / int(batch_size))
        out.append(Loader(ds, batches=batches, num_workers=num_workers, pin_memory=pin_memory, seed=seed, rank=rank,
                          return_keys=return_keys and not training, even=training, sampler=sampler,
                          collate_fn=_collate_skip, batch_size=int(batch_size), drop_last=training,
                          expected=None if training else len(sampler)))
    return out[0], out[1]


__all__ = ["CorruptSample", "Loader", "SkipCounter", "StridedSampler", "ValCountError", "check_val_total",
           "expected_val_total", "imagefolder_loaders", "make_mixup", "make_transform", "rank_shards",
           "read_index", "resolve_shards", "train_criterion", "train_loader", "val_loader"]
