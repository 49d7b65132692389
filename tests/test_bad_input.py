"""Bad input never ends in a traceback (issue #14): every case exits 2 with exactly one stderr line
``mote <cmd>: error: ...`` and leaves a pre-existing runs folder and every input file as they were.

Nothing here trains: the cases use ``--estimator macs``/``params`` or ``--profile tiny`` and fail before
any candidate is scored. Cases that need ``../shared/data`` take the ``shared_data`` fixture (a skip
when it is absent). Also here: the device and thread helpers (``mobile_mote.devices``) as units.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mobile_mote.cli import main

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
MBV2_BAD_KERNEL = "k4e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6"
MBV3_BAD_EXP = ("k3e40,k3e3|k5e3se,k5e3se,k5e3se|k3e6,k3e2.5,k3e2.3,k3e2.3|k3e6se,k3e6se|"
                "k5e6se,k5e6se,k5e6se")
TINY = ["--profile", "tiny", "--quiet"]
SEARCH = ["search", "--space", "nb201", "--estimator", "params", *TINY]
PARETO = ["pareto", "--space", "nb201", "--objectives", "score,macs", "--estimator", "params", *TINY]
SCORE = ["score", "--space", "nb201", "--arch", CELL, "--estimator", "params", "--quiet"]
SYNFLOW = ["score", "--space", "nb201", "--arch", CELL, "--estimator", "synflow", "--quiet"]


# -- the inputs (made once) and the check --------------------------------------------------------------
def _npz(path: Path, **arrays) -> None:
    with open(path, "wb") as f:  # np.savez on an open file keeps the name as given
        np.savez(f, **arrays)


def _x(n: int) -> np.ndarray:
    return np.zeros((n, 32, 32, 3), np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    labels = np.asarray(["a", "b"])
    _npz(d / "empty.npz", x=_x(0), y=np.zeros(0, np.int64), labels=labels)
    _npz(d / "prov.npz", x=_x(4), y=np.array([0, 1, 0, 1]), labels=labels)
    (d / "prov.json").write_text('{"rule": "paper", ')  # cut short
    (d / "text.npz").write_text("these are not images\n")
    with open(d / "array.npz", "wb") as f:
        np.save(f, _x(2))  # a .npy renamed .npz
    _npz(d / "xy.npz", x=_x(4), y=np.array([0, 1, 0]), labels=labels)
    _npz(d / "range.npz", x=_x(2), y=np.array([0, 5]), labels=labels)
    _npz(d / "nolabels.npz", x=_x(2), y=np.array([0, 0]), labels=np.asarray([], dtype=str))
    _npz(d / "nox.npz", images=_x(2), y=np.array([0, 1]), labels=labels)
    _npz(d / "float.npz", x=np.zeros((2, 32, 32, 3), np.float32), y=np.array([0, 1]), labels=labels)
    _npz(d / "floaty.npz", x=_x(2), y=np.array([0.5, 1.0]), labels=labels)
    _npz(d / "half.npz", x=_x(2), y=np.array([0, 1]), labels=labels, x_test=_x(2))
    _npz(d / "testsize.npz", x=_x(2), y=np.array([0, 1]), labels=labels,
         x_test=np.zeros((2, 16, 16, 3), np.uint8), y_test=np.array([0, 1]))
    with open(d / "objects.npz", "wb") as f:
        np.savez(f, x=np.array([None, 1], dtype=object), y=np.array([0, 1]), labels=labels)
    (d / "emptydir").mkdir()
    (d / "images" / "train" / "cat").mkdir(parents=True)
    (d / "noimages" / "cat").mkdir(parents=True)
    (d / "noimages" / "cat" / "readme.txt").write_text("no images here")
    (d / "corrupt" / "cat").mkdir(parents=True)
    (d / "corrupt" / "cat" / "0.png").write_bytes(b"not a png")
    (d / "data.txt").write_text("x")
    (d / "cells_empty.txt").write_text("# nothing\n\n")
    (d / "cells_bad.json").write_text('["a", ')
    (d / "lut_bad.json").write_text("{not json")
    (d / "recipe_bad.yaml").write_text("epochs: [1, 2\n")
    (d / "winner" / "lots").mkdir(parents=True)
    (d / "winner" / "lots" / "winner.json").write_text(
        json.dumps({"space": "mbv2", "arch": "mobilenetv2_100", "macs": "lots"}))
    (d / "cache").mkdir()
    (d / "cache" / "cifar100_r10.npz").write_text("a damaged download\n")
    _npz(d / "onelabel.npz", x=_x(2), y=np.array([0, 0]), labels=np.asarray(["a"]))
    _npz(d / "oneused.npz", x=_x(2), y=np.array([1, 1]), labels=labels)  # two names, images of one
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x01" * 64)
    (d / "header.csv").write_text("arch,synflow,snip\n")
    (d / "table.csv").write_text("arch,synflow\na,1\nb,2\n")
    import torch
    torch.save({"state_dict": {"w": _Unsafe()}}, d / "unsafe.pt")
    _npz(d / "good.npz", x=_x(4), y=np.array([0, 1, 0, 1]), labels=labels)
    return d


class _Unsafe:
    """Pickled, it asks the loader to call a function: what a weights-only load must refuse."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def tables(shared_data, tmp_path_factory) -> Path:
    """Damaged copies of NB201's latency_ms.csv (the benchmark's index order comes with --benchmark)."""
    src = shared_data / "nb201" / "latency_ms.csv"
    if not src.is_file():
        pytest.skip(f"NB201 latency table not found at {src}")
    d = tmp_path_factory.mktemp("tables")
    lines = src.read_text().splitlines()
    col = lines[0].split(",").index("pixel2")

    def edit(name, row, i, value, base=lines):
        cells = base[row].split(",")
        cells[i] = value
        (d / name).write_text("\n".join(base[:row] + [",".join(cells)] + base[row + 1:]) + "\n")

    edit("na.csv", 6, col, "n/a")
    edit("blank.csv", 6, col, "")
    edit("negative.csv", 6, col, "-3")
    edit("index.csv", 6, 0, "six")
    edit("outside.csv", 6, 0, "99999")
    (d / "truncated.csv").write_text("\n".join(lines[:1001]) + "\n")
    (d / "cut.csv").write_text("\n".join(lines[:-1] + [lines[-1][:12]]) + "\n")  # the last row cut mid-line
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x01" * 64)
    return d


