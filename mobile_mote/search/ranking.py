"""The score a search ranks by. For most estimators it is the record's own score; for one whose score
is defined over a population (``mote-z``'s fused rank) it is recomputed over the run's records every
time they change, and a resumed run recomputes it from the stored records the same way."""
from __future__ import annotations


def pool_ranked(estimator, records: list[dict]) -> list[dict]:
    """``records`` with ``score`` the ranking score within them (the own score kept as ``own_score``)."""
    if not getattr(estimator, "population_dependent", False):
        return records
    scores = estimator.population_scores(records)
    return [{**r, "score": s, "own_score": r.get("score")} for r, s in zip(records, scores)]


def pool_ranked_by_arch(estimator, records: dict[str, dict]) -> dict[str, dict]:
    if not getattr(estimator, "population_dependent", False):
        return records
    archs = list(records)
    return dict(zip(archs, pool_ranked(estimator, [records[a] for a in archs])))
