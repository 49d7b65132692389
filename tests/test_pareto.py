"""Pareto tools: hand-checked sorting / crowding / hypervolume, pymoo cross-checks, and the NB201 tool."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mobile_mote.pareto import (crowding_distance, dominates, hypervolume_2d, igd, non_dominated_sort, normalise,
                                nsga2_select, pareto_front)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HAVE_PYMOO = importlib.util.find_spec("pymoo") is not None


def _fronts(F):
    return [sorted(f.tolist()) for f in non_dominated_sort(F)]


def test_dominates():
    assert dominates([1, 2], [1, 3])
    assert not dominates([1, 2], [1, 2])
    assert not dominates([1, 3], [2, 2])


def test_sort_hand_checked_2d():
    F = [[1, 5], [2, 3], [3, 1], [2, 4], [4, 4], [3, 1], [5, 5], [1, 6]]
    # front 0: (1,5) (2,3) (3,1) (3,1 duplicate); front 1: (2,4) (1,6); front 2: (4,4); front 3: (5,5)
    assert _fronts(F) == [[0, 1, 2, 5], [3, 7], [4], [6]]
    assert sorted(pareto_front(F).tolist()) == [0, 1, 2, 5]


def test_sort_hand_checked_3d_and_1d():
    F = [[1, 2, 3], [3, 2, 1], [2, 2, 2], [2, 3, 3], [4, 4, 4]]
    assert _fronts(F) == [[0, 1, 2], [3], [4]]
    assert _fronts([[3], [1], [2], [1]]) == [[1, 3], [2], [0]]
    assert non_dominated_sort(np.zeros((0, 2))) == []


def test_crowding_hand_checked():
    F = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(F)
    assert np.isinf(d[0]) and np.isinf(d[3])
    # point 1: (3-0)/4 + (4-1)/4 = 1.5 ; point 2: (4-1)/4 + (2-0)/4 = 1.25
    assert d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.25)
    assert np.isinf(crowding_distance([[1, 2], [2, 1]])).all()


def test_nsga2_select_rank_then_crowding():
    F = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0], [5.0, 5.0]])
    assert sorted(nsga2_select(F, 3).tolist()) == [0, 1, 3]  # extremes, then the most isolated interior
    assert sorted(nsga2_select(F, 4).tolist()) == [0, 1, 2, 3]
    assert sorted(nsga2_select(F, 9).tolist()) == [0, 1, 2, 3, 4]


def test_hypervolume_hand_computed():
    F = [[1, 3], [2, 2], [3, 1], [2.5, 2.5], [5, 0.5]]  # (2.5,2.5) dominated; (5,0.5) not inside ref
    # ref (4,4): strips (4-1)*(4-3)=3, (4-2)*(3-2)=2, (4-3)*(2-1)=1 -> 6
    assert hypervolume_2d(F, [4, 4]) == pytest.approx(6.0)
    assert hypervolume_2d([[4, 1]], [4, 4]) == 0.0  # on the boundary: not strictly dominating
    assert hypervolume_2d(np.zeros((0, 2)), [1, 1]) == 0.0
    assert hypervolume_2d([[0, 0]], [1, 1]) == pytest.approx(1.0)


def test_normalise_and_igd():
    F = np.array([[10.0, 5.0], [20.0, 5.0]])
    N = normalise(F, F.min(0), F.max(0))
    assert N.tolist() == [[0.0, 0.0], [1.0, 0.0]]
    R = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert igd(R, R) == 0.0
    assert igd(R[[0, 2]], R) == pytest.approx(np.sqrt(0.5) / 3)
    assert igd(np.zeros((0, 2)), R) == float("inf")


@pytest.mark.skipif(not HAVE_PYMOO, reason="pymoo not installed (optional cross-check: pip install pymoo)")
@pytest.mark.parametrize("m", [2, 3])
def test_sort_matches_pymoo(m):
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    rng = np.random.default_rng(m)
    for n in (1, 7, 60, 300):
        F = rng.integers(0, 8, size=(n, m)).astype(float)  # small integers: many ties and duplicates
        ours = _fronts(F)
        theirs = [sorted(np.asarray(f).tolist()) for f in NonDominatedSorting().do(F)]
        assert ours == theirs


@pytest.mark.skipif(not HAVE_PYMOO, reason="pymoo not installed (optional cross-check: pip install pymoo)")
def test_hypervolume_matches_pymoo():
    from pymoo.indicators.hv import HV
    rng = np.random.default_rng(0)
    for n in (1, 5, 50, 400):
        F = rng.random((n, 2)) * 1.2  # some points outside the reference box
        ref = np.array([1.0, 1.0])
        inside = F[(F < ref).all(1)]
        expected = HV(ref_point=ref)(inside) if len(inside) else 0.0
        assert hypervolume_2d(F, ref) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_sort_large_2d_is_consistent():
    rng = np.random.default_rng(1)
    F = rng.random((3000, 2))
    fronts = non_dominated_sort(F)
    assert sum(len(f) for f in fronts) == 3000
    first = fronts[0]
    for i in rng.choice(3000, 50, replace=False):  # brute-force: on front 0 iff nobody dominates it
        dominated = np.any(np.all(F <= F[i], 1) & np.any(F < F[i], 1))
        assert (i in set(first.tolist())) == (not dominated)


@pytest.fixture(scope="module")
def nb201_pareto(load_tool):
    """tools/nb201_pareto.py's command line, or a skip when the NB201 tables are absent."""
    bench, lat = SHARED / "nb201" / "benchmark.csv", SHARED / "nb201" / "latency_ms.csv"
    if not (bench.is_file() and lat.is_file()):
        pytest.skip(f"NB201 benchmark/latency tables not found under {SHARED / 'nb201'}")
    return load_tool("nb201_pareto")


