"""The zero-cost `fused` estimator: its components computed live, ranked by log-ranks over a population."""
from __future__ import annotations

import math

import pytest

from conftest import synthetic_proxy_data
from mobile_mote.errors import InputError
from mobile_mote.estimators import get_estimator
from mobile_mote.fusion import DEFAULT_RULE, MOTE_TERMS, log_rank_sum
from mobile_mote.search_spaces import get_space

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_defaults_are_the_chosen_rule_without_training_terms():
    est = get_estimator("fused")
    assert est.components == [c for c in DEFAULT_RULE if c not in MOTE_TERMS]


def test_population_scores_are_log_rank_sums_of_live_components():
    space, data = get_space("macro"), synthetic_proxy_data(140)  # naswot reads 128 distinct images
    est = get_estimator("fused", components="synflow,naswot,macs", reduced=True)
    recs = [est.estimate(space, a, data, seed=0).to_dict() for a in ("00000000", "11000000", "22220000")]
    assert all(r["status"] == "ok" for r in recs)
    comps = {c: [r["terms"]["components"][c] for r in recs] for c in est.components}
    assert all(v is not None for col in comps.values() for v in col)
    assert est.population_scores(recs) == pytest.approx(log_rank_sum(comps))
    solo = get_estimator("naswot", reduced=True).estimate(space, "11000000", data, seed=0)
    assert comps["naswot"][1] == solo.score  # the same value as the proxy scored alone


def test_flagged_component_ranks_last_and_bad_components_are_refused():
    est = get_estimator("fused", components="jacov,macs")
    ok = {"status": "ok", "terms": {"components": {"jacov": 1.0, "macs": 5.0}, "proxies": {}}}
    flagged = {"status": "ok", "terms": {"components": {"jacov": None, "macs": 9.0},
                                          "proxies": {"jacov": {"status": "flagged"}}}}
    assert est._component(flagged, "jacov") == -math.inf
    a, b = est.population_scores([ok, flagged])
    assert a is not None and b is not None
    for bad in ("mote", "nosuch", "jacov,jacov", ""):
        with pytest.raises(InputError, match="components"):
            get_estimator("fused", components=bad)
