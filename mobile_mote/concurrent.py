"""Several candidates at once on one device: one thread per worker, each with its own CUDA stream.

A reduced network is small enough that one at a time leaves a GPU mostly idle between kernel
launches; W threads, each launching one candidate's work on its own stream, keep it busy. Every
candidate's weights and batch order depend on (arch, seed) only, so under the deterministic time
(``time=cost``) the records equal a one-at-a-time run's. Under ``time=wall`` the epoch durations of
concurrent candidates include each other's work, so such a record says ``concurrent_workers`` in its
terms, and cost time is the sensible choice with workers (see README).

Only estimators that say ``thread_safe`` run here: the training estimators draw from torch's global
RNG only while building the model, which ``build_seeded`` does under a lock; the zero-cost proxies draw
from it while scoring, so they run one at a time. ``step=graph`` runs with one worker only: PyTorch
allows one CUDA-graph capture per process at a time and no other work on any thread during it.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from .errors import InputError


def check_workers(estimator, workers: int) -> int:
    """``workers`` if the estimator can run that many at once, else a one-line InputError."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InputError(f"--workers-per-device {workers!r}; accepted: a whole number, 1 or more")
    if workers > 1 and not getattr(estimator, "thread_safe", False):
        from .estimators.registry import ESTIMATORS
        safe = ", ".join(n for n, cls in ESTIMATORS.entries().items() if cls.thread_safe)
        raise InputError(f"--workers-per-device {workers}: estimator {estimator.name!r} runs one candidate at a time "
                         f"(the zero-cost proxies draw from torch's global RNG while scoring); accepted with {safe}")
    if workers > 1 and getattr(getattr(estimator, "config", None), "step", None) == "graph":
        # PyTorch captures one CUDA graph per process at a time, with no other work on any thread meanwhile
        raise InputError(f"--workers-per-device {workers} with step=graph: CUDA graphs are captured one per process "
                         "at a time; accepted: step=graph with 1 worker, or step=eager with several")
    return workers


class ConcurrentScoring:
    """``score(archs)``: records in input order, ``workers`` candidates in flight at a time."""

    def __init__(self, space, estimator, data, seed: int, device, workers: int):
        self.space, self.est, self.data, self.seed, self.device = space, estimator, data, seed, device
        self.workers = check_workers(estimator, workers)
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mote-worker") \
            if self.workers > 1 else None

    def _stream(self, device):
        import torch
        if getattr(self._local, "stream", None) is None:
            self._local.stream = torch.cuda.Stream(device)
        return self._local.stream

    def one(self, arch: str) -> dict:
        import torch

        from .devices import resolve_device
        dev = torch.device(resolve_device(self.device))
        if self._pool is not None and dev.type == "cuda":
            stream = self._stream(dev)  # this thread's own, made once and reused
            # the shared data tensors were made on the default stream (prepare): wait for that work first
            stream.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(stream):
                rec = self.est.estimate(self.space, arch, self.data, self.seed, self.device).to_dict()
            stream.synchronize()
        else:
            rec = self.est.estimate(self.space, arch, self.data, self.seed, self.device).to_dict()
        if self._pool is not None and getattr(self.est.config, "time", None) == "wall" and rec.get("terms"):
            rec["terms"]["concurrent_workers"] = self.workers
        return rec

    def score(self, archs: list[str]) -> list[dict]:
        if self._pool is None:
            return [self.one(a) for a in archs]
        if archs:  # the data tensors are made once, before the threads share them
            self.est.prepare(self.data, self.device)
        return list(self._pool.map(self.one, archs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