def test_tool_main_tiny(tmp_path, nb201_pareto):
    bench = SHARED / "nb201" / "benchmark.csv"
    rc = nb201_pareto.main(["--devices", "pixel2", "--n", "12", "--seeds", "0", "--pop", "4",
                            "--out-dir", str(tmp_path), "--tag", "tiny", "--no-plot"])
    assert rc == 0
    res = json.loads((tmp_path / "nb201_pareto_tiny.json").read_text())
    assert res["accuracy_label"] == "oracle" and "provenance" in res
    dev = res["devices"]["pixel2"]
    assert 0 < dev["hv_true"] <= 1
    assert {r["method"] for r in dev["runs"]} == {"random", "nsga2"}
    for r in dev["runs"]:
        assert r["evaluated"] == 12
        assert 0 <= r["hv_ratio"] <= 1 + 1e-12 and r["igd"] >= 0

    # a precomputed score file: only its cells are evaluated; found front still scored with the truth
    from mobile_mote.benchmarks.nb201 import load_nb201_table
    table = load_nb201_table(bench)
    archs = list(table)[:40]
    scores = tmp_path / "s.jsonl"
    scores.write_text("".join(json.dumps({"arch": a, "score": table[a].acc200["cifar10"]}) + "\n" for a in archs))
    rc = nb201_pareto.main(["--devices", "pixel2", "--n", "12", "--seeds", "0", "--accuracy-source", "precomputed",
                            "--scores", str(scores), "--out-dir", str(tmp_path), "--tag", "pre", "--no-plot"])
    assert rc == 0
    res = json.loads((tmp_path / "nb201_pareto_pre.json").read_text())
    assert res["accuracy_label"].startswith("precomputed:")
    assert nb201_pareto.main(["--accuracy-source", "precomputed", "--out-dir", str(tmp_path)]) == 2


