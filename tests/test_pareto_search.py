"""mote pareto: NSGA-II's rules, the store-backed loop, resume (extend and after a crash), outputs, bad input."""
import csv
import json

import numpy as np
import pytest

from mobile_mote.cli import main
from mobile_mote.efficiency.constraints import Costs
from mobile_mote.errors import InputError
from mobile_mote.efficiency.latency import LUT_FORMAT, covering_archs, lut_keys, predict
from mobile_mote.pareto import dominates, non_dominated_sort, ranks_and_crowding
from mobile_mote.search import drive
from mobile_mote.search.algorithms.nsga2 import NSGA2, ParetoConfig
from mobile_mote.search.algorithms.operators import finite_objectives
from mobile_mote.search_spaces import get_space


# -- the algorithm, with synthetic objectives --------------------------------------------------------
def _toy_objectives(space):
    """Two conflicting, cheap objectives (not estimates): few MACs vs many skip connections."""
    def f(archs):
        return np.array([[space.macs(a), -a.count("skip_connect") - 0.1 * a.count("nor_conv_1x1")] for a in archs],
                        dtype=float).reshape(len(archs), 2)
    return f


def _drive(cfg, space, objectives_of, stop_after=None, state=None, seed=0):
    """Run NSGA2 through the search driver in memory; returns (state as the store would keep it,
    per-generation (parents, proposed, survivors))."""
    algo = NSGA2(space, cfg, objectives=lambda archs, _records: objectives_of(archs))
    algo.start(json.loads(json.dumps(state)) if state else None)  # what the store keeps is all there is
    log, parents, kept = [], [], {}

    def evaluate(archs, _follow):
        parents[:] = list(algo.state["population"])
        return [{"arch": a} for a in archs], len(archs)

    def commit(records, step, st):
        kept["state"] = st
        log.append((list(parents), [r["arch"] for r in records], list(st["population"])))

    steps = None if stop_after is None else max(0, stop_after - algo.state["generation"])
    drive(algo, seed, evaluate, commit, max_steps=steps)
    return kept.get("state", json.loads(json.dumps(algo.state))), log


def test_nsga2_survivors_are_non_dominated_first_and_nothing_is_evaluated_twice():
    space = get_space("nb201")
    f = _toy_objectives(space)
    cfg = ParetoConfig(objectives=("macs", "params"), population=8, generations=4)
    state, log = _drive(cfg, space, f, seed=3)
    assert state["done"] and state["generation"] == 5
    assert len(state["archive"]) == len(set(state["archive"])) == 8 * 5 == state["evaluated"]
    seen = set()
    for parents, proposed, survivors in log:
        assert len(proposed) == 8 and not seen & set(proposed)
        seen |= set(proposed)
        merged = parents + proposed
        assert set(survivors) <= set(merged) and len(survivors) == 8
        rank, crowd = ranks_and_crowding(f(merged))
        kept = np.array([a in survivors for a in merged])
        if (~kept).any():
            assert rank[kept].max() <= rank[~kept].min()  # whole fronts first
            cut = rank[kept].max()
            if (rank[~kept] == cut).any():  # the cut front keeps its least crowded points
                assert crowd[kept & (rank == cut)].min() >= crowd[~kept & (rank == cut)].max()
    # the final population holds the best front found (it is smaller than the population here)
    F = f(state["archive"])
    best = {state["archive"][i] for i in non_dominated_sort(F)[0]}
    assert len(best) <= 8 and best <= set(state["population"])


def test_nsga2_is_deterministic_and_resumable_from_its_json_state():
    space = get_space("nb201")
    f = _toy_objectives(space)
    cfg = ParetoConfig(objectives=("macs", "params"), population=6, generations=3)
    a, _ = _drive(cfg, space, f, seed=7)
    b, _ = _drive(cfg, space, f, seed=7)
    assert a["archive"] == b["archive"] and a["population"] == b["population"]
    half, _ = _drive(cfg, space, f, stop_after=2, seed=7)
    resumed, _ = _drive(cfg, space, f, state=half, seed=7)
    assert resumed["archive"] == a["archive"]
    other, _ = _drive(ParetoConfig(objectives=("macs", "params"), population=6, generations=3), space, f, seed=8)
    assert other["archive"] != a["archive"]


