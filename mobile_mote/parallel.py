"""Score candidates in parallel across the processes of an ``accelerate launch`` (one GPU each, or CPU).

The search loop runs on the main process only; every other process sits in :meth:`ParallelScorer.serve`::

    with ParallelScorer("nb201", "mote", config, data) as scorer:
        if scorer.is_main:
            records = scorer.score(archs)      # same order as ``archs``
            ...                                # the whole search, on rank 0
        else:
            scorer.serve()                     # returns when the main process leaves the ``with``

One batch is one round of two collectives: the main process broadcasts ``{archs, shards}``
(``accelerate.utils.broadcast_object_list``), each process scores the candidates of its shard, and
``accelerate.utils.gather_object`` (an ``all_gather_object``: every process sends a list and gets the
concatenation of all of them) brings every ``(index, record)`` pair back. Leaving the ``with`` block on
the main process broadcasts a stop message, so an exception in the search never leaves workers waiting.

Shards: greedy longest-processing-time on a cost guess, the candidate's reduced MACs plus a fixed
per-candidate overhead (a quarter of the batch's mean MACs: data, landscape walk, Python); the main
process computes the assignment and broadcasts it with the candidates, so every rank agrees on it.
Which rank scores a candidate never changes its record (weights and batch order depend on (arch, seed)
only); each record gets ``rank``, the process that scored it.

Failures: a candidate that raises is a record with ``status="failed"``; an exception outside a candidate
(a whole shard) turns the shard's remaining candidates into failed records, and the process still takes
part in the gather (out of memory and CUDA errors: records marked ``device_error``, which the main process
raises instead of storing), so the main process never waits for a worker that gave up. A worker that dies
outright (killed, out of memory) makes the launcher (torchrun's agent) end every process.

Single process (no launch, or ``--processes 1``): candidates are scored in place; no torch.distributed.

Launching: :func:`launch_command` builds ``python -m accelerate.commands.launch --multi_gpu
--num_processes N --num_machines 1 --gpu_ids all --mixed_precision no --dynamo_backend no
--main_process_port 0 -m mobile_mote ARGS`` (accelerate 1.15). ``--multi_gpu`` is what starts N
processes through torchrun on one machine; ``--cpu`` would not (accelerate's simple launcher starts a
single process unless it is given an MPI hostfile). On a machine without CUDA, :class:`ParallelScorer`
then asks :class:`accelerate.PartialState` for CPU, which gives ``MULTI_CPU`` with the gloo backend.
For CPU processes the command is prefixed with ``env CUDA_VISIBLE_DEVICES=`` (GPUs hidden) and sets
``--num_cpu_threads_per_process`` (``OMP_NUM_THREADS`` if set, else cores // N). Port 0 makes
accelerate pick a free port.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from typing import Sequence

from mobile_mote.search_spaces import get_space

from .errors import InputError
from .estimators import get_estimator
from .estimators.base import device_error_kind, mark_failed

_STOP = "stop"
_SCORE = "score"
_ENV_WORLD = ("WORLD_SIZE", "LOCAL_RANK")


def is_launched() -> bool:
    """True inside a process started by ``accelerate launch`` / torchrun (WORLD_SIZE set)."""
    return any(k in os.environ for k in _ENV_WORLD)


# How long a rank waits in a collective (torch.distributed's timeout; NCCL's default is 10 minutes). The
# other ranks wait in a broadcast while the main process works alone (a search's evaluation stage, its
# outputs), which can take hours at paper settings; MOTE_PG_TIMEOUT_S overrides it.
PROCESS_GROUP_TIMEOUT_S = 48 * 3600


def process_group_timeout():
    """The collectives' timeout, a ``datetime.timedelta`` (``MOTE_PG_TIMEOUT_S`` seconds if set)."""
    from datetime import timedelta
    raw = os.environ.get("MOTE_PG_TIMEOUT_S", "").strip()
    try:
        seconds = float(raw) if raw else PROCESS_GROUP_TIMEOUT_S
    except ValueError:
        raise InputError(f"MOTE_PG_TIMEOUT_S={raw!r}; accepted: seconds, a positive number") from None
    if not seconds > 0:
        raise InputError(f"MOTE_PG_TIMEOUT_S={raw!r}; accepted: seconds, a positive number")
    return timedelta(seconds=seconds)


def _make_state():
    import torch
    from accelerate import PartialState
    if PartialState._shared_state:  # someone (an Accelerator, a test) made it already: use theirs
        return PartialState()
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    # Under a --multi_gpu launch without CUDA, PartialState() would see no backend and give every
    # process DistributedType.NO; cpu=True gives MULTI_CPU over gloo. Not launched: plain PartialState.
    if world > 1:  # init_process_group's timeout: waiting ranks outlive the main process's lone phases
        return PartialState(cpu=not torch.cuda.is_available(), timeout=process_group_timeout())
    return PartialState(cpu=False)


def lpt_shards(costs: Sequence[float], n: int) -> list[int]:
    """Greedy longest-processing-time: the shard (0..n-1) of each item, balancing summed cost."""
    loads = [0.0] * n
    shard = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(n), key=lambda r: (loads[r], r))
        shard[i] = r
        loads[r] += costs[i]
    return shard


