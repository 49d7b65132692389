"""MODNAS parts: MGDA, the samplers, device embeddings, the latency predictor, the supernet, and the
hypernetwork's training (preferences -> different cells), resume and CLI."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from mobile_mote.errors import InputError
from mobile_mote.modnas import (REFERENCE_ARCHS, TEST_DEVICES, TRAIN_DEVICES, DeviceLatencies, MetaHypernetwork,
                                ModnasTrainer, PredictorConfig, config_for, embed_reference_latencies,
                                evaluate_predictor, min_norm_weights, rays_on_quarter_circle, reinmax, sample_ops,
                                train_latency_predictor)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# -- MGDA ------------------------------------------------------------------------------------------------
def test_min_norm_two_gradients_hand_cases():
    assert np.allclose(min_norm_weights([torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])]), [0.5, 0.5])
    # same direction: all weight on the shorter vector (the min-norm point of the segment)
    assert np.allclose(min_norm_weights([torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])]), [1.0, 0.0])
    # (1, 0) and (1, 1): the foot of the perpendicular from the origin is (1, 0) itself
    assert np.allclose(min_norm_weights([torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])]), [1.0, 0.0])


def test_min_norm_many_gradients_matches_a_dense_simplex_grid():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(4, 6)) + np.array([1.0, 0, 0, 0, 0, 0])
    w = min_norm_weights([torch.tensor(g) for g in G])
    assert w.min() >= -1e-12 and abs(w.sum() - 1) < 1e-9
    best = np.inf
    steps = np.linspace(0, 1, 41)
    for a, b, c in itertools.product(steps, steps, steps):
        if a + b + c <= 1 + 1e-12:
            v = np.array([a, b, c, 1 - a - b - c]) @ G
            best = min(best, float(v @ v))
    found = float((w @ G) @ (w @ G))
    assert found <= best + 1e-6
    # the combined direction is a descent direction for every task: g_t . v >= |v|^2
    v = w @ G
    assert np.all(G @ v >= v @ v - 1e-6)


# -- samplers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["reinmax", "gumbel_st"])
def test_samplers_are_one_hot_follow_the_softmax_and_pass_gradients(sampler):
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5, 0.0]], requires_grad=True)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_ops(logits, 1.0, sampler, g)[0].detach() for _ in range(4000)])
    assert torch.all((draws == 0) | (draws == 1)) and torch.all(draws.sum(-1) == 1)
    freq = draws.mean(0)
    assert torch.allclose(freq, logits.detach().softmax(-1)[0], atol=0.03)
    s = sample_ops(logits, 1.0, sampler, g)
    (s * torch.arange(5.0)).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_reinmax_gradient_matches_its_closed_form():
    # ReinMax's backward for a linear loss c . D with sample D: 2 J(pi1) c - J(pi0) c / 2, where
    # pi1 = (D + softmax(theta / tau)) / 2 enters through softmax's Jacobian J(p) = diag(p) - p p^T
    theta = torch.tensor([0.3, -0.2, 0.1, 0.0, 0.4], requires_grad=True)
    c = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0])
    tau = 2.0
    out = reinmax(theta, tau, torch.Generator().manual_seed(1))
    (out * c).sum().backward()
    D = out.detach()
    pi0 = theta.detach().softmax(-1)
    half = (D + (theta.detach() / tau).softmax(-1)) / 2

    def J(p):
        return torch.diag(p) - torch.outer(p, p)
    expected = 2 * J(half) @ c - 0.5 * J(pi0) @ c
    assert torch.allclose(theta.grad, expected, atol=1e-6)
    theta.grad = None
    (theta.softmax(-1) * c).sum().backward()  # plain straight-through differs
    assert not torch.allclose(theta.grad, expected, atol=1e-4)


# -- devices and the latency predictor ---------------------------------------------------------------------
def test_embedding_is_min_max_normalised_and_rejects_flat_devices():
    e = embed_reference_latencies(np.arange(10.0) * 2 + 5)
    assert e.min() == 0 and e.max() == 1 and e.shape == (10,)
    with pytest.raises(InputError, match="all equal"):
        embed_reference_latencies(np.ones(10))
    with pytest.raises(InputError, match="10 finite"):
        embed_reference_latencies(np.ones(3))


@pytest.fixture(scope="module")
def nb201_latencies(shared_data, nb201_benchmark_csv):
    from mobile_mote.search_spaces import get_space
    space = _nb201_indexed(nb201_benchmark_csv)
    return DeviceLatencies.from_csv(shared_data / "nb201" / "latency_ms.csv", space, TRAIN_DEVICES + TEST_DEVICES)


def test_device_split_and_reference_cells(nb201_latencies):
    assert len(TRAIN_DEVICES) == 13 and len(TEST_DEVICES) == 6 and not set(TRAIN_DEVICES) & set(TEST_DEVICES)
    assert len(set(REFERENCE_ARCHS)) == 10
    for d in ("pixel2", "1080ti_1"):
        ref = nb201_latencies.normalised(d)[[nb201_latencies.space.index_of(a) for a in REFERENCE_ARCHS]]
        assert np.allclose(ref, nb201_latencies.embedding(d), atol=1e-6)


def test_latency_predictor_ranks_an_unseen_device(nb201_latencies):
    model, rec = train_latency_predictor(nb201_latencies, TRAIN_DEVICES, PredictorConfig(epochs=2))
    assert rec["train_mse"][-1] < rec["train_mse"][0]
    ev = evaluate_predictor(model, nb201_latencies, ["gold_6226"])
    assert ev["gold_6226"]["spearman"] > 0.8  # zero-shot: the device was never trained on


# -- supernet and hypernetwork ---------------------------------------------------------------------------
def test_supernet_runs_one_cell_or_all_and_passes_op_gradients():
    from mobile_mote.modnas.supernet import NB201Supernet
    torch.manual_seed(0)
    net = NB201Supernet(num_classes=3, channels=4, cells_per_stage=1)
    x = torch.randn(2, 3, 8, 8)
    w = torch.zeros(6, 5)
    w[:, 3] = 1.0  # every edge nor_conv_3x3
    fast = net(x, w)
    w_grad = w.clone().requires_grad_(True)
    full = net(x, w_grad)
    assert torch.allclose(fast, full, atol=1e-5)  # the one-op path computes the same network
    full.sum().backward()
    assert w_grad.grad is not None and w_grad.grad[:, 1:].abs().sum() > 0
    assert torch.all(w_grad.grad[:, 0] == 0)  # 'none' outputs zeros: no signal through its own weight


def test_hypernetwork_bins_preferences_and_mixes_devices():
    torch.manual_seed(0)
    h = MetaHypernetwork(prototypes=3, intervals=11, init_std=1.0)
    d = torch.rand(1, 10)
    a = h(torch.tensor([[0.0, 1.0]]), d)
    b = h(torch.tensor([[1.0, 0.0]]), d)
    assert a.shape == (1, 6, 5) and not torch.allclose(a, b)
    assert torch.allclose(h(torch.tensor([[0.51, 0.49]]), d), h(torch.tensor([[0.54, 0.46]]), d))  # same bin
    assert not torch.allclose(h(torch.tensor([[1.0, 0.0]]), torch.rand(1, 10)), b)


@pytest.fixture(scope="module")
def proxy_train(shared_data):
    from mobile_mote.data.proxy_data import load_proxy_data
    return load_proxy_data(shared_data / "proxy_cifar100_10" / "train").subset(40)


def _tiny_trainer(nb201_latencies, data, out, **overrides):
    return ModnasTrainer(config_for("tiny", **overrides), data, nb201_latencies, out)


def test_hypernetwork_maps_preferences_to_different_cells(nb201_latencies, proxy_train, tmp_path):
    res = _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "run").run(progress=False)
    assert (tmp_path / "run" / "fronts.json").is_file() and (tmp_path / "run" / "hypernetwork.pt").is_file()
    lat = nb201_latencies
    ratios = []
    for dev in TEST_DEVICES:
        f = res["fronts"][dev]
        assert f["split"] == "test" and len(f["archs"]) == 8 and f["distinct"] >= 2
        true_ms = np.array([lat.ms[dev][lat.space.index_of(a)] for a in f["archs"]])
        # rays go from accuracy-only (first) to latency-only (last): the latency end must be faster
        ratios.append(true_ms[-3:].mean() / true_ms[:3].mean())
    assert np.mean(ratios) < 0.8, ratios


def test_kill_and_resume_gives_the_same_hypernetwork(nb201_latencies, proxy_train, tmp_path, monkeypatch):
    straight = _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "a", epochs=2).run(progress=False)

    t = _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "b", epochs=2)
    real_step, calls = t._supernet_step, {"n": 0}

    def dying_step(*a, **k):
        if t.epoch == 1:  # the first epoch is checkpointed; die inside the second
            raise KeyboardInterrupt
        calls["n"] += 1
        return real_step(*a, **k)
    monkeypatch.setattr(t, "_supernet_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        t.run(progress=False)
    assert not (tmp_path / "b" / "fronts.json").exists() and (tmp_path / "b" / "checkpoint.pt").is_file()
    with pytest.raises(InputError, match="--resume"):
        _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "b", epochs=2).run(progress=False)
    with pytest.raises(InputError, match="other settings"):
        _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "b", epochs=3).run(resume=True, progress=False)
    assert calls["n"] > 0  # the first epoch really ran before the kill
    resumed = _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "b", epochs=2).run(resume=True, progress=False)
    assert [h["train_ce"] for h in resumed["history"]] == pytest.approx([h["train_ce"] for h in straight["history"]])
    assert resumed["fronts"] == straight["fronts"]


def test_a_run_folder_is_held_as_a_searchs_is(nb201_latencies, proxy_train, tmp_path, monkeypatch):
    """--out is locked for the session (a second one is refused at once, before any training) and a session
    that fails before writing anything removes the folders it made."""
    from mobile_mote.search.session import run_folder
    out = tmp_path / "held"
    with run_folder(out, str(out)):
        with pytest.raises(InputError, match="in progress in another process.*--out"):
            _tiny_trainer(nb201_latencies, proxy_train, out).run(progress=False)
    t = _tiny_trainer(nb201_latencies, proxy_train, tmp_path / "new" / "run")

    def broken():
        raise RuntimeError("broken")
    monkeypatch.setattr(t, "_build", broken)
    with pytest.raises(RuntimeError):
        t.run(progress=False)
    assert not (tmp_path / "new").exists()


def test_config_refuses_bad_options():
    assert config_for("paper").lr_scale_by_devices and config_for("paper").arch_lr_schedule == "constant"
    for bad, msg in (({"colour": 1}, "colour"), ({"channels": "abc"}, "channels"), ({"tau_min": 0.0}, "tau_min"),
                     ({"predictor": {"foo": 1}}, "predictor_foo"), ({"predictor": {"batch_size": 0}}, "predictor"),
                     ({"devices_per_step": -1}, "devices_per_step"), ({"arch_lr_schedule": "step"}, "arch_lr_schedule")):
        with pytest.raises(InputError, match=msg):
            config_for("tiny", **bad)
    with pytest.raises(InputError, match="unknown MODNAS profile"):
        config_for("huge")


def test_rays_span_the_quarter_circle():
    r = rays_on_quarter_circle(24)
    assert r.shape == (24, 2) and np.allclose((r ** 2).sum(1), 1)
    assert np.allclose(r[0], [1, 0]) and np.allclose(r[-1], [0, 1], atol=1e-12)


# -- CLI ---------------------------------------------------------------------------------------------------
def test_cli_modnas_runs_and_refuses_bad_input(shared_data, nb201_benchmark_csv, tmp_path, capsys):
    from mobile_mote.cli import main
    base = ["modnas", "--latency-table", str(shared_data / "nb201" / "latency_ms.csv"),
            "--benchmark", str(nb201_benchmark_csv), "--proxy-data", str(shared_data / "proxy_cifar100_10" / "train"),
            "--profile", "tiny", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "m"), "--set", "epochs=1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["device"] for x in lines} == set(TEST_DEVICES)
    fronts = json.loads((tmp_path / "m" / "fronts.json").read_text())
    assert fronts["config"]["epochs"] == 1 and len(fronts["fronts"]) == 19
    for bad, msg in ((["--test-devices", "toaster"], "toaster"), (["--set", "colour=blue"], "colour"),
                     (["--set", "seed=3"], "--seed"), (["--test-devices", ","], "at least one"),
                     (["--test-devices", "pixel3"], "overlap"), ([], "--resume")):
        out = str(tmp_path / "m") if msg == "--resume" else str(tmp_path / "x")
        assert main(base + ["--out", out, "--set", "epochs=1"] + bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


class _RunsCode:
    """Pickled, it asks the loader to call ``open(marker, "w")``: code a weights-only load must never run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("planted", ["checkpoint.pt", "latency_predictor.pt"])
