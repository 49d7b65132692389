"""ImageFolder tree -> webdataset shards (``PREFIX-000000.tar`` ...) plus an index JSON.

Layout read: ``root/<class>/**/<image>`` (ImageNet: ``train/n01440764/n01440764_10026.JPEG``); classes
are the sorted names of the folders directly under ``root`` (hidden ones skipped), so class indices
match torchvision's ``ImageFolder``. Each sample is two tar members, ``<key>.cls`` (class index as
ASCII) and ``<key>.jpg`` (the file's own bytes when it is a JPEG, by magic number; anything else PIL
can read is converted to RGB JPEG, quality 95). Order is a seeded shuffle of all files, so the
shards of one seed are byte-for-byte reproducible (fixed tar mtime/owner).

A shard closes when one more sample would take it over ``max_bytes`` (the tar file's exact size,
end-of-archive and record padding included) or ``max_samples``. Each shard is written to
``<name>.tmp-<pid>``, fsynced and renamed, and only then recorded in ``PREFIX-index.json`` (itself
replaced atomically), so a killed run never leaves a truncated shard under a final name. A rerun
with the same input and settings resumes: shards the index lists whose file has the recorded size
are skipped; a listed shard that is missing or of another size is rewritten from its recorded range.

Kept free of torch/webdataset imports (``tarfile`` directly) so the tool starts fast; the files are
ordinary webdataset shards (``wds.WebDataset(pattern)`` reads them, see ``train.data``).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import random
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from mobile_mote.atomic import atomic_path, write_text
from mobile_mote.errors import InputError

FORMAT = "mobile_mote-wds-shards/1"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
JPEG_MAGIC = b"\xff\xd8\xff"
TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK  # tarfile pads the archive to a whole record on close
TAR_MTIME = 0  # fixed, so the same seed gives the same bytes
_SHARD_RE = r"-(\d{6})\.tar"

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


class ShardError(InputError):
    """Bad input to the shard writer (missing root, empty class folder, unwritable output, ...)."""


def parse_size(text) -> int:
    """'1GB' -> 10**9, '500MB', '64KiB' -> 65536, '1G', '123456' (bytes)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _SIZE_RE.match(str(text))
        if not m:
            raise ShardError(f"cannot read shard size {text!r}; accepted: bytes with an optional K/M/G/T "
                             "(decimal) or KiB/MiB/GiB (binary) suffix, e.g. 1GB, 500MB, 64KiB, 200000")
        base = 1024.0 if m.group(3) else 1000.0
        value = float(m.group(1)) * base ** "_kmgt".index(m.group(2).lower() or "_")
    if value < 1:
        raise ShardError(f"shard size {text!r} must be at least one byte")
    return int(value)


@dataclass(frozen=True)
class _Item:
    rel: str      # path relative to root, '/'-separated
    cls: int
    size: int     # file size on disk (part of the plan fingerprint)


def scan_imagefolder(root) -> tuple[list[str], list[_Item]]:
    """Sorted class names and every image under them (sorted by class, then relative path)."""
    root = Path(root)
    if not root.exists():
        raise ShardError(f"image root {root} does not exist; accepted: a folder holding one sub-folder per class")
    if not root.is_dir():
        raise ShardError(f"image root {root} is not a folder; accepted: a folder holding one sub-folder per class")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ShardError(f"image root {root} has no class folders; accepted: root/<class>/<image>.JPEG")
    items: list[_Item] = []
    for ci, name in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(root / name, followlinks=True):
            dirnames.sort()
            for fn in filenames:
                if fn.lower().endswith(IMAGE_EXTENSIONS) and not fn.startswith("."):
                    p = Path(dirpath) / fn
                    found.append(_Item(p.relative_to(root).as_posix(), ci, p.stat().st_size))
        if not found:
            raise ShardError(f"class folder {root / name} has no images; accepted extensions: "
                             f"{', '.join(IMAGE_EXTENSIONS)} (remove or fill the folder)")
        items.extend(sorted(found, key=lambda it: it.rel))
    return classes, items


def _sanitize(text: str) -> str:
    # webdataset splits a member name at the first '.', so keys carry no dots (nor '/').
    key = re.sub(r"[^A-Za-z0-9_-]", "_", text)
    if len(key) > 80:  # keep tar names within ustar's 100 characters
        key = key[:70] + "_" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return key


