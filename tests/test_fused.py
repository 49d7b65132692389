"""mote-z: MOTE's terms and zero-cost proxies in one record, fused over the population the search ranks."""
import json

import numpy as np
import pytest

from mobile_mote.cli import main
from mobile_mote.efficiency.constraints import Constraint, Costs
from mobile_mote.errors import InputError
from mobile_mote.estimators import get_estimator
from mobile_mote.fusion import log_rank_sum
from mobile_mote.search import drive
from mobile_mote.search.algorithms import MoteNAS, SearchConfig
from mobile_mote.search.ranking import pool_ranked, pool_ranked_by_arch
from mobile_mote.search_spaces import get_space

FAST = {"epochs": 1, "points": 1, "images_per_class": 4, "batch_size": 20, "time": "cost"}


@pytest.fixture(scope="module")
def small_data(shared_data):
    from mobile_mote.data.proxy_data import load_proxy_data
    return load_proxy_data(shared_data / "proxy_cifar100_10").subset(12, seed=1)


def test_one_record_holds_mote_and_the_proxies(small_data):
    sp = get_space("macro")
    fused = get_estimator("mote-z", **FAST, components="landscape,speed,synflow,params")
    rec = fused.estimate(sp, "12012012", small_data, seed=2)
    mote = get_estimator("mote", **FAST).estimate(sp, "12012012", small_data, seed=2)
    synflow = get_estimator("synflow").estimate(sp, "12012012", small_data, seed=2)
    params = get_estimator("params").estimate(sp, "12012012", small_data, seed=2)
    assert rec.status == "ok" and rec.score == pytest.approx(mote.score)  # alone: its MOTE score
    comps = rec.terms["components"]
    assert comps["landscape"] == pytest.approx(-mote.terms["landscape"]) and comps["speed"] == pytest.approx(-mote.terms["speed"])
    assert comps["synflow"] == pytest.approx(synflow.score) and comps["params"] == params.score
    assert set(rec.terms["proxies"]) == {"synflow", "params"}


def test_population_scores_are_the_log_rank_sum_of_the_components():
    est = get_estimator("mote-z", components="landscape,speed")
    recs = [{"status": "ok", "score": -1.0, "terms": {"components": {"landscape": l, "speed": s}}}
            for l, s in [(-3.0, -1.0), (-1.0, -2.0), (-2.0, -3.0)]]
    recs.append({"status": "failed", "score": None, "terms": {}})
    flagged = {"status": "ok", "score": -1.0, "terms": {"components": {"landscape": -9.0, "speed": None},
                                                         "proxies": {"speed": {"status": "flagged"}}}}
    assert get_estimator("mote-z", components="landscape,speed").population_scores(recs[:3] + [flagged])[3] == \
        pytest.approx(2 * np.log(1 / 4))  # worst on both: the flagged component ranks last
    got = est.population_scores(recs)
    assert got[:3] == pytest.approx(log_rank_sum({"l": [-3.0, -1.0, -2.0], "s": [-1.0, -2.0, -3.0]}))
    assert got[3] is None
    ranked = pool_ranked(est, recs)
    assert [r["score"] for r in ranked] == got and ranked[0]["own_score"] == -1.0
    assert pool_ranked(get_estimator("synflow"), recs) is recs  # others rank by their own score


@pytest.mark.parametrize("components", ["", "tse", "nope", "synflow,synflow", "mote,early_stop_acc"])
def test_bad_components_are_one_line(components):
    with pytest.raises(InputError) as e:
        get_estimator("mote-z", components=components)
    assert "\n" not in str(e.value)


def test_which_estimators_fuse_is_declared_by_each():
    from mobile_mote.estimators import estimator_class, list_estimators
    zero = {n for n in list_estimators() if estimator_class(n).zero_cost}
    assert {"synflow", "jacov", "naswot", "zico", "vkdnw", "expressivity", "trainability", "macs", "params"} <= zero
    assert not zero & {"mote", "mote-z", "tse", "early_stop_acc", "precomputed", "fused"}
    for name in ("fused", "precomputed"):  # a fusion of its own, a table's score: no component of mote-z
        with pytest.raises(InputError, match="accepted: distinct names"):
            get_estimator("mote-z", components=f"landscape,{name}")


