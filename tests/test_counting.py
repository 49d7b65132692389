"""Analytic MACs/params against fvcore, ptflops and sum(p.numel()) on built models.

The 200-architectures-per-space version of this check is tools/bench_counting.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from mobile_mote.search_spaces import get_space
from mobile_mote.search_spaces.counting import fvcore_macs, ptflops_macs, torch_params

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.filterwarnings("ignore")]

TOL = 1e-3  # 0.1 %
N_ARCHS = 10


def _rel(a: int, b: int) -> float:
    return abs(a - b) / max(a, b)


def _check(space, arch, reduced: bool, resolution: int | None = None, num_classes: int | None = None):
    res = resolution or space.default_resolution(reduced)
    model = space.build(arch, num_classes=num_classes, reduced=reduced)
    analytic = space.macs(arch, res, num_classes, reduced)
    fv, pt = fvcore_macs(model, res), ptflops_macs(model, res)
    what = f"{space.name} reduced={reduced} res={res} {space.canonical(arch)}"
    assert _rel(analytic, fv) <= TOL, f"analytic {analytic} vs fvcore {fv}: {what}"
    assert _rel(analytic, pt) <= TOL, f"analytic {analytic} vs ptflops {pt}: {what}"
    assert _rel(fv, pt) <= TOL, f"fvcore {fv} vs ptflops {pt}: {what}"
    assert space.params(arch, num_classes, reduced) == torch_params(model), what
    return analytic, fv, pt


@pytest.mark.parametrize("reduced", [False, True], ids=["full", "reduced"])
@pytest.mark.parametrize("name", ["nb201", "mbv2", "mbv3"])
def test_analytic_agrees_with_tracing(name, reduced):
    sp = get_space(name)
    rng = np.random.default_rng(2024)
    archs = [sp.sample(rng) for _ in range(N_ARCHS)]
    for arch in archs:
        _check(sp, arch, reduced)


def test_fvcore_counts_layers_whose_output_is_unused():
    """A cell whose node 2 feeds only a 'none' edge still runs that node's convs (and NB201 counts them)."""
    sp = get_space("nb201")
    dead = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"
    for reduced in (False, True):
        analytic, fv, pt = _check(sp, dead, reduced)
        assert analytic == fv


def test_nb201_cells_without_convs():
    sp = get_space("nb201")
    for ops in (("none",) * 6, ("skip_connect",) * 6, ("avg_pool_3x3",) * 6):
        for reduced in (False, True):
            analytic, fv, _ = _check(sp, ops, reduced)
            assert analytic == fv  # stem and classifier only


@pytest.mark.parametrize("name", ["mbv2", "mbv3"])
def test_block_presets_at_other_resolutions_and_classes(name):
    sp = get_space(name)
    preset = sp.default_arch()
    for res in (97, 160):  # odd sizes exercise timm's padding arithmetic
        _check(sp, preset, False, resolution=res, num_classes=100)
    _check(sp, preset, True, num_classes=100)


@pytest.mark.parametrize("name,macs,params", [
    ("mbv2", 300_774_272, 3_504_872),
    ("mbv3", 216_589_760, 5_483_032),
])
def test_presets_counted_three_ways(name, macs, params):
    sp = get_space(name)
    analytic, fv, pt = _check(sp, sp.default_arch(), False)
    assert analytic == fv == macs
    assert sp.params(sp.default_arch()) == params


def test_make_divisible_is_timms():
    from timm.layers import make_divisible as timm_make_divisible

    from mobile_mote.search_spaces.blocks import make_divisible
    for v in [x / 4 for x in range(1, 4000)]:
        for d in (4, 8, 16):
            assert make_divisible(v, d) == timm_make_divisible(v, d)
