"""Zero-cost proxies: finite, deterministic, failure as a record, and agreement with NASLib."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mobile_mote.estimators import get_estimator, list_estimators
from mobile_mote.errors import InputError
from mobile_mote.estimators.zero_cost import _with_split, estimate_many, jacov_score
from conftest import synthetic_proxy_data
from mobile_mote.search_spaces import get_space
from mobile_mote.search_spaces.nb201_net import NB201Network, ReducedNB201

pytestmark = pytest.mark.usefixtures("torch_one_thread")

PROXIES = ("synflow", "snip", "grad_norm", "fisher", "grasp", "jacov", "naswot", "ntk", "zico", "zen",
           "params", "macs")
CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# Tiny settings on the reduced network keep every proxy well under a second on one CPU thread.
TINY = {"snip": {"batch_size": 8}, "grad_norm": {"batch_size": 8}, "fisher": {"batch_size": 8},
        "grasp": {"batch_size": 8}, "jacov": {"batch_size": 8}, "naswot": {"batch_size": 16},
        "ntk": {"batch_size": 6}, "zico": {"batch_size": 6, "num_batches": 2}, "zen": {"batch_size": 6}}


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


@pytest.fixture(scope="module")
def data():
    """Synthetic 32x32 images with 4 labels: the proxies need no real data to be exercised."""
    return synthetic_proxy_data(48)


def _est(name, **extra):
    return get_estimator(name, reduced=True, **TINY.get(name, {}), **extra)


def test_all_registered():
    assert set(PROXIES) <= set(list_estimators())


@pytest.mark.parametrize("name", PROXIES)
def test_finite_and_deterministic(name, space, data):
    est = _est(name)
    first = est.estimate(space, CELL, data, seed=3)
    torch.manual_seed(999)  # global RNG state must not matter
    torch.rand(10)
    again = est.estimate(space, CELL, data, seed=3)
    assert first.status == "ok", (first.error, first.terms)
    assert math.isfinite(first.score)
    assert again.score == first.score
    assert again.terms == first.terms
    assert first.config["reduced"] is True


def test_seed_changes_data_dependent_score(space, data):
    est = _est("snip")
    assert est.estimate(space, CELL, data, seed=0).score != est.estimate(space, CELL, data, seed=1).score


def test_synflow_prefers_convolutions_to_nothing(space):
    est = get_estimator("synflow", num_classes=100)  # full NB201 network, no data needed
    conv = est.estimate(space, ALL_CONV, None, seed=0)
    none = est.estimate(space, ALL_NONE, None, seed=0)
    assert conv.status == none.status == "ok"
    assert none.terms["synflow"] == 0.0 and none.score == 0.0
    assert conv.score > none.score + 50  # log space: e^50 times more synaptic flow
    assert conv.terms["log_synflow"] == pytest.approx(math.log1p(conv.terms["synflow"]))


def test_estimate_many_matches_single_estimates(space, data):
    names = ["snip", "grad_norm", "fisher", "synflow"]
    many = estimate_many(names, space, CELL, data, seed=2, reduced=True, batch_size=8)
    assert many["grad_norm"].terms["shared_pass"] is True
    for name in names:
        single = get_estimator(name, reduced=True, batch_size=8 if name != "synflow" else 1)
        assert single.estimate(space, CELL, data, seed=2).score == many[name].score


def test_params_and_macs_are_analytic(space, data):
    rec = get_estimator("params", num_classes=100).estimate(space, CELL, data)
    assert rec.score == space.params(CELL, num_classes=100)
    rec = get_estimator("macs", reduced=True).estimate(space, CELL, data)
    assert rec.score == space.macs(CELL, resolution=32, num_classes=4, reduced=True)


def test_forward_raising_gives_failed_record(space, data, monkeypatch):
    def boom(self, x):
        raise RuntimeError("kaboom in forward")
    monkeypatch.setattr(ReducedNB201, "forward", boom)
    monkeypatch.setattr(NB201Network, "forward", boom)
    for name in ("synflow", "snip", "jacov", "zen"):
        rec = _est(name).estimate(space, CELL, data)
        assert rec.status == "failed" and rec.score is None
        assert "kaboom" in rec.error


def test_nan_output_is_flagged(space, data, monkeypatch):
    orig = ReducedNB201.forward
    monkeypatch.setattr(ReducedNB201, "forward", lambda self, x: orig(self, x) * float("nan"))
    for name in ("snip", "jacov"):
        rec = _est(name).estimate(space, CELL, data)
        assert rec.status == "flagged" and rec.score is None


def test_disconnected_cell_is_flagged_not_crashed(space, data):
    rec = _est("jacov").estimate(space, ALL_NONE, data)  # zero Jacobian: correlation undefined
    assert rec.status == "flagged"


def test_out_of_memory_splits_the_batch(space, data, monkeypatch):
    orig = ReducedNB201.forward

    def small_only(self, x):
        if x.shape[0] > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return orig(self, x)
    monkeypatch.setattr(ReducedNB201, "forward", small_only)
    rec = _est("snip").estimate(space, CELL, data)
    assert rec.status == "ok" and rec.terms["split"] == 2
    rec = _est("grasp").estimate(space, CELL, data)
    assert rec.status == "ok" and rec.terms["split"] == 2


def test_with_split_reraises_other_errors():
    calls = []

    def fn(split):
        calls.append(split)
        raise RuntimeError("shape mismatch")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        _with_split(fn, 8)
    assert calls == [1]


def test_jacov_score_is_bounded_by_batch_size():
    rng = np.random.default_rng(0)
    score, vmin, vmax = jacov_score(rng.standard_normal((8, 500)))
    assert score < -8 and vmin > 0
    assert math.isnan(jacov_score(np.zeros((4, 10)))[0])


@pytest.mark.parametrize("name,kwargs,expected", [
    ("snip", {"batch_size": 0}, "estimator 'snip': batch_size 0; accepted: a whole number, 1 or more"),
    ("naswot", {"batch_size": True}, "batch_size True; accepted"),
    ("jacov", {"num_batches": 0}, "num_batches 0; accepted: a whole number, 1 or more"),
    ("zico", {"num_batches": 1}, "estimator 'zico': num_batches 1; accepted: a whole number, 2 or more"),
    ("zen", {"mixup_gamma": 0}, "mixup_gamma 0; accepted: a finite number, above 0"),
    ("synflow", {"resolution": 0}, "resolution 0; accepted: a whole number, 1 or more, or none"),
    ("ntk", {"num_classes": "ten"}, "num_classes 'ten'; accepted"),
    ("grasp", {"reduced": 1}, "reduced 1; accepted: true or false"),
    ("params", {"batch_size": -1}, "batch_size -1; accepted: a whole number, 0 or more"),
    ("macs", {"nope": 1}, "unknown option(s) ['nope']"),
    ("precomputed", {"path": 3}, "path 3; accepted: a string"),
])
def test_bad_proxy_settings_are_refused_when_made(name, kwargs, expected):
    with pytest.raises(InputError) as e:
        get_estimator(name, **kwargs)
    assert "\n" not in str(e.value) and expected in str(e.value)


def test_configs_inherit_the_shared_fields():
    from mobile_mote.estimators.zero_cost.common import _BatchProxy, _Proxy
    from mobile_mote.estimators.registry import estimator_class
    for name in PROXIES[:10]:
        cls = estimator_class(name)
        assert issubclass(cls, _Proxy) and issubclass(cls.Config, _Proxy.Config), name
        if name != "synflow":
            assert issubclass(cls.Config, _BatchProxy.Config), name
    assert "num_batches" not in estimator_class("synflow").Config.__dataclass_fields__


# -- agreement with an independent library (NASLib) on its NB201 cells ----------------------

def _spearman(a, b):
    from scipy.stats import spearmanr
    return spearmanr(a, b).statistic


@pytest.fixture(scope="module")
def naslib_cells(shared_data):
    path = shared_data / "nb201" / "naslib_zero_cost_491.json"
    if not path.is_file():
        pytest.skip(f"NASLib zero-cost values not found at {path}")
    cells = json.loads(path.read_text())["cifar100"]
    archs = list(cells)[::16][:30]  # 30 cells spread over the file
    return archs, cells


def test_synflow_agrees_with_naslib(space, naslib_cells):
    archs, cells = naslib_cells
    est = get_estimator("synflow", num_classes=100)
    ours = [est.estimate(space, a, None, seed=0).score for a in archs]
    assert _spearman(ours, [cells[a]["synflow"] for a in archs]) >= 0.9


def test_snip_agrees_with_naslib(space, naslib_cells, shared_data):
    from mobile_mote.data.proxy_data import load_proxy_data
    path = shared_data / "proxy_cifar100_10"
    if not path.is_dir():
        pytest.skip(f"reduced CIFAR-100 not found at {path}")
    archs, cells = naslib_cells
    data = load_proxy_data(path).subset(20)  # 200 images are plenty for batches of 16
    est = get_estimator("snip", num_classes=100, batch_size=16)
    ours = [est.estimate(space, a, data, seed=0).score for a in archs]
    assert _spearman(ours, [cells[a]["snip"] for a in archs]) >= 0.9