def _snapshot(*roots: Path) -> dict:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The current folder, holding a finished-looking run in runs/old; no default data can be reached."""
    old = tmp_path / "runs" / "old"
    old.mkdir(parents=True)
    (old / "winner.json").write_text(json.dumps({"space": "nb201", "arch": CELL, "macs": 1000}))
    (old / "notes.txt").write_text("keep me\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOTE_CACHE", str(tmp_path / "no_cache"))  # would show up in the snapshot if made
    return tmp_path


def _fails(capsys, argv: list[str], *roots: Path) -> str:
    before = _snapshot(*roots)
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert rc == 2, (rc, err[-2000:])
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith(f"mote {argv[0]}: error: "), lines[0]
    assert _snapshot(*roots) == before, "a bad input changed the files around it"
    return lines[0]


def _no_cuda() -> bool:
    from mobile_mote.devices import resolve_device
    from mobile_mote.errors import InputError
    try:
        resolve_device("cuda")
    except InputError:
        return True
    return False


# -- the cases ---------------------------------------------------------------------------------------------
# (argv with {in} for the inputs folder, needle in the error line)
CASES = {
    # devices, checked before any run state exists
    "score-device-banana": (SCORE + ["--device", "banana"], "device 'banana'"),
    "search-device-banana": (SEARCH + ["--device", "banana"], "device 'banana'"),
    "pareto-device-banana": (PARETO + ["--device", "banana"], "device 'banana'"),
    "modnas-device-banana": (["modnas", "--latency-table", "{in}/none.csv", "--device", "banana"], "device 'banana'"),
    "latency-device-banana": (["latency", "--space", "mbv2", "--arch", "mobilenetv2_100", "--device", "banana"],
                              "device 'banana'"),
    "latency-lut-device-banana": (["latency-lut", "--space", "mbv2", "--out", "lut.json", "--device", "banana"],
                                  "device 'banana'"),
    "make-rd-device-banana": (["make-rd", "--source", "imagefolder", "--root", "{in}/emptydir", "--out", "rd.npz",
                               "--device", "banana"], "device 'banana'"),
    "score-device-cuda99": (SCORE + ["--device", "cuda:99"], "device 'cuda:99'"),
    "search-device-cuda-x": (SEARCH + ["--device", "cuda:x"], "not a device name"),
    # threads
    "score-threads-0": (SCORE + ["--threads", "0"], "--threads 0"),
    "score-threads-abc": (SCORE + ["--threads", "abc"], "--threads abc"),
    "search-threads-0": (SEARCH + ["--threads", "0"], "--threads 0"),
    "pareto-threads--1": (PARETO + ["--threads=-1"], "--threads -1"),
    "modnas-threads-0": (["modnas", "--latency-table", "{in}/none.csv", "--threads", "0"], "--threads 0"),
    "retrain-threads-0": (["retrain", "--recipe", "mote_nas_200ep", "--model", "mobilenetv2_100",
                           "--imagefolder", "{in}/emptydir", "--output", "out", "--threads", "0"], "--threads 0"),
    "latency-threads-0": (["latency", "--space", "mbv2", "--arch", "mobilenetv2_100", "--device", "cpu",
                           "--threads", "0"], "--threads 0"),
    # several candidates per device, fusion
    "search-workers-0": (SEARCH + ["--workers-per-device", "0"], "--workers-per-device 0"),
    "score-workers-proxy": (SYNFLOW + ["--workers-per-device", "2"], "one candidate at a time"),
    "pareto-workers-params": (PARETO + ["--workers-per-device", "3"], "one candidate at a time"),
    "search-mote-z-components": (["search", "--space", "nb201", "--estimator", "mote-z", "--set", "components=tse",
                                  *TINY], "components 'tse'"),
    "fuse-missing-table": (["fuse", "--table", "{in}/none.csv", "--out", "fused.csv"], "does not exist"),
    # proxy data
    "proxy-no-images": (SYNFLOW + ["--proxy-data", "{in}/empty.npz"], "holds no images"),
    "proxy-provenance-not-json": (SYNFLOW + ["--proxy-data", "{in}/prov.npz"], "prov.json"),
    "proxy-text-as-npz": (SYNFLOW + ["--proxy-data", "{in}/text.npz"], "is not a .npz archive"),
    "proxy-npy-as-npz": (SYNFLOW + ["--proxy-data", "{in}/array.npz"], "is not a .npz archive"),
    "proxy-x-y-mismatch": (SYNFLOW + ["--proxy-data", "{in}/xy.npz"], "4 images but y 3 labels"),
    "proxy-y-out-of-range": (SYNFLOW + ["--proxy-data", "{in}/range.npz"], "0..1"),
    "proxy-no-labels": (SYNFLOW + ["--proxy-data", "{in}/nolabels.npz"], "labels"),
    "proxy-missing-x": (SYNFLOW + ["--proxy-data", "{in}/nox.npz"], "lacks x"),
    "proxy-float-images": (SYNFLOW + ["--proxy-data", "{in}/float.npz"], "uint8"),
    "proxy-float-labels": (SYNFLOW + ["--proxy-data", "{in}/floaty.npz"], "whole-number"),
    "proxy-test-half": (SYNFLOW + ["--proxy-data", "{in}/half.npz"], "y_test"),
    "proxy-test-size": (SYNFLOW + ["--proxy-data", "{in}/testsize.npz"], "same image size"),
    "proxy-objects": (SYNFLOW + ["--proxy-data", "{in}/objects.npz"], "Python objects"),
    "proxy-empty-folder": (SYNFLOW + ["--proxy-data", "{in}/emptydir"], "no label folders"),
    "proxy-folder-no-images": (SYNFLOW + ["--proxy-data", "{in}/noimages"], "holds no images"),
    "proxy-corrupt-image": (SYNFLOW + ["--proxy-data", "{in}/corrupt"], "cannot read image"),
    "proxy-not-npz-file": (SYNFLOW + ["--proxy-data", "{in}/data.txt"], ".npz"),
    "proxy-missing": (SYNFLOW + ["--proxy-data", "{in}/nowhere.npz"], "does not exist"),
    "search-proxy-missing": (["search", "--space", "nb201", "--profile", "tiny", "--quiet", "--proxy-data",
                              "{in}/nowhere"], "does not exist"),
    # unknown names
    "flops-unknown-space": (["flops", "--space", "resnet", "--arch", "x"], "unknown search space"),
    "score-unknown-space": (["score", "--space", "resnet", "--arch", "x", "--estimator", "params"], "resnet"),
    "search-unknown-space": (["search", "--space", "resnet", "--estimator", "params"], "resnet"),
    "pareto-unknown-space": (["pareto", "--space", "resnet", "--estimator", "params"], "resnet"),
    "latency-unknown-space": (["latency", "--space", "resnet", "--arch", "x"], "resnet"),
    "score-unknown-estimator": (["score", "--space", "nb201", "--arch", CELL, "--estimator", "banana"], "banana"),
    "search-unknown-estimator": (["search", "--space", "nb201", "--estimator", "banana"], "banana"),
    "pareto-unknown-estimator": (["pareto", "--space", "nb201", "--objectives", "score,macs", "--estimator",
                                  "banana"], "banana"),
    "score-unknown-profile": (["score", "--space", "nb201", "--arch", CELL, "--profile", "huge"], "huge"),
    "search-unknown-profile": (["search", "--space", "nb201", "--estimator", "params", "--profile", "huge"], "huge"),
    "pareto-unknown-profile": (["pareto", "--space", "nb201", "--estimator", "params", "--profile", "huge"], "huge"),
    "pareto-unknown-objective": (["pareto", "--space", "nb201", "--objectives", "score,banana", "--estimator",
                                  "params", *TINY], "banana"),
    "pareto-one-objective": (["pareto", "--space", "nb201", "--objectives", "score", "--estimator", "params",
                              *TINY], "objective"),
    # malformed architectures, each space
    "score-arch-nb201": (["score", "--space", "nb201", "--arch", "|nor_conv_3x3~0|+|none~0|", "--estimator",
                          "params"], "not a cell"),
    "score-arch-nb201-op": (["score", "--space", "nb201", "--arch",
                             "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--estimator", "params"],
                            "unknown operation"),
    "score-arch-mbv2": (["score", "--space", "mbv2", "--arch", "garbage", "--estimator", "params"], "stage"),
    "score-arch-mbv2-kernel": (["score", "--space", "mbv2", "--arch", MBV2_BAD_KERNEL, "--estimator", "macs"],
                               "accepted kernels 3, 5, 7"),
    "score-arch-mbv3-expansion": (["score", "--space", "mbv3", "--arch", MBV3_BAD_EXP, "--estimator", "macs"],
                                  "accepted expansions 2, 4, 6"),
    "score-arch-macro": (["score", "--space", "macro", "--arch", "2221222", "--estimator", "params"], "macro"),
    "score-arch-macro-digit": (["score", "--space", "macro", "--arch", "22212229", "--estimator", "params"], "9"),
    "latency-arch-mbv2": (["latency", "--space", "mbv2", "--arch", "garbage"], "stage"),
    "flops-arch-mbv3": (["flops", "--space", "mbv3", "--arch", MBV3_BAD_EXP], "expansion 40"),
    "score-archs-missing": (["score", "--space", "nb201", "--archs", "{in}/none.txt", "--estimator", "params"],
                            "does not exist"),
    "score-archs-empty": (["score", "--space", "nb201", "--archs", "{in}/cells_empty.txt", "--estimator",
                           "params"], "lists no architectures"),
    "score-archs-bad-json": (["score", "--space", "nb201", "--archs", "{in}/cells_bad.json", "--estimator",
                              "params"], "JSON"),
    "score-two-sources": (["score", "--space", "nb201", "--arch", CELL, "--sample", "3", "--estimator", "params"],
                          "exactly one"),
    "score-sample-0": (["score", "--space", "nb201", "--sample", "0", "--estimator", "params"], "--sample 0"),
    "score-out-exists": (SCORE + ["--out", "runs/old/notes.txt"], "--append"),
    # budgets: units and feasibility
    "search-flops-unit": (SEARCH + ["--flops", "300Q"], "300Q"),
    "search-flops-word": (SEARCH + ["--flops", "lots"], "lots"),
    "search-flops-negative": (SEARCH + ["--flops=-5M"], "-5M"),
    "search-params-unit": (SEARCH + ["--params", "4.5X"], "4.5X"),
    "search-latency-unit": (SEARCH + ["--latency", "20parsecs"], "20parsecs"),
    "search-latency-no-source": (SEARCH + ["--latency", "20ms"], "latency source"),
    "search-flops-impossible": (["search", "--space", "mbv2", "--flops", "1M", "--estimator", "macs", *TINY],
                                "smallest achievable"),
    "search-params-impossible": (SEARCH + ["--params", "10"], "smallest achievable"),
    "pareto-flops-impossible": (["pareto", "--space", "mbv2", "--objectives", "score,macs", "--flops", "1M",
                                 "--estimator", "macs", *TINY], "smallest achievable"),
    "pareto-two-flops": (PARETO + ["--flops", "100M,200M"], "one bound"),
    "pareto-latency-no-source": (["pareto", "--space", "nb201", "--estimator", "params", *TINY], "latency source"),
    # missing files
    "search-latency-table-missing": (SEARCH + ["--latency", "20ms", "--latency-table", "{in}/none.csv",
                                               "--latency-device", "pixel2"], "does not exist"),
    "search-latency-lut-missing": (["search", "--space", "mbv2", "--latency", "20ms", "--latency-lut",
                                    "{in}/none.json", "--estimator", "macs", *TINY], "none.json"),
    "search-latency-lut-bad": (["search", "--space", "mbv2", "--latency", "20ms", "--latency-lut",
                                "{in}/lut_bad.json", "--estimator", "macs", *TINY], "lut_bad.json"),
    "latency-lut-missing": (["latency", "--space", "mbv2", "--arch", "mobilenetv2_100", "--lut", "{in}/none.json"],
                            "none.json"),
    "search-benchmark-missing": (SEARCH + ["--benchmark", "{in}/none.csv"], "none.csv"),
    "modnas-latency-table-missing": (["modnas", "--latency-table", "{in}/none.csv", "--profile", "tiny"],
                                     "none.csv"),
    "default-data-damaged-cache": (SYNFLOW, "delete"),  # MOTE_CACHE points at a damaged cifar100_r10.npz
    # estimator options
    "score-set-epochs-0": (["score", "--space", "nb201", "--arch", CELL, *TINY, "--set", "epochs=0"], "epochs"),
    "score-set-epochs--1": (["score", "--space", "nb201", "--arch", CELL, *TINY, "--set", "epochs=-1"], "epochs"),
    "score-set-epochs-abc": (["score", "--space", "nb201", "--arch", CELL, *TINY, "--set", "epochs=abc"], "epochs"),
    "search-set-epochs-0": (["search", "--space", "nb201", *TINY, "--set", "epochs=0"], "epochs"),
    "pareto-set-epochs--1": (["pareto", "--space", "nb201", "--objectives", "score,macs", *TINY, "--set",
                              "epochs=-1"], "epochs"),
    "score-set-no-equals": (SCORE + ["--set", "epochs"], "key=value"),
    "score-set-unknown": (["score", "--space", "nb201", "--arch", CELL, *TINY, "--set", "bananas=3"], "bananas"),
    "search-k-0": (SEARCH + ["--k", "0"], "k"),
    "pareto-population-1": (PARETO + ["--population", "1"], "population"),
    # retraining and export
    "retrain-unknown-recipe": (["retrain", "--recipe", "nope", "--model", "mobilenetv2_100", "--imagefolder",
                                "{in}/emptydir", "--output", "out"], "nope"),
    "retrain-recipe-not-yaml": (["retrain", "--recipe", "{in}/recipe_bad.yaml", "--model", "mobilenetv2_100",
                                 "--imagefolder", "{in}/emptydir", "--output", "out"], "recipe_bad.yaml"),
    "retrain-no-data": (["retrain", "--recipe", "mote_nas_200ep", "--model", "mobilenetv2_100", "--output", "out"],
                        "no training data"),
    "retrain-winner-macs-lots": (["retrain", "--recipe", "mote_nas_200ep", "--model", "{in}/winner/lots",
                                  "--imagefolder", "{in}/images", "--output", "out"], "key 'macs'"),
    "export-winner-macs-lots": (["export", "--model", "{in}/winner/lots", "--out", "m.onnx"], "key 'macs'"),
    "export-resolution": (["export", "--model", "mobilenetv2_100", "--out", "m.onnx", "--resolution", "4"],
                          "--resolution 4"),
    "export-threads--1": (["export", "--model", "mobilenetv2_100", "--out", "m.onnx", "--threads=-1"], "--threads -1"),
    "search-processes--2": (SEARCH + ["--processes=-2"], "--processes -2"),
    # the rest
    "show-not-a-run": (["show", "runs/old"], "not a search run"),
    "make-rd-preset-and-labels": (["make-rd", "--source", "imagefolder", "--root", "{in}/emptydir", "--out",
                                   "rd.npz", "--preset", "cifar100_r10", "--labels", "a,b"], "exclude"),
    # issue 22: a run name is one folder name under --runs-dir, for every command that takes --name
    "search-name-parent": (SEARCH + ["--name", "../../elsewhere"], "path separator"),
    "search-name-absolute": (SEARCH + ["--name", "{in}/x"], "path separator"),
    "search-name-dotdot": (SEARCH + ["--name", ".."], "starts with a dot"),
    "search-name-hidden": (SEARCH + ["--name", ".hidden"], "starts with a dot"),
    "search-name-two-lines": (SEARCH + ["--name", "a\nb"], "several lines"),
    "search-name-backslash": (SEARCH + ["--name", "a\\b"], "path separator"),
    "pareto-name-parent": (PARETO + ["--name", "../elsewhere"], "path separator"),
    "pareto-name-absolute": (PARETO + ["--name", "{in}/x"], "path separator"),
    # issue 22: k, iterations and populations bounded by the space and by what a run's time can hold
    "search-k-huge": (SEARCH + ["--k", "99999999999999999999"], "k 99999999999999999999"),
    "search-k-above-space": (["search", "--space", "macro", "--estimator", "params", *TINY, "--k", "7000"],
                             "this space holds 6,561"),
    "search-batch-start-0": (SEARCH + ["--batch-start", "0"], "batch_start 0"),
    "search-draw-factor-0": (SEARCH + ["--draw-factor", "0"], "draw_factor 0"),
    "search-draw-endless": (SEARCH + ["--draw-factor", "100000", "--batch-start", "100"], "in one iteration"),
    "pareto-population-above-space": (PARETO + ["--population", "20000"], "this space holds 15,625"),
    "pareto-generations-endless": (PARETO + ["--generations", "99999999"], "generations 99999999"),
    # issue 22: budgets are finite
    "search-flops-infinite": (SEARCH + ["--flops", "1e400"], "beyond any finite number"),
    "search-params-infinite": (SEARCH + ["--params", "1e400M"], "beyond any finite number"),
    "search-latency-infinite": (SEARCH + ["--latency", "1e400ms"], "beyond any finite number"),
    # issue 22: one process at least
    "search-processes-0": (SEARCH + ["--processes", "0"], "--processes 0"),
    "pareto-processes-0": (PARETO + ["--processes", "0"], "--processes 0"),
    # issue 22: proxy data of two labels at least
    "proxy-one-label": (SYNFLOW + ["--proxy-data", "{in}/onelabel.npz"], "2 labels or more"),
    "proxy-one-label-used": (SYNFLOW + ["--proxy-data", "{in}/oneused.npz"], "2 labels or more"),
    "search-proxy-one-label": (["search", "--space", "nb201", *TINY, "--proxy-data", "{in}/onelabel.npz"],
                               "2 labels or more"),
    # issue 22: mote fuse
    "fuse-binary-table": (["fuse", "--table", "{in}/binary.csv", "--out", "fused.csv"], "not a readable CSV"),
    "fuse-header-only": (["fuse", "--table", "{in}/header.csv", "--out", "fused.csv"], "no rows"),
    "fuse-out-is-table": (["fuse", "--table", "{in}/table.csv", "--out", "{in}/table.csv", "--force"],
                          "the --table itself"),
    "fuse-out-folder-missing": (["fuse", "--table", "{in}/table.csv", "--out", "nowhere/fused.csv"],
                                "the folder nowhere does not exist"),
    # issue 22: argparse's own errors are one line too
    "make-rd-r-0": (["make-rd", "--source", "imagefolder", "--root", "{in}/emptydir", "--out", "rd.npz", "--r", "0"],
                    "argument --r: 0; accepted: a whole number, 1 or more"),
    "search-k-not-a-number": (SEARCH + ["--k", "ten"], "invalid int value: 'ten'"),
    "score-sample-not-a-number": (SCORE + ["--sample", "x"], "invalid int value"),
    "search-unknown-algorithm": (SEARCH + ["--algorithm", "greedy"], "invalid choice: 'greedy'"),
    "search-no-space": (["search", "--estimator", "params"], "--space"),
    "latency-batch-not-a-number": (["latency", "--space", "mbv2", "--arch", "mobilenetv2_100", "--batch", "1.5"],
                                   "invalid int value"),
    # issue 22: a refused unsafe checkpoint is one line in our words
    "export-unsafe-checkpoint": (["export", "--model", "mobilenetv2_100", "--checkpoint", "{in}/unsafe.pt", "--out",
                                  "m.onnx"], "could run code"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, inputs, workdir, capsys, monkeypatch):
    argv, needle = CASES[case]
    if "cuda" in case and not _no_cuda() and case != "score-device-cuda99":
        pytest.skip("this machine has a CUDA device")
    if case == "default-data-damaged-cache":
        monkeypatch.setenv("MOTE_CACHE", str(inputs / "cache"))
    line = _fails(capsys, [a.replace("{in}", str(inputs)) for a in argv], workdir, inputs)
    assert needle in line, line


def test_cuda_without_a_gpu(inputs, workdir, capsys):
    """`--device cuda` on a machine without one: the same one line for every command that takes it."""
    if not _no_cuda():
        pytest.skip("this machine has a CUDA device")
    for argv in (SCORE, SEARCH, PARETO, ["modnas", "--latency-table", f"{inputs}/none.csv"],
                 ["latency", "--space", "mbv2", "--arch", "mobilenetv2_100"]):
        line = _fails(capsys, [*argv, "--device", "cuda"], workdir, inputs)
        assert "device 'cuda': no CUDA device" in line and line.endswith("accepted: auto, cpu"), line
    assert sorted(p.name for p in workdir.iterdir()) == ["runs"]  # nothing new beside the old run


TABLE_CASES = {
    "na": ("pixel2 = 'n/a'",),
    "blank": ("pixel2 = ''",),
    "negative": ("pixel2 = '-3'",),
    "index": ("index 'six'",),
    "outside": ("99999",),
    "truncated": ("lacks latency for 14625 of 15625",),
    "cut": ("is not a positive number",),
    "binary": ("not a readable CSV",),
}


@pytest.mark.parametrize("name", list(TABLE_CASES))
def test_modnas_latency_table(name, tables, shared_data, workdir, capsys):
    bench = shared_data / "nb201" / "benchmark.csv"
    line = _fails(capsys, ["modnas", "--latency-table", tables / f"{name}.csv", "--benchmark", bench,
                           "--profile", "tiny", "--quiet"], workdir, tables)
    assert TABLE_CASES[name][0] in line, line


@pytest.mark.parametrize("name", ["na", "index", "truncated"])
def test_pareto_latency_table(name, tables, shared_data, workdir, capsys):
    bench = shared_data / "nb201" / "benchmark.csv"
    line = _fails(capsys, [*PARETO[:4], "score,latency", *PARETO[5:], "--latency-table", tables / f"{name}.csv",
                           "--latency-device", "pixel2", "--benchmark", bench], workdir, tables)
    assert "latency table" in line, line


def test_pareto_latency_budget_below_the_fastest_cell(shared_data, workdir, capsys):
    table = shared_data / "nb201" / "latency_ms.csv"
    line = _fails(capsys, [*PARETO, "--latency", "0.0001ms", "--latency-table", table, "--latency-device",
                           "pixel2", "--benchmark", shared_data / "nb201" / "benchmark.csv"], workdir)
    assert "latency" in line, line


def test_an_error_below_a_progress_bar_starts_its_own_line(inputs, workdir, capsys):
    """make-rd's "cannot read image" arrives while its embedding bar is open: the bar is closed first, so
    the error is one line of its own and the bar is not drawn again after it."""
    from PIL import Image
    root = workdir / "rd_source"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "a" / "0.png")
    (root / "b" / "0.png").write_bytes(b"not a png")
    capsys.readouterr()
    rc = main(["make-rd", "--source", "imagefolder", "--root", str(root), "--out", "rd.npz", "--r", "1",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2, err[-2000:]
    lines = err.split("\n")
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("mote make-rd: error: cannot read image"), err[-2000:]
    assert "embed" in err and "embed" not in err[err.index("mote make-rd: error:"):], err[-2000:]
    assert not (workdir / "rd.npz").exists()


def test_a_search_without_a_winner_has_its_own_exit_status(workdir, capsys, monkeypatch):
    """Every candidate failed: the run writes what it has, says "no winner", and exits NO_WINNER (3)."""
    from mobile_mote.cli.search import NO_WINNER
    from mobile_mote.estimators.analytic import Params

    def fail(self, *a, **k):
        raise RuntimeError("every candidate fails here")
    monkeypatch.setattr(Params, "_terms", fail)
    capsys.readouterr()
    rc = main([*SEARCH, "--algorithm", "ef", "--name", "nowin"])
    err = capsys.readouterr().err
    assert NO_WINNER == 3 and rc == NO_WINNER, err[-2000:]
    assert "no winner" in err
    summary = json.loads((workdir / "runs" / "nowin" / "summary.json").read_text())
    assert summary["winners"] and not summary["winners"][0].get("arch")
    assert (workdir / "runs" / "nowin" / "search.db").is_file()


def test_the_exit_statuses_are_documented():
    from mobile_mote.cli import build_parser
    from mobile_mote.cli.search import NO_WINNER
    text = build_parser()._subparsers._group_actions[0].choices["search"].format_help()
    assert f"{NO_WINNER} the run ended without a winner" in " ".join(text.split())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"exits {NO_WINNER}" in " ".join(readme.split())


def test_the_paper_profile_on_a_cpu_says_its_cost_up_front(inputs, workdir, capsys, monkeypatch):
    """One line before the run starts: the measured seconds per candidate and what to use instead. The
    run is not refused (here it is interrupted at once: nothing is trained)."""
    import mobile_mote.search.driver as driver

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(driver, "run", interrupted)
    capsys.readouterr()
    rc = main(["search", "--space", "nb201", "--algorithm", "ef", "--device", "cpu", "--proxy-data",
               str(inputs / "good.npz"), "--quiet", "--name", "costly"])
    lines = capsys.readouterr().err.splitlines()
    assert rc == 130 and len(lines) == 2, lines
    assert lines[0].startswith("mote search: note: the paper profile trains every candidate 50 epochs"), lines[0]
    for needle in ("1,487 s per candidate", "estimator_speed_cpu_paper.json", "--profile cpu", "GPU",
                   "(100 candidates) may take ~41 h"):
        assert needle in lines[0], (needle, lines[0])
    assert lines[1] == "mote search: interrupted"


def test_the_cost_notice_only_where_a_cpu_trains():
    from mobile_mote.profiles import cpu_cost_notice
    from mobile_mote.search.spec import RunSpec
    spec = RunSpec(name="n", space="mbv3", device="cpu")
    assert "--profile cpu" in cpu_cost_notice("paper", spec, 50)
    assert "(50 candidates)" in cpu_cost_notice("official", RunSpec(name="n", space="mbv3", device="cpu",
                                                                    algorithm="nsga2"), 50, "pareto")
    assert cpu_cost_notice("tiny", spec, 3) is None and cpu_cost_notice("cpu", spec, 4) is None
    assert cpu_cost_notice("paper", spec, None) is None  # an estimator that never trains
    assert cpu_cost_notice("paper", RunSpec(name="n", space="mbv3", device="cuda"), 50) is None


# -- the helpers as units ------------------------------------------------------------------------------------
def test_resolve_device_names(monkeypatch):
    from mobile_mote.devices import resolve_device
    from mobile_mote.errors import InputError
    assert resolve_device("cpu") == resolve_device(" CPU ") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    for bad in ("banana", "cuda:x", "cpu:0", "", "gpu"):
        with pytest.raises(InputError, match="accepted: auto, cpu") as err:
            resolve_device(bad)
        assert "\n" not in str(err.value)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # GPUs hidden: auto is the cpu, cuda refused, no torch asked
    assert resolve_device("auto", import_torch=False) == "cpu"
    with pytest.raises(InputError, match="CUDA_VISIBLE_DEVICES"):
        resolve_device("cuda", import_torch=False)


def test_default_threads_never_oversubscribe(monkeypatch):
    import mobile_mote.devices as dv
    monkeypatch.setattr(dv, "available_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert dv.default_threads() == 8 and dv.default_threads(1) == 8
    assert dv.default_threads(3) == 2 and dv.default_threads(16) == 1
    monkeypatch.setenv("WORLD_SIZE", "4")  # a process of an accelerate launch
    assert dv.default_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # lowers, never raises
    assert dv.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert dv.default_threads() == 2
    for n in (1, 2, 3, 5, 8, 13):
        assert dv.default_threads(n) * n <= 8 or dv.default_threads(n) == 1
    assert dv.check_threads(None, 3) == dv.default_threads(3) and dv.check_threads("3") == 3
    for bad in (0, -1, "abc", "1.5"):
        with pytest.raises(dv.InputError, match="--threads"):
            dv.check_threads(bad)


def test_threads_are_applied_and_passed_to_launched_processes():
    import torch

    from mobile_mote.cli import build_parser
    from mobile_mote.cli.args import threads_from_args
    from mobile_mote.devices import apply_threads, thread_env
    from mobile_mote.parallel import launch_command
    for cmd in (["score", "--space", "nb201"], ["search", "--space", "nb201"], ["pareto", "--space", "nb201"],
                ["modnas", "--latency-table", "t.csv"],
                ["retrain", "--recipe", "r", "--model", "m", "--output", "o"]):
        args = build_parser().parse_args([*cmd, "--threads", "3"])
        assert threads_from_args(args) == 3
        assert build_parser().parse_args(cmd).threads is None
    for cmd in (["score", "--space", "nb201"], ["search", "--space", "nb201"], ["pareto", "--space", "nb201"],
                ["modnas", "--latency-table", "t.csv"], ["latency", "--space", "nb201", "--arch", "a"],
                ["latency-lut", "--space", "mbv2", "--out", "l.json"]):
        assert build_parser().parse_args(cmd).device == "auto"
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    cmd = launch_command(2, ["search", "--space", "nb201"], cpu=True, threads=3)
    assert cmd[cmd.index("--num_cpu_threads_per_process") + 1] == "3"
    assert thread_env(3)["OMP_NUM_THREADS"] == thread_env(3)["MKL_NUM_THREADS"] == "3"
