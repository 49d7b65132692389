"""Score a list of architectures with one estimator: the Python API behind `mote score`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from mobile_mote.search_spaces import ArchError, get_space

from .errors import InputError
from .estimators import get_estimator
from .estimators.registry import estimator_config  # re-exported: the profile look-up lives with the estimators
from .data.default_data import resolve_proxy_data
from .data.proxy_data import ProxyData


def read_arch_file(path: str | os.PathLike) -> list[str]:
    """One architecture per line (blank lines and # comments skipped), or a JSON list."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"architecture file {p} does not exist; expected one architecture string per line")
    text = p.read_text()
    if text.lstrip().startswith("["):
        try:
            return [str(a) for a in json.loads(text)]
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: not a JSON list of architecture strings ({e})") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def sample_archs(space_name: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct architectures drawn with a seeded generator."""
    sp = get_space(space_name)
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    limit = sp.size() or float("inf")
    if n > limit:
        raise InputError(f"asked for {n} distinct architectures but {space_name} has {limit}")
    while len(out) < n:
        a = sp.sample(rng)
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def sample_from_file(path: str | os.PathLike, space, n: int, seed: int) -> list[str]:
    """``n`` architectures of the file in a seeded order (a smaller n is a prefix of a larger one)."""
    import csv
    p = Path(path)
    if p.suffix == ".csv" and p.is_file():
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            if "arch" not in (reader.fieldnames or []):
                raise InputError(f"{p}: no 'arch' column; expected a CSV with an arch column, or one architecture per line")
            pool = [row["arch"] for row in reader]
    else:
        pool = read_arch_file(p)
    pool = list(dict.fromkeys(space.canonical(a) for a in pool))
    if n > len(pool):
        raise InputError(f"asked for {n} architectures but {p.name} has {len(pool)}")
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:n]]


def score_archs(space_name: str, archs: Iterable[str], estimator: str, data: ProxyData | None,
                config: dict | None = None, seed: int = 0, device: str = "cpu", progress: bool = True,
                workers: int = 1, store=None) -> Iterator[dict]:
    """Yield one record (dict) per architecture, in order; failures are records, not exceptions.
    ``workers`` > 1: that many candidates at once (``mobile_mote.concurrent``), yielded in order.
    ``store`` (a ``SearchStore``): scored through the search's path (``search/scorer.py``), so a record
    the store holds under (space, arch, config hash, seed) is read back, and each one scored is stored
    (and claimed first, so scorers sharing the store never score one twice); every record then has the
    store's keys (``store.RECORD_KEYS``)."""
    sp = get_space(space_name)
    archs = list(archs)
    canon = []
    for a in archs:  # validate everything before spending time on training
        canon.append(sp.canonical(a))
    est = get_estimator(estimator, **(config or {}))
    it = canon
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(canon, desc=f"{estimator} on {space_name}", unit="arch", dynamic_ncols=True)
    if store is not None:
        yield from _through_store(store, sp, est, data, canon, seed, device, workers, it if progress else None)
        return
    from .concurrent import ConcurrentScoring
    scoring = ConcurrentScoring(sp, est, data, seed, device, workers)
    try:
        if workers == 1:
            for a in it:
                rec = scoring.one(a)
                if progress and rec["score"] is not None:
                    it.set_postfix(score=f"{rec['score']:.4g}")
                yield rec
            return
        bar = it if progress else None
        for start in range(0, len(canon), workers):
            for rec in scoring.score(canon[start:start + workers]):
                if bar is not None:
                    bar.update(1)
                yield rec
    finally:
        scoring.close()


def estimate_record(rec: dict, config: dict) -> dict:
    """``rec`` (scored now or read back from a store) as ``Estimate.to_dict()`` writes it, with the estimator's
    ``config_dict()`` as ``config``: a store adds cost keys (None outside a search) and reads ``config`` back
    with its keys sorted, and JSON-lines records read by other studies keep the plain record's shape."""
    from .estimators.record import Estimate
    return {**{k: rec.get(k) for k in Estimate.__dataclass_fields__}, "config": config}


def _through_store(store, space, est, data, archs: list[str], seed: int, device, workers: int, bar) -> Iterator[dict]:
    from .search.scorer import LocalScorer, score_candidates
    from .store import RECORD_KEYS
    scorer = LocalScorer(space, est, data, seed, device, workers)
    try:
        for start in range(0, len(archs), scorer.chunk):  # a chunk at a time: yielded as soon as it is stored
            part = archs[start:start + scorer.chunk]
            recs, _ = score_candidates(store, scorer, space, None, part, est.config_hash(), seed)
            by_arch = {r["arch"]: r for r in recs}
            for a in part:
                if bar is not None:
                    bar.update(1)
                yield {k: by_arch[a].get(k) for k in RECORD_KEYS}  # scored now or read back: one shape
    finally:
        scorer.close()


__all__ = ["ArchError", "estimate_record", "estimator_config", "read_arch_file", "resolve_proxy_data", "sample_archs", "sample_from_file", "score_archs"]
