"""The evaluation stage scores through the store like the search: resumable candidate by candidate,
and read back by a rerun instead of evaluated again."""
from __future__ import annotations

import pytest

from mobile_mote.efficiency.constraints import Constraint
from mobile_mote.search import RunSpec, run
from mobile_mote.search.algorithms.mote_nas.evaluation import TableEvaluator
from mobile_mote.store import SearchStore

_RECORD = TableEvaluator.record


class Killed(BaseException):
    """A kill in the middle of the stage (nothing catches it on the way out)."""


def _spec(tmp_path, bench, name, store=None):
    return RunSpec(name=name, space="nb201", constraints=[Constraint(max_macs=100e6), Constraint(max_macs=200e6)],
                   estimator="macs", algorithm="mote-nas", algorithm_config={"batch_start": 2, "k": 4},
                   benchmark=str(bench), seed=1, runs_dir=str(tmp_path / "runs"),
                   store_path=None if store is None else str(store))


def _counting(monkeypatch, fail_after=None):
    seen = []

    def counted(self, arch):
        if fail_after is not None and len(seen) >= fail_after:
            raise Killed
        seen.append(arch)
        return _RECORD(self, arch)
    monkeypatch.setattr(TableEvaluator, "record", counted)
    return seen


def test_a_killed_evaluation_stage_resumes_per_candidate_and_a_rerun_reads_it_back(
        tmp_path, nb201_benchmark_csv, monkeypatch):
    whole = run(_spec(tmp_path, nb201_benchmark_csv, "whole"), progress=False)
    n_evals = len({t["arch"] for w in whole["winners"] for t in w["top_k"]})

    store = tmp_path / "shared.db"
    seen = _counting(monkeypatch, fail_after=2)
    with pytest.raises(Killed):
        run(_spec(tmp_path, nb201_benchmark_csv, "killed", store), progress=False)
    assert len(seen) == 2
    with SearchStore(store) as s:
        assert sum(r["estimator"] == "short_training" for r in s.records()) == 2

    seen = _counting(monkeypatch)
    resumed = run(_spec(tmp_path, nb201_benchmark_csv, "killed", store), resume=True, progress=False)
    assert len(seen) == n_evals - 2
    assert resumed["winners"] == whole["winners"]

    seen = _counting(monkeypatch)
    again = run(_spec(tmp_path, nb201_benchmark_csv, "again", store), progress=False)
    assert seen == [] and again["winners"] == whole["winners"]
