"""The search's results store: every scored candidate and every run's state, in one SQLite file.

A search writes ``runs/<name>/search.db``; several runs may share one store. Candidates are keyed
by ``(space, arch, config_hash, seed)``, so a candidate already scored under the same estimator
configuration is read back instead of being scored again, whichever run scored it. Runs are linked
to candidates separately, with the iteration that added each one.

Design choices (the whole policy, in one place):

- **One transaction per iteration.** :meth:`SearchStore.commit_iteration` writes the iteration's
  records, their links to the run and the run's state (iteration, pool, RNG state: any JSON-able
  dict) in a single transaction, so a kill leaves either the whole iteration or none of it. WAL
  journal, ``synchronous=FULL``: a committed iteration survives a process kill and a power loss.
- **Overwrite policy.** Re-putting a key never replaces an ``ok`` record. A ``flagged`` record
  (non-finite score) is replaced only by an ``ok`` one; a ``failed`` record is replaced by any
  newer record (a retry after, say, an out-of-memory error). Replacing keeps the row, so links from
  runs stay valid. Re-linking a candidate to a run keeps the iteration that first added it.
- **Non-finite numbers.** ``score``, ``macs``, ``params``, ``latency_ms`` and ``seconds`` are SQL
  columns; a non-finite value there is stored as NULL and read back as ``None`` (as
  ``Estimate.to_dict`` already does for the score). ``terms``, ``config``, run configs, states and
  results are JSON text written by Python's ``json`` with ``allow_nan=True``: NaN, Infinity and
  -Infinity round-trip exactly (as the tokens ``NaN``/``Infinity``, which Python's ``json`` reads
  but SQLite's ``json_extract`` does not). Tuples come back as lists; numpy scalars and arrays
  are written as numbers and lists.
- **Encodings.** The optional ``encoding`` (A, X) is stored as compact JSON ``[A, X]`` of nested
  lists and read back as ``[A, X]`` (lists; ``np.asarray`` them when needed).
- **Recognising our files.** ``PRAGMA application_id`` (``'MOTE'``) and ``PRAGMA user_version``
  (:attr:`SearchStore.SCHEMA_VERSION`) mark a store. An existing file is first inspected through a
  read-only connection; anything that is not an empty file or a store of a schema this code reads
  (random bytes, another application's database, a newer schema) raises :class:`StoreError` with
  one line, and the file is left untouched. A store of ours is then checked with SQLite's
  ``PRAGMA quick_check`` (the whole file's b-tree structure, not the text inside the rows): a damaged
  store is refused with one line before anything writes to it, and left byte-for-byte untouched. Any
  ``sqlite3.DatabaseError`` later on (and a row whose JSON cannot be read) is a one-line
  :class:`StoreError`; a failed write transaction is rolled back whole.
- **Schema versions.** Version 2 adds the ``claims`` table. A version-1 store opens as it is (read-only
  opens never change it) and gains the table, and version 2, in the same transaction as its first
  write by this code; this code reads and writes both.
- **Claims: concurrent scorers never score one candidate twice.** :meth:`SearchStore.claim` is one
  write transaction that returns the stored records of the asked keys and claims (for this
  ``SearchStore`` object: pid, host, process start time, a per-object token) up to ``limit`` of the
  others that no live scorer has claimed; :meth:`SearchStore.put_many` drops the claims of the keys
  it stores, :meth:`SearchStore.release_claims` (and :meth:`close`) the rest of this object's
  claims. A claim is live while its claimant lives: on this host, while a process with its pid and
  start time exists (in this process: while its ``SearchStore`` object is open); a claim from another
  host for :data:`CLAIM_TTL_OTHER_HOST_S` after it was made. Claims that are not live are taken over.
  ``mobile_mote.search.scorer.score_candidates`` builds on it: what is guaranteed is stated there.

Records are the plain dicts of ``mobile_mote.estimators.record.Estimate.to_dict()`` (space, arch,
estimator, score, terms, config, config_hash, seed, device, seconds, status, error) plus the
optional ``macs``, ``params``, ``latency_ms`` and ``encoding``; records read back always carry all
sixteen keys (``None`` where unknown). Records of a run also carry ``iteration``.

This module uses only the standard library (no torch, no numpy).
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import InputError

__all__ = ["SearchStore", "StoreError", "APPLICATION_ID", "RECORD_KEYS", "CLAIM_TTL_OTHER_HOST_S"]

APPLICATION_ID = 0x4D4F5445  # 'MOTE'
RECORD_KEYS = ("space", "arch", "estimator", "score", "terms", "config", "config_hash", "seed", "device",
               "seconds", "status", "error", "macs", "params", "latency_ms", "encoding")
_STATUS_RANK = {"failed": 0, "flagged": 1, "ok": 2}
_CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit
_BUSY_TIMEOUT_S = 60.0  # a store shared by several runs waits this long for another writer
CLAIM_TTL_OTHER_HOST_S = 2 * 3600.0  # a claim made on another host (whose processes cannot be checked) is
#                                      honoured this long after it was made, then taken over
_LIVE_TOKENS: set[str] = set()  # claim tokens of the SearchStore objects open in this process

_SCHEMA = """
CREATE TABLE IF NOT EXISTS estimator_configs (
    config_hash TEXT PRIMARY KEY,
    estimator   TEXT NOT NULL,
    config      TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS candidates (
    id          INTEGER PRIMARY KEY,
    space       TEXT NOT NULL,
    arch        TEXT NOT NULL,
    config_hash TEXT NOT NULL REFERENCES estimator_configs(config_hash),
    seed        INTEGER NOT NULL,
    estimator   TEXT NOT NULL,
    score       REAL,                      -- higher is better; NULL when failed or flagged
    terms       TEXT NOT NULL,             -- JSON (NaN / Infinity allowed)
    status      TEXT NOT NULL,             -- ok | flagged | failed
    error       TEXT,
    device      TEXT,
    seconds     REAL,
    macs,                                  -- no type: ints stay ints
    params,
    latency_ms,
    encoding    TEXT,                      -- JSON [A, X]
    created     REAL NOT NULL,
    UNIQUE (space, arch, config_hash, seed)
);
CREATE INDEX IF NOT EXISTS candidates_by_config ON candidates(config_hash, space);
CREATE TABLE IF NOT EXISTS runs (
    name        TEXT PRIMARY KEY,
    config      TEXT NOT NULL,             -- JSON: the run's settings
    iteration   INTEGER,                   -- last committed iteration, NULL before the first
    state       TEXT,                      -- JSON: the caller's state after that iteration
    created     REAL NOT NULL,
    updated     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS run_candidates (
    seq         INTEGER PRIMARY KEY,       -- insertion order
    run         TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
    candidate   INTEGER NOT NULL REFERENCES candidates(id),
    iteration   INTEGER NOT NULL,
    UNIQUE (run, candidate)
);
CREATE TABLE IF NOT EXISTS results (
    run         TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,             -- JSON
    updated     REAL NOT NULL,
    PRIMARY KEY (run, key)
);
"""
# schema version 2: which scorer is scoring which candidate right now (see the module docstring)
_SCHEMA_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    space       TEXT NOT NULL,
    arch        TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    token       TEXT NOT NULL,             -- the claiming SearchStore object
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    proc_start  TEXT,                      -- the claimant's process start time (Linux), NULL if unknown
    claimed     REAL NOT NULL,             -- Unix seconds
    PRIMARY KEY (space, arch, config_hash, seed)
);
"""
_TABLES = {"estimator_configs", "candidates", "runs", "run_candidates", "results"}  # every schema version

_COLUMNS = """c.space, c.arch, c.estimator, c.score, c.terms, e.config, c.config_hash, c.seed, c.device,
              c.seconds, c.status, c.error, c.macs, c.params, c.latency_ms, c.encoding"""  # = RECORD_KEYS
_SELECT = f"SELECT {_COLUMNS} FROM candidates c JOIN estimator_configs e ON e.config_hash = c.config_hash"


class StoreError(InputError):
    """The store cannot be used as asked: the one-line message says what is wrong and what is accepted."""


# ------------------------------------------------------------------------------------------ JSON


def _plain(o: Any) -> Any:
    """json ``default``: numpy scalars and arrays (anything with ``tolist``/``item``), sets, paths."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True, default=_plain, separators=(",", ":"))


def _canonical(value: Any) -> str:
    return json.dumps(value, allow_nan=True, default=_plain, sort_keys=True, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _number(x: Any) -> Any:
    """A column number: ints stay ints, floats stay floats, non-finite → None."""
    if x is None:
        return None
    if hasattr(x, "item") and not isinstance(x, (int, float)):
        x = x.item()
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    x = float(x)
    return x if math.isfinite(x) else None


def _encoding(enc: Any) -> str | None:
    if enc is None:
        return None
    if len(enc) != 2:
        raise ValueError(f"encoding: expected a pair (A, X) of 2-D arrays, got {len(enc)} items")
    return _dumps([m.tolist() if hasattr(m, "tolist") else m for m in enc])


def _key(rec: dict) -> tuple:
    return (rec["space"], rec["arch"], rec["config_hash"], int(rec["seed"]))


def _proc_start(pid: int) -> str | None:
    """A process's start time (clock ticks after boot, /proc/<pid>/stat field 22), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


_HOST = socket.gethostname()


def _claimant_alive(token: str, pid: int, host: str, proc_start: str | None, claimed: float) -> bool:
    if host != _HOST:
        return time.time() - claimed < CLAIM_TTL_OTHER_HOST_S
    if pid == os.getpid() and (proc_start is None or proc_start == _proc_start(pid)):
        return token in _LIVE_TOKENS  # this process: while the claiming SearchStore object is open
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    except OSError:
        return True
    if proc_start is not None:
        now = _proc_start(pid)
        if now is not None and now != proc_start:  # the pid was reused by a later process
            return False
    return True


def _row_to_record(row: tuple) -> dict:
    rec = dict(zip(RECORD_KEYS, row))
    rec["terms"] = _loads(rec["terms"])
    rec["config"] = _loads(rec["config"])
    rec["encoding"] = _loads(rec["encoding"])
    return rec


# ----------------------------------------------------------------------------------- the store


def _reading(method):
    """A read method: an ``sqlite3.DatabaseError`` or unreadable JSON in a row is a one-line StoreError."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise self._db_error(e, "read") from None
        except json.JSONDecodeError as e:
            raise self._damaged_error(f"unreadable JSON in a row: {_one_line(e)}") from None
    return wrapper


class SearchStore:
    """Candidates, runs, run states and run results of searches, in one SQLite file.

    ``SearchStore(path)`` opens (or, with ``create=True``, creates) a store; ``readonly=True``
    opens it for reading only. Use it as a context manager or call :meth:`close`.
    One object per thread; several processes may share a store (writers wait for each other).
    """

    SCHEMA_VERSION = 2

    def __init__(self, path, create: bool = True, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._depth = 0  # nesting of _tx
        self._con: sqlite3.Connection | None = None
        self._version = self.SCHEMA_VERSION  # of the file; an older one is migrated by the first write
        self._token = uuid.uuid4().hex  # this object's claims
        self._claimed = False
        exists = self.path.exists()
        if exists and not self.path.is_file():
            raise StoreError(f"search store {self.path} is not a file; "
                             f"expected an SQLite file written by mote search")
        if not exists and (readonly or not create):
            raise StoreError(f"no search store at {self.path}; expected an existing search.db written by mote search")
        fresh = True
        if exists and self.path.stat().st_size > 0:
            fresh = not self._inspect()  # raises on anything that is not ours or damaged; False: empty
        if fresh and readonly:
            raise StoreError(f"{self.path} is an empty file, not a search store; "
                             f"expected a search.db written by mote search")
        if not readonly:
            self._check_writable(exists)
        try:
            if readonly:
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                      timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            else:
                con = sqlite3.connect(str(self.path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            self._con = con
            con.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = FULL")
                if fresh:
                    self._initialise()
            self._check_tables()
        except sqlite3.DatabaseError as e:
            self.close()
            if _is_damage(e):
                raise self._damaged_error(_one_line(e)) from None
            raise StoreError(f"cannot open search store {self.path}: {_one_line(e)}; "
                             f"expected a writable location for an SQLite file") from None
        except StoreError:
            self.close()
            raise
        _LIVE_TOKENS.add(self._token)

    # -- opening -------------------------------------------------------------------------------

    def _foreign(self, what: str) -> StoreError:
        return StoreError(f"{self.path} is {what}, not a mobile_mote search store; expected a search.db "
                          f"written by mote search (SQLite, schema version {self.SCHEMA_VERSION}) "
                          f"or a path that does not exist yet")

    def _damaged_error(self, detail: str, check: str = "sqlite") -> StoreError:
        return StoreError(f"search store {self.path} is damaged ({check}: {detail[:200]}); it was left untouched; "
                          f"restore it from a copy or choose another --store/--name")

    def _db_error(self, e: sqlite3.DatabaseError, doing: str) -> StoreError:
        """One line for an sqlite3 error after opening (a write that fails is rolled back whole)."""
        if _is_damage(e):
            return StoreError(f"search store {self.path} is damaged (sqlite: {_one_line(e)[:200]}); nothing was "
                              f"written to it by this {doing}; restore it from a copy or choose another "
                              f"--store/--name")
        rest = "; nothing of this transaction was written" if doing == "write" else ""
        return StoreError(f"cannot {doing} search store {self.path}: {_one_line(e)}{rest}")

    def _inspect(self) -> bool:
        """Look at an existing non-empty file through a read-only connection; never writes to it.

        True: a store of ours of a schema version this code reads, whose ``PRAGMA quick_check`` is
        ``ok``. False: an SQLite database with nothing in it (safe to initialise). Anything else raises
        StoreError.
        """
        with open(self.path, "rb") as f:
            header = f.read(16)
        if header != b"SQLite format 3\x00":
            raise self._foreign("not an SQLite database")
        # Without a -wal or -shm file beside it the file is the whole database: read it as immutable, so
        # that looking creates no -wal/-shm files (a refused store's folder stays as it was). A failure
        # seen that way while another process has started using the store is looked at again normally.
        def in_use() -> bool:
            return any(Path(f"{self.path}{x}").exists() for x in ("-wal", "-shm"))

        immutable = not in_use()
        try:
            looked, failure = self._look(immutable), None
        except StoreError as e:
            looked, failure = None, e
        bad = failure is not None or (looked[0] == APPLICATION_ID and looked[3] != ["ok"])
        if immutable and bad and in_use():
            looked, failure = self._look(False), None
        if failure is not None:
            raise failure
        app_id, version, tables, check = looked
        if app_id == APPLICATION_ID:
            if version > self.SCHEMA_VERSION:
                raise StoreError(f"{self.path} is a search store of schema version {version}, written by a "
                                 f"newer mobile_mote; this version reads schema version {self.SCHEMA_VERSION}: "
                                 f"upgrade mobile_mote")
            if version < 1:
                raise self._foreign("a half-initialised search store (schema version 0)")
            if check != ["ok"]:
                raise self._damaged_error(_one_line("; ".join(map(str, check or ["no answer"]))),
                                          "sqlite quick_check")
            missing = _TABLES - set(tables)
            if missing:
                raise self._foreign(f"a damaged search store (missing tables: {', '.join(sorted(missing))})")
            self._version = version
            return True
        if app_id == 0 and version == 0 and not tables:
            return False
        if app_id != 0:
            raise self._foreign(f"an SQLite database of another application (application_id {app_id:#x})")
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        raise self._foreign(f"an SQLite database of another application (tables: {shown or 'none'}, "
                            f"user_version {version})")

    def _look(self, immutable: bool) -> tuple[int, int, list[str], list[str] | None]:
        """(application_id, user_version, tables, quick_check rows or None) through a read-only connection."""
        uri = f"{self.path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
        try:
            con = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot read {self.path}: {_one_line(e)}; expected a readable search.db") from None
        check = None
        try:
            try:
                app_id = con.execute("PRAGMA application_id").fetchone()[0]
                version = con.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.DatabaseError as e:
                raise self._foreign(f"a damaged or unreadable SQLite file ({_one_line(e)})") from None
            try:
                tables = sorted(r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
                if app_id == APPLICATION_ID and 1 <= version <= self.SCHEMA_VERSION:
                    check = [r[0] for r in con.execute("PRAGMA quick_check(5)")]
            except sqlite3.DatabaseError as e:
                if app_id == APPLICATION_ID:
                    raise self._damaged_error(_one_line(e), "sqlite quick_check") from None
                raise self._foreign(f"a damaged or unreadable SQLite file ({_one_line(e)})") from None
        finally:
            con.close()
        return app_id, version, tables, check

    def _check_writable(self, exists: bool) -> None:
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder of search store {self.path}: {e.strerror or e}; "
                             f"expected a writable location") from None
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"cannot write search store {self.path}: folder {parent} is not writable; "
                             f"expected a writable location (or open it with readonly=True)")
        if exists and not os.access(self.path, os.R_OK | os.W_OK):
            raise StoreError(f"cannot write search store {self.path}: the file is not writable; "
                             f"expected a writable file (or open it with readonly=True)")

    def _initialise(self) -> None:
        with self._tx():
            # re-check inside the write lock: another process may have initialised it meanwhile
            if self._con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return
            if self._con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise self._foreign("an SQLite database of another application (created while opening)")
            for stmt in _statements(_SCHEMA + _SCHEMA_CLAIMS):  # not executescript: it would COMMIT mid-tx
                self._con.execute(stmt)
            self._con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._con.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")
            self._version = self.SCHEMA_VERSION

    def _migrate(self) -> int:
        """Inside the first write transaction: bring an older store to this schema version (the
        version it has once the transaction commits)."""
        version = self._con.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
        if version < 2:
            for stmt in _statements(_SCHEMA_CLAIMS):
                self._con.execute(stmt)
            self._con.execute("PRAGMA user_version = 2")
        return max(version, 2)

    def _check_tables(self) -> None:
        tables = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not _TABLES <= tables:
            raise self._foreign("a damaged search store (missing tables)")

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            raise ValueError(f"search store {self.path} is closed")
        return self._con

    def close(self) -> None:
        """Release this object's claims and close the connection (idempotent). The last writer to
        close folds the WAL into the file."""
        _LIVE_TOKENS.discard(self._token)
        if self._claimed and self._con is not None:
            with contextlib.suppress(Exception):
                self.release_claims()
        con, self._con = self._con, None
        if con is not None:
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def __enter__(self) -> "SearchStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one (all or nothing)."""
        con = self.con
        if self.readonly:
            raise StoreError(f"search store {self.path} was opened read-only; open it without readonly=True to write")
        if self._depth:
            self._depth += 1
            try:
                yield con
            finally:
                self._depth -= 1
            return
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as e:
            if _is_damage(e):
                raise self._db_error(e, "write") from None
            raise StoreError(f"cannot write search store {self.path}: {_one_line(e)}; "
                             f"expected a writable store not locked by another process") from None
        self._depth = 1
        migrated = None
        try:
            if self._version < self.SCHEMA_VERSION:
                migrated = self._migrate()
            yield con
        except BaseException as e:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            if isinstance(e, sqlite3.DatabaseError):
                raise self._db_error(e, "write") from None
            if isinstance(e, json.JSONDecodeError):
                raise self._damaged_error(f"unreadable JSON in a row: {_one_line(e)}") from None
            raise
        self._depth = 0
        try:
            con.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise self._db_error(e, "write") from None
        if migrated is not None:
            self._version = migrated

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        try:
            return self.con.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._db_error(e, "read") from None

    def _require_run(self, run: str) -> None:
        if not self._query("SELECT 1 FROM runs WHERE name = ?", (run,)):
            raise KeyError(f"run {run!r} is not in {self.path}; call start_run first")

    # -- candidates ----------------------------------------------------------------------------

    @_reading
    def get(self, space: str, arch: str, config_hash: str, seed: int) -> dict | None:
        """The stored record of one candidate (any status, failed included), or None."""
        rows = self._query(_SELECT + " WHERE c.space = ? AND c.arch = ? AND c.config_hash = ? AND c.seed = ?",
                           (space, arch, config_hash, int(seed)))
        return _row_to_record(rows[0]) if rows else None

    @_reading
    def get_many(self, space: str, archs: Iterable[str], config_hash: str, seed: int) -> dict[str, dict]:
        """``{arch: record}`` for those of ``archs`` already stored (any status); missing ones absent."""
        archs = list(dict.fromkeys(archs))
        out: dict[str, dict] = {}
        for i in range(0, len(archs), _CHUNK):
            chunk = archs[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._query(_SELECT + f" WHERE c.space = ? AND c.config_hash = ? AND c.seed = ? "
                                   f"AND c.arch IN ({marks})", (space, config_hash, int(seed), *chunk)):
                rec = _row_to_record(row)
                out[rec["arch"]] = rec
        return out

    def put_many(self, records: list[dict]) -> None:
        """Store records in one transaction, following the overwrite policy (module docstring)."""
        with self._tx():
            self._put_many(records)

    def _put_many(self, records: list[dict]) -> None:
        con = self.con
        now = time.time()
        for rec in records:
            missing = [k for k in ("space", "arch", "estimator", "config_hash", "seed") if rec.get(k) in (None, "")]
            if missing:
                raise ValueError(f"record for {rec.get('arch')!r} lacks {missing}; expected Estimate.to_dict() keys")
            status = rec.get("status", "ok")
            if status not in _STATUS_RANK:
                raise ValueError(f"record status {status!r}; expected one of {sorted(_STATUS_RANK)}")
            con.execute("INSERT OR IGNORE INTO estimator_configs(config_hash, estimator, config) VALUES (?, ?, ?)",
                        (rec["config_hash"], rec["estimator"], _canonical(rec.get("config") or {})))
            con.execute(
                """INSERT INTO candidates(space, arch, config_hash, seed, estimator, score, terms, status, error,
                                          device, seconds, macs, params, latency_ms, encoding, created)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(space, arch, config_hash, seed) DO UPDATE SET
                       estimator = excluded.estimator, score = excluded.score, terms = excluded.terms,
                       status = excluded.status, error = excluded.error, device = excluded.device,
                       seconds = excluded.seconds, macs = coalesce(excluded.macs, macs),
                       params = coalesce(excluded.params, params),
                       latency_ms = coalesce(excluded.latency_ms, latency_ms),
                       encoding = coalesce(excluded.encoding, encoding), created = excluded.created
                   WHERE candidates.status = 'failed'
                      OR (candidates.status = 'flagged' AND excluded.status = 'ok')""",
                (*_key(rec), rec["estimator"], _number(rec.get("score")), _dumps(rec.get("terms") or {}), status,
                 rec.get("error"), rec.get("device"), _number(rec.get("seconds")), _number(rec.get("macs")),
                 _number(rec.get("params")), _number(rec.get("latency_ms")), _encoding(rec.get("encoding")), now))
            con.execute("DELETE FROM claims WHERE space = ? AND arch = ? AND config_hash = ? AND seed = ?", _key(rec))

    # -- claims (module docstring) --------------------------------------------------------------

    def claim(self, space: str, archs: Iterable[str], config_hash: str, seed: int,
              limit: int) -> tuple[list[str], dict[str, dict], list[str]]:
        """In ONE write transaction: ``(claimed, stored, held)`` for the candidates ``archs`` under
        (space, config_hash, seed), looked at in order (a window at a time) until ``limit`` are
        claimed. ``stored``: ``{arch: record}`` of those looked at that are stored (any status);
        ``claimed``: up to ``limit`` of the others, now claimed by this object (including ones it
        held already); ``held``: those looked at that another live scorer has claimed. Claims that
        are not live (the module docstring) are taken over."""
        archs = list(dict.fromkeys(archs))
        seed = int(seed)
        pid, start, now = os.getpid(), _proc_start(os.getpid()), time.time()
        window = min(_CHUNK, max(32, 4 * limit))
        stored: dict[str, dict] = {}
        claimed: list[str] = []
        held: list[str] = []
        with self._tx() as con:
            for i in range(0, len(archs), window):
                if len(claimed) >= limit:
                    break
                chunk = archs[i:i + window]
                marks = ",".join("?" * len(chunk))
                for row in con.execute(_SELECT + f" WHERE c.space = ? AND c.config_hash = ? AND c.seed = ? "
                                       f"AND c.arch IN ({marks})", (space, config_hash, seed, *chunk)):
                    rec = _row_to_record(row)
                    stored[rec["arch"]] = rec
                claims = {arch: tuple(who) for arch, *who in con.execute(
                    f"SELECT arch, token, pid, host, proc_start, claimed FROM claims WHERE space = ? "
                    f"AND config_hash = ? AND seed = ? AND arch IN ({marks})", (space, config_hash, seed, *chunk))}
                for arch in chunk:
                    if arch in stored:
                        continue
                    who = claims.get(arch)
                    if who is not None and who[0] != self._token and _claimant_alive(*who):
                        held.append(arch)
                    elif len(claimed) < limit:
                        claimed.append(arch)
            if claimed:
                self._claimed = True
                con.executemany(
                    "INSERT OR REPLACE INTO claims(space, arch, config_hash, seed, token, pid, host, proc_start, "
                    "claimed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(space, a, config_hash, seed, self._token, pid, _HOST, start, now) for a in claimed])
        return claimed, stored, held

    def release_claims(self) -> None:
        """Drop every claim this object holds (the candidates it claimed but did not store)."""
        with self._tx() as con:
            con.execute("DELETE FROM claims WHERE token = ?", (self._token,))
        self._claimed = False

    @_reading
    def claims(self) -> list[dict]:
        """Every claim in the store (empty for a store of schema version 1)."""
        if self._version < 2:
            return []
        rows = self._query("SELECT space, arch, config_hash, seed, token, pid, host, proc_start, claimed FROM claims")
        return [dict(zip(("space", "arch", "config_hash", "seed", "token", "pid", "host", "proc_start", "claimed"), r))
                for r in rows]

    @_reading
    def records(self, space: str | None = None, config_hash: str | None = None) -> list[dict]:
        """Every stored candidate (optionally of one space and/or estimator config), in insertion order."""
        where, params = [], []
        if space is not None:
            where.append("c.space = ?")
            params.append(space)
        if config_hash is not None:
            where.append("c.config_hash = ?")
            params.append(config_hash)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY c.id"
        return [_row_to_record(r) for r in self._query(sql, params)]

    # -- runs ----------------------------------------------------------------------------------

    def start_run(self, name: str, config: dict, allow_config_change: bool = False) -> None:
        """Record a new run and its settings, or check a resumed run's settings are unchanged.

        A run that exists with different settings raises StoreError (a resume must use the same
        settings) unless ``allow_config_change=True``, which records the new settings.
        """
        new = _canonical(config)
        with self._tx() as con:
            row = con.execute("SELECT config FROM runs WHERE name = ?", (name,)).fetchone()
            now = time.time()
            if row is None:
                con.execute("INSERT INTO runs(name, config, created, updated) VALUES (?, ?, ?, ?)",
                            (name, new, now, now))
                return
            if row[0] == new:
                return
            if not allow_config_change:
                raise StoreError(f"run {name!r} in {self.path} was started with other settings "
                                 f"({_diff(_loads(row[0]), _loads(new))}); resume it with the same settings, "
                                 f"or choose a new run name")
            con.execute("UPDATE runs SET config = ?, updated = ? WHERE name = ?", (new, now, name))

    @_reading
    def run_config(self, name: str) -> dict | None:
        """The settings a run was started with, or None if there is no such run."""
        rows = self._query("SELECT config FROM runs WHERE name = ?", (name,))
        return _loads(rows[0][0]) if rows else None

    @_reading
    def runs(self) -> list[dict]:
        """Every run: name, config, last committed iteration, candidate count, created/updated (Unix s)."""
        rows = self._query("""SELECT r.name, r.config, r.iteration, r.created, r.updated,
                                     (SELECT count(*) FROM run_candidates rc WHERE rc.run = r.name)
                              FROM runs r ORDER BY r.created, r.name""")
        return [{"name": n, "config": _loads(c), "iteration": it, "created": cr, "updated": up, "n_candidates": k}
                for n, c, it, cr, up, k in rows]

    def link(self, run: str, keys: list[tuple], iteration: int) -> None:
        """Add stored candidates ``(space, arch, config_hash, seed)`` to a run at ``iteration``.

        A candidate already in the run keeps the iteration that first added it. Unknown runs or
        candidates raise KeyError (nothing is linked).
        """
        with self._tx():
            self._link(run, keys, iteration)

    def _link(self, run: str, keys: list[tuple], iteration: int) -> None:
        self._require_run(run)
        con = self.con
        for space, arch, config_hash, seed in keys:
            row = con.execute("SELECT id FROM candidates "
                              "WHERE space = ? AND arch = ? AND config_hash = ? AND seed = ?",
                              (space, arch, config_hash, int(seed))).fetchone()
            if row is None:
                raise KeyError(f"candidate {(space, arch, config_hash, seed)!r} is not in {self.path}; put it first")
            con.execute("INSERT OR IGNORE INTO run_candidates(run, candidate, iteration) VALUES (?, ?, ?)",
                        (run, row[0], int(iteration)))

    def commit_iteration(self, run: str, records: list[dict], iteration: int, state: dict) -> None:
        """In ONE transaction: store ``records``, link them to ``run`` at ``iteration``, save ``state``.

        ``records`` are all candidates this iteration adds to the run, freshly scored or taken from
        the store. A kill leaves either all of it or none of it.
        """
        with self._tx():
            self._put_many(records)
            self._link(run, [_key(r) for r in records], iteration)
            self._save_state(run, iteration, state)

    def _save_state(self, run: str, iteration: int, state: dict) -> None:
        self.con.execute("UPDATE runs SET iteration = ?, state = ?, updated = ? WHERE name = ?",
                         (int(iteration), _dumps(state), time.time(), run))

    @_reading
    def load_state(self, run: str) -> dict | None:
        """The state saved by the run's last committed iteration, or None (no run / nothing committed)."""
        rows = self._query("SELECT state FROM runs WHERE name = ?", (run,))
        return _loads(rows[0][0]) if rows else None

    @_reading
    def run_records(self, run: str) -> list[dict]:
        """The run's candidates in the order they were linked, each with its ``iteration``."""
        rows = self._query(f"""SELECT {_COLUMNS}, rc.iteration
                               FROM run_candidates rc JOIN candidates c ON c.id = rc.candidate
                               JOIN estimator_configs e ON e.config_hash = c.config_hash
                               WHERE rc.run = ? ORDER BY rc.seq""", (run,))
        out = []
        for row in rows:
            rec = _row_to_record(row[:-1])
            rec["iteration"] = row[-1]
            out.append(rec)
        return out

    # -- results -------------------------------------------------------------------------------

    def save_result(self, run: str, key: str, value: dict) -> None:
        """Store (or replace) one named output of a run, e.g. ``"winner"`` or ``"pareto"``."""
        with self._tx() as con:
            self._require_run(run)
            con.execute("INSERT INTO results(run, key, value, updated) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(run, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                        (run, key, _dumps(value), time.time()))

    @_reading
    def load_result(self, run: str, key: str) -> dict | None:
        """A run's named output, or None."""
        rows = self._query("SELECT value FROM results WHERE run = ? AND key = ?", (run, key))
        return _loads(rows[0][0]) if rows else None


def _statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (semicolons inside comments are harmless)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf.strip()[:60]}")
    return out


_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def _is_damage(e: BaseException) -> bool:
    """An sqlite3 error that says the file itself is damaged (not a lock, a full disk, a permission)."""
    code = getattr(e, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _DAMAGE_CODES:
        return True
    msg = str(e).lower()
    return any(w in msg for w in ("malformed", "not a database", "could not decode", "corrupt"))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _diff(old: Any, new: Any) -> str:
    """How two run configs differ, for a one-line message: every differing leaf by its path, with
    full values (``constraints[0].max_macs: 100000000.0 → 200000000.0; k: 10 → 20``)."""
    parts: list[str] = []
    _diff_into(old, new, "", parts)
    return "; ".join(parts) or "same values, different form"


def _diff_into(old: Any, new: Any, path: str, parts: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in new:
                parts.append(f"{sub} removed (was {_canonical(old[k])})")
            elif k not in old:
                parts.append(f"{sub} added ({_canonical(new[k])})")
            else:
                _diff_into(old[k], new[k], sub, parts)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                parts.append(f"{sub} removed (was {_canonical(old[i])})")
            elif i >= len(old):
                parts.append(f"{sub} added ({_canonical(new[i])})")
            else:
                _diff_into(old[i], new[i], sub, parts)
    elif _canonical(old) != _canonical(new):
        parts.append(f"{path or 'settings'}: {_canonical(old)} → {_canonical(new)}")
