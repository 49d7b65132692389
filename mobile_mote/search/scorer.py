"""Scoring candidates for a run: in this process (``LocalScorer``) or across processes
(``mobile_mote.parallel.ParallelScorer``, the same interface), and through the store, so a candidate
the store knows under (space, estimator config, seed) is read back instead of scored again."""
from __future__ import annotations


class LocalScorer:
    """Scores in this process (the single-process path of mobile_mote.parallel)."""
    num_processes = 1
    is_main = True

    def __init__(self, space, estimator, data, seed: int, device):
        self.space, self.est, self.data, self.seed, self.device = space, estimator, data, seed, device

    def score(self, archs: list[str]) -> list[dict]:
        return [self.est.estimate(self.space, a, self.data, self.seed, self.device).to_dict() for a in archs]

    def close(self) -> None:
        pass


def with_costs(rec: dict, space, costs) -> dict:
    c = costs(rec["arch"])
    A, X = space.encode(rec["arch"])
    return {**rec, "macs": c["macs"], "params": c["params"], "latency_ms": c["latency_ms"],
            "encoding": [A.tolist(), X.tolist()]}


def score_candidates(store, scorer, space, costs, archs: list[str], config_hash: str, seed: int,
                     on_chunk=None) -> tuple[list[dict], int]:
    """(records of ``archs``, how many were scored now): candidates the store already holds under
    (space, config, seed) are read back; the others are scored in chunks of ``scorer.num_processes``,
    given their costs and stored chunk by chunk, so a kill loses at most the chunk in flight.
    ``on_chunk(done, total)`` follows the scoring."""
    cached = store.get_many(space.name, archs, config_hash, seed)
    todo = [a for a in archs if a not in cached]
    new_records: list[dict] = []
    chunk = max(1, getattr(scorer, "num_processes", 1))
    for i in range(0, len(todo), chunk):
        recs = [with_costs(r, space, costs) for r in scorer.score(todo[i:i + chunk])]
        store.put_many(recs)
        new_records.extend(recs)
        if on_chunk:
            on_chunk(len(new_records), len(todo))
    return list(cached.values()) + new_records, len(todo)
