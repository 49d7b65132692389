"""VKDNW and AZ-NAS's components: faithful maths, seeded, and the same values shared or alone."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mobile_mote.estimators import get_estimator
from mobile_mote.estimators.zero_cost import estimate_many
from mobile_mote.estimators.zero_cost.common import no_inplace
from mobile_mote.estimators.zero_cost.feature_spectra import capture_features
from mobile_mote.estimators.zero_cost.vkdnw import _instance_bn, first_element_jacobian, fisher_spectrum_terms
from conftest import synthetic_proxy_data
from mobile_mote.search_spaces import get_space

pytestmark = pytest.mark.usefixtures("torch_one_thread")

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
AZ = ("expressivity", "progressivity", "trainability")


@pytest.fixture(scope="module")
def data():
    """Synthetic 32x32 images with 4 labels: the proxies need no real data to be exercised."""
    return synthetic_proxy_data(24)


def _instance_model(space, arch):
    torch.manual_seed(0)
    model = no_inplace(space.build(arch, num_classes=4, reduced=True)).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            _instance_bn(m)
    return model


@pytest.mark.parametrize("space_name,arch", [("macro", "10201010"), ("nb201", CELL)])
def test_first_element_jacobian_equals_autodiff(space_name, arch):
    """The hook arithmetic gives d logit / d (first element of every parameter tensor), per image,
    as torch.func differentiates it (conv with stride and groups, BN as instance norm, linear)."""
    from torch.func import functional_call, jacrev
    space = get_space(space_name)
    model = _instance_model(space, arch)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits, jac = first_element_jacobian(model, x)
    names = [n for n, _ in model.named_parameters()]
    base = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def f(firsts, xi):
        params = {n: torch.cat([v.reshape(1), base[n].flatten()[1:]]).reshape(base[n].shape)
                  for n, v in zip(names, firsts)}
        return functional_call(model, (params, buffers), (xi.unsqueeze(0),)).squeeze(0)

    firsts = [base[n].flatten()[0] for n in names]
    assert jac.shape == (2, 4, len(names))
    for i in range(2):
        ref = torch.stack(jacrev(f)(firsts, x[i]), dim=1).double()
        assert torch.allclose(ref, jac[i], atol=1e-5, rtol=1e-4)


def test_fisher_spectrum_terms_by_hand():
    """F = mean_n J^T (diag p - p p^T) J with smoothed p; entropy of its normalised deciles."""
    g = torch.Generator().manual_seed(0)
    logits, jac = torch.randn(5, 3, generator=g), torch.randn(5, 3, 4, generator=g, dtype=torch.float64)
    terms = fisher_spectrum_terms(logits, jac)
    p = torch.softmax(logits.double(), 1) * 0.95 + 0.05 / 3
    fisher = sum(jac[n].T @ (torch.diag(p[n]) - torch.outer(p[n], p[n])) @ jac[n] for n in range(5)) / 5
    lam = np.linalg.svd(fisher.numpy(), compute_uv=False)
    q = np.quantile(lam, [0.1 * k for k in range(1, 10)])
    t = q / q.sum()
    assert terms["vkdnw_dim"] == 4
    assert math.isclose(terms["vkdnw_entropy"], float(-(t * np.log(t)).sum()), rel_tol=1e-6)


def test_vkdnw_orders_by_tensor_count_then_entropy(data):
    space = get_space("macro")
    est = get_estimator("vkdnw", reduced=True, batch_size=4)
    small, big = est.estimate(space, "00000000", data, seed=0), est.estimate(space, "11000000", data, seed=0)
    for r in (small, big):
        assert r.status == "ok", r.error
        assert r.score == pytest.approx(r.terms["vkdnw_dim"] + r.terms["vkdnw_entropy"] / (2 * math.log(9)))
    n_tensors = len(list(space.build("11000000", reduced=True).parameters()))
    assert big.terms["vkdnw_dim"] == n_tensors and big.score > small.score
    again = est.estimate(space, "11000000", data, seed=0)
    assert again.score == big.score and again.terms["vkdnw_deciles"] == big.terms["vkdnw_deciles"]


def test_identity_layers_are_not_feature_maps():
    """A stride-1 identity passes its input through: it is no feature map (nor a trainability pair)."""
    space = get_space("macro")
    model = space.build("10000000", reduced=True)
    feats, handles = capture_features(model)
    model(torch.randn(2, 3, 32, 32))
    for h in handles:
        h.remove()
    # stem, layer 0 (MB), the stride-2 identities of layers 2 and 5 (1x1 convs); layers 1, 3, 4, 6, 7 pass through
    assert len(feats) == 4


def test_az_components_shared_equal_alone(data):
    """The three components share one forward in estimate_many and equal three separate estimates."""
    space = get_space("nb201")
    shared = estimate_many(AZ, space, CELL, data, seed=2, reduced=True, batch_size=8)
    for name in AZ:
        alone = get_estimator(name, reduced=True, batch_size=8).estimate(space, CELL, data, seed=2)
        assert alone.status == "ok" and shared[name].status == "ok"
        assert shared[name].score == alone.score
    assert [shared[n].terms["shared_pass"] for n in AZ] == [False, True, True]
    t = shared["trainability"].terms
    assert t["trainability_pairs"] == t["feature_maps"] - 1 and t["trainability"] <= 0


def test_expressivity_is_summed_covariance_entropy(data):
    """Recomputed by hand from the captured feature maps of the same seeded, Kaiming-initialised network."""
    from mobile_mote.estimators.zero_cost.common import draw_batch, kaiming_fan_in
    from mobile_mote.estimators.base import build_seeded
    space = get_space("macro")
    rec = get_estimator("expressivity", reduced=True, batch_size=8).estimate(space, "12000000", data, seed=1)
    model = no_inplace(build_seeded(space, "12000000", 1, 4, True))
    kaiming_fan_in(model.train(), "12000000", 1)
    x, _ = draw_batch(data, "12000000", 1, 8)
    feats, handles = capture_features(model)
    model(x)
    total = 0.0
    for f in feats:
        v = f.detach().double().permute(0, 2, 3, 1).reshape(-1, f.shape[1])
        s = np.linalg.eigvalsh(np.cov(v.numpy().T, bias=True))
        p = s / s.sum()
        total += float(-(p * np.log(p + 1e-8)).sum())
    assert rec.score == pytest.approx(total, rel=1e-6)


def test_naswot_kernel_is_the_hamming_kernel(data):
    """naswot's one-product kernel equals c c^T + (1-c)(1-c)^T summed over the layers, exactly."""
    space = get_space("nb201")
    est = get_estimator("naswot", reduced=True, batch_size=8)
    rec = est.estimate(space, CELL, data, seed=0)
    from mobile_mote.estimators.base import build_seeded
    from mobile_mote.estimators.zero_cost.common import _act_types, draw_batch
    from mobile_mote.estimators.base import arch_seed
    model = build_seeded(space, CELL, 0, 4, True).train()
    x, _ = draw_batch(data, CELL, 0, 8)
    k = torch.zeros((8, 8), dtype=torch.float64)

    def pre(mod, inp):
        nonlocal k
        c = (inp[0].detach().reshape(8, -1) > 0).double()
        k += c @ c.T + (1 - c) @ (1 - c).T

    hs = [m.register_forward_pre_hook(pre) for m in model.modules() if isinstance(m, _act_types())]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(arch_seed(CELL, 0) ^ 0x5EED)
        model(x)
    for h in hs:
        h.remove()
    assert rec.score == float(torch.linalg.slogdet(k)[1])


