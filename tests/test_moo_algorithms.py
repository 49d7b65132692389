"""The related work's multi-objective searches: MTF-PDNS (``pdns``), LaMOO (``lamoo``), MO-HDNAS (``mo-hdnas``),
their shared pieces (genomes, IGD+, n-objective hypervolume) and the study that measures them against a
benchmark's true front."""
import json

import numpy as np
import pytest

from mobile_mote.cli import main
from mobile_mote.pareto import dominates, hypervolume, hypervolume_2d, igd, igd_plus, pareto_front
from mobile_mote.search import drive
from mobile_mote.search.algorithms import algorithm_class
from mobile_mote.search.algorithms.lamoo import Partition, dominance_counts
from mobile_mote.search.algorithms.mo_hdnas import cost_diversity
from mobile_mote.search.algorithms.pdns.algorithm import novelty
from mobile_mote.search_spaces import get_space


@pytest.mark.parametrize("name", ["nb201", "macro", "mbv2", "mbv3"])
def test_genomes_round_trip(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    sizes = space.genome_sizes()
    for _ in range(20):
        arch = space.sample(rng)
        genes = space.genome(arch)
        assert len(genes) == len(sizes) and all(0 <= g < s for g, s in zip(genes, sizes))
        assert space.from_genome(genes) == space.canonical(arch)


def test_igd_plus_counts_only_what_is_worse_and_hypervolume_in_three_objectives():
    ref_front = np.array([[0.0, 1.0], [1.0, 0.0]])
    better = np.array([[-0.5, 0.5], [0.5, -0.5]])  # dominates the reference front: IGD+ 0, IGD not
    assert igd_plus(better, ref_front) == 0.0 and igd(better, ref_front) > 0.5
    assert igd_plus([[0.5, 1.0]], [[0.0, 1.0]]) == pytest.approx(0.5)
    assert igd_plus([], ref_front) == float("inf")
    # two boxes of volume 0.5^3 + 0.25 * 1 * 0.5 overlap in 0.5 * 0.5 * 0.5 ... computed by inclusion-exclusion
    F = np.array([[0.5, 0.5, 0.5], [0.0, 0.75, 0.5]])
    a = 0.5 * 0.5 * 0.5
    b = 1.0 * 0.25 * 0.5
    both = 0.5 * 0.25 * 0.5
    assert hypervolume(F, [1, 1, 1]) == pytest.approx(a + b - both)
    assert hypervolume(np.vstack([F, [[0.9, 0.9, 0.9]]]), [1, 1, 1]) == pytest.approx(a + b - both)  # dominated
    G = np.random.default_rng(1).random((40, 2))
    assert hypervolume(G, [1, 1]) == hypervolume_2d(G, [1, 1])


def _lookup(space, seed=0):
    """Two conflicting synthetic objectives over NB201 genomes (not estimates): a random additive
    'badness' against the count of heavy operations."""
    W = np.random.default_rng(seed).random((6, 5))

    def objectives(archs, _records=None):
        G = np.asarray([space.genome(a) for a in archs], dtype=int).reshape(len(archs), 6)
        return np.stack([W[np.arange(6), G].sum(1), -(G >= 2).sum(1) + 0.01 * G.sum(1)], 1).astype(float)
    return objectives


def _run(name, space, objectives, budget, seed=0, stop_after=None, state=None, **settings):
    cls = algorithm_class(name)
    cfg = cls.Config(objectives=("score", "macs"), generations=10_000, budget=budget, **settings)
    algo = cls(space, cfg, objectives=objectives)
    algo.start(json.loads(json.dumps(state)) if state else None)
    drive(algo, seed, lambda archs, _f: ([{"arch": a} for a in archs], len(archs)), max_steps=stop_after)
    return algo


def _hv(space, objectives, archs, lo, hi):
    F = (objectives(archs) - lo) / (hi - lo)
    return hypervolume_2d(F[pareto_front(F)], (1.0, 1.0))


# -- MTF-PDNS ---------------------------------------------------------------------------------------
def test_pdns_archive_is_the_non_dominated_set_without_duplicates_and_resumes_exactly():
    space = get_space("nb201")
    obj = _lookup(space)
    algo = _run("pdns", space, obj, 200, metrics=("score",))
    st = algo.state
    assert st["evaluated"] == 200 == len(set(st["archive"])) and len(st["population"]) == 20
    elite = st["elite"]
    E, A = obj(elite), obj(st["archive"])
    assert len({tuple(r) for r in E}) == len(elite)  # no duplicate objective vectors
    assert not any(dominates(a, e) for a in A for e in E)  # nothing evaluated dominates an archive member
    front_rows = {tuple(r) for r in A[pareto_front(A)]}
    assert {tuple(r) for r in E} == front_rows  # every non-dominated vector is represented
    # a run stopped after 4 generations and resumed from its JSON state ends where the straight run ends
    half = _run("pdns", space, obj, 200, metrics=("score",), stop_after=4)
    again = _run("pdns", space, obj, 200, metrics=("score",), state=half.state)
    assert again.state["archive"] == st["archive"] and again.state["elite"] == elite
    assert _run("pdns", space, obj, 200, metrics=("score",), seed=1).state["archive"] != st["archive"]


def test_pdns_novelty_is_positive_for_archive_members_and_grows_with_distance():
    archive = np.array([[0.0, 1.0], [1.0, 0.0]])
    F = np.array([[0.0, 1.0], [0.5, 0.6], [3.0, 3.0]])
    nov = novelty(F, np.array([True, False, False]), archive)
    assert nov[0] > 0 and nov[1] < 0 and nov[2] < nov[1]  # the far candidate is the most novel (most negative)


def test_pdns_variation_is_two_point_crossover_and_rare_mutation():
    space = get_space("macro")
    algo = algorithm_class("pdns")(space, algorithm_class("pdns").Config(objectives=("score", "macs")))
    rng = np.random.default_rng(0)
    a, b = "00000000", "22222222"
    kids = [k for _ in range(200) for k in algo._offspring([a, b], rng)]
    assert all(set(k) <= {0, 1, 2} for k in kids)

    two_point = {tuple(x[:lo] + y[lo:hi] + x[hi:]) for x, y in ([[0] * 8, [2] * 8], [[2] * 8, [0] * 8])
                 for lo in range(9) for hi in range(lo, 9)}
    # with per-gene mutation at 1/8, about (7/8)^8 = 34 % of children are exactly a two-point child
    share = np.mean([tuple(k) in two_point for k in kids])
    uniform = np.random.default_rng(1).integers(0, 3, size=(400, 8))
    assert 0.25 < share < 0.45 and np.mean([tuple(k) in two_point for k in uniform.tolist()]) < 0.05
    assert 0 < np.mean([g == 1 for k in kids for g in k]) < 0.15  # 1/L mutation to the third value


def test_pdns_needs_its_metrics_in_the_records(tmp_path, shared_data, capsys):
    args = ["pareto", "--space", "nb201", "--algorithm", "pdns", "--objectives", "score,macs", "--estimator", "params",
            "--profile", "tiny", "--runs-dir", str(tmp_path), "--name", "p", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "synflow" in err and "--estimator fused" in err
    assert not (tmp_path / "p").exists()


# -- LaMOO --------------------------------------------------------------------------------------------
def test_dominance_counts_and_the_partition_split_good_from_bad():
    F = np.array([[0, 0], [1, 1], [2, 2], [0, 2], [2, 0]], dtype=float)
    assert dominance_counts(F).tolist() == [0, 1, 4, 1, 1]
    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    F = np.stack([X[:, 0] + 0.05 * rng.random(200), X[:, 0] + 0.05 * rng.random(200)], 1)  # good = small x0
    part = Partition(X, F, leaf_size=10, max_depth=1, kernel="rbf", cp_factor=0.0)
    path = part.select()
    assert len(path) == 1 and path[0][1] == 1  # Cp 0: the child of larger hypervolume, the good one
    assert X[part.leaf, 0].mean() < 0.35
    inside = Partition.depth_inside(path, np.array([[0.05, 0.5, 0.5, 0.5], [0.95, 0.5, 0.5, 0.5]]))
    assert inside.tolist() == [1, 0]


@pytest.mark.parametrize("sampler", ["random", "nsga2"])
def test_lamoo_samples_inside_its_regions_and_beats_random_on_a_synthetic_front(sampler):
    space = get_space("nb201")
    obj = _lookup(space)
    algo = _run("lamoo", space, obj, 300, sampler=sampler)
    st = algo.state
    assert st["evaluated"] == 300 == len(set(st["archive"]))
    hist = st["history"][1:]
    assert all(h["kind"] == "region" for h in hist) and sum(h["inside"] for h in hist) > 0
    assert max(h["depth"] for h in hist) >= 2
    everything = list(space.enumerate())
    F = obj(everything)
    lo, hi = F.min(0), F.max(0)
    rand = np.random.default_rng(0).choice(len(everything), 300, replace=False)
    assert _hv(space, obj, st["archive"], lo, hi) > _hv(space, obj, [everything[i] for i in rand], lo, hi)


# -- MO-HDNAS ----------------------------------------------------------------------------------------
def test_cost_diversity_rewards_a_cost_alone_in_its_stretch():
    d = cost_diversity(np.array([1.0, 2.0, 2.0, 10.0, np.inf]))
    assert d[1] == d[2] == 0.0 and d[4] == 0.0 and d[3] == pytest.approx(8 / 9) and d[0] == pytest.approx(1 / 9)


def test_mo_hdnas_ranks_on_three_objectives_and_reports_two():
    space = get_space("nb201")
    obj = _lookup(space)
    algo = _run("mo-hdnas", space, obj, 150, population=20)
    assert algo.objectives_of(algo.state["population"]).shape == (20, 3)
    assert algo.state["evaluated"] == 150
    with pytest.raises(Exception, match="MO-HDNAS needs score and a cost"):
        algorithm_class("mo-hdnas").Config(objectives=("macs", "latency")).validate()


def test_lamoo_and_mo_hdnas_run_from_the_cli(tmp_path, shared_data):
    lat = str(shared_data / "nb201" / "latency_ms.csv")
    for alg, extra in (("lamoo", ["--sampler", "nsga2"]), ("mo-hdnas", [])):
        assert main(["pareto", "--space", "nb201", "--algorithm", alg, *extra, "--objectives", "score,latency",
                     "--latency-table", lat, "--latency-device", "pixel2", "--estimator", "params", "--profile", "tiny",
                     "--runs-dir", str(tmp_path), "--name", alg, "--quiet"]) == 0
        summary = json.loads((tmp_path / alg / "summary.json").read_text())
        assert summary["algorithm"] == alg and summary["front_size"] >= 1
    assert json.loads((tmp_path / "lamoo" / "summary.json").read_text())["pareto"]["sampler"] == "nsga2"


# -- the study -----------------------------------------------------------------------------------------
def test_the_study_measures_fronts_that_recompute_from_the_file(shared_data, tmp_path):
    from mobile_mote.studies import moo_truth as mt
    problem = mt.macro_problem(str(shared_data / "macro" / "nas-bench-macro_cifar10.json"), None)
    runs = tmp_path / "runs.jsonl"
    mt.run_all(problem, ["macs"], ["oracle"], ["random", "nsga2", "pdns"], [0, 1], [30, 60], runs, progress=False)
    entries = mt.read_runs(runs)
    assert len(entries) == 3 * 2 * 2
    truth = mt.Truth(problem, "macs", problem.pool("oracle"))
    for e in entries:
        idx = np.asarray([problem.index_of(a) for a in e["front"]])
        assert truth.score(idx) == {k: e[k] for k in ("hv_ratio", "igd", "igd_plus")}
        assert 0 < e["hv_ratio"] <= 1 and e["igd_plus"] <= e["igd"]
    summary = mt.summarise(problem, entries)
    cell = summary["table"]["oracle"]["macs"]["nsga2"]["60"]
    assert cell["seeds"] == 2 and "met" in summary["targets"]["above_random_hv"]["oracle"]["macs"]["nsga2"]["60"]
    mt.run_all(problem, ["macs"], ["oracle"], ["random", "nsga2", "pdns"], [0, 1], [30, 60], runs, progress=False)
    assert len(mt.read_runs(runs)) == len(entries)  # a rerun resumes: nothing is run twice
    result = tmp_path / "moo.json.gz"  # the committed (gzipped) JSON holds the runs; the work file is made from it
    mt.write_result(result, {"runs": entries})
    assert mt.read_result(result)["runs"] == entries
    assert mt.seed_runs(result, tmp_path / "again.jsonl") == len(entries)
    assert mt.read_runs(tmp_path / "again.jsonl") == entries


# -- MO-HDNAS's similarity -----------------------------------------------------------------------------
def test_linear_cka_is_one_for_the_same_features_and_invariant_to_scale_and_rotation():
    import torch

    from mobile_mote.estimators.zero_cost.similarity import linear_cka
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 16, generator=g)
    Q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    assert linear_cka(X, X) == pytest.approx(1.0)
    assert linear_cka(X, 3 * X @ Q) == pytest.approx(1.0)
    assert linear_cka(X, torch.randn(64, 16, generator=g)) < 0.5


def test_cka_trains_its_reference_once_and_keeps_checkpoint_and_provenance(tmp_path):
    from conftest import synthetic_proxy_data

    from mobile_mote.errors import InputError
    from mobile_mote.estimators import get_estimator
    data = synthetic_proxy_data(48, 4)
    space = get_space("nb201")
    est = get_estimator("cka", reduced=True, batch_size=16, reference_epochs=1, reference_batch=16,
                        reference_dir=str(tmp_path))
    archs = [space.sample(np.random.default_rng(i)) for i in range(2)]
    recs = [est.estimate(space, a, data, seed=0, device="cpu") for a in archs]
    assert all(r.status == "ok" and 0 <= r.score <= 1 for r in recs)
    ckpt, = tmp_path.glob("nb201-*.pt")
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["arch"] == space.default_arch() and meta["epochs"] == 1 and meta["provenance"]["versions"]["torch"]
    stamp = ckpt.stat().st_mtime_ns
    again = get_estimator("cka", reduced=True, batch_size=16, reference_epochs=1, reference_batch=16,
                          reference_dir=str(tmp_path)).estimate(space, archs[0], data, seed=0, device="cpu")
    assert again.score == recs[0].score and ckpt.stat().st_mtime_ns == stamp  # reused, not retrained
    with pytest.raises(InputError, match="does not exist"):
        get_estimator("cka", reference=str(tmp_path / "nope.pt"))


def test_component_records_read_a_gzipped_archive_beside_the_file_appended_to(tmp_path):
    import gzip

    from mobile_mote.studies.components import read_records
    rec = {"network": "a", "components": {"synflow": 1.0}, "status": {"synflow": "ok"}, "seconds": {"synflow": 0.1}}
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress((json.dumps(rec) + "\n").encode()))
    more = {**rec, "components": {"cka": 0.5}, "status": {"cka": "ok"}, "seconds": {"cka": 0.2}}
    (tmp_path / "c.jsonl").write_text(json.dumps(more) + "\n" + json.dumps({**rec, "network": "b"}) + "\n")
    got = read_records(tmp_path / "c.jsonl")
    assert set(got) == {"a", "b"} and got["a"]["components"] == {"synflow": 1.0, "cka": 0.5}
