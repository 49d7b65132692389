"""The MOTE estimator and its training-run baselines (tiny profile, CPU)."""
import json

import numpy as np
import pytest
import torch
from scipy import special, stats
from torch import nn
from torch.nn import functional as F

from mobile_mote.cli import main
from mobile_mote.errors import InputError
from mobile_mote.estimators import estimator_class, estimator_config, get_estimator, list_estimators
from mobile_mote.estimators.mote import PROFILES, landscape_term, rescore_population, speed_term
from mobile_mote.estimators.proxy_train import TrainRun, landscape_losses
from mobile_mote.estimators.transforms import BOXCOX_PRESETS, boxcox, fit_boxcox, mote_value
from mobile_mote.data.proxy_data import ProxyData
from mobile_mote.search_spaces import get_space

NONE_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONV_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY = {**PROFILES["tiny"], "time": "cost"}


@pytest.fixture(scope="module")
def tiny_data(shared_data):
    from mobile_mote.data.proxy_data import load_proxy_data
    return load_proxy_data(shared_data / "proxy_cifar100_10").subset(12, seed=1)


def test_speed_and_landscape_terms_by_hand():
    assert speed_term([2.0, 1.0], [1.0, 2.0]) == pytest.approx(2.5)
    assert landscape_term([1.0, 0.5, 0.25]) == pytest.approx(1.75)


def test_landscape_walk_matches_hand_computation():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    model = nn.Linear(4, 3)
    init = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    run = TrainRun([1.0], [1.0], init, final)
    got = landscape_losses(model, run, x, y, points=4, batch_size=5)
    expected = []
    for g in range(5):
        a = g / 4
        w, b = (1 - a) * final["weight"], (1 - a) * final["bias"]
        expected.append(F.cross_entropy(x @ w.T + b, y).item())
    assert got == pytest.approx(expected, rel=1e-5)
    assert got[-1] == pytest.approx(np.log(3), rel=1e-6)  # theta_G = theta_init = 0: uniform logits
    assert torch.equal(model.weight, final["weight"])  # the trained weights are restored


def test_boxcox_against_scipy():
    rng = np.random.default_rng(0)
    v = rng.lognormal(1.0, 0.4, size=200)
    for lam in (0.0, 0.5, 0.86, -0.3):
        np.testing.assert_allclose(boxcox(v, lam), special.boxcox(v, lam), rtol=1e-10)
    lam, sigma = fit_boxcox(v)
    assert lam == pytest.approx(stats.boxcox(v)[1], rel=1e-5, abs=1e-6)
    assert sigma == pytest.approx(np.std(special.boxcox(v, lam)), rel=1e-9)
    with pytest.raises(ValueError):
        fit_boxcox([1.0, 1.0, 1.0])
    narrow = 10.0 + rng.gamma(0.5, 0.05, size=40)  # the shape that sends the unbounded fit to the edge
    lam_b, sigma_b = fit_boxcox(narrow)
    assert -2.0 <= lam_b <= 2.0 and sigma_b > 1e-6


def test_official_constants_preset():
    p = BOXCOX_PRESETS["nb201"]
    assert (p.lambda_landscape, p.sigma_landscape, p.lambda_speed, p.sigma_speed) == (0.86, 1.216, 0.617, 0.961)
    expected = special.boxcox(20.0, 0.86) / 1.216 + special.boxcox(3.0, 0.617) / 0.961
    assert mote_value(20.0, 3.0, "box-cox", p) == pytest.approx(expected)


def test_determinism_for_a_fixed_seed(tiny_data):
    sp = get_space("nb201")
    est = get_estimator("mote", **TINY)
    a = est.estimate(sp, CONV_CELL, tiny_data, seed=3).to_dict()
    b = get_estimator("mote", **TINY).estimate(sp, CONV_CELL, tiny_data, seed=3).to_dict()
    for rec in (a, b):
        rec.pop("seconds")
        for k in ("epoch_seconds", "train_seconds", "landscape_seconds"):
            rec["terms"].pop(k)
    assert a == b
    c = est.estimate(sp, CONV_CELL, tiny_data, seed=4)
    assert c.terms["train_losses"] != a["terms"]["train_losses"]


