"""Score a list of architectures with one estimator: the Python API behind `mote score`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from search_spaces import ArchError, get_space

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


def score_archs(space_name: str, archs: Iterable[str], estimator: str, data: ProxyData | None,
                config: dict | None = None, seed: int = 0, device: str = "cpu", progress: bool = True,
                workers: int = 1) -> Iterator[dict]:
    """Yield one record (dict) per architecture, in order; failures are records, not exceptions.
    ``workers`` > 1: that many candidates at once (``mobile_mote.concurrent``), yielded in order."""
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


__all__ = ["ArchError", "estimator_config", "read_arch_file", "resolve_proxy_data", "sample_archs", "score_archs"]