def test_budget_bounds_and_failed_candidates():
    space = get_space("nb201")
    costs = Costs(space)
    cap = 40e6
    cfg = ParetoConfig(objectives=("score", "macs"), population=6, generations=10, budget=15)
    algo = NSGA2(space, cfg, lambda a: costs(a)["macs"] <= cap)
    fail = {a for a in (space.sample(np.random.default_rng(i)) for i in range(400)) if sum(map(ord, a)) % 3 == 0}

    def f(archs):  # a "failed" score is +inf, as the runner gives it
        return np.array([[np.inf if a in fail else -space.params(a), costs(a)["macs"]] for a in archs])
    state = algo.initial_state()
    rng = np.random.default_rng(0)
    while not state["done"]:
        proposed, _ = algo.propose(state, f, rng)
        algo.accept(state, proposed, f)
    assert state["evaluated"] == 15 and len(state["archive"]) == 15  # the budget cuts the last generation
    assert all(costs(a)["macs"] <= cap for a in state["archive"])
    F = np.array([[np.inf, 1.0], [1.0, np.inf], [0.5, 0.5], [np.inf, np.inf], [0.2, 2.0]])
    G = finite_objectives(F)
    assert np.isfinite(G).all()
    assert [x.tolist() for x in non_dominated_sort(G)] == [x.tolist() for x in non_dominated_sort(F)]
    assert not np.isnan(ranks_and_crowding(G)[1]).any()


@pytest.mark.parametrize("kw,needle", [
    ({"objectives": ("score", "accuracy")}, "objective 'accuracy'"),
    ({"objectives": ("score",)}, "two or more"),
    ({"objectives": ("macs", "macs")}, "distinct"),
    ({"population": 1}, "population"),
    ({"generations": -1}, "generations"),
])
def test_config_validation_names_what_is_accepted(kw, needle):
    with pytest.raises(InputError, match=needle):
        ParetoConfig(**kw).validate()


# -- the command line -----------------------------------------------------------------------------------
def _nb201_args(tmp_path, shared, *extra, name="p"):
    return ["pareto", "--space", "nb201", "--objectives", "score,latency",
            "--latency-table", str(shared / "nb201" / "latency_ms.csv"), "--latency-device", "pixel2",
            "--estimator", "params", "--profile", "tiny", "--population", "8",
            "--runs-dir", str(tmp_path), "--name", name, "--quiet", *extra]


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _objectives(row, objectives):
    key = {"score": "score", "macs": "macs", "params": "params", "latency": "latency_ms"}
    return [(-1 if o == "score" else 1) * float(row[key[o]]) for o in objectives]


def _check_front(run, objectives):
    """front.json's points are non-dominated among evaluated.csv, and every other point is dominated."""
    front = json.loads((run / "front.json").read_text())
    assert front["objectives"] == list(objectives)
    rows = _read_csv(run / "evaluated.csv")
    pts = {r["arch"]: _objectives(r, objectives) for r in rows}
    on_front = {p["arch"] for p in front["points"]}
    assert on_front == {r["arch"] for r in rows if r["on_front"] == "True"}
    assert {r["arch"] for r in _read_csv(run / "front.csv")} == on_front
    for a in on_front:
        assert not any(dominates(pts[b], pts[a]) for b in pts)
        assert pts[a] == pytest.approx(next(p["objective_vector"] for p in front["points"] if p["arch"] == a))
    for b in set(pts) - on_front:
        assert any(dominates(pts[a], pts[b]) for a in on_front)
    return front, rows


