"""Reduced data sets: label selection, the RD builder on real images with the real embedder, webdataset
shards, CIFAR-100 through torchvision (offline), and the `mote make-rd` error paths."""
from __future__ import annotations

import json
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from mobile_mote.cli import main
from mobile_mote.data.proxy_data import ProxyDataError, load_proxy_data
from mobile_mote.data.reduced_data import PRESETS, make_reduced_dataset, match_labels, select_labels

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "proxy_cifar100_10"
needs_shared = pytest.mark.skipif(not (SHARED / "train").is_dir(),
                                  reason=f"shared proxy data {SHARED} absent (fresh clone without ../shared)")
FOUR = ["sea", "tractor", "orange", "seal"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _copy_labels(dst: Path, labels, n: int, split="train", start=0) -> Path:
    for lab in labels:
        src = SHARED / split / lab
        (dst / lab).mkdir(parents=True, exist_ok=True)
        for f in sorted(src.iterdir())[start:start + n]:
            shutil.copy(f, dst / lab / f.name)
    return dst


# ---------------------------------------------------------------------------------------------- selection


def _blobs(seed=0, k=5, per=4, dim=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(k, dim))
    truth = np.repeat(np.arange(k), per)
    x = centres[truth] + rng.normal(scale=0.5, size=(k * per, dim))
    perm = rng.permutation(len(x))
    return x[perm], truth[perm]


@pytest.mark.parametrize("rule", ["paper", "official"])
def test_one_label_per_cluster_and_deterministic(rule):
    x, truth = _blobs()
    for seed in (0, 1, 7):
        chosen = select_labels(x, 5, seed=seed, rule=rule)
        assert chosen == sorted(chosen) and len(chosen) == 5
        assert sorted(truth[chosen]) == [0, 1, 2, 3, 4]  # one label from every true cluster
        assert select_labels(x, 5, seed=seed, rule=rule) == chosen
    chosen, assign = select_labels(x, 5, seed=3, rule=rule, return_clusters=True)
    assert len(set(assign[chosen])) == 5


def test_rules_follow_their_definitions():
    # clusters {0, 1, 2} and {10, 11, 13}; global mean 6.17 → paper starts at 10 (closest), then takes the
    # label of the other cluster farthest from it (0). official: per cluster the label farthest from the
    # other centre: 0 (from 11.33) and 13 (from 1).
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [13.0]])
    assert select_labels(x, 2, seed=0, rule="paper") == [0, 3]
    assert select_labels(x, 2, seed=0, rule="official") == [0, 5]


def test_selection_rejects_bad_input():
    x, _ = _blobs(k=2, per=2)
    with pytest.raises(ProxyDataError, match="accepted: an integer 1..4"):
        select_labels(x, 5)
    with pytest.raises(ProxyDataError, match="accepted: paper, official"):
        select_labels(x, 2, rule="nearest")
    with pytest.raises(ProxyDataError, match="distinct"):
        select_labels(np.zeros((4, 3)), 2)


def test_label_matching_is_loose_but_unique():
    avail = ["beaver", "mapletree", "willowtree", "sea"]
    assert match_labels(["maple_tree", "Willow Tree", "sea"], avail) == [1, 2, 3]
    with pytest.raises(ProxyDataError, match="not a label of the source"):
        match_labels(["oak_tree"], avail)


# ---------------------------------------------------------------------------------------------- embedder


def test_lite0_weights_classify_real_photos():
    """The key mapping is right: all tensors load strictly and real photos get sensible ImageNet classes."""
    import matplotlib
    import sklearn
    from PIL import Image

    from mobile_mote.data.embedders import get_embedder
    e = get_embedder("efficientnet_lite0", device="cpu")
    files = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
             Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
             Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg"]
    ims = [Image.open(f) for f in files]
    top5 = np.argsort(-e.logits(ims), axis=1)[:, :5]
    assert 652 in top5[0]  # military uniform
    assert 985 in top5[1]  # daisy
    assert {698, 442} & set(top5[2])  # palace / bell cote
    f = e.embed(ims)
    assert f.shape == (3, 1280) and f.dtype == np.float32 and np.isfinite(f).all()


