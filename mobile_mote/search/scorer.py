"""Scoring candidates for a run: in this process (``LocalScorer``) or across processes
(``mobile_mote.parallel.ParallelScorer``, the same interface), and through the store, so a candidate
the store knows under (space, estimator config, seed) is read back instead of scored again."""
from __future__ import annotations

import contextlib
import time


class LocalScorer:
    """Scores in this process (the single-process path of mobile_mote.parallel), ``workers``
    candidates at a time (``mobile_mote.concurrent``: threads, one CUDA stream each)."""
    num_processes = 1
    is_main = True

    def __init__(self, space, estimator, data, seed: int, device, workers: int = 1):
        from ..concurrent import ConcurrentScoring
        self.space, self.est, self.data, self.seed, self.device = space, estimator, data, seed, device
        self._scoring = ConcurrentScoring(space, estimator, data, seed, device, workers)
        self.chunk = workers  # candidates per store chunk: one per worker

    def score(self, archs: list[str]) -> list[dict]:
        return self._scoring.score(archs)

    def close(self) -> None:
        self._scoring.close()


def with_costs(rec: dict, space, costs) -> dict:
    if costs is None:  # scoring outside a search (``scoring.score_archs``): no budget, no costs kept
        return rec
    c = costs(rec["arch"])
    A, X = space.encode(rec["arch"])
    return {**rec, "macs": c["macs"], "params": c["params"], "latency_ms": c["latency_ms"],
            "encoding": [A.tolist(), X.tolist()]}


_POLL_S = (0.05, 1.0)  # waiting for candidates claimed by another scorer: first and longest poll interval


def score_candidates(store, scorer, space, costs, archs: list[str], config_hash: str, seed: int,
                     on_chunk=None) -> tuple[list[dict], int]:
    """(records of ``archs``, how many were scored now, by this call): candidates the store already
    holds under (space, config, seed) are read back (any status, ``failed`` included); the others are
    scored in chunks of ``scorer.num_processes``, given their costs and stored chunk by chunk, so a
    kill loses at most the chunk in flight. ``on_chunk(done, total)`` follows the scoring.

    Scorers sharing a store (processes, or threads each with its own ``SearchStore``) never score
    one candidate twice: before each chunk, one store transaction (``SearchStore.claim``) reads
    back what is stored and claims up to a chunk of the rest that no live scorer has claimed; a
    candidate claimed by another live scorer is waited for (the store is polled, 0.05 s growing to
    1 s) until its record appears, and scored here only if its claimant dies first (a process gone
    on this host, a closed ``SearchStore`` in this process, a claim from another host older than
    ``store.CLAIM_TTL_OTHER_HOST_S``), or its scorer failed and gave the claim back. Storing a record
    drops its claim; an exception here gives back this call's claims. The wait lasts as long as the
    claimant lives. Not covered: a claimant on another host still scoring after that time (then both
    score it; the first ``ok`` record stays), and code older than store schema 2 (it refuses such a
    store). Records come back stored-first, then in the order of ``archs``, whoever scored them; a
    candidate another scorer stored counts as read back, not as scored now. Out of memory and CUDA errors
    (``DeviceError``, or a record marked ``device_error`` by another rank) are raised, never stored: the
    candidates scored beside them are stored, the claims given back, and ``--resume`` goes on from there."""
    cached = store.get_many(space.name, archs, config_hash, seed)
    todo = [a for a in dict.fromkeys(archs) if a not in cached]
    got: dict[str, dict] = {}
    n_scored = 0
    chunk = max(1, getattr(scorer, "chunk", None) or getattr(scorer, "num_processes", 1))
    wait = _POLL_S[0]
    try:
        while len(got) < len(todo):
            pending = [a for a in todo if a not in got]
            claimed, stored, held = store.claim(space.name, pending, config_hash, seed, chunk)
            got.update(stored)
            if claimed:
                recs = scorer.score(claimed)
                if len(recs) != len(claimed):
                    raise RuntimeError(f"the scorer returned {len(recs)} records for {len(claimed)} candidates")
                lost = [r for r in recs if r.get("device_error")]
                if lost:  # out of memory / a CUDA error on another rank: never stored as the candidate's failure
                    store.put_many([with_costs(r, space, costs) for r in recs if not r.get("device_error")])
                    from ..estimators import DeviceError
                    raise DeviceError(f"{len(lost)} candidate(s) lost to the device: {lost[0].get('error')}")
                recs = [with_costs(r, space, costs) for r in recs]
                store.put_many(recs)  # and drops their claims
                got.update(zip(claimed, recs))
                n_scored += len(recs)
                wait = _POLL_S[0]
            elif held and not stored:
                time.sleep(wait)  # every candidate left is being scored by another live scorer
                wait = min(_POLL_S[1], wait * 1.5)
            if on_chunk and (claimed or stored):
                on_chunk(len(got), len(todo))
    except BaseException:
        with contextlib.suppress(Exception):
            store.release_claims()
        raise
    return list(cached.values()) + [got[a] for a in todo], n_scored
