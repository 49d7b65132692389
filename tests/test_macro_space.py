"""The NAS-Bench-Macro space: strings, neighbourhoods, builders, costs, and the benchmark's own figures."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mobile_mote.benchmarks.macro import MACRO_LICENSE_NOTE, MacroRow, benchmark_key, load_macro_table
from mobile_mote.errors import InputError
from mobile_mote.search_spaces import ArchError, MacroSpace, get_space
from mobile_mote.search_spaces.counting import fvcore_macs

pytestmark = pytest.mark.usefixtures("torch_one_thread")

ONE = math.sqrt(2) / 2  # one layer changed
ARCHS = ("22212220", "00000000", "22222222", "12021010")


@pytest.fixture(scope="module")
def space() -> MacroSpace:
    return get_space("macro")


@pytest.fixture(scope="module")
def macro_table(shared_data: Path) -> dict[str, MacroRow]:
    path = shared_data / "macro" / "nas-bench-macro_cifar10.json"
    if not path.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {path}")
    return load_macro_table(path)


# -- strings -----------------------------------------------------------------------------------------
def test_key_and_readable_round_trip(space):
    assert space.readable("22212220") == "k5e6,k5e6,k5e6,k3e3,k5e6,k5e6,k5e6,id"
    assert space.canonical("k5e6,k5e6,k5e6,k3e3,k5e6,k5e6,k5e6,id") == "22212220"
    assert space.canonical(" id, k3e3 ,k5e6,id,id,id,id,id ") == "01200000"
    assert space.canonical(("id",) * 8) == "00000000"
    assert space.canonical([2, 1, 0, 0, 1, 2, 2, 0]) == "21001220"
    for key in list(space.enumerate())[::97]:
        assert space.canonical(space.readable(key)) == key
        assert space.from_str(space.readable(key)) == space.from_str(key)


@pytest.mark.parametrize("bad", ["", "2221222", "222122200", "22212223", "k5e6,k3e3", "k5e6," * 7 + "k7e6",
                                 "resnet", "2221-220", ("id",) * 7, ["id"] * 7 + ["conv"], 22212220])
def test_bad_strings(space, bad):
    with pytest.raises(ArchError) as e:
        space.from_str(bad)
    msg = str(e.value)
    assert "\n" not in msg and "accepted" in msg and "k3e3" in msg


def test_size_enumerate_defaults(space):
    keys = list(space.enumerate())
    assert space.size() == len(keys) == len(set(keys)) == 6561
    assert keys[0] == "00000000" and keys[-1] == "22222222" and keys == sorted(keys)
    assert space.canonical(space.default_arch()) == space.default_arch()
    assert space.cheapest_arch() == "00000000"
    assert space.arch_def("22212220") is None and space.timm_model_info() is None
    assert space.table_key("k5e6,k5e6,k5e6,k3e3,k5e6,k5e6,k5e6,id") == "22212220"
    assert space.accepts_latency_tables() and "halved" in space.reduced_rule
    costs = [(space.macs(k), space.params(k)) for k in keys]
    cheapest = (space.macs("00000000"), space.params("00000000"))
    assert min(c[0] for c in costs) == cheapest[0] and min(c[1] for c in costs) == cheapest[1]


# -- sampling and neighbourhoods --------------------------------------------------------------------
def test_sample_mutate_neighbours(space):
    rng = np.random.default_rng(0)
    keys = set(space.enumerate())
    for _ in range(20):
        a = space.sample(rng)
        assert a in keys
        m = space.mutate(a, rng)
        assert m in keys and sum(x != y for x, y in zip(a, m)) == 1
        assert space.distance(a, m) == pytest.approx(ONE)
    a = "22212220"
    near = space.neighbours(a, max_distance=ONE + 1e-9)
    assert len(near) == 8 * 2 and len(set(near)) == 16 and a not in near
    assert all(space.distance(a, b) == pytest.approx(ONE) for b in near)
    both = space.neighbours(a)  # max_distance 1.0: one or two layers changed
    assert len(both) == 16 + 28 * 4 and set(near) <= set(both) and set(both) <= keys
    assert all(space.distance(a, b) == pytest.approx(1.0) for b in both if b not in near)


def test_encoding_is_a_chain(space):
    A, X = space.encode("22212220")
    assert A.shape == (10, 10) and np.array_equal(A, np.eye(10, k=1))
    assert X.shape == (10, 5) and np.array_equal(X.sum(1), np.ones(10))
    assert X[0, 0] == X[-1, 1] == 1 and X[8, 2] == 1 and X[4, 3] == 1 and X[1, 4] == 1


# -- models and costs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reduced", [False, True])
def test_build_forward_params_macs(space, reduced):
    x = torch.randn(2, 3, 32, 32)
    for arch in ARCHS:
        model = space.build(arch, reduced=reduced).eval()
        with torch.no_grad():
            assert model(x).shape == (2, 10)
        assert sum(p.numel() for p in model.parameters()) == space.params(arch, reduced=reduced)
        assert fvcore_macs(model, 32) == space.macs(arch, reduced=reduced)
    model = space.build("22212220", num_classes=7, reduced=reduced).eval()
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    assert sum(p.numel() for p in model.parameters()) == space.params("22212220", num_classes=7, reduced=reduced)


def test_reduced_halves_widths(space):
    full, red = space.build("22212220"), space.build("22212220", reduced=True)
    assert full.stem[0].out_channels == 32 and red.stem[0].out_channels == 16
    assert full.head[0].out_channels == 1280 and red.head[0].out_channels == 640
    assert space.macs("22212220", reduced=True) < space.macs("22212220") / 3
    assert space.default_resolution(True) == space.default_resolution(False) == 32


def test_macs_at_other_resolutions(space):
    model = space.build("12021010").eval()
    assert fvcore_macs(model, 64) == space.macs("12021010", resolution=64)
    with pytest.raises(ArchError, match="accepted"):
        space.macs("12021010", resolution=4)


def test_known_figures(space):
    assert (space.macs("22212220"), space.params("22212220")) == (85_164_544, 1_985_514)
    assert (space.macs("00000000"), space.params("00000000")) == (7_713_280, 387_882)


# -- the benchmark -------------------------------------------------------------------------------------
def test_all_params_and_flops_match_the_benchmark(space, macro_table):
    keys = list(space.enumerate())
    assert sorted(macro_table) == keys
    bad_params = [k for k in keys if space.params(k) != macro_table[k].params]
    bad_flops = [k for k in keys if space.macs(k) != macro_table[k].flops]  # flops == MACs, exactly
    assert not bad_params, f"{len(bad_params)} params mismatches, e.g. {bad_params[:3]}"
    assert not bad_flops, f"{len(bad_flops)} flops mismatches, e.g. {bad_flops[:3]}"


def test_shared_rows_follow_benchmark_key(macro_table):
    assert len({benchmark_key(k) for k in macro_table}) == 3969
    for key, row in macro_table.items():
        assert row.test_acc == macro_table[benchmark_key(key)].test_acc
    row = macro_table["22212220"]
    assert len(row.test_acc) == 3 and row.mean_acc == pytest.approx(sum(row.test_acc) / 3)


def test_reader_errors(tmp_path):
    assert "Apache" in MACRO_LICENSE_NOTE and "NAS-Bench-Macro" in MACRO_LICENSE_NOTE
    good = {"test_acc": [90.0, 91.0, 92.0], "mean_acc": 91.0, "std": 0.8, "params": 10, "flops": 20}
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"22212220": good}))
    assert load_macro_table(p)["22212220"] == MacroRow("22212220", (90.0, 91.0, 92.0), 91.0, 0.8, 10, 20)
    cases = {
        "missing": None,
        "not json": "{oops",
        "a list": json.dumps([good]),
        "bad key": json.dumps({"2221222x": good}),
        "short acc": json.dumps({"22212220": {**good, "test_acc": [90.0]}}),
        "no flops": json.dumps({"22212220": {k: v for k, v in good.items() if k != "flops"}}),
        "text params": json.dumps({"22212220": {**good, "params": "10"}}),
    }
    for what, text in cases.items():
        q = tmp_path / f"{what}.json"
        if text is not None:
            q.write_text(text)
        with pytest.raises(InputError) as e:
            load_macro_table(q)
        assert "\n" not in str(e.value) and "expected" in str(e.value), what


# -- the CLI -----------------------------------------------------------------------------------------------
def test_cli_flops(capsys):
    from mobile_mote.cli import main

    rc = main(["flops", "--space", "macro", "--arch", "22212220"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["arch"] == "22212220" and rec["resolution"] == 32
    assert rec["macs"] == 85_164_544 and rec["params"] == 1_985_514