def test_record_keeps_every_term(tiny_data):
    rec = get_estimator("mote", **TINY).estimate(get_space("nb201"), CONV_CELL, tiny_data)
    t = rec.terms
    assert rec.status == "ok" and rec.score == pytest.approx(-t["mote"])
    assert len(t["train_losses"]) == len(t["t_e"]) == TINY["epochs"]
    assert len(t["landscape_losses"]) == TINY["points"] + 1
    assert t["landscape"] == pytest.approx(sum(t["landscape_losses"]))
    assert t["speed"] == pytest.approx(speed_term(t["train_losses"], t["t_e"]))
    assert t["boxcox"]["source"] == "preset:nb201"
    json.dumps(rec.to_dict())  # plain data all the way down


def test_none_cell_scores_below_conv_cell(tiny_data):
    sp = get_space("nb201")
    est = get_estimator("mote", **TINY)
    none = est.estimate(sp, NONE_CELL, tiny_data)
    conv = est.estimate(sp, CONV_CELL, tiny_data)
    assert none.status == conv.status == "ok"
    assert none.score < conv.score
    assert none.terms["landscape"] > conv.terms["landscape"]


def test_baselines_share_the_training_run(tiny_data):
    sp = get_space("nb201")
    tse = get_estimator("tse", **{**TINY, "points": 0}).estimate(sp, CONV_CELL, tiny_data)
    acc = get_estimator("early_stop_acc", **{**TINY, "points": 0}).estimate(sp, CONV_CELL, tiny_data)
    assert tse.score == pytest.approx(-sum(tse.terms["train_losses"]))
    assert 0.0 <= acc.score <= 1.0 and "landscape" not in acc.terms


def test_tse_and_early_stop_read_off_motes_run_equal_their_own_training(tiny_data):
    sp = get_space("macro")
    arch = "12012012"
    cfg = {**TINY, "epochs": 2, "points": 2}
    mote = get_estimator("mote", **cfg).estimate(sp, arch, tiny_data, seed=3).to_dict()
    for name in ("tse", "early_stop_acc"):
        est = get_estimator(name, **cfg)
        own = est.estimate(sp, arch, tiny_data, seed=3)
        derived = est.from_shared_run(mote)
        assert derived["score"] == pytest.approx(own.score, rel=1e-9) and derived["derived_from"] == "mote"
        assert derived["estimator"] == name and derived["config_hash"] == own.config_hash
    with pytest.raises(InputError, match="epochs differ"):
        get_estimator("tse", **{**cfg, "epochs": 3}).from_shared_run(mote)


def test_bn_recalibrated_accuracy_leaves_mote_unchanged(tiny_data, monkeypatch):
    """The recalibrated accuracy is an extra term: MOTE's own terms are those of the training run."""
    from mobile_mote.estimators import mote as mote_module
    sp = get_space("nb201")
    with_bn = get_estimator("mote", **TINY).estimate(sp, CONV_CELL, tiny_data)
    monkeypatch.setattr(mote_module, "recalibrate_bn", lambda *a, **k: None)
    without = get_estimator("mote", **TINY).estimate(sp, CONV_CELL, tiny_data)
    assert with_bn.score == without.score
    assert with_bn.terms["landscape_losses"] == without.terms["landscape_losses"]
    key = "test_acc" if "test_acc" in with_bn.terms else "train_acc"
    assert 0.0 <= with_bn.terms[key + "_bn"] <= 1.0
    acc = get_estimator("early_stop_acc", **{**TINY, "points": 0}).estimate(sp, CONV_CELL, tiny_data)
    assert acc.score == acc.terms[key + "_bn"]
    raw = get_estimator("early_stop_acc", **{**TINY, "points": 0, "bn_recalibrate": False}).estimate(
        sp, CONV_CELL, tiny_data)
    assert raw.score == raw.terms[key]