def test_cli_modnas_refuses_a_planted_pickle_in_out(planted, shared_data, nb201_benchmark_csv, tmp_path, capsys):
    """--out's own files are loaded weights-only: a file there that would run code is refused in one line, exit 2,
    and its code never runs (a resumed run of the tiny profile still resumes:
    test_kill_and_resume_gives_the_same_hypernetwork)."""
    from mobile_mote.cli import main
    out, marker = tmp_path / "m", tmp_path / "ran"
    out.mkdir()
    torch.save({"config": _RunsCode(marker), "weights": {}, "record": {}}, out / planted)
    rc = main(["modnas", "--latency-table", str(shared_data / "nb201" / "latency_ms.csv"), "--benchmark",
               str(nb201_benchmark_csv), "--proxy-data", str(shared_data / "proxy_cifar100_10" / "train"),
               "--profile", "tiny", "--quiet", "--set", "epochs=1", "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"mote modnas: error: cannot read {out / planted}: ") and "refused" in err[0], err
    assert not marker.exists()  # the planted object was never called
    assert not (out / "fronts.json").exists()


def _nb201_indexed(benchmark_csv):
    """The nb201 space bound to the benchmark's own index order (index_of / arch_at)."""
    from mobile_mote.benchmarks.nb201 import NB201Index
    from mobile_mote.search_spaces import get_space
    return NB201Index.from_csv(benchmark_csv).bind(get_space("nb201"))