def test_tool_live_scores_and_hypernetwork_fronts(tmp_path, capsys, nb201_pareto):
    bench = SHARED / "nb201" / "benchmark.csv"
    from mobile_mote.search_spaces import get_space
    space = _nb201_indexed(bench)
    # a hand-made fronts.json: the true front's fastest and most accurate cells plus a poor one
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    fast = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    rays = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    fronts = {"config": {"seed": 0, "prototypes": 4, "intervals": 5},
              "fronts": {"pixel2": {"rays": rays, "archs": [best, best, fast]}}}
    f = tmp_path / "fronts.json"
    f.write_text(json.dumps(fronts))
    cache = tmp_path / "live.jsonl"
    args = ["--devices", "pixel2", "--n", "8", "--seeds", "0", "--pop", "4", "--accuracy-source", "live",
            "--estimator", "params", "--profile", "tiny", "--cache", str(cache), "--hypernetwork", str(f),
            "--out-dir", str(tmp_path), "--tag", "live", "--no-plot"]
    assert nb201_pareto.main(args) == 0
    res = json.loads((tmp_path / "nb201_pareto_live.json").read_text())
    assert res["accuracy_label"] == "live:params/tiny"
    runs = {r["method"]: r for r in res["devices"]["pixel2"]["runs"]}
    assert set(runs) == {"random", "nsga2", "hypernetwork", "untrained_hypernetwork"}
    assert runs["hypernetwork"]["distinct"] == 2 and runs["hypernetwork"]["n"] == 3
    assert 0 < runs["hypernetwork"]["hv_ratio"] <= 1 + 1e-12
    scored = len(cache.read_text().splitlines())
    assert scored >= 8  # every evaluated cell was scored once and cached
    assert nb201_pareto.main(args) == 0  # a rerun reads every score back from the cache
    assert len(cache.read_text().splitlines()) == scored
    f.write_text("{not json")
    assert nb201_pareto.main(args) == 2
    assert "fronts.json" in capsys.readouterr().err


def test_live_scores_go_through_a_store_per_proxy_data_set(tmp_path, monkeypatch):
    from mobile_mote.estimators.base import Estimator
    from mobile_mote.studies.pareto_truth import LiveScores, live_store_path
    space = _nb201_indexed(SHARED / "nb201" / "benchmark.csv")
    cache = tmp_path / "live.jsonl"
    live = LiveScores(space, "params", "tiny", "unused", cache, "cpu")
    first = [live[i] for i in (3, 7, 3)]
    live.close()
    lines = cache.read_text().splitlines()
    assert len(lines) == 2 and set(json.loads(lines[0])) == {"arch", "score", "config_hash", "data", "seconds", "status"}
    calls = []
    monkeypatch.setattr(Estimator, "estimate", lambda *a, **k: calls.append(a) or pytest.fail("scored again"))
    cache.unlink()  # the JSONL lost: its records come back from the store, not scored again
    again = LiveScores(space, "params", "tiny", "unused", cache, "cpu")
    assert [again[i] for i in (3, 7, 3)] == first and cache.read_text().splitlines() == lines and not calls
    again.close()
    assert live_store_path(cache, "none") != live_store_path(cache, "/data/a") != live_store_path(cache, "/data/b")


def _nb201_indexed(benchmark_csv):
    """The nb201 space bound to the benchmark's own index order (index_of / arch_at)."""
    from mobile_mote.benchmarks.nb201 import NB201Index
    from mobile_mote.search_spaces import get_space
    return NB201Index.from_csv(benchmark_csv).bind(get_space("nb201"))


@pytest.mark.parametrize("name", ["nb201_pareto_oracle.json", "nb201_pareto_modnas_cpu.json"])
def test_committed_figures_recompute_from_their_cells(nb201_pareto, shared_data, name):
    """The committed Pareto records keep every front's cells: the HV ratios recompute from them."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / name
    res = json.loads(path.read_text())
    devices = list(res["devices"])
    from mobile_mote.studies.pareto_truth import load_objectives, recompute
    _, err, lats = load_objectives(str(shared_data / "nb201" / "benchmark.csv"),
                                   str(shared_data / "nb201" / "latency_ms.csv"), devices)
    pairs = recompute(res, err, lats)
    assert len(pairs) == sum(len(d["runs"]) for d in res["devices"].values()) > 0
    for recomputed, stored in pairs.values():
        assert recomputed == pytest.approx(stored, rel=1e-12)