class ParallelScorer:
    """Splits each batch of candidates over the processes of an accelerate launch (one GPU each, or CPU processes)."""

    def __init__(self, space_name: str, estimator: str, config: dict, data, seed: int = 0,
                 device: str | None = None, progress: bool = True, workers: int = 1):
        self.state = _make_state()
        self.space_name = space_name
        self.space = get_space(space_name)
        self.estimator_name = estimator
        self.estimator = get_estimator(estimator, **(config or {}))  # bad options raise on every rank alike
        self.data = data
        self.seed = seed
        dev = device if device is not None else self.state.device
        self.device = "cpu" if str(dev).startswith("cpu") else str(dev)
        self.progress = progress
        self.is_main: bool = bool(self.state.is_main_process)
        self.num_processes: int = int(self.state.num_processes)
        self.process_index: int = int(self.state.process_index)
        self._closed = False
        self._in_batch = False
        from .concurrent import ConcurrentScoring
        self.workers = workers
        self._concurrent = ConcurrentScoring(self.space, self.estimator, data, seed, self.device, workers) \
            if workers > 1 else None
        self.chunk = self.num_processes * workers  # candidates per store chunk: one per worker of every rank

    # -- main process ---------------------------------------------------------------------------
    def score(self, archs: list[str]) -> list[dict]:
        """Records for ``archs`` in input order, each with ``rank`` (the process that scored it)."""
        if not self.is_main:
            raise RuntimeError("ParallelScorer.score runs on the main process; the others call serve()")
        if self._closed:
            raise RuntimeError("ParallelScorer.score after close()")
        archs = [str(a) for a in archs]
        if not archs:
            return []
        if self.num_processes == 1:
            return [rec for _, rec in self._score_shard(archs, list(range(len(archs))))]
        shards = lpt_shards(self._costs(archs), self.num_processes)
        self._in_batch = True  # an exception between here and the gather leaves the ranks out of step
        self._broadcast({"op": _SCORE, "archs": archs, "shards": shards})
        out = self._run_batch(archs, shards)
        self._in_batch = False
        return out

    def close(self) -> None:
        """Main process: tell the workers to return from serve(). Idempotent; a no-op elsewhere."""
        if self._closed or not self.is_main:
            return
        self._closed = True
        if self.num_processes > 1 and not self._in_batch:
            # (mid-batch, the workers wait in the gather: a stop message would not match it; the main
            # process is leaving with an exception and the launcher ends the others)
            self._broadcast({"op": _STOP})

    # -- other processes --------------------------------------------------------------------------
    def serve(self) -> None:
        """Worker loop: receive a batch, score this rank's shard, send its records; return on close()."""
        if self.is_main:
            raise RuntimeError("ParallelScorer.serve runs on the non-main processes; the main one calls score()")
        while True:
            msg = self._broadcast(None)
            if not isinstance(msg, dict) or msg.get("op") != _SCORE:
                return
            self._run_batch(msg["archs"], msg["shards"])

    def __enter__(self) -> "ParallelScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------
    def _broadcast(self, msg):
        from accelerate.utils import broadcast_object_list
        box = [msg]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def _costs(self, archs: list[str]) -> list[float]:
        macs = []
        for a in archs:
            try:
                macs.append(float(self.space.macs(a, reduced=True)))
            except Exception:
                macs.append(float("nan"))
        known = [m for m in macs if m == m]
        mean = sum(known) / len(known) if known else 1.0
        return [(m if m == m else mean) + 0.25 * mean for m in macs]

    def _run_batch(self, archs: list[str], shards: list[int]) -> list[dict]:
        """Every rank: score its shard, then all-gather (index, record) pairs (every rank sends a list)."""
        from accelerate.utils import gather_object
        mine = [i for i, s in enumerate(shards) if s == self.process_index]
        pairs = self._score_shard([archs[i] for i in mine], mine)
        gathered = gather_object(pairs)
        out: list[dict | None] = [None] * len(archs)
        for i, rec in gathered:
            out[i] = rec
        for i, rec in enumerate(out):
            if rec is None:  # cannot happen unless a rank sent a short list; never return a hole
                out[i] = self._failed(archs[i], "no record came back from rank "
                                      f"{shards[i]}", rank=shards[i])
        return out  # type: ignore[return-value]

    def _score_shard(self, archs: list[str], indices: list[int]) -> list[tuple[int, dict]]:
        pairs: list[tuple[int, dict]] = []
        if self._concurrent is not None:  # this rank's shard, ``workers`` candidates at a time
            try:
                recs = self._concurrent.score(archs)
            except Exception as e:
                err = f"shard failed on rank {self.process_index}: {type(e).__name__}: {e}".splitlines()[0][:500]
                recs = [self._failed(a, err, device_error=device_error_kind(e) is not None) for a in archs]
            for rec in recs:
                rec["rank"] = self.process_index
            return list(zip(indices, recs))
        try:
            it = archs
            bar = None
            if self.progress and self.is_main:
                from tqdm.auto import tqdm
                desc = f"{self.estimator_name} on {self.space_name}"
                if self.num_processes > 1:
                    desc += f" (rank 0 of {self.num_processes})"
                it = bar = tqdm(archs, desc=desc, unit="arch", dynamic_ncols=True)
            for i, a in zip(indices, it):
                rec = self._score_one(a)
                pairs.append((i, rec))
                if bar is not None and rec.get("score") is not None:
                    bar.set_postfix(score=f"{rec['score']:.4g}")
        except Exception as e:  # the shard itself broke: the rest fail, the rank still gathers
            err = f"shard failed on rank {self.process_index}: {type(e).__name__}: {e}".splitlines()[0][:500]
            done = {i for i, _ in pairs}
            dev = device_error_kind(e) is not None
            pairs += [(i, self._failed(a, err, device_error=dev)) for i, a in zip(indices, archs) if i not in done]
        return pairs

    def _score_one(self, arch: str) -> dict:
        t0 = time.perf_counter()
        try:
            rec = self.estimator.estimate(self.space, arch, self.data, seed=self.seed, device=self.device).to_dict()
        except Exception as e:  # an invalid arch string, an estimator bug outside _terms, or a DeviceError
            rec = self._failed(arch, f"{type(e).__name__}: {e}", tb=traceback.format_exc(limit=3)[-2000:],
                               device_error=device_error_kind(e) is not None)
            rec["seconds"] = time.perf_counter() - t0
        rec["rank"] = self.process_index
        return rec

    def _failed(self, arch: str, error: str, tb: str | None = None, rank: int | None = None,
                device_error: bool = False) -> dict:
        """A failed record; ``device_error``: out of memory or a CUDA error, which the main process raises
        (``score_candidates``) instead of storing, after every rank has gathered."""
        rec = mark_failed(self.estimator.blank(self.space.name, arch, self.seed, self.device), error, tb).to_dict()
        rec["rank"] = self.process_index if rank is None else rank
        if device_error:
            rec["device_error"] = True
        return rec


