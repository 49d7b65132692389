"""The one search loop: any algorithm, any space, any estimator, under budgets, resumable.

The driver is nanoGPT-plain and owns everything an algorithm should not: the RNG state, the store,
resume and progress. An algorithm only proposes architecture strings and reads their records back,
through pymoo's shape::

    algo.start(saved_state, known_records)
    while not algo.done:
        archs = algo.ask(rng)              # what to score next
        records = score(archs)             # the store's, or scored now (and stored chunk by chunk)
        algo.tell(records)                 # update pool / population
        commit(records, rng, algo.state)   # one transaction per step

A kill loses at most the candidates in flight; ``resume=True`` replays the interrupted step from its
saved RNG state, and every candidate already scored is read back from the store, not scored again.
After the loop the algorithm's final step runs (``algo.finish``: MOTE-NAS's evaluation stage and
winners, NSGA-II's front), which writes the run's outputs and returns its summary.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote

from ..errors import InputError
from ..plain import json_safe
from .algorithms import rng_from_state
from .context import RunContext
from .scorer import LocalScorer, score_candidates
from .spec import RunSpec


def drive(algo, seed, evaluate, commit=None, bar=None, stats: dict | None = None,
          max_steps: int | None = None) -> None:
    """Run ``algo`` to its end (or for ``max_steps`` steps). ``evaluate(archs, follow) -> (records,
    n_scored_now)``; ``commit(records, step, state)`` persists a finished step (None: nothing is).
    ``seed``: anything numpy's PCG64 takes; the RNG is rebuilt from the saved state at every step."""
    stats = stats if stats is not None else {}
    steps = 0
    while not algo.done and (max_steps is None or steps < max_steps):
        steps += 1
        rng = rng_from_state(algo.state["rng"], seed)
        proposed = algo.ask(rng)
        follow = None if bar is None else (lambda done, total: bar.set_postfix(scoring=f"{done}/{total}"))
        records, n_scored = evaluate(proposed, follow)
        stats["scored_now"] = stats.get("scored_now", 0) + n_scored
        stats["from_store"] = stats.get("from_store", 0) + len(proposed) - n_scored
        algo.tell(records, n_scored)
        algo.state["rng"] = rng.bit_generator.state
        if commit is not None:
            commit(records, algo.step, json_safe(algo.state))
        if bar is not None:
            bar.set_postfix(**algo.postfix())
            bar.update(1)


def run(spec: RunSpec, resume: bool = False, scorer=None, progress: bool = True, log=None,
        ctx: RunContext | None = None) -> dict:
    """Run (or, ``resume=True``, continue) ``spec``; returns the summary dict also written to the run
    folder. An existing run without ``resume``, ``resume`` of a run the store does not have, and a
    run in progress in another process are InputErrors (``run_session``).
    ``ctx``: the spec's RunContext when the caller built it already (it is built once per run)."""
    ctx = ctx or RunContext(spec, log=log)  # every check that needs no store and no scoring
    with run_session(spec, resume, scorer, ctx) as (store, state, scorer):
        algo = ctx.make_algorithm()
        algo.start(state, {r["arch"]: r for r in store.run_records(spec.name)})
        stats = {"scored_now": 0, "from_store": 0, "t_start": time.perf_counter()}

        def evaluate(archs, follow):
            return score_candidates(store, scorer, ctx.space, ctx.costs, archs, ctx.config_hash, spec.seed, follow)

        bar = None
        if progress:
            from tqdm.auto import tqdm
            n, total = algo.progress()
            bar = tqdm(total=total, initial=n, unit=algo.unit, desc=f"{spec.algorithm} {spec.space}",
                       dynamic_ncols=True, file=sys.stderr)
        try:
            drive(algo, spec.seed, evaluate, lambda recs, step, st: store.commit_iteration(spec.name, recs, step, st),
                  bar, stats)
        finally:
            if bar is not None:
                bar.close()
        return algo.finish(ctx, store, stats, progress)


