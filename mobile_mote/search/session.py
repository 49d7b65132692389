"""A run's session: its folder made writable and locked, its store opened and the run recorded or
resumed, its scorer, all released when the session ends. The driver runs its loop inside one;
MODNAS's trainer holds its --out folder with :func:`run_folder`, the part without a store."""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from urllib.parse import quote

from ..errors import InputError
from .context import RunContext
from .scorer import LocalScorer
from .spec import RunSpec


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
    spec = ctx.spec  # the resolved copy: the stored settings name the device that scores
    store = None
    with run_folder(spec.run_dir, spec.name) as (lock, created):
        try:
            run_dir = spec.run_dir
            store_path = Path(spec.store_path) if spec.store_path else run_dir / "search.db"
            if not _same_folder(store_path.parent, run_dir):
                created[:0] = _make_folder(store_path.parent, "the store's folder")
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
        finally:
            try:
                if scorer is not None and hasattr(scorer, "close"):
                    scorer.close()
            finally:
                if store is not None:
                    store.close()


@contextlib.contextmanager
def run_folder(run_dir: Path, name: str, option: str = "--runs-dir", rename: str = "--name"):
    """``(lock, created)`` while the session of the run ``name`` holds ``run_dir``: the folder made (with its
    parents) and checked writable, then locked (``run_dir/.lock``, ``fcntl.flock``, released when the session
    ends or its process dies; a second session of the same run is an InputError at once, naming ``rename``).
    ``lock`` takes more lock files for the session; ``created`` (deepest first) is what a failed session
    removes, each folder only when nothing but its lock file was written there (a caller adds the folders it
    makes). ``option`` is what an unwritable folder's message asks to change."""
    lock = _RunLock(rename)
    created: list[Path] = []
    failed = False
    try:
        created += _prepare_run_dir(Path(run_dir), option)
        lock.acquire(Path(run_dir) / ".lock", name)
        yield lock, created
    except BaseException:
        failed = True
        raise
    finally:
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

    def __init__(self, rename: str = "--name"):
        self._held: list[tuple[Path, int]] = []
        self._rename = rename

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
                                 f"choose another {self._rename}") from None
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


def _prepare_run_dir(d: Path, option: str = "--runs-dir") -> list[Path]:
    """Make the run folder ``d`` and check it is writable; the folders this call created (deepest first)."""
    created = _make_folder(d, "the run folder", f"choose a writable {option}")
    try:
        probe = d / ".write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        _remove_empty(created)
        raise InputError(f"cannot write the run folder {d}: {e.strerror}; choose a writable {option}") from None
    return created