# -- launching ---------------------------------------------------------------------------------------
def _strip_processes(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--processes N`` / ``--processes=N`` (the launched run must not relaunch)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--processes":
            skip = True
            continue
        if a.startswith("--processes="):
            continue
        out.append(a)
    return out


def _cpu_threads(n: int) -> int:
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) // n)


def launch_command(n_processes: int, argv: list[str], cpu: bool, module: str | None = "mobile_mote",
                   threads: int | None = None) -> list[str]:
    """The command that runs ``python -m <module> ARGV`` in ``n_processes`` processes on this machine.

    ``module=None``: ``argv[0]`` is a script path instead. ``--processes`` is removed from ``argv``.
    ``cpu``: CPU processes (GPUs hidden with ``CUDA_VISIBLE_DEVICES=``); otherwise one GPU per process.
    ``threads``: CPU threads per process (default: ``OMP_NUM_THREADS`` if set, else cores // N).
    """
    if int(n_processes) < 1:
        raise InputError(f"--processes {n_processes}: expected a whole number >= 1")
    n = int(n_processes)
    argv = _strip_processes(argv)
    if module is None and not argv:
        raise InputError("launch_command: no script to launch")
    target = ["-m", module, *argv] if module else list(argv)
    prefix = ["env", "CUDA_VISIBLE_DEVICES="] if cpu else []
    if n == 1:
        return [*prefix, sys.executable, *target]
    cmd = [*prefix, sys.executable, "-m", "accelerate.commands.launch",
           "--multi_gpu",  # the torchrun launcher: N local processes (also on CPU, see module doc)
           "--num_processes", str(n), "--num_machines", "1", "--gpu_ids", "all",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", "0"]  # 0: accelerate picks a free port
    if cpu:
        cmd += ["--num_cpu_threads_per_process", str(threads or _cpu_threads(n))]
    return [*cmd, *target]


def relaunch_with_processes(n: int, argv: list[str], cpu: bool | None = None,
                            module: str | None = "mobile_mote", threads: int | None = None) -> int:
    """Run ``launch_command(n, argv, cpu)`` as a subprocess; its exit code.

    ``cpu=None``: CPU processes when no GPU is visible; with GPUs, ``n`` must not exceed their number.
    ``threads``: CPU threads of each process, also given to them as OMP/MKL/OpenBLAS_NUM_THREADS.
    """
    if cpu is None:
        import torch
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus and n > gpus:
            raise InputError(f"--processes {n}: only {gpus} GPU(s) visible; use at most {gpus} "
                             "(one process per GPU)")
        cpu = gpus == 0
    cmd = launch_command(n, argv, cpu, module=module, threads=threads)
    env = None
    if threads:
        from .devices import thread_env
        env = {**os.environ, **thread_env(threads)}
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the children got the same SIGINT; let them finish writing
        try:
            return proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            return 130


__all__ = ["ParallelScorer", "is_launched", "launch_command", "lpt_shards", "relaunch_with_processes"]