def test_the_search_ranks_its_pool_by_the_fused_score_and_a_resume_recomputes_it():
    space = get_space("nb201")
    est = get_estimator("mote-z", components="landscape,speed")
    rng = np.random.default_rng(0)
    comps = {}

    def record(a):  # synthetic components (not an estimate): own score opposite to the fused order
        comps.setdefault(a, {"landscape": float(rng.normal()), "speed": float(rng.normal())})
        return {"arch": a, "status": "ok", "score": -comps[a]["landscape"], "terms": {"components": comps[a]}}

    costs, c = Costs(space), Constraint()
    cfg = SearchConfig(k=3, batch_start=2, batch_step=2, iterations="sum")
    rank = lambda recs: pool_ranked_by_arch(est, recs)  # noqa: E731
    algo = MoteNAS(space, cfg, lambda a: True, [lambda a: c.admits(costs(a))], rank=rank)
    algo.start()
    seen = {}

    def evaluate(archs, _follow):
        out = [record(a) for a in archs]
        seen.update((r["arch"], r) for r in out)
        return out, len(out)

    drive(algo, 1, evaluate, max_steps=4)
    archs = list(seen)
    want = dict(zip(archs, log_rank_sum({k: [comps[a][k] for a in archs] for k in ("landscape", "speed")})))
    assert algo.scores == pytest.approx(want)
    assert max(algo.scores.values()) <= 0
    again = MoteNAS(space, cfg, lambda a: True, [lambda a: c.admits(costs(a))], rank=rank)
    again.start(json.loads(json.dumps(algo.state)), seen)
    assert again.scores == pytest.approx(want)


@pytest.mark.usefixtures("torch_one_thread")
def test_mote_search_with_the_fused_estimator(tmp_path, shared_data):
    args = ["search", "--space", "nb201", "--flops", "60M", "--profile", "tiny", "--estimator", "mote-z",
            *sum((["--set", f"{k}={v}"] for k, v in FAST.items()), []), "--set", "components=landscape,speed,params",
            "--algorithm", "ef", "--batch-start", "2", "--draw-factor", "10", "--draw", "uniform",
            "--proxy-data", str(shared_data / "proxy_cifar100_10"),
            "--benchmark", str(shared_data / "nb201" / "benchmark.csv"),
            "--runs-dir", str(tmp_path), "--name", "z", "--quiet"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "z" / "summary.json").read_text())
    w = summary["winners"][0]
    assert w["score"] <= 0  # a fused score: a sum of log(rank / N)
    from mobile_mote.store import SearchStore
    with SearchStore(tmp_path / "z" / "search.db", readonly=True) as st:
        recs = st.run_records("z")
    fused = dict(zip([r["arch"] for r in recs], get_estimator("mote-z", components="landscape,speed,params")
                     .population_scores(recs)))
    assert fused[w["arch"]] == pytest.approx(w["score"]) == max(v for v in fused.values() if v is not None)


@pytest.mark.usefixtures("torch_one_thread")
def test_mote_pareto_uses_the_fused_score_as_its_accuracy_objective(tmp_path, shared_data):
    args = ["pareto", "--space", "macro", "--objectives", "score,macs", "--estimator", "mote-z", "--profile", "tiny",
            *sum((["--set", f"{k}={v}"] for k, v in FAST.items()), []), "--set", "components=landscape,speed,params",
            "--population", "4", "--generations", "1", "--proxy-data", str(shared_data / "proxy_cifar100_10"),
            "--runs-dir", str(tmp_path), "--name", "p", "--quiet"]
    assert main(args) == 0
    front = json.loads((tmp_path / "p" / "summary.json").read_text())["front"]
    from mobile_mote.store import SearchStore
    with SearchStore(tmp_path / "p" / "search.db", readonly=True) as st:
        recs = st.run_records("p")
    fused = dict(zip([r["arch"] for r in recs], get_estimator("mote-z", components="landscape,speed,params")
                     .population_scores(recs)))
    assert front and all(p["score"] == pytest.approx(fused[p["arch"]]) and p["score"] <= 0 for p in front)
