"""Search spaces: strings, encodings, distance, neighbourhoods, the NB201 table, builders."""
from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest
import torch

from mobile_mote.search_spaces import ArchError, get_space, list_spaces
from mobile_mote.search_spaces.block_space import SKIP

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SPACES = ("nb201", "mbv2", "mbv3", "macro")
BLOCK_SPACES = ("mbv2", "mbv3")
PRESETS = {"mbv2": "mobilenetv2_100", "mbv3": "mobilenetv3_large_100"}
ONE = math.sqrt(2) / 2  # one slot changed under one-hot X


@pytest.fixture(scope="module", params=SPACES)
def space(request):
    return get_space(request.param)


def _samples(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _blocks(text: str) -> list[str]:
    """The per-block strings of a canonical block-space architecture."""
    return [b for stage in text.split("|") for b in stage.split(",")]


def _first_in_stage(space) -> list[bool]:
    return [j == 0 for st in space.cfg.stages for j in range(st.depth)]


# -- strings ------------------------------------------------------------------------------------
def test_registry_lists_every_space():
    assert list_spaces() == sorted(SPACES)
    with pytest.raises(ArchError, match="accepted"):
        get_space("resnet")


def test_round_trips(space):
    archs = _samples(space, 100) + [space.default_arch()]
    for text in archs:
        canon = space.canonical(text)
        parsed = space.from_str(canon)
        assert space.to_str(parsed) == canon
        assert space.from_str(space.to_str(parsed)) == parsed
        assert space.canonical(canon) == canon
        if text != space.default_arch():
            assert canon == text  # sample() returns canonical strings


def test_nb201_enumerate_is_the_whole_space():
    sp = get_space("nb201")
    archs = list(sp.enumerate())
    assert len(archs) == sp.size() == 15625 == len(set(archs))
    assert all(sp.canonical(a) == a for a in archs[::97])


@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_block_strings_are_timm_arch_def(name):
    sp = get_space(name)
    for text in _samples(sp, 20) + [sp.canonical(PRESETS[name])]:
        blocks = _blocks(text)
        arch_def = sp.arch_def(text)
        assert arch_def[0] == [sp.cfg.first_block]
        searched = arch_def[1:1 + len(sp.cfg.stages)]
        i = 0
        for st, built in zip(sp.cfg.stages, searched):
            assert built == [b for b in blocks[i:i + st.depth] if b != SKIP]
            i += st.depth
        if sp.cfg.last_block:
            assert arch_def[-1] == [sp.cfg.last_block]
        # Short aliases ('k5e4se') name the same architecture.
        short = [SKIP if op == SKIP else f"k{op[0]}e{op[1]:g}" + ("se" if op[2] else "") for op in sp.from_str(text)]
        stages, i = [], 0
        for st in sp.cfg.stages:
            stages.append(",".join(short[i:i + st.depth]))
            i += st.depth
        assert sp.canonical("|".join(stages)) == text


@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_reduced_arch_def_drops_the_first_stride(name):
    sp = get_space(name)
    full, red = sp.arch_def(PRESETS[name]), sp.arch_def(PRESETS[name], reduced=True)
    s2 = sp._first_stride2_stage()
    assert "_s2_" in full[1 + s2][0]
    assert red[1 + s2][0] == full[1 + s2][0].replace("_s2_", "_s1_")
    assert red[:1 + s2] + red[2 + s2:] == full[:1 + s2] + full[2 + s2:]


@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_plan_chains_channels(name):
    sp = get_space(name)
    for text in _samples(sp, 10, seed=3):
        for reduced in (False, True):
            stem, blocks, feats = sp.plan(text, reduced=reduced)
            assert blocks[0].in_chs == stem and feats > 0
            assert all(a.out_chs == b.in_chs for a, b in zip(blocks, blocks[1:]))
            n_searched = sum(op != SKIP for op in sp.from_str(text))
            assert len(blocks) == 1 + n_searched + (1 if sp.cfg.last_block else 0)


BAD = {
    "nb201": ["garbage", "|nor_conv_3x3~0|+|none~0|none~1|", "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
              "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "99999", ("none",) * 5, 42],
    "mbv2": ["garbage", "mobilenetv2_050", "k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6",
             "k4e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6",
             "skip,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6",
             "ir_r1_k3_s1_e6_c24,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6",
             "conv9,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6"],
    "mbv3": ["", "k3e4,k3e3|k5e3se,k5e3se,k5e3se|k3e6,k3e2.5,k3e2.3,k3e2.3|k3e6se,k3e6se|k5e6se,k5e6se,k5e6se,k5e6se",
             "k3e4,k3e3|skip,k5e3se,k5e3se|k3e6,k3e2.5,k3e2.3,k3e2.3|k3e6se,k3e6se|k5e6se,k5e6se,k5e6se",
             "k3e40,k3e3|k5e3se,k5e3se,k5e3se|k3e6,k3e2.5,k3e2.3,k3e2.3|k3e6se,k3e6se|k5e6se,k5e6se,k5e6se"],
}


@pytest.mark.parametrize("name,bad", [(n, b) for n, bs in BAD.items() for b in bs])
def test_bad_architectures_raise_arch_error(name, bad):
    with pytest.raises(ArchError) as err:
        get_space(name).from_str(bad)
    assert "\n" not in str(err.value) and str(err.value)


@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_first_block_of_a_stage_is_never_skipped(name):
    sp = get_space(name)
    first = _first_in_stage(sp)
    skipped_rest = 0
    for text in _samples(sp, 200, seed=5):
        blocks = _blocks(text)
        assert not any(b == SKIP for b, f in zip(blocks, first) if f)
        skipped_rest += sum(b == SKIP for b, f in zip(blocks, first) if not f)
    assert skipped_rest > 0  # depth is searched
    choices = sp.slot_choices(None)
    assert all((SKIP in c) != f for c, f in zip(choices, first))


# -- encoding, distance, neighbourhoods ------------------------------------------------------------
def test_encodings_are_one_hot_on_a_fixed_dag(space):
    archs = _samples(space, 20, seed=7)
    A0, X0 = space.encode(archs[0])
    for a in archs:
        A, X = space.encode(a)
        assert A.shape == A0.shape and X.shape == X0.shape and np.array_equal(A, A0)
        assert np.array_equal(X.sum(axis=1), np.ones(len(X)))
        assert np.allclose(np.triu(A, 1), A)  # a DAG in topological order


def test_nb201_distance_by_edges_changed():
    sp = get_space("nb201")
    base = ("nor_conv_3x3",) * 6
    one = ("skip_connect",) + base[1:]
    two = ("skip_connect", "none") + base[2:]
    three = ("skip_connect", "none", "avg_pool_3x3") + base[3:]
    assert sp.distance(base, base) == 0
    assert sp.distance(base, one) == pytest.approx(0.70710678, abs=1e-6)
    assert sp.distance(base, two) == pytest.approx(1.0, abs=1e-6)
    assert sp.distance(base, three) == pytest.approx(math.sqrt(6) / 2, abs=1e-6)
    assert sp.distance(sp.to_str(one), sp.to_str(base)) == sp.distance(base, one)


def test_nb201_neighbourhood_is_264_cells_within_distance_one():
    sp = get_space("nb201")
    rng = np.random.default_rng(11)
    for arch in [sp.default_arch()] + [sp.sample(rng) for _ in range(3)]:
        ops = sp.from_str(arch)
        nbrs = sp.neighbours(arch)
        assert len(nbrs) == len(set(nbrs)) == 264 == 6 * 4 + math.comb(6, 2) * 4 * 4
        assert arch not in nbrs
        # Brute force over the whole space: exactly the cells with 1 or 2 edges changed.
        expected = {sp.to_str(o) for o in itertools.product(sp.ops, repeat=6)
                    if 1 <= sum(a != b for a, b in zip(o, ops)) <= 2}
        assert set(nbrs) == expected
        d = np.array([sp.distance(arch, n) for n in nbrs])
        assert np.all(d > 0) and np.all(d <= 1.0 + 1e-9)
        assert np.sum(np.isclose(d, ONE)) == 24
        assert len(sp.neighbours(arch, max_distance=0.75)) == 24


@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_block_neighbourhood(name):
    sp = get_space(name)
    first = _first_in_stage(sp)
    n_ops = len(sp.cfg.kernel_choices) * len(sp.cfg.expansion_choices) * len(sp.cfg.se_choices)
    arch = _samples(sp, 1, seed=13)[0]
    blocks = _blocks(arch)
    nbrs = sp.neighbours(arch)
    # Every sampled op is a choice: a first block has n_ops - 1 alternatives, the others also 'skip'.
    alts = [n_ops - 1 + (0 if f else 1) for f in first]
    expected = sum(alts) + sum(a * b for a, b in itertools.combinations(alts, 2))
    assert len(nbrs) == len(set(nbrs)) == expected
    changed = np.array([sum(x != y for x, y in zip(_blocks(n), blocks)) for n in nbrs])
    assert changed.min() == 1 and changed.max() == 2
    assert np.sum(changed == 1) == sum(alts)
    for n in nbrs:
        assert not any(b == SKIP for b, f in zip(_blocks(n), first) if f)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(nbrs), 200, replace=False):
        assert sp.distance(arch, nbrs[i]) == pytest.approx(math.sqrt(2 * changed[i]) / 2)
        assert sp.canonical(nbrs[i]) == nbrs[i]
    # A third changed block is beyond distance 1.
    two = nbrs[int(np.flatnonzero(changed == 2)[0])]
    j = next(i for i, (x, y) in enumerate(zip(_blocks(two), blocks)) if x == y)
    far = list(sp.from_str(two))
    far[j] = next(o for o in sp.slot_choices(None)[j] if o != far[j])
    assert sp.distance(arch, tuple(far)) == pytest.approx(math.sqrt(6) / 2)
    assert sp.to_str(tuple(far)) not in set(nbrs)


@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_preset_neighbourhood_respects_the_skeleton(name):
    sp = get_space(name)
    preset = sp.canonical(PRESETS[name])
    first = _first_in_stage(sp)
    nbrs = sp.neighbours(PRESETS[name])
    assert nbrs and preset not in nbrs
    for n in nbrs[:: max(1, len(nbrs) // 2000)]:
        changed = sum(x != y for x, y in zip(_blocks(n), _blocks(preset)))
        assert 1 <= changed <= 2
        assert not any(b == SKIP for b, f in zip(_blocks(n), first) if f)


def test_mutate_changes_one_slot(space):
    rng = np.random.default_rng(17)
    for arch in _samples(space, 20, seed=19) + [space.default_arch()]:
        child = space.mutate(arch, rng)
        assert child != space.canonical(arch) and space.canonical(child) == child
        assert space.distance(arch, child) == pytest.approx(ONE)


def test_sampling_is_deterministic(space):
    assert _samples(space, 5, seed=23) == _samples(space, 5, seed=23)
    assert len(set(_samples(space, 50, seed=23))) > 40


# -- the NB201 benchmark table ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb201_rows(nb201_benchmark_csv):
    with open(nb201_benchmark_csv, newline="") as f:
        return list(csv.DictReader(f))


def test_every_nb201_index_matches_the_benchmark(nb201_rows, nb201_benchmark_csv):
    sp = _nb201_indexed(nb201_benchmark_csv)
    assert len(nb201_rows) == 15625
    assert sorted(int(r["index"]) for r in nb201_rows) == list(range(15625))
    for r in nb201_rows:
        i = int(r["index"])
        assert sp.to_str(sp.arch_at(i)) == r["arch"]
        assert sp.index_of(r["arch"]) == i
    from mobile_mote.errors import InputError
    with pytest.raises(InputError, match="out of range"):
        sp.arch_at(15625)


def test_nb201_costs_equal_the_benchmark_for_every_cell(nb201_rows):
    """Our params == the benchmark's; our MACs == its FLOPs minus the classifier bias adds."""
    sp = get_space("nb201")
    rows = [r for r in nb201_rows if r["cifar10_params_m"] and r["cifar10_flops_m"]]
    assert len(rows) >= 15600, "the benchmark lacks costs for more cells than expected"
    for nc, prefix in ((10, "cifar10"), (100, "cifar100")):
        want_params = np.rint(np.array([float(r[f"{prefix}_params_m"]) for r in rows]) * 1e6).astype(np.int64)
        want_macs = np.rint(np.array([float(r[f"{prefix}_flops_m"]) for r in rows]) * 1e6).astype(np.int64) - nc
        ops = [sp.from_str(r["arch"]) for r in rows]
        got_params = np.array([sp.params(o, num_classes=nc) for o in ops], dtype=np.int64)
        got_macs = np.array([sp.macs(o, num_classes=nc) for o in ops], dtype=np.int64)
        bad_p = np.flatnonzero(got_params != want_params)
        bad_m = np.flatnonzero(got_macs != want_macs)
        assert bad_p.size == 0, f"{prefix}: {bad_p.size} params differ, first {rows[bad_p[0]]['index']}"
        assert bad_m.size == 0, f"{prefix}: {bad_m.size} MACs differ, first {rows[bad_m[0]]['index']}"


# -- builders ---------------------------------------------------------------------------------------------
@torch.no_grad()
def test_nb201_forward_shapes():
    sp = get_space("nb201")
    x = torch.randn(2, 3, 32, 32)
    for arch in _samples(sp, 2, seed=29) + [("none",) * 6, ("skip_connect",) * 6]:
        for reduced in (False, True):
            model = sp.build(arch, num_classes=7, reduced=reduced).eval()
            assert model(x).shape == (2, 7)


@torch.no_grad()
@pytest.mark.parametrize("name", BLOCK_SPACES)
def test_block_forward_shapes(name):
    sp = get_space(name)
    for arch in _samples(sp, 2, seed=31) + [PRESETS[name]]:
        full = sp.build(arch).eval()
        feats = full.forward_features(torch.randn(1, 3, 64, 64))
        assert feats.shape[-2:] == (2, 2)
        assert full.forward_head(feats).shape == (1, 1000)
        reduced = sp.build(arch, num_classes=10, reduced=True).eval()
        feats = reduced.forward_features(torch.randn(2, 3, 32, 32))
        assert feats.shape[-2:] == (4, 4)  # total stride 8 on 32x32
        assert reduced.forward_head(feats).shape == (2, 10)
    model = sp.build(PRESETS[name]).eval()
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


# -- the presets against timm ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,macs,params", [
    ("mbv2", 300_774_272, 3_504_872),
    ("mbv3", 216_589_760, 5_483_032),
])
def test_presets_match_timm(name, macs, params):
    timm = pytest.importorskip("timm")
    sp = get_space(name)
    preset = PRESETS[name]
    assert sp.macs(preset) == macs
    assert round(sp.macs(preset) / 1e6, 1) == {"mbv2": 300.8, "mbv3": 216.6}[name]
    assert sp.params(preset) == params
    ours = sp.build(preset).state_dict()
    ref = timm.create_model(preset, pretrained=False).state_dict()
    assert list(ours) == list(ref)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    assert sum(v.numel() for k, v in ref.items() if "running" not in k and "num_batches" not in k) == params


def _nb201_indexed(benchmark_csv):
    """The nb201 space bound to the benchmark's own index order (index_of / arch_at)."""
    from mobile_mote.benchmarks.nb201 import NB201Index
    from mobile_mote.search_spaces import get_space
    return NB201Index.from_csv(benchmark_csv).bind(get_space("nb201"))
