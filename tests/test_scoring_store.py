"""``score_archs`` with a store scores through the search's path: read back, not scored again."""
from __future__ import annotations

from mobile_mote.estimators.base import Estimator
from mobile_mote.scoring import sample_archs, score_archs
from mobile_mote.store import SearchStore


def test_score_archs_through_a_store_reads_back_what_it_holds(tmp_path, monkeypatch):
    archs = sample_archs("nb201", 6, seed=3)
    plain = list(score_archs("nb201", archs, "macs", None, progress=False))
    calls = []
    estimate = Estimator.estimate

    def counted(self, space, arch, *a, **k):
        calls.append(arch)
        return estimate(self, space, arch, *a, **k)
    monkeypatch.setattr(Estimator, "estimate", counted)
    with SearchStore(tmp_path / "scores.db") as store:
        first = list(score_archs("nb201", archs[:4], "macs", None, progress=False, store=store))
        assert len(calls) == 4
        both = list(score_archs("nb201", archs, "macs", None, progress=False, store=store))
        assert len(calls) == 6 and len(store.records()) == 6
    assert [r["arch"] for r in both] == [r["arch"] for r in plain]
    assert [r["score"] for r in both] == [r["score"] for r in plain]
    assert both[:4] == first