def test_macro_network_key_names_3969_networks():
    from mobile_mote.benchmarks.macro import benchmark_key
    space = get_space("macro")
    keys = list(space.enumerate())
    assert len({space.network_key(k) for k in keys}) == 3969
    assert space.network_key("22010001") == space.network_key("22010010") == "22010010"
    assert all(space.network_key(k) == benchmark_key(k) for k in keys[::97])
    assert get_space("nb201").network_key(CELL) == CELL  # no equivalence declared: the canonical string


def test_component_table_resumes_and_expands_keys(tmp_path, data):
    """One record per network, appended and resumed; one row per key, keys of a network alike."""
    from mobile_mote.fusion import read_component_table
    from mobile_mote.studies.components import read_records, run_components, write_table
    space = get_space("macro")
    out = tmp_path / "c.jsonl"
    assert run_components(space, ["synflow"], data, out, limit=3, progress=False) == 3
    assert run_components(space, ["synflow"], data, out, limit=3, progress=False) == 0
    recs = read_records(out)
    table = tmp_path / "t.csv.gz"
    n = write_table(space, recs, table)
    keys = [k for k in space.enumerate() if space.network_key(k) in recs]
    assert n == len(keys) > 3
    archs, cols = read_component_table(table)
    assert archs == keys and set(cols) == {"macs", "params", "synflow"}
    by_net = {}
    for a, v in zip(archs, cols["synflow"]):
        by_net.setdefault(space.network_key(a), set()).add(v)
    assert all(len(v) == 1 for v in by_net.values())
    assert cols["macs"] == [float(space.macs(a)) for a in archs]
    # the search table's precomputed scores: one component alone is that component, several are fused
    from mobile_mote.fusion import log_rank_sum
    from mobile_mote.studies.components import rule_scores_rows
    rows = [ln.split(",") for ln in rule_scores_rows(space, recs, ["synflow"])[1:]]
    assert [r[0] for r in rows] == keys and [float(r[1]) for r in rows] == cols["synflow"]
    fused = [float(ln.split(",")[1]) for ln in rule_scores_rows(space, recs, ["synflow", "macs"])[1:]]
    assert fused == pytest.approx(log_rank_sum({"synflow": cols["synflow"], "macs": cols["macs"]}))