# ---------------------------------------------------------------------------------------------- builder


@needs_shared
def test_imagefolder_rd_end_to_end_with_real_embedder(tmp_path):
    root = tmp_path / "src"
    _copy_labels(root / "train", FOUR, 20)
    _copy_labels(root / "test", FOUR, 5, split="test")
    out = tmp_path / "rd" / "c4_r2.npz"
    pd = make_reduced_dataset("imagefolder", r=2, seed=0, root=root, out=out, progress=False, device="cpu")
    assert len(pd.labels) == 2 and set(pd.labels) <= set(FOUR)
    back = load_proxy_data(out)
    assert back.labels == pd.labels
    assert back.x.shape == (40, 32, 32, 3) and back.x.dtype == np.uint8
    assert back.x_test.shape == (10, 32, 32, 3)
    assert np.bincount(back.y).tolist() == [20, 20] and np.bincount(back.y_test).tolist() == [5, 5]
    prov = json.loads(out.with_suffix(".json").read_text())
    assert back.provenance == prov
    assert prov["embedder"]["name"] == "efficientnet_lite0" and prov["rule"] == "paper"
    assert prov["r"] == 2 and prov["seed"] == 0 and prov["images_embedded"] == 80
    assert prov["counts"]["train"] == {lab: 20 for lab in pd.labels}
    clusters = prov["kmeans"]["clusters"]
    assert sorted(sum(clusters, [])) == sorted(FOUR)
    assert sorted(sum(lab in c for lab in pd.labels) for c in clusters) == [1, 1]  # one label per cluster
    assert "torch" in prov["versions"] and prov["date"]
    # the image of one chosen label, read back, equals the source file at 32×32
    from PIL import Image
    first = sorted((root / "train" / pd.labels[0]).iterdir())[0]
    assert np.array_equal(back.x[0], np.asarray(Image.open(first).convert("RGB")))


@needs_shared
def test_preset_matches_folder_spellings_without_embedding(tmp_path):
    root = _copy_labels(tmp_path / "src", sorted(p.name for p in (SHARED / "train").iterdir()), 3)
    pd = make_reduced_dataset(root, labels="cifar100_r10", size=16, out=tmp_path / "p.npz", progress=False)
    assert len(pd.labels) == 10 and "mapletree" in pd.labels and pd.x.shape == (30, 16, 16, 3)
    prov = load_proxy_data(tmp_path / "p.npz").provenance
    assert prov["rule"] == "preset:cifar100_r10" and prov["embedder"] is None and prov["r"] == 10


@needs_shared
def test_webdataset_shards(tmp_path):
    import webdataset as wds
    labs = ["sea", "orange", "tractor"]
    classes = {"sea": 71, "orange": 58, "tractor": 89}  # CIFAR-100 fine indices as class ids
    shards = tmp_path / "shards"
    shards.mkdir()
    for split, name, n in (("train", "toy-train-000000.tar", 6), ("test", "toy-val-000000.tar", 2)):
        with wds.TarWriter(str(shards / name)) as w:
            for lab in labs:
                for f in sorted((SHARED / split / lab).iterdir())[:n]:
                    w.write({"__key__": f"{lab}_{f.stem}", "jpg": f.read_bytes(), "cls": classes[lab]})
    names = tmp_path / "names.json"
    names.write_text(json.dumps({str(v): k for k, v in classes.items()}))
    # explicit labels by name: no embedding, both splits, output in class-index order
    pd = make_reduced_dataset("wds", root=shards, labels="tractor,sea", label_names=names,
                              out=tmp_path / "w.npz", progress=False)
    assert pd.labels == ["sea", "tractor"] and len(pd) == 12 and len(pd.y_test) == 4
    # with the real embedder, r=2 over the three classes seen in the training shard
    pd2 = make_reduced_dataset("wds", r=2, root=shards / "toy-train-000000.tar", label_names=names,
                               embed_per_label=4, out=tmp_path / "w2.npz", progress=False, device="cpu")
    back = load_proxy_data(tmp_path / "w2.npz")
    assert len(back.labels) == 2 and set(back.labels) <= set(labs) and len(back) == 12 and back.x_test is None
    assert back.provenance["images_embedded"] == 12 and back.provenance["source"]["kind"] == "wds"