def test_mobile_space_reduced_model_scores(tiny_data):
    rec = get_estimator("mote", **{**TINY, "epochs": 1, "points": 2}).estimate(
        get_space("mbv3"), "mobilenetv3_large_100", tiny_data)
    assert rec.status == "ok" and np.isfinite(rec.score)


def test_failing_candidate_is_a_record(tiny_data, monkeypatch):
    sp = get_space("nb201")

    def boom(*a, **k):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (simulated)")
    monkeypatch.setattr(sp, "build", boom)
    rec = get_estimator("mote", **TINY).estimate(sp, CONV_CELL, tiny_data)
    # the candidate's own error is its record (a device's out-of-memory is not: tests/test_device_errors.py)
    assert rec.status == "failed" and rec.score is None and "shapes cannot be multiplied" in rec.error


def test_rescore_population_fits_boxcox(tiny_data):
    sp = get_space("nb201")
    est = get_estimator("mote", **TINY)
    rng = np.random.default_rng(0)
    recs = [est.estimate(sp, sp.sample(rng), tiny_data).to_dict() for _ in range(4)]
    new, params = rescore_population(recs, est, "fit")
    assert params["source"].startswith("fit:")
    assert all(r["terms"]["boxcox"]["source"] == params["source"] for r in new if r["status"] == "ok")


@pytest.mark.parametrize("kwargs", [{"transform": "sqrt"}, {"boxcox": "cifar"}, {"epochs_": 3}, {"time": "gpu"}])
def test_bad_options_are_one_line_errors(kwargs):
    with pytest.raises(InputError) as e:
        get_estimator("mote", **kwargs)
    assert "\n" not in str(e.value) and "accepted" in str(e.value)


# -- what an estimator says about itself ----------------------------------------------------

TRAINING = ("mote", "mote-z", "tse", "early_stop_acc")
EVALUATION_KEYS = ("images_per_class", "batch_size", "lr", "amp", "channels_last", "reduced")


def test_needs_data_and_evaluation_keys():
    for name in list_estimators():
        cls = estimator_class(name)
        assert cls.needs_data is (name not in ("params", "macs", "precomputed")), name
        assert cls.evaluation_keys == (EVALUATION_KEYS if name in TRAINING else ()), name
        fields = set(cls.Config.__dataclass_fields__)
        assert set(cls.evaluation_keys) <= fields


def test_profile_options():
    for name in list_estimators():
        cls = estimator_class(name)
        fields = set(cls.Config.__dataclass_fields__)
        for profile in ("paper", "official", "cpu", "tiny"):
            opts = cls.profile_options(profile)
            assert set(opts) <= fields
            get_estimator(name, **opts)  # every profile gives a valid estimator
    assert estimator_class("mote").profile_options("tiny") == PROFILES["tiny"]
    assert estimator_class("mote").profile_options("official") == {"landscape": "train_epoch", "transform": "reciprocal"}
    assert estimator_class("mote").profile_options("paper") == {}
    for profile in PROFILES:  # a proxy's batch is its authors' under every profile
        assert estimator_class("synflow").profile_options(profile) == {}
        assert estimator_class("naswot").profile_options(profile) == {}
    assert estimator_class("synflow").profile_options("official") == {}
    assert estimator_class("precomputed").profile_options("tiny") == {}


def test_estimator_config_profile_then_overrides():
    from mobile_mote import scoring
    assert scoring.estimator_config is estimator_config  # the old import still works
    assert estimator_config("mote", "tiny") == PROFILES["tiny"]
    assert estimator_config("mote", "tiny", epochs=7, time="cost") == {**PROFILES["tiny"], "epochs": 7, "time": "cost"}
    assert estimator_config("snip", "tiny") == {}  # the training run's options are not snip's
    assert estimator_config("tse", "cpu") == {**PROFILES["cpu"]}
    assert estimator_config("tse", "official", transform="log") == {"landscape": "train_epoch", "transform": "log"}
    assert estimator_config("precomputed", "tiny", path="x.csv") == {"path": "x.csv"}


