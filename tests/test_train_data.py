"""Shards (train.shards, tools/make_shards.py) and the training/validation pipelines (train.data).

A small real ImageFolder (3 labels x 12 images of ../shared/data/proxy_cifar100_10, one stored as PNG)
is written as several tiny shards; the loaders read them on CPU with real DataLoader workers.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "proxy_cifar100_10" / "train"
LABELS = ("beaver", "orange", "tractor")
PER_LABEL = 12
SHARD_BYTES = 20_000  # ~6 tiny images per shard -> 6-7 shards


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """root/<label>/*.jpg: 3 labels x 12 real images; one of them converted to PNG."""
    if not all((SOURCE / lab).is_dir() for lab in LABELS):
        pytest.skip(f"proxy CIFAR-100 images not found under {SOURCE} (../shared/data is absent on a fresh clone)")
    from PIL import Image

    root = tmp_path_factory.mktemp("imagefolder") / "train"
    for lab in LABELS:
        (root / lab).mkdir(parents=True)
        for f in sorted((SOURCE / lab).glob("*.jpg"))[:PER_LABEL]:
            shutil.copyfile(f, root / lab / f.name)
    first = sorted((root / "orange").glob("*.jpg"))[0]
    with Image.open(first) as im:
        im.save(first.with_suffix(".png"))
    first.unlink()
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    from mobile_mote.train.shards import write_shards

    out = tmp_path_factory.mktemp("shards")
    index = write_shards(folder, out, "toy", max_bytes=SHARD_BYTES, seed=0, progress=False)
    return out, index


def _all_keys(out: Path, index: dict) -> list[str]:
    keys = []
    for e in index["shards"]:
        with tarfile.open(out / e["file"]) as t:
            keys += [m.name.split(".")[0] for m in t.getmembers() if m.name.endswith(".jpg")]
    return keys


# ------------------------------------------------------------------------------------------ shards

def test_index_totals_counts_and_contents(folder, shards):
    out, index = shards
    n = len(LABELS) * PER_LABEL
    assert index["complete"] and index["classes"] == sorted(LABELS)
    assert index["class_to_idx"] == {lab: i for i, lab in enumerate(sorted(LABELS))}
    t = index["totals"]
    assert t["samples"] == n and t["counts"] == [PER_LABEL] * len(LABELS) and t["converted"] == 1
    assert t["shards"] == len(index["shards"]) >= 4 and index["pattern"] == f"toy-{{000000..{t['shards'] - 1:06d}}}.tar"
    assert sum(e["bytes"] for e in index["shards"]) == t["bytes"]
    assert json.loads((out / "toy-index.json").read_text())["totals"] == t
    originals = {p.stem: p.read_bytes() for p in folder.rglob("*.*")}
    for e in index["shards"]:
        path = out / e["file"]
        assert path.stat().st_size == e["bytes"] <= SHARD_BYTES
        assert sum(e["counts"]) == e["samples"] > 0
        counts = [0] * len(LABELS)
        with tarfile.open(path) as tar:
            names = tar.getnames()
            assert len(names) == 2 * e["samples"]
            for name in names[::2]:
                key = name.split(".")[0]
                assert names[names.index(name) + 1] == f"{key}.jpg" and name == f"{key}.cls"
                cls = int(tar.extractfile(name).read().decode("ascii"))
                counts[cls] += 1
                jpg = tar.extractfile(f"{key}.jpg").read()
                assert jpg[:3] == b"\xff\xd8\xff"
                if folder.joinpath(sorted(LABELS)[cls], f"{key}.jpg").exists():
                    assert jpg == originals[key]  # stored as is, not re-encoded
        assert counts == e["counts"]
    assert not list(out.glob("*.tmp-*"))


def test_shuffle_is_deterministic_per_seed(folder, shards, tmp_path):
    from mobile_mote.train.shards import write_shards

    out, index = shards
    again = write_shards(folder, tmp_path / "same", "toy", max_bytes=SHARD_BYTES, seed=0, progress=False)
    assert [e["file"] for e in again["shards"]] == [e["file"] for e in index["shards"]]
    for e in index["shards"]:
        assert _sha(out / e["file"]) == _sha(tmp_path / "same" / e["file"])  # byte for byte
    other = write_shards(folder, tmp_path / "seed1", "toy", max_bytes=SHARD_BYTES, seed=1, progress=False)
    k0, k1 = _all_keys(out, index), _all_keys(tmp_path / "seed1", other)
    assert sorted(k0) == sorted(k1) and k0 != k1
    by_count = write_shards(folder, tmp_path / "n5", "toy", max_samples=5, seed=0, progress=False)
    assert [e["samples"] for e in by_count["shards"]] == [5] * 7 + [1]
    assert _all_keys(tmp_path / "n5", by_count) == k0  # same order, other boundaries


def test_interrupted_run_leaves_only_complete_shards_and_resumes(folder, shards, tmp_path, monkeypatch):
    import mobile_mote.train.shards as S

    ref_out, ref = shards
    out = tmp_path / "out"
    real = S._load_image_bytes
    calls = {"n": 0}

    def dies_at_20(path):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt  # a kill in the middle of a shard
        return real(path)

    monkeypatch.setattr(S, "_load_image_bytes", dies_at_20)
    with pytest.raises(KeyboardInterrupt):
        S.write_shards(folder, out, "toy", max_bytes=SHARD_BYTES, seed=0, progress=False)
    partial = json.loads((out / "toy-index.json").read_text())
    assert not partial["complete"] and 1 <= len(partial["shards"]) < len(ref["shards"])
    on_disk = sorted(p.name for p in out.glob("toy-*.tar"))
    assert on_disk == [e["file"] for e in partial["shards"]]  # nothing truncated under a final name
    assert not list(out.glob("*.tmp-*"))
    kept = {e["file"]: (out / e["file"]).stat().st_mtime_ns for e in partial["shards"]}

    # a hard kill leaves its tmp file behind: it never counts and is cleared
    (out / f"toy-{len(partial['shards']):06d}.tar.tmp-999999").write_bytes(b"half a shard")
    monkeypatch.setattr(S, "_load_image_bytes", real)
    done = S.write_shards(folder, out, "toy", max_bytes=SHARD_BYTES, seed=0, progress=False)
    assert done["complete"] and done["totals"] == ref["totals"]
    assert {f: (out / f).stat().st_mtime_ns for f in kept} == kept  # complete shards were skipped
    for e in ref["shards"]:
        assert _sha(out / e["file"]) == _sha(ref_out / e["file"])  # same bytes as an uninterrupted run
    assert not list(out.glob("*.tmp-*"))

    # a listed shard that lost bytes is rewritten from its recorded range
    victim = out / done["shards"][1]["file"]
    victim.write_bytes(victim.read_bytes()[:1000])
    again = S.write_shards(folder, out, "toy", max_bytes=SHARD_BYTES, seed=0, progress=False)
    assert _sha(victim) == _sha(ref_out / victim.name)
    assert again["complete"] and json.loads((out / "toy-index.json").read_text())["complete"]

    # other settings on the same prefix: refused, unless --overwrite
    with pytest.raises(S.ShardError, match="other input or settings"):
        S.write_shards(folder, out, "toy", max_bytes=SHARD_BYTES, seed=1, progress=False)
    assert S.write_shards(folder, out, "toy", max_samples=9, seed=1, overwrite=True, progress=False)["totals"]["shards"] == 4
    assert len(list(out.glob("toy-*.tar"))) == 4


def test_make_shards_cli(folder, tmp_path, capsys, load_tool):
    tool = load_tool("make_shards")
    assert tool.main([str(folder), "--out", str(tmp_path / "s"), "--prefix", "cli", "--shard-size", "20KB",
                      "--quiet"]) == 0
    assert "36 images of 3 classes" in capsys.readouterr().out
    assert json.loads((tmp_path / "s" / "cli-index.json").read_text())["totals"]["samples"] == 36

    empty = tmp_path / "empty_class"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    shutil.copyfile(next(folder.rglob("*.jpg")), empty / "a" / "x.jpg")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = {
        "does not exist": [str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--prefix", "p"],
        "has no images": [str(empty), "--out", str(tmp_path / "o"), "--prefix", "p"],
        "not a folder": [str(folder), "--out", str(a_file), "--prefix", "p"],
        "cannot read shard size": [str(folder), "--out", str(tmp_path / "o"), "--prefix", "p", "--shard-size", "lots"],
    }
    for what, argv in cases.items():
        assert tool.main(argv + ["--quiet"]) == 2, what
        err = capsys.readouterr().err.strip()
        assert what in err and err.startswith("make_shards: error:") and "\n" not in err
    with pytest.raises(SystemExit) as e:  # argparse's own errors: exit 2 as well
        tool.main([str(folder)])
    assert e.value.code == 2


# ---------------------------------------------------------------------------------------- pipeline

def _corrupt_shard(src: Path, dst: Path) -> int:
    """dst = two corrupt samples (garbage, truncated JPEG) + every sample of src; returns good count."""
    with tarfile.open(src) as t:
        members = [(m.name, t.extractfile(m).read()) for m in t.getmembers()]
    jpg = next(d for n, d in members if n.endswith(".jpg"))
    bad = [("garbage.cls", b"0"), ("garbage.jpg", b"this is not a jpeg"),
           ("truncated.cls", b"1"), ("truncated.jpg", jpg[: len(jpg) // 2])]
    with tarfile.open(dst, "w") as t:
        for name, data in bad + members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return len(members) // 2


def test_train_loader_resamples_full_batches(shards):
    from mobile_mote.train.data import train_loader

    out, index = shards
    idx = out / "toy-index.json"
    ld = train_loader(idx, 8, {"img_size": 32}, epoch_size=160, seed=0, num_workers=2, shuffle_buffer=20,
                      shuffle_initial=5)
    assert len(ld) == 160 // 8  # more than one pass over the 36 images
    batches = list(ld)
    assert len(batches) == 20 and ld.seen == 160 and ld.skipped == 0
    for x, y in batches:
        assert x.shape == (8, 3, 32, 32) and y.shape == (8,) and 0 <= int(y.min()) and int(y.max()) < 3

    def labels(**kw):
        ld = train_loader(idx, 6, lambda im: im.size[0], epoch_size=60, seed=kw.pop("seed", 0), num_workers=0,
                          shuffle_buffer=10, **kw)
        return [tuple(y.tolist()) for _, y in ld], ld

    a, la = labels(rank=0, world_size=2)
    b, _ = labels(rank=0, world_size=2)
    c, _ = labels(rank=1, world_size=2)
    d, _ = labels(rank=0, world_size=2, seed=1)
    assert len(a) == 60 // (6 * 2) and a == b and a != c and a != d  # per (seed, rank) streams
    second_epoch = [tuple(y.tolist()) for _, y in la]
    assert second_epoch != a and la.epoch == 2


def test_corrupt_samples_are_skipped_and_counted(shards, tmp_path):
    from mobile_mote.train.data import ValCountError, check_val_total, train_loader, val_loader

    out, index = shards
    bad = tmp_path / "bad-000000.tar"
    good = _corrupt_shard(out / index["shards"][0]["file"], bad)

    ld = train_loader([str(bad)], 4, {"img_size": 32, "aa": None, "reprob": 0}, epoch_size=4 * good, seed=0,
                      num_workers=2, shuffle_buffer=1)
    n = sum(x.shape[0] for x, _ in ld)
    assert n == ld.seen == 4 * good // 4 * 4 and ld.skipped >= 2 and ld.skipped_total == ld.skipped

    v = val_loader([str(bad)], 4, {"img_size": 32}, rank=0, world_size=1, num_workers=0)
    assert sum(len(y) for _, y in v) == v.seen == good and v.skipped == 2
    with pytest.raises(ValCountError, match="missing 2"):
        check_val_total([v.seen], good + 2)


def test_validation_sees_every_image_once_over_ranks_and_workers(shards):
    from mobile_mote.train.data import ValCountError, check_val_total, expected_val_total, rank_shards, val_loader

    out, index = shards
    idx = out / "toy-index.json"
    everything = _all_keys(out, index)
    keys, counts = [], []
    for rank in range(2):
        v = val_loader(idx, 5, {"img_size": 32}, rank=rank, world_size=2, num_workers=2, return_keys=True)
        got = []
        nb = 0
        for x, y, k in v:
            assert x.shape[1:] == (3, 32, 32) and len(k) == len(y) == x.shape[0] <= 5
            got += k
            nb += 1
        assert nb == len(v) and v.seen == len(got) == v.expected and v.skipped == 0
        mine = {Path(u).name for u in rank_shards([e["file"] for e in index["shards"]], rank, 2)}
        assert mine == {e["file"] for i, e in enumerate(index["shards"]) if i % 2 == rank}
        keys += got
        counts.append(v.seen)
    assert len(keys) == len(set(keys)) == len(everything) and set(keys) == set(everything)
    assert check_val_total(counts, idx) == expected_val_total(idx) == 36
    with pytest.raises(ValCountError, match="extra 1"):
        check_val_total([counts[0] + 1, counts[1]], 36)
    with pytest.raises(ValCountError):
        check_val_total(counts[:1], idx)


def test_imagefolder_loaders(folder, tmp_path):
    from mobile_mote.train.data import check_val_total, imagefolder_loaders

    root = tmp_path / "if"
    shutil.copytree(folder, root / "train")
    shutil.copytree(folder, root / "val")
    (root / "val" / "beaver" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    keys, counts, skipped = [], [], 0
    for rank in range(2):
        tr, va = imagefolder_loaders(root, 4, {"img_size": 32}, {"img_size": 32}, rank=rank, world_size=2,
                                     num_workers=0, return_keys=True)
        for x, y, k in va:
            keys += k
        counts.append(va.seen)
        skipped += va.skipped
    assert skipped == 1 and len(keys) == len(set(keys)) == 36
    assert check_val_total(counts, 36) == 36
    batches = list(tr)
    assert len(batches) == len(tr) == (36 // 2) // 4 and all(x.shape == (4, 3, 32, 32) for x, _ in batches)


def test_transforms_mixup_and_criterion():
    import torch
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    from PIL import Image

    from mobile_mote.train.data import make_mixup, make_transform, train_criterion

    img = Image.new("RGB", (50, 40), (120, 30, 200))
    tf = make_transform({"img_size": 36, "aa": "rand-m9-mstd0.5", "reprob": 0.2, "lr": 0.1}, is_training=True)
    names = [type(t).__name__ for t in tf.transforms]
    assert "RandAugment" in names and "RandomErasing" in names and tf(img).shape == (3, 36, 36)
    ev = make_transform({"img_size": 36, "crop_pct": 0.875, "interpolation": "bicubic"}, is_training=False)
    assert ev(img).shape == (3, 36, 36) and "RandAugment" not in [type(t).__name__ for t in ev.transforms]

    from mobile_mote import train

    recipe = train.load_recipe("mobilenetv3_large_100")  # timm train.py names: aa, reprob, remode, img_size
    names = [type(t).__name__ for t in make_transform(recipe, is_training=True).transforms]
    assert "RandAugment" in names and "RandomErasing" in names
    assert make_mixup(recipe, 1000) is None  # mixup 0, cutmix 0 in that recipe

    assert make_mixup({"smoothing": 0.1}, 10) is None
    assert isinstance(train_criterion({"smoothing": 0.1}, None), LabelSmoothingCrossEntropy)
    m = make_mixup({"mixup": 0.2, "cutmix": 1.0, "smoothing": 0.1}, 10)
    assert isinstance(m, Mixup) and isinstance(train_criterion({}, m), SoftTargetCrossEntropy)
    x, y = m(torch.randn(6, 3, 8, 8), torch.arange(6))
    assert y.shape == (6, 10) and torch.allclose(y.sum(1), torch.ones(6))
