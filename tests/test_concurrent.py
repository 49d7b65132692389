"""Several candidates at once on one device: the same records as one at a time under cost time."""
import json

import pytest

from mobile_mote.cli import main
from mobile_mote.concurrent import ConcurrentScoring, check_workers
from mobile_mote.errors import InputError
from mobile_mote.estimators import get_estimator
from mobile_mote.search.scorer import LocalScorer
from mobile_mote.search_spaces import get_space

FAST = {"epochs": 1, "points": 1, "images_per_class": 4, "batch_size": 20, "time": "cost"}
ARCHS = ["12012012", "00000000", "22222222", "21021021", "10101010"]


@pytest.fixture(scope="module")
def small_data(shared_data):
    from mobile_mote.data.proxy_data import load_proxy_data
    return load_proxy_data(shared_data / "proxy_cifar100_10").subset(8, seed=1)


def _same(a, b):
    assert a["arch"] == b["arch"] and a["status"] == b["status"] == "ok"
    assert a["score"] == pytest.approx(b["score"], rel=1e-6)
    assert a["terms"]["train_losses"] == pytest.approx(b["terms"]["train_losses"], rel=1e-6)
    assert a["config_hash"] == b["config_hash"]


@pytest.mark.usefixtures("torch_one_thread")
def test_three_workers_give_the_one_at_a_time_records(small_data):
    sp = get_space("macro")
    est = get_estimator("mote", **FAST)
    one = LocalScorer(sp, est, small_data, 0, "cpu").score(ARCHS)
    many = LocalScorer(sp, get_estimator("mote", **FAST), small_data, 0, "cpu", workers=3)
    assert many.chunk == 3
    try:
        got = many.score(ARCHS)
    finally:
        many.close()
    for a, b in zip(one, got):
        _same(a, b)
        assert "concurrent_workers" not in b["terms"]  # cost time: nothing to say


@pytest.mark.usefixtures("torch_one_thread")
def test_wall_time_records_say_they_ran_concurrently(small_data):
    scoring = ConcurrentScoring(get_space("macro"), get_estimator("tse", **{**FAST, "time": "wall"}), small_data,
                                0, "cpu", 2)
    try:
        recs = scoring.score(ARCHS[:2])
    finally:
        scoring.close()
    assert all(r["terms"]["concurrent_workers"] == 2 for r in recs)


def test_proxies_and_bad_counts_are_refused():
    with pytest.raises(InputError, match="synflow"):
        check_workers(get_estimator("synflow"), 2)
    with pytest.raises(InputError, match="mote-z"):
        check_workers(get_estimator("mote-z"), 4)
    with pytest.raises(InputError, match="accepted: a whole number"):
        check_workers(get_estimator("mote"), 0)
    assert check_workers(get_estimator("synflow"), 1) == 1


@pytest.mark.usefixtures("torch_one_thread")
def test_cli_score_with_workers(tmp_path, shared_data, capsys):
    common = ["score", "--space", "macro", "--sample", "3", "--estimator", "mote", "--profile", "tiny", "--quiet",
              *sum((["--set", f"{k}={v}"] for k, v in FAST.items()), []),
              "--proxy-data", str(shared_data / "proxy_cifar100_10")]
    assert main(common + ["--out", str(tmp_path / "one.jsonl")]) == 0
    assert main(common + ["--workers-per-device", "2", "--out", str(tmp_path / "two.jsonl")]) == 0
    one = [json.loads(x) for x in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        _same(a, b)
    assert main(["score", "--space", "macro", "--sample", "2", "--estimator", "synflow",
                 "--workers-per-device", "2", "--proxy-data", str(shared_data / "proxy_cifar100_10")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.usefixtures("torch_one_thread")
def test_a_search_with_workers_is_the_same_search(tmp_path, shared_data):
    from mobile_mote.efficiency import parse_constraints
    from mobile_mote.search import RunSpec, SearchConfig, run
    from mobile_mote.store import SearchStore

    def spec(name, workers):
        return RunSpec(name=name, space="macro", constraints=parse_constraints("40M"), estimator="mote",
                       estimator_config=FAST, algorithm="ef",
                       algorithm_config=SearchConfig(k=3, batch_start=1, draw_factor=3, draw="neighbours"),
                       proxy_data=str(shared_data / "proxy_cifar100_10"), runs_dir=str(tmp_path), workers=workers)
    a = run(spec("one", 1), progress=False)
    b = run(spec("two", 3), progress=False)
    assert a["winners"][0]["arch"] == b["winners"][0]["arch"] and a["candidates"] == b["candidates"]
    assert spec("one", 1).config_dict() == {**spec("one", 3).config_dict()}  # workers: not the run's identity
    with SearchStore(tmp_path / "one" / "search.db", readonly=True) as s1, \
            SearchStore(tmp_path / "two" / "search.db", readonly=True) as s2:
        r1 = {r["arch"]: r for r in s1.run_records("one")}
        r2 = {r["arch"]: r for r in s2.run_records("two")}
    assert set(r1) == set(r2)
    for arch in r1:
        _same(r1[arch], r2[arch])