def test_unknown_profile_is_one_line_input_error():
    for call in (lambda: estimator_config("mote", "huge"), lambda: estimator_class("snip").profile_options("huge")):
        with pytest.raises(InputError) as e:
            call()
        msg = str(e.value)
        assert "\n" not in msg and "unknown profile 'huge'" in msg and "accepted: paper, official, cpu, tiny" in msg


def test_unknown_estimator_is_input_error():
    with pytest.raises(InputError, match="unknown estimator 'nope'; accepted: .*mote"):
        estimator_class("nope")


@pytest.mark.parametrize("name,kwargs,expected", [
    ("mote", {"epochs": 0}, "estimator 'mote': epochs 0; accepted: a whole number, 1 or more"),
    ("mote", {"epochs": -1}, "estimator 'mote': epochs -1; accepted: a whole number, 1 or more"),
    ("mote", {"epochs": "abc"}, "estimator 'mote': epochs 'abc'; accepted: a whole number, 1 or more"),
    ("mote", {"epochs": True}, "estimator 'mote': epochs True; accepted: a whole number, 1 or more"),
    ("mote", {"epochs": 2.5}, "epochs 2.5; accepted: a whole number"),
    ("mote", {"batch_size": 0}, "estimator 'mote': batch_size 0; accepted: a whole number, 1 or more"),
    ("mote", {"lr": -1}, "estimator 'mote': lr -1; accepted: a finite number, above 0"),
    ("mote", {"lr": 0}, "lr 0; accepted"),
    ("mote", {"lr": float("inf")}, "lr inf; accepted"),
    ("mote", {"lr": False}, "lr False; accepted"),
    ("mote", {"points": 0}, "points 0; accepted: a whole number, 1 or more"),
    ("tse", {"points": -1}, "estimator 'tse': points -1; accepted: a whole number, 0 or more"),
    ("tse", {"images_per_class": -1}, "images_per_class -1; accepted: a whole number, 0 or more"),
    ("early_stop_acc", {"reduced": "yes"}, "reduced 'yes'; accepted: true or false"),
    ("mote", {"amp": "bf16"}, "amp 'bf16'; accepted: auto, on, off"),
    ("mote", {"landscape": "walk"}, "landscape 'walk'; accepted: eval, train_epoch"),
])
def test_bad_settings_are_refused_when_made(name, kwargs, expected):
    with pytest.raises(InputError) as e:
        get_estimator(name, **kwargs)
    assert "\n" not in str(e.value) and expected in str(e.value)