def test_cli_nb201_score_latency_front(tmp_path, shared_data, capsys):
    bench = shared_data / "nb201" / "benchmark.csv"
    assert main(_nb201_args(tmp_path, shared_data, "--benchmark", str(bench))) == 0
    run = tmp_path / "p"
    for f in ("front.json", "front.csv", "evaluated.csv", "front.png", "summary.json", "summary.md", "search.db"):
        assert (run / f).is_file(), f
    front, rows = _check_front(run, ("score", "latency"))
    assert len(rows) == 8 * 3 == len({r["arch"] for r in rows})  # tiny: generation 0 + 2 generations
    assert {r["generation"] for r in rows} == {"0", "1", "2"}
    hv = front["hypervolume"]
    assert hv["reference_point"] == [1.0, 1.0] and 0 < hv["value"] <= 1 and "min" in hv["normalisation"]
    assert hv["by_generation"] == sorted(hv["by_generation"]) and hv["by_generation"][-1] == hv["value"]
    assert all(0 < p["true_accuracy"] <= 100 for p in front["points"]) and "200 epochs" in front["true_accuracy_source"]
    out = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [o["arch"] for o in out] == [p["arch"] for p in front["points"]]
    # an existing run is never silently overwritten
    before = (run / "front.json").read_bytes()
    assert main(_nb201_args(tmp_path, shared_data)) == 2
    assert (run / "front.json").read_bytes() == before
    assert "--resume" in capsys.readouterr().err


def test_resume_extends_a_run_like_a_straight_one(tmp_path, shared_data):
    assert main(_nb201_args(tmp_path, shared_data, "--generations", "1", name="short")) == 0
    assert main(_nb201_args(tmp_path, shared_data, "--generations", "2", "--resume", name="short")) == 0
    assert main(_nb201_args(tmp_path, shared_data, "--generations", "2", name="straight")) == 0
    a = json.loads((tmp_path / "short" / "summary.json").read_text())
    b = json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert [p["arch"] for p in a["front"]] == [p["arch"] for p in b["front"]]
    assert a["evaluated"] == b["evaluated"] == 24
    assert a["scored_this_session"] == 8 and a["taken_from_store"] == 0  # only the new generation was scored


def test_resume_after_a_crash_in_the_scorer(tmp_path, shared_data):
    from mobile_mote.estimators import get_estimator
    from mobile_mote.search import RunSpec, run as run_pareto
    from mobile_mote.search.algorithms.nsga2 import ParetoConfig
    from mobile_mote.search.scorer import LocalScorer

    def spec(name):
        return RunSpec(name=name, space="nb201", estimator="params", algorithm="nsga2",
                       algorithm_config=ParetoConfig(objectives=("score", "latency"), population=6, generations=3),
                       latency_table=str(shared_data / "nb201" / "latency_ms.csv"), latency_device="pixel2",
                       seed=2, runs_dir=str(tmp_path))

    class Crashing(LocalScorer):
        calls = 0

        def score(self, archs):
            Crashing.calls += 1
            if Crashing.calls == 15:  # mid generation 2
                raise RuntimeError("the machine went away")
            return super().score(archs)

    crash = Crashing(get_space("nb201"), get_estimator("params"), None, 2, "cpu")
    with pytest.raises(RuntimeError):
        run_pareto(spec("crashed"), scorer=crash, progress=False)
    assert not (tmp_path / "crashed" / "front.json").exists()
    resumed = run_pareto(spec("crashed"), resume=True, progress=False)
    straight = run_pareto(spec("straight"), progress=False)
    assert [p["arch"] for p in resumed["front"]] == [p["arch"] for p in straight["front"]]
    assert resumed["evaluated"] == straight["evaluated"] == 24
    assert resumed["taken_from_store"] == 14 - 12  # generation 2's stored chunks are read back, not rescored
    assert resumed["scored_this_session"] + 14 == 24


