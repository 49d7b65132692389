"""``score_archs`` with a store scores through the search's path: read back, not scored again."""
from __future__ import annotations

import json

import pytest

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


def test_mote_score_through_a_store_prints_the_plain_records(tmp_path, capsys, monkeypatch):
    from mobile_mote.cli import main
    argv = ["score", "--space", "nb201", "--sample", "3", "--estimator", "macs", "--quiet"]
    assert main(argv) == 0
    plain = capsys.readouterr().out.splitlines()
    db = str(tmp_path / "s.db")
    assert main(argv + ["--store", db]) == 0
    first = capsys.readouterr().out.splitlines()
    monkeypatch.setattr(Estimator, "estimate", lambda *a, **k: pytest.fail("scored again"))
    assert main(argv + ["--store", db]) == 0  # read back from the store: the same lines, timings included
    assert capsys.readouterr().out.splitlines() == first
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]  # noqa: E731
    assert [list(json.loads(x)) for x in first] == [list(json.loads(x)) for x in plain]
    assert strip(first) == strip(plain)
    (tmp_path / "junk.db").write_text("not a store")
    assert main(argv + ["--store", str(tmp_path / "junk.db")]) == 2