def test_shared_pass_equals_one_at_a_time(data):
    """Every proxy of one network through estimate_many gives the records of one-at-a-time calls."""
    space = get_space("macro")
    names = ["synflow", "jacov", "snip", "grad_norm", "fisher", "naswot", *AZ, "vkdnw"]
    cfg = {"reduced": True, "batch_size": 8}
    shared = estimate_many(names, space, "12100120", data, seed=1, **cfg)
    assert list(shared) == names
    assert shared["jacov"].terms["shared_pass"] and shared["grad_norm"].terms["shared_pass"]
    for name in names:
        alone = get_estimator(name, **{k: v for k, v in cfg.items() if not (name == "synflow" and k == "batch_size")})
        rec = alone.estimate(space, "12100120", data, seed=1)
        assert rec.status == shared[name].status == "ok", (name, rec.error)
        assert rec.score == shared[name].score, name


def test_imported_components_fill_scored_networks_only(tmp_path, data):
    """A proxy's per-key records are imported where the key is its network's key at the default seed and
    configuration, and only onto networks the component run scored."""
    import json

    from mobile_mote.studies.components import import_records, read_records, run_components
    space = get_space("macro")
    est = get_estimator("params")
    rows = [{"arch": a, "seed": 0, "config_hash": est.config_hash(), "status": "ok", "score": float(i), "seconds": 0.1}
            for i, a in enumerate(("10000000", "10001000", "12000000"))]  # 10001000 is no network key
    rows.append(dict(rows[0], seed=3))
    per_key = tmp_path / "r.params.jsonl"
    per_key.write_text("".join(json.dumps(r) + "\n" for r in rows))
    imported = import_records(space, per_key, "params")
    assert [r["network"] for r in imported] == ["10000000", "12000000"]
    out = tmp_path / "c.jsonl"
    (tmp_path / "c.shard_imported.jsonl").write_text("".join(json.dumps(r) + "\n" for r in imported))
    order = __import__("mobile_mote.studies.components", fromlist=["network_order"]).network_order(space)
    run_components(space, ["synflow"], data, out, limit=1, progress=False)
    recs = read_records(out)
    assert set(recs) == {order[0]}  # imported values never add networks of their own
    if order[0] in ("10000000", "12000000"):
        assert "params" in recs[order[0]]["components"]


def test_vkdnw_keeps_timm_norm_activations_and_runs_on_block_spaces(data):
    """timm's BatchNormAct2d keeps its activation after the per-image norm; vkdnw and AZ-NAS run on mbv2."""
    from timm.layers import BatchNormAct2d
    bn = BatchNormAct2d(4, act_layer=torch.nn.ReLU6)
    _instance_bn(bn)
    assert float(bn(torch.randn(2, 4, 5, 5)).detach().min()) >= 0.0
    space = get_space("mbv2")
    arch = space.default_arch()
    for name in ("vkdnw", "expressivity"):
        rec = get_estimator(name, reduced=True, batch_size=4).estimate(space, arch, data, seed=0)
        assert rec.status == "ok", (name, rec.error)