def test_a_shared_store_scores_nothing_twice_and_a_resume_keeps_its_settings(tmp_path, shared_data, capsys):
    store = str(tmp_path / "shared.db")
    assert main(_nb201_args(tmp_path, shared_data, "--store", store, name="a")) == 0
    assert main(_nb201_args(tmp_path, shared_data, "--store", store, name="b")) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert b["scored_this_session"] == 0 and b["taken_from_store"] == b["evaluated"] == a["evaluated"]
    assert not (tmp_path / "a" / "search.db").exists()
    capsys.readouterr()
    before = (tmp_path / "a" / "front.json").read_bytes()
    assert main(_nb201_args(tmp_path, shared_data, "--store", store, "--population", "6", "--resume", name="a")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings" in err[0]
    assert (tmp_path / "a" / "front.json").read_bytes() == before


def test_two_processes_give_the_same_front(tmp_path, shared_data):
    """`mote pareto --processes 2` (accelerate, CPU ranks) evaluates the same candidates as one process."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mobile_mote"]
    for name, extra in (("one", []), ("two", ["--processes", "2"])):
        r = subprocess.run(cmd + _nb201_args(tmp_path, shared_data, *extra, name=name), env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "front.json").read_text())
    two = json.loads((tmp_path / "two" / "front.json").read_text())
    assert one["points"] == two["points"]
    assert _read_csv(tmp_path / "one" / "evaluated.csv") == _read_csv(tmp_path / "two" / "evaluated.csv")


@pytest.mark.parametrize("change,needle", [
    (("--objectives", "score,accuracy"), "objective 'accuracy'"),
    (("--objectives", "latency"), "two or more"),
    (("--objectives", "score,score"), "two or more distinct"),
    (("--latency-table", None), "latency source"),
    (("--flops", "1M"), "smallest achievable"),
    (("--flops", "200M,300M"), "one bound"),
    (("--profile", "huge"), "unknown profile"),
    (("--space", "resnet"), "unknown search space"),
    (("--population", "1"), "population"),
])
def test_bad_input_is_one_line(tmp_path, shared_data, capsys, change, needle):
    args = _nb201_args(tmp_path, shared_data)
    key, value = change
    if value is None:  # drop the option and its value (and the device that goes with a table)
        i = args.index(key)
        del args[i:i + 2]
        i = args.index("--latency-device")
        del args[i:i + 2]
    elif key in args:
        args[args.index(key) + 1] = value
    else:
        args += [key, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mote pareto: error:") and needle in err[0], err
    assert not (tmp_path / "p" / "front.json").exists()


# -- block spaces -------------------------------------------------------------------------------------------
def test_mbv2_score_macs_under_a_bound(tmp_path, capsys):
    args = ["pareto", "--space", "mbv2", "--objectives", "score,macs", "--estimator", "params", "--profile", "tiny",
            "--flops", "300M", "--runs-dir", str(tmp_path), "--name", "mb", "--quiet"]
    assert main(args) == 0
    run = tmp_path / "mb"
    front, rows = _check_front(run, ("score", "macs"))
    assert len(rows) == 18 and all(float(r["macs"]) <= 300e6 for r in rows)
    space = get_space("mbv2")
    for p in front["points"]:
        assert p["timm_arch_def"] == space.arch_def(p["arch"])
    assert (run / "front.png").is_file()


def _fake_lut(space) -> dict:
    """A LUT with made-up times (deterministic per key) that covers every block of the space."""
    lut = {"format": LUT_FORMAT, "space": space.name, "reduced": False, "resolution": 224, "num_classes": 1000,
           "device": "made-up", "statistic": "median_ms",
           "choices": space.lut_choices(), "entries": {}}
    for arch in covering_archs(space):
        for k in lut_keys(lut, space, arch):
            lut["entries"][k] = {"median_ms": 0.05 + (sum(map(ord, k)) % 97) / 100}
    return lut


def test_mbv2_latency_from_a_lut(tmp_path):
    space = get_space("mbv2")
    lut = _fake_lut(space)
    path = tmp_path / "lut.json"
    path.write_text(json.dumps(lut))
    args = ["pareto", "--space", "mbv2", "--objectives", "params,latency", "--latency-lut", str(path),
            "--estimator", "macs", "--profile", "tiny", "--runs-dir", str(tmp_path), "--name", "lut", "--quiet"]
    assert main(args) == 0
    front, rows = _check_front(tmp_path / "lut", ("params", "latency"))
    for r in rows[:5]:
        assert float(r["latency_ms"]) == pytest.approx(predict(lut, space, r["arch"]))
    assert "lut.json" in front["latency_source"]
    # a LUT of another space, or a table where a LUT belongs, is refused in one line
    bad = ["pareto", "--space", "mbv3", "--objectives", "score,latency", "--latency-lut", str(path),
           "--estimator", "params", "--runs-dir", str(tmp_path), "--quiet"]
    assert main(bad) == 2
    bad = ["pareto", "--space", "mbv2", "--objectives", "score,latency", "--latency-table", str(path),
           "--latency-device", "x", "--estimator", "params", "--runs-dir", str(tmp_path), "--quiet"]
    assert main(bad) == 2
