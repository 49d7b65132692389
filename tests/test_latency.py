"""Latency: direct measurement (torch, onnxruntime), the per-block LUT, and the CLI's bad-input exits."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mobile_mote import cli
from mobile_mote.errors import InputError
from mobile_mote.efficiency.latency import (build_lut, load_lut, lut_keys, measure_onnxruntime, measure_torch, predict,
                                 save_lut)
from mobile_mote.search_spaces import get_space

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.filterwarnings("ignore")]

RES = 64


def _tiny_space(name="mbv2"):
    return get_space(name, kernel_choices=(3,), expansion_choices=(2,), se_choices=(False,))


def _small_model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))


@pytest.fixture(scope="module")
def tiny_lut():
    return build_lut(_tiny_space(), "cpu", RES, warmup=2, repeats=5, rounds=2)


def test_measure_torch_positive_and_repeatable():
    model = _small_model().train()
    a = measure_torch(model, 32, warmup=3, repeats=15)
    b = measure_torch(model, 32, warmup=3, repeats=15, threads=1)
    assert model.training  # the mode is restored
    for r in (a, b):
        assert r["median_ms"] > 0 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] and r["repeats"] == 15
        assert r["backend"] == "torch" and r["device"] == "cpu"
    assert b["threads"] == 1
    assert max(a["median_ms"], b["median_ms"]) < 3 * min(a["median_ms"], b["median_ms"])


def test_measure_rejects_bad_counts():
    with pytest.raises(InputError):
        measure_torch(_small_model(), 32, repeats=0)
    with pytest.raises(InputError):
        measure_torch(_small_model(), 4)


def test_measure_onnxruntime_small_model():
    r = measure_onnxruntime(_small_model(), 32, warmup=2, repeats=10, threads=1)
    assert r["backend"] == "onnxruntime" and r["median_ms"] > 0 and r["threads"] == 1 and r["repeats"] == 10


def test_lut_covers_every_configuration(tiny_lut):
    space = _tiny_space()
    assert tiny_lut["space"] == "mbv2" and tiny_lut["resolution"] == RES and "provenance" in tiny_lut
    assert tiny_lut["rounds"] == 2 and tiny_lut["n_entries"] == len(tiny_lut["entries"])
    assert all(v["median_ms"] > 0 for v in tiny_lut["entries"].values())
    rng = np.random.default_rng(0)
    used = set()
    for _ in range(20):  # every random architecture (any skips) is covered by the LUT
        keys = lut_keys(tiny_lut, space, space.sample(rng))
        assert keys[0].startswith("stem|") and keys[-1].startswith("head|")
        used.update(keys)
    assert used <= set(tiny_lut["entries"])


def test_lut_prediction_near_measurement(tiny_lut, tmp_path):
    space = _tiny_space()
    arch = space.sample(np.random.default_rng(1))
    ms, parts = predict(tiny_lut, space, arch, detail=True)
    assert ms > 0 and len(parts) == len(space.plan(arch)[1]) + 2
    measured = measure_torch(space.build(arch), RES, warmup=3, repeats=10)["median_ms"]
    assert measured / 4 < ms < measured * 4
    path = tmp_path / "lut.json"
    save_lut(tiny_lut, path)
    assert predict(load_lut(path), space, arch) == pytest.approx(ms)


def test_predict_outside_lut_is_input_error(tiny_lut):
    full = get_space("mbv2")
    with pytest.raises(InputError, match="no entry"):
        predict(tiny_lut, full, "|".join(",".join(["k5e6"] * d) for d in (2, 3, 4, 3, 3, 1)))  # never built
    assert predict(tiny_lut, full, "mobilenetv2_100") > 0  # the preset is always in the LUT
    with pytest.raises(InputError, match="built for space"):
        predict(tiny_lut, _tiny_space("mbv3"), "mobilenetv3_large_100")


# -- CLI ------------------------------------------------------------------------------------------------------
@pytest.fixture
def mote(monkeypatch, capsys):

    def run(*argv):
        rc = cli.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def test_cli_measure_and_lut(mote, tiny_lut, tmp_path):
    arch = "|".join(",".join(["k3e2"] * d) for d in (2, 3, 4, 3, 3, 1))
    rc, out, err = mote("latency", "--space", "mbv2", "--arch", arch, "--resolution", "32", "--warmup", "1",
                        "--repeats", "3", "--threads", "1", "--compact")
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["source"] == "measured" and rec["latency_ms"] > 0 and rec["resolution"] == 32
    path = tmp_path / "lut.json"
    save_lut(tiny_lut, path)
    rc, out, err = mote("latency", "--space", "mbv2", "--arch", arch, "--lut", str(path))
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["source"] == "lut" and rec["latency_ms"] == pytest.approx(predict(tiny_lut, _tiny_space(), arch), abs=1e-3)


@pytest.mark.parametrize("argv, needle", [
    (("latency", "--space", "nope", "--arch", "x"), "unknown search space"),
    (("latency", "--space", "mbv2", "--arch", "k3e6|bad"), "stage"),
    (("latency", "--space", "mbv2", "--arch", "mobilenetv2_100", "--lut", "/nonexistent/lut.json"), "does not exist"),
    (("latency-lut", "--space", "nb201", "--out", "/tmp/never_written.json"), "block space"),
    (("latency-lut", "--space", "nope", "--out", "/tmp/never_written.json"), "unknown search space"),
])
def test_cli_bad_input_exits_2(mote, argv, needle):
    rc, out, err = mote(*argv)
    assert rc == 2 and needle in err and err.count("\n") == 1 and out == ""