def test_cifar100_from_a_local_copy(tmp_path, monkeypatch):
    """The torchvision path (a stand-in dataset object: no 160 MB download in tests)."""
    import torchvision
    names = sorted(set(PRESETS["cifar100_r10"]) | {f"label_{i:02d}" for i in range(90)})
    rng = np.random.default_rng(0)

    class FakeCifar100:
        def __init__(self, root, train=True, download=False):
            n = 300 if train else 100
            self.data = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
            self.targets = (np.arange(n) % 100).tolist()
            self.classes = names

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", FakeCifar100)
    pd = make_reduced_dataset("cifar100", root=tmp_path / "cifar-100-python", labels="cifar100_r10", size=16,
                              progress=False)
    assert sorted(pd.labels) == sorted(PRESETS["cifar100_r10"])
    assert pd.x.shape == (30, 16, 16, 3) and pd.x_test.shape == (10, 16, 16, 3)
    assert np.bincount(pd.y).tolist() == [3] * 10


# ---------------------------------------------------------------------------------------------- CLI errors


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


def test_cli_missing_root(tmp_path, capsys):
    assert main(["make-rd", "--source", "imagefolder", "--root", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o.npz")]) == 2
    msg = _err(capsys)
    assert "does not exist" in msg and "accepted" in msg
    assert not (tmp_path / "o.npz").exists()


def test_cli_cifar100_offline(tmp_path, capsys, monkeypatch):
    import torchvision.datasets.cifar as cifar

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(cifar, "download_and_extract_archive", offline)
    assert main(["make-rd", "--source", "cifar100", "--root", str(tmp_path / "c100"), "--preset", "cifar100_r10",
                 "--out", str(tmp_path / "o.npz"), "--quiet"]) == 2
    msg = _err(capsys)
    assert "could not be downloaded" in msg and "--source imagefolder" in msg


def test_cli_vgg16_without_local_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    (tmp_path / "src" / "a").mkdir(parents=True)
    assert main(["make-rd", "--source", "imagefolder", "--root", str(tmp_path / "src"), "--r", "1",
                 "--embedder", "vgg16", "--out", str(tmp_path / "o.npz"), "--quiet"]) == 2
    msg = _err(capsys)
    assert "vgg16 weights not found" in msg and "efficientnet_lite0" in msg


@needs_shared
def test_cli_refuses_to_overwrite_then_overwrites(tmp_path, capsys):
    root = _copy_labels(tmp_path / "src", ["sea", "seal", "pear"], 2)
    out = tmp_path / "o.npz"
    out.write_bytes(b"precious")
    args = ["make-rd", "--source", "imagefolder", "--root", str(root), "--labels", "sea,pear", "--out", str(out),
            "--quiet"]
    assert main(args) == 2
    assert "already exists" in _err(capsys) and out.read_bytes() == b"precious"
    assert not out.with_suffix(".json").exists()
    assert main(args + ["--overwrite"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["labels"] == ["pear", "sea"] and summary["train"] == 4
    assert load_proxy_data(out).labels == ["pear", "sea"]


@needs_shared
def test_cli_bad_labels_and_r(tmp_path, capsys):
    root = _copy_labels(tmp_path / "src", ["sea", "seal"], 1)
    base = ["make-rd", "--source", "imagefolder", "--root", str(root), "--out", str(tmp_path / "o.npz"), "--quiet"]
    assert main(base + ["--labels", "sea,oak_tree"]) == 2
    assert "'oak_tree' is not a label" in _err(capsys)
    assert main(base + ["--labels", "sea", "--r", "3"]) == 2
    assert "disagrees" in _err(capsys)
    assert main(base + ["--r", "3"]) == 2
    assert "exceeds the 2 labels" in _err(capsys)