def make_keys(classes: list[str], items: list[_Item]) -> list[str]:
    """One unique ``__key__`` per item: the file stem; class-prefixed if stems collide; numbered if still."""
    stems = [_sanitize(Path(it.rel).stem) for it in items]
    if len(set(stems)) == len(stems):
        return stems
    keys = [_sanitize(f"{classes[it.cls]}_{Path(it.rel).with_suffix('').as_posix()}") for it in items]
    if len(set(keys)) == len(keys):
        return keys
    return [f"{k}_{i:08d}" for i, k in enumerate(keys)]


def shuffled_order(n: int, seed: int) -> list[int]:
    """The deterministic sample order for a seed (a permutation of range(n))."""
    order = list(range(n))
    random.Random(int(seed)).shuffle(order)
    return order


def _member_bytes(n: int) -> int:
    return TAR_BLOCK + -(-n // TAR_BLOCK) * TAR_BLOCK


def sample_tar_bytes(cls_bytes: bytes, jpg: bytes) -> int:
    return _member_bytes(len(cls_bytes)) + _member_bytes(len(jpg))


def tar_file_bytes(members_bytes: int) -> int:
    """Size of a tar file holding members of this many bytes (end blocks and record padding included)."""
    return -(-(members_bytes + 2 * TAR_BLOCK) // TAR_RECORD) * TAR_RECORD


def _load_image_bytes(path: Path) -> tuple[bytes, bool]:
    """The JPEG bytes to store and whether they were converted (non-JPEG input)."""
    data = path.read_bytes()
    if data[:3] == JPEG_MAGIC:
        return data, False
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue(), True


def _tmp_name(path: Path) -> Path:
    # ``<name>.tmp-<pid>``: the stale-temporary sweep of write_shards recognises this form
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def _write_json_atomic(path: Path, obj: dict) -> None:
    write_text(path, json.dumps(obj, indent=1) + "\n", fsync=True, tmp=_tmp_name(path))


def _check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ShardError(f"output {out} exists and is not a folder; accepted: a writable folder (created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ShardError(f"cannot write to output folder {out} ({e.strerror or e}); accepted: a writable folder") from None


class _TarOut:
    """One shard's tar stream into ``path`` (a temporary that ``atomic_path`` renames into place)."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.USTAR_FORMAT)

    def add(self, key: str, cls_bytes: bytes, jpg: bytes) -> None:
        for ext, data in (("cls", cls_bytes), ("jpg", jpg)):  # sorted like webdataset's TarWriter
            ti = tarfile.TarInfo(f"{key}.{ext}")
            ti.size, ti.mtime, ti.mode = len(data), TAR_MTIME, 0o444
            self.tar.addfile(ti, io.BytesIO(data))

    def close(self) -> None:
        try:
            self.tar.close()  # end-of-archive blocks and record padding
        finally:
            self.file.close()

    def abort(self) -> None:
        """Close without raising (the write already failed; ``atomic_path`` removes the temporary)."""
        try:
            self.close()
        except Exception:
            pass


def _plan_hash(classes, items, seed, max_bytes, max_samples) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([FORMAT, classes, int(seed), max_bytes, max_samples]).encode())
    for it in items:
        h.update(f"\n{it.rel}\t{it.cls}\t{it.size}".encode())
    return h.hexdigest()


def index_path(out, prefix: str) -> Path:
    return Path(out) / f"{prefix}-index.json"


def shard_pattern(prefix: str, n: int) -> str:
    return f"{prefix}-{{000000..{max(n - 1, 0):06d}}}.tar"


def _totals(shards: list[dict], num_classes: int) -> dict:
    counts = [0] * num_classes
    for s in shards:
        for c, k in enumerate(s["counts"]):
            counts[c] += k
    return {"shards": len(shards), "samples": sum(s["samples"] for s in shards),
            "bytes": sum(s["bytes"] for s in shards), "counts": counts,
            "converted": sum(s.get("converted", 0) for s in shards),
            "skipped": [x for s in shards for x in s.get("skipped", [])]}


def write_shards(root, out, prefix: str, *, max_bytes=None, max_samples: int | None = None, seed: int = 0,
                 overwrite: bool = False, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> dict:
    """Write (or resume writing) the shards of ``root`` into ``out``; return the index dict.

    ``max_bytes`` (int or '1GB') and/or ``max_samples`` bound each shard (a sample bigger than
    ``max_bytes`` alone still gets its own shard); with neither, shards are 1 GB. ``overwrite``
    removes this prefix's shards and index first; without it, an index written for other input or
    settings (or shards with no index) is refused rather than mixed with.
    """
    log = log or (lambda msg: None)
    if not prefix or "/" in prefix or os.sep in prefix or prefix.startswith("."):
        raise ShardError(f"shard prefix {prefix!r} is not a plain file-name prefix; accepted: e.g. imagenet-train")
    max_bytes = parse_size(max_bytes) if max_bytes is not None else None
    if max_samples is not None and int(max_samples) < 1:
        raise ShardError(f"samples per shard {max_samples!r} must be a positive integer")
    max_samples = int(max_samples) if max_samples is not None else None
    if max_bytes is None and max_samples is None:
        max_bytes = 10 ** 9

    root, out = Path(root), Path(out)
    classes, items = scan_imagefolder(root)
    _check_writable(out)
    keys = make_keys(classes, items)
    order = shuffled_order(len(items), seed)
    plan = _plan_hash(classes, items, seed, max_bytes, max_samples)
    idx_path = index_path(out, prefix)
    name_re = re.compile(re.escape(prefix) + _SHARD_RE + r"$")

    # stale tmp files of a killed run never count; remove them
    for p in out.glob(f"{prefix}-*.tmp-*"):
        if re.fullmatch(re.escape(prefix) + r"-(\d{6}\.tar|index\.json)\.tmp-\d+", p.name):
            p.unlink(missing_ok=True)
    existing = sorted(p for p in out.iterdir() if name_re.fullmatch(p.name))
    if overwrite:
        for p in existing:
            p.unlink()
        idx_path.unlink(missing_ok=True)
        existing = []

    done: list[dict] = []
    old: dict = {}
    if idx_path.exists():
        try:
            old = json.loads(idx_path.read_text())
        except (OSError, ValueError) as e:
            raise ShardError(f"cannot read {idx_path} ({e}); pass --overwrite to start again") from None
        if old.get("plan_hash") != plan:
            raise ShardError(f"{idx_path} was written for other input or settings (files, seed, shard size); "
                             "pass --overwrite to replace those shards, or choose another --out/--prefix")
        done = list(old.get("shards", []))
    elif existing:
        raise ShardError(f"{out} already holds {len(existing)} {prefix}-*.tar shards but no {idx_path.name}; "
                         "pass --overwrite to replace them, or choose another --out/--prefix")

    index = {
        "format": FORMAT, "prefix": prefix, "root": str(root.resolve()), "seed": int(seed),
        "max_bytes": max_bytes, "max_samples": max_samples, "plan_hash": plan,
        "classes": classes, "class_to_idx": {c: i for i, c in enumerate(classes)},
        "num_classes": len(classes), "num_files": len(items),
        "shards": done, "pattern": None, "totals": None, "complete": False, "date": old.get("date"),
    }
    wrote = False

    def save(complete: bool) -> None:
        nonlocal wrote
        wrote = True
        index["pattern"] = shard_pattern(prefix, len(index["shards"])) if index["shards"] else None
        index["totals"] = _totals(index["shards"], len(classes))
        index["complete"] = complete
        index["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _write_json_atomic(idx_path, index)

    def prepared(start: int, stop: int) -> Iterator[tuple[int, str, bytes, bytes, bool] | tuple[int, str]]:
        for pos in range(start, stop):
            it = items[order[pos]]
            try:
                jpg, converted = _load_image_bytes(root / it.rel)
            except (OSError, ValueError) as e:  # unreadable non-JPEG (PIL) or vanished file
                yield pos, f"{it.rel}: {type(e).__name__}: {e}"
                continue
            yield pos, keys[order[pos]], str(it.cls).encode("ascii"), jpg, converted

    def write_range(shard_no: int, start: int, stop: int | None, bar) -> dict:
        """Write shard ``shard_no`` from position ``start``: up to ``stop`` or until the limits say stop."""
        final = out / f"{prefix}-{shard_no:06d}.tar"
        tar = None
        try:
            with atomic_path(final, fsync=True, tmp=_tmp_name(final)) as tmp:
                tar = _TarOut(tmp)
                try:
                    counts, members, samples, converted_n, skipped, pos = fill(tar, start, stop, bar)
                except BaseException:
                    tar.abort()
                    raise
                tar.close()
        except OSError as e:  # the output side (input read errors are skipped in prepared())
            if tar is None:
                raise ShardError(f"cannot write {final} ({e.strerror or e}); accepted: a writable folder") from None
            raise ShardError(f"cannot write {final} ({e.strerror or e}); the shards already written are kept, "
                             "rerun the same command to resume") from None
        nbytes = final.stat().st_size
        if nbytes != tar_file_bytes(members):
            raise RuntimeError(f"internal: {final} has {nbytes} bytes, expected {tar_file_bytes(members)}")
        return {"file": final.name, "samples": samples, "bytes": nbytes, "counts": counts,
                "first": start, "end": pos, "converted": converted_n, "skipped": skipped}

    def fill(tar: _TarOut, start: int, stop: int | None, bar):
        """Add samples from ``start`` until ``stop`` or the shard limits; returns the shard's tallies."""
        counts = [0] * len(classes)
        members = samples = converted_n = 0
        skipped: list[str] = []
        pos = start
        for rec in prepared(start, len(items) if stop is None else stop):
            if len(rec) == 2:
                skipped.append(rec[1])
                log(f"skipped unreadable image {rec[1]}")
                pos = rec[0] + 1
                bar.update(1)
                continue
            p, key, cls_b, jpg, converted = rec
            add = sample_tar_bytes(cls_b, jpg)
            if stop is None and samples > 0 and (
                    (max_samples is not None and samples >= max_samples)
                    or (max_bytes is not None and tar_file_bytes(members + add) > max_bytes)):
                break
            tar.add(key, cls_b, jpg)
            members += add
            samples += 1
            converted_n += converted
            counts[int(cls_b)] += 1
            pos = p + 1
            bar.update(1)
        return counts, members, samples, converted_n, skipped, pos

    if not idx_path.exists():
        save(False)  # from the first shard on, files on disk are always explained by an index

    from tqdm import tqdm

    with tqdm(total=len(items), unit="img", desc=prefix, disable=not progress, dynamic_ncols=True) as bar:
        pos = 0
        for i, entry in enumerate(list(done)):
            path = out / entry["file"]
            if entry["first"] != pos or entry["file"] != f"{prefix}-{i:06d}.tar":
                raise ShardError(f"{idx_path} is inconsistent at shard {i}; pass --overwrite to start again")
            if path.is_file() and path.stat().st_size == entry["bytes"]:
                bar.update(entry["end"] - entry["first"])
            else:
                log(f"rewriting {entry['file']} (missing or not {entry['bytes']} bytes)")
                index["shards"][i] = write_range(i, entry["first"], entry["end"], bar)
                save(False)
            pos = entry["end"]
        if done:
            log(f"resumed after {len(done)} complete shard(s), {pos}/{len(items)} images")
        while pos < len(items):
            entry = write_range(len(index["shards"]), pos, None, bar)
            index["shards"].append(entry)
            pos = entry["end"]
            save(pos >= len(items))
    if not wrote and old.get("complete"):  # every shard was already complete: leave the index file as it is
        index.update(pattern=shard_pattern(prefix, len(index["shards"])),
                     totals=_totals(index["shards"], len(classes)), complete=True)
    elif not index["complete"]:
        save(True)
    extra = [p.name for p in out.iterdir() if name_re.fullmatch(p.name)
             and int(name_re.fullmatch(p.name).group(1)) >= len(index["shards"])]
    if extra:
        log(f"warning: {len(extra)} {prefix}-*.tar file(s) beyond the index are not part of this set: {sorted(extra)[:3]}")
    return index


def load_index(path) -> dict:
    """Read a shard index JSON (``PREFIX-index.json``)."""
    p = Path(path)
    try:
        index = json.loads(p.read_text())
    except FileNotFoundError:
        raise ShardError(f"shard index {p} does not exist") from None
    except (OSError, ValueError) as e:
        raise ShardError(f"cannot read shard index {p} ({e})") from None
    if not isinstance(index, dict) or "shards" not in index or "totals" not in index:
        raise ShardError(f"{p} is not a shard index (no 'shards'/'totals'); accepted: PREFIX-index.json from make_shards")
    return index