def test_bad_settings_refused_by_the_cli(capsys):
    for value in ("0", "-1", "abc"):
        assert main(["score", "--space", "nb201", "--sample", "1", "--set", f"epochs={value}"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 3 and all(e.startswith("mote score: error: estimator 'mote': epochs ") for e in err)


def test_good_settings_are_kept_as_given():
    est = get_estimator("mote", epochs=1, lr=1, points=1, images_per_class=0, boxcox="fit")
    assert est.config.lr == 1 and isinstance(est.config.lr, int)  # no coercion: the config hash stays as it was
    assert get_estimator("tse", points=0).config.points == 0
    assert get_estimator("early_stop_acc", epochs=np.int64(2)).config.epochs == 2


# Recorded before estimators were split into modules and given OPTIONS/PROFILES: stores written
# earlier hold these hashes, so they must never change. (default, official profile, tiny profile)
# early_stop_acc changed on purpose when it gained bn_recalibrate (its score changed meaning: records
# of the old one must not be reused); before: 592bbf712068e5ef, 590337c78b2d7cc1, 608f130fd38d1467.
CONFIG_HASHES = {
    "early_stop_acc": ("cab28d450bc884cf", "d250c5052124f1a8", "e71fde0462c81eb3"),
    "expressivity": ("2ff0f45e477d0762", "2ff0f45e477d0762", "2ff0f45e477d0762"),
    "progressivity": ("df173bcc779106d1", "df173bcc779106d1", "df173bcc779106d1"),
    "trainability": ("67c5302705977260", "67c5302705977260", "67c5302705977260"),
    "vkdnw": ("c90db12b413f892f", "c90db12b413f892f", "c90db12b413f892f"),
    "fused": ("7d0aab76882991a9", "7d0aab76882991a9", "7d0aab76882991a9"),
    "cka": ("3d6a8a5a37612003", "3d6a8a5a37612003", "159f36319356e174"),
    "fisher": ("6b7f0646a48c667c", "6b7f0646a48c667c", "6b7f0646a48c667c"),
    "grad_norm": ("74407e88843f4090", "74407e88843f4090", "74407e88843f4090"),
    "grasp": ("1bfff4c709070068", "1bfff4c709070068", "1bfff4c709070068"),
    "jacov": ("b2580d22b3a20c76", "b2580d22b3a20c76", "b2580d22b3a20c76"),
    "macs": ("fb2659432a6e96e2", "fb2659432a6e96e2", "97bb184f77f8f4e8"),
    "mote": ("8e97917160a37a65", "066a950637380266", "73e7541940ae9561"),
    "mote-z": ("b3a932da8e491ce8", "c3f7ee56b952e756", "ad5990aa8e92edc0"),
    "naswot": ("4f37ea051f43e741", "4f37ea051f43e741", "4f37ea051f43e741"),
    "ntk": ("b3209cbf3f0b263c", "b3209cbf3f0b263c", "b3209cbf3f0b263c"),
    "params": ("5e338948dc286f64", "5e338948dc286f64", "a6b8384cbaeee41b"),
    "precomputed": ("e63961ceb8d4d5b5", "e63961ceb8d4d5b5", "e63961ceb8d4d5b5"),
    "snip": ("f3a320ad96c718ed", "f3a320ad96c718ed", "f3a320ad96c718ed"),
    "synflow": ("3c63604039094e6a", "3c63604039094e6a", "3c63604039094e6a"),
    "tse": ("73aa6cee495f8d78", "b44acc257ccbcb8d", "b574db585aa94101"),
    "zen": ("902eaae489616f48", "902eaae489616f48", "902eaae489616f48"),
    "zico": ("19d589055151a371", "19d589055151a371", "19d589055151a371"),
}


def test_config_hashes_unchanged():
    assert set(CONFIG_HASHES) == set(list_estimators())
    for name, (default, official, tiny) in CONFIG_HASHES.items():
        assert get_estimator(name).config_hash() == default, name
        assert get_estimator(name, **estimator_config(name, "paper")).config_hash() == default, name
        assert get_estimator(name, **estimator_config(name, "official")).config_hash() == official, name
        assert get_estimator(name, **estimator_config(name, "tiny")).config_hash() == tiny, name


def test_cli_score_writes_records_and_refuses_to_overwrite(tmp_path, shared_data, capsys):
    out = tmp_path / "scores.jsonl"
    args = ["score", "--space", "nb201", "--sample", "2", "--profile", "tiny", "--set", "images_per_class=6",
            "--set", "points=2", "--set", "epochs=1", "--proxy-data", str(shared_data / "proxy_cifar100_10"),
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(ln)["status"] == "ok" for ln in lines)
    before = out.read_text()
    assert main(args) == 2
    assert out.read_text() == before
    assert "exists" in capsys.readouterr().err


def test_cli_score_bad_input(shared_data, capsys):
    data = str(shared_data / "proxy_cifar100_10")
    assert main(["score", "--space", "nb201", "--arch", "|bogus~0|", "--proxy-data", data]) == 2
    assert main(["score", "--space", "nb201", "--sample", "1", "--estimator", "nope", "--proxy-data", data]) == 2
    assert main(["score", "--space", "nb201", "--sample", "1", "--proxy-data", "/does/not/exist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("mote score: error:") for e in err)


def test_proxy_data_roundtrip_npz(tmp_path, tiny_data):
    p = tmp_path / "rd.npz"
    tiny_data.save_npz(p)
    from mobile_mote.data.proxy_data import load_proxy_data
    back = load_proxy_data(p)
    assert isinstance(back, ProxyData) and np.array_equal(back.x, tiny_data.x) and back.labels == tiny_data.labels