@contextlib.contextmanager
def run_session(spec: RunSpec, resume: bool, scorer=None, ctx: RunContext | None = None):
    """``(store, saved state or None, scorer)`` of the run ``spec.name``, both closed on the way out.

    The run folder is made writable and locked for the session (``runs/<name>/.lock``, and beside a
    store outside the run folder ``.<store file>.<name>.lock``: ``fcntl.flock``, released when the
    session ends or its process dies; a second session of the same run is an InputError at once).
    Then the store is opened (``spec.store_path`` or runs/<name>/search.db), a new run recorded or a
    resumed one checked to have the same settings (``spec.config_dict()``). An existing run without
    ``resume`` is an InputError, and so is ``resume`` of a run the store does not have (nothing is
    written: no store is created). A session that fails removes the run folder (and the folders
    above it) it created, when nothing but its lock file was written there. Without a ``scorer``
    one is made in this process (with the reduced data if the estimator needs images)."""
    from ..store import SearchStore
    ctx = ctx or RunContext(spec)
    store = None
    lock = _RunLock()
    created: list[Path] = []
    failed = False
    try:
        run_dir, created = _prepare_run_dir(spec)
        store_path = Path(spec.store_path) if spec.store_path else run_dir / "search.db"
        lock.acquire(run_dir / ".lock", spec.name)
        if not _same_folder(store_path.parent, run_dir):
            created = _make_folder(store_path.parent, "the store's folder") + created
            lock.acquire(store_path.parent / f".{store_path.name}.{quote(spec.name, safe='')}.lock", spec.name)
        if resume and not (store_path.is_file() and store_path.stat().st_size > 0):
            raise InputError(_no_run(spec, store_path))
        store = SearchStore(store_path)
        if resume and store.run_config(spec.name) is None:
            raise InputError(_no_run(spec, store_path))
        state = store.load_state(spec.name)
        if state is not None and not resume:
            raise InputError(f"run {spec.name!r} already exists in {run_dir}; pass --resume to continue it, "
                             "or choose another --name")
        store.start_run(spec.name, spec.config_dict())
        if scorer is None:
            scorer = LocalScorer(ctx.space, ctx.estimator, ctx.data, spec.seed, spec.device, spec.workers)
        yield store, state, scorer
    except BaseException:
        failed = True
        raise
    finally:
        try:
            if scorer is not None and hasattr(scorer, "close"):
                scorer.close()
        finally:
            if store is not None:
                store.close()
            lock.release()
            if failed:
                _remove_empty(created)


def _no_run(spec: RunSpec, store_path: Path) -> str:
    where = f"{spec.runs_dir}/" + (f" or the store {store_path}" if spec.store_path else "")
    return f"no run named {spec.name!r} in {where}; drop --resume to start it"


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


class _RunLock:
    """Exclusive ``fcntl.flock`` locks on lock files, held until :meth:`release` or the process dies.

    A lock file holds the holder's pid. Releasing unlinks the file while still holding it; a process
    that locked a file just unlinked (or replaced) sees its inode gone from the path and tries again,
    so two processes never both hold a run. A file left by a killed process is stale and harmless."""

    def __init__(self):
        self._held: list[tuple[Path, int]] = []

    def acquire(self, path: Path, name: str) -> None:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): no lock
            return
        for _ in range(100):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise InputError(f"cannot create the lock file {path}: {e.strerror or e}; expected a writable "
                                 "folder (--runs-dir, --store)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise InputError(f"run {name!r} is in progress in another process ({holder}); wait for it or "
                                 "choose another --name") from None
            except OSError:  # a file system without flock: go on unlocked
                os.close(fd)
                return
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released (unlinked) by its holder between our open and flock: try again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self._held.append((path, fd))
            return
        raise InputError(f"cannot lock {path}: it keeps being replaced by other processes; try again")

    def release(self) -> None:
        while self._held:
            path, fd = self._held.pop()
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    os.unlink(path)
            os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        words = os.read(fd, 200).decode("utf-8", "replace").split()
    except OSError:
        words = []
    if not words:
        return "pid unknown"
    host = f" on {words[1]}" if len(words) > 1 and words[1] != socket.gethostname() else ""
    return f"pid {words[0]}{host}"


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed session created (deepest first), each only if it is empty."""
    for d in folders:
        with contextlib.suppress(OSError):
            d.rmdir()


def _make_folder(d: Path, what: str, hint: str = "choose a writable location") -> list[Path]:
    """Make ``d`` (and its parents); the folders this call created, deepest first."""
    created = []
    p = d
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_empty(created)
        raise InputError(f"cannot create {what} {d}: {e.strerror}; {hint}") from None
    return created


def _prepare_run_dir(spec: RunSpec) -> tuple[Path, list[Path]]:
    """The run folder, made writable, and the folders this call created (deepest first)."""
    d = spec.run_dir
    created = _make_folder(d, "the run folder", "choose a writable --runs-dir")
    try:
        probe = d / ".write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        _remove_empty(created)
        raise InputError(f"cannot write the run folder {d}: {e.strerror}; choose a writable --runs-dir") from None
    return d, created
