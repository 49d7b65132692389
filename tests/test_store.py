"""The search's results store: round trips, cache across runs, atomic iterations, foreign files."""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mobile_mote.errors import InputError
from mobile_mote.store import APPLICATION_ID, RECORD_KEYS, SearchStore, StoreError

HASH = "0123456789abcdef"
CONFIG = {"estimator": "mote", "epochs": 50, "lr": 1e-3, "transform": "boxcox"}


def rec(arch, score=1.0, status="ok", seed=0, config_hash=HASH, **extra):
    r = {"space": "nb201", "arch": arch, "estimator": "mote", "score": score,
         "terms": {"landscape": 1.5, "speed": [1, 2, 3], "per_epoch": {"loss": [0.5, 0.25], "ok": True}},
         "config": CONFIG, "config_hash": config_hash, "seed": seed, "device": "cpu", "seconds": 0.25,
         "status": status, "error": None if status == "ok" else "boom"}
    r.update(extra)
    return r


def key(r):
    return (r["space"], r["arch"], r["config_hash"], r["seed"])


def same(a, b):
    """Deep equality where NaN equals NaN."""
    return json.dumps(a, sort_keys=True, allow_nan=True) == json.dumps(b, sort_keys=True, allow_nan=True)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_store_error(path, **kw):
    with pytest.raises(StoreError) as ei:
        SearchStore(path, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and msg
    return msg


# ------------------------------------------------------------------------------ round trips


def test_round_trip_nested_terms_none_score_nan_and_encodings(tmp_path):
    path = tmp_path / "search.db"
    A = np.triu(np.ones((4, 4), dtype=np.int64), 1)
    X = np.eye(4, 5, dtype=np.float32)
    records = [
        rec("a", 0.5, macs=300_800_000, params=3_504_872, latency_ms=12.5, encoding=(A, X)),
        rec("b", None, status="failed", terms={"traceback": "Traceback ...\nValueError"}),
        rec("c", float("nan"), status="flagged",
            terms={"nan": float("nan"), "inf": float("inf"), "ninf": -float("inf"), "deep": {"x": [float("nan"), 1]},
                   "np": np.float32(0.5), "tuple": (1, 2)},
            encoding=[A.tolist(), X.tolist()]),
    ]
    with SearchStore(path) as st:
        st.put_many(records)
    with SearchStore(path, readonly=True) as st:
        a = st.get(*key(records[0]))
        b = st.get(*key(records[1]))
        c = st.get(*key(records[2]))
        assert st.get("nb201", "zzz", HASH, 0) is None
    for r in (a, b, c):
        assert set(r) == set(RECORD_KEYS)
    assert a["score"] == 0.5 and a["terms"] == records[0]["terms"] and a["config"] == CONFIG
    assert a["macs"] == 300_800_000 and isinstance(a["macs"], int) and a["params"] == 3_504_872
    assert a["latency_ms"] == 12.5 and a["seconds"] == 0.25 and a["device"] == "cpu"
    assert a["encoding"] == [A.tolist(), X.tolist()]
    assert isinstance(a["encoding"][1][0][0], float)
    assert b["score"] is None and b["status"] == "failed" and b["error"] == "boom"
    assert b["macs"] is None and b["encoding"] is None
    assert c["score"] is None  # non-finite score column → None, by design
    t = c["terms"]
    assert math.isnan(t["nan"]) and t["inf"] == math.inf and t["ninf"] == -math.inf
    assert math.isnan(t["deep"]["x"][0]) and t["deep"]["x"][1] == 1
    assert t["np"] == 0.5 and t["tuple"] == [1, 2]
    assert c["encoding"] == a["encoding"]


def test_get_many_records_and_filters(tmp_path):
    with SearchStore(tmp_path / "s.db") as st:
        st.put_many([rec(f"a{i}", float(i)) for i in range(700)]  # more than one IN (...) chunk
                    + [rec("other", config_hash="ffff"), rec("a1", 9.0, seed=1)])
        got = st.get_many("nb201", [f"a{i}" for i in range(0, 700, 2)] + ["missing", "a0"], HASH, 0)
        assert set(got) == {f"a{i}" for i in range(0, 700, 2)}
        assert got["a4"]["score"] == 4.0
        assert st.get_many("nb201", ["a1"], HASH, 1)["a1"]["score"] == 9.0
        assert len(st.records()) == 702
        assert len(st.records(config_hash=HASH)) == 701
        assert [r["arch"] for r in st.records(space="nb201", config_hash="ffff")] == ["other"]
        assert st.records(space="mbv3") == []


def test_overwrite_policy_and_links_survive_replacement(tmp_path):
    with SearchStore(tmp_path / "s.db") as st:
        st.start_run("r", {})
        st.put_many([rec("ok", 1.0), rec("fail", None, "failed"), rec("flag", None, "flagged")])
        st.link("r", [key(rec("fail"))], iteration=0)
        st.put_many([rec("ok", 2.0), rec("fail", None, "failed", error="again")])
        assert st.get(*key(rec("ok")))["score"] == 1.0  # an ok record is never overwritten
        assert st.get(*key(rec("fail")))["error"] == "again"  # failed → replaced by a newer attempt
        st.put_many([rec("fail", 3.0), rec("flag", None, "failed")])
        assert st.get(*key(rec("fail")))["score"] == 3.0
        assert st.get(*key(rec("flag")))["status"] == "flagged"  # flagged is not replaced by failed …
        st.put_many([rec("flag", 4.0)])
        assert st.get(*key(rec("flag")))["score"] == 4.0  # … but by ok
        assert [(r["arch"], r["score"]) for r in st.run_records("r")] == [("fail", 3.0)]
        assert len(st.records()) == 3


# ------------------------------------------------------------------------------------- runs


def test_cache_hit_across_runs_and_run_records(tmp_path):
    path = tmp_path / "search.db"
    with SearchStore(path) as st:
        st.start_run("first", {"pool": 10})
        st.commit_iteration("first", [rec("a", 1.0), rec("b", 2.0)], 0, {"pool": ["a", "b"], "rng": [1, 2]})
        st.commit_iteration("first", [rec("c", 3.0)], 1, {"pool": ["a", "b", "c"], "rng": [3, 4]})
    with SearchStore(path) as st:  # another run, later, same store
        st.start_run("second", {"pool": 20})
        hits = st.get_many("nb201", ["a", "c", "d"], HASH, 0)
        assert set(hits) == {"a", "c"}
        fresh = [rec("d", 4.0)]
        st.commit_iteration("second", [hits["c"], *fresh], 0, {"pool": ["c", "d"]})
        st.commit_iteration("second", [hits["c"], hits["a"]], 1, {"pool": ["a", "c", "d"]})
        assert len(st.records()) == 4  # nothing scored twice
        assert [(r["arch"], r["iteration"]) for r in st.run_records("second")] == [("c", 0), ("d", 0), ("a", 1)]
        assert [(r["arch"], r["iteration"]) for r in st.run_records("first")] == [("a", 0), ("b", 0), ("c", 1)]
        assert st.load_state("first") == {"pool": ["a", "b", "c"], "rng": [3, 4]}
        assert st.load_state("second") == {"pool": ["a", "c", "d"]}
        assert st.load_state("nope") is None and st.run_config("nope") is None
        runs = {r["name"]: r for r in st.runs()}
        assert runs["first"]["iteration"] == 1 and runs["first"]["n_candidates"] == 3
        assert runs["second"]["config"] == {"pool": 20} and runs["second"]["n_candidates"] == 3
        st.save_result("second", "winner", {"arch": "d", "score": 4.0, "nan": float("nan")})
        st.save_result("second", "winner", {"arch": "c", "score": 3.0})
        assert st.load_result("second", "winner") == {"arch": "c", "score": 3.0}
        assert st.load_result("second", "pareto") is None
        with pytest.raises(KeyError):
            st.link("second", [("nb201", "never-scored", HASH, 0)], 2)
        with pytest.raises(KeyError):
            st.commit_iteration("no-such-run", [rec("e")], 0, {})
        assert st.get(*key(rec("e"))) is None  # the failed commit left nothing


def test_start_run_with_changed_config(tmp_path):
    with SearchStore(tmp_path / "s.db") as st:
        st.start_run("r", {"k": 10, "budget": "300M", "nested": {"a": [1, 2]}})
        st.start_run("r", {"nested": {"a": [1, 2]}, "budget": "300M", "k": 10})  # same settings: a resume
        with pytest.raises(StoreError) as ei:
            st.start_run("r", {"k": 20, "budget": "300M", "nested": {"a": [1, 2]}})
        msg = str(ei.value)
        assert "\n" not in msg and "k: 10 → 20" in msg and "same settings" in msg
        assert isinstance(ei.value, InputError)
        assert st.run_config("r")["k"] == 10
        st.start_run("r", {"k": 20}, allow_config_change=True)
        assert st.run_config("r") == {"k": 20}


def test_changed_settings_name_every_differing_key_with_full_values(tmp_path):
    old = {"constraints": [{"max_macs": 1e8, "max_params": None}], "search": {"k": 10, "draw": "auto"}, "seed": 0}
    new = {"constraints": [{"max_macs": 2e8, "max_params": None}], "search": {"k": 20, "draw": "auto"}, "seed": 0,
           "device": "cpu"}
    with SearchStore(tmp_path / "s.db") as st:
        st.start_run("r", old)
        with pytest.raises(StoreError) as ei:
            st.start_run("r", new)
    msg = str(ei.value)
    assert "\n" not in msg
    assert "constraints[0].max_macs: 100000000.0 → 200000000.0" in msg
    assert "search.k: 10 → 20" in msg and 'device added ("cpu")' in msg
    assert "draw" not in msg and "seed" not in msg and "…" not in msg  # only what differs, nothing cut


def test_readonly_store_refuses_writes(tmp_path):
    path = tmp_path / "s.db"
    with SearchStore(path) as st:
        st.put_many([rec("a")])
    with SearchStore(path, readonly=True) as st:
        assert st.get(*key(rec("a")))["score"] == 1.0
        with pytest.raises(StoreError, match="read-only"):
            st.put_many([rec("b")])


# ------------------------------------------------------------------------------- atomicity


def test_commit_iteration_is_all_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    with SearchStore(path) as st:
        st.start_run("r", {})
        st.commit_iteration("r", [rec("a"), rec("b")], 0, {"iteration": 0})

        def crash(*a, **k):
            raise RuntimeError("killed while writing the state")

        monkeypatch.setattr(SearchStore, "_save_state", crash)
        with pytest.raises(RuntimeError, match="killed"):
            st.commit_iteration("r", [rec("a"), rec("c"), rec("d")], 1, {"iteration": 1})
        monkeypatch.undo()
        for s in (st, SearchStore(path, readonly=True)):  # this connection and a fresh one
            assert s.load_state("r") == {"iteration": 0}
            assert [(r["arch"], r["iteration"]) for r in s.run_records("r")] == [("a", 0), ("b", 0)]
            assert s.get(*key(rec("c"))) is None and len(s.records()) == 2
        st.commit_iteration("r", [rec("c")], 1, {"iteration": 1})  # the store is still usable
        assert st.load_state("r") == {"iteration": 1} and len(st.run_records("r")) == 3


_WRITER = textwrap.dedent("""
    import sys
    from mobile_mote.store import SearchStore
    path, run = sys.argv[1], sys.argv[2]
    with SearchStore(path) as st:
        st.start_run(run, {"batch": 5})
        state = st.load_state(run) or {"iteration": -1, "n": 0}
        it, n = state["iteration"], state["n"]
        print("ready", it, flush=True)
        while True:
            it += 1
            recs = [{"space": "nb201", "arch": f"i{it}_{j}", "estimator": "mote", "score": it + j / 10,
                     "terms": {"t": [it, j], "pad": "x" * 2000}, "config": {"e": 1}, "config_hash": "h",
                     "seed": 0, "device": "cpu", "seconds": 0.0, "status": "ok", "error": None}
                    for j in range(5)]
            if it > 0:  # a cached candidate from the previous iteration: linked once, never re-added
                recs.append(st.get("nb201", f"i{it - 1}_0", "h", 0))
            n += 5
            st.commit_iteration(run, recs, it, {"iteration": it, "n": n, "rng": [it] * 50})
""")


def test_sigkill_mid_loop_leaves_a_consistent_store_and_resume_continues(tmp_path):
    path = tmp_path / "search.db"
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    last = -1
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "run"], stdout=subprocess.PIPE, text=True)
        try:
            ready = proc.stdout.readline().split()
            assert ready[0] == "ready" and int(ready[1]) == last, (seed, ready, last)
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(proc.pid, 9)  # SIGKILL
        finally:
            proc.wait(timeout=30)
            proc.stdout.close()
        with SearchStore(path) as st:
            assert st.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            state = st.load_state("run")
            assert state is not None, seed
            rr = st.run_records("run")
            assert len(rr) == state["n"] == 5 * (state["iteration"] + 1), (seed, attempt, state, len(rr))
            assert len(st.records()) == state["n"]  # no candidate of a half-written iteration
            assert max(r["iteration"] for r in rr) == state["iteration"]
            assert [r["arch"] for r in rr] == [f"i{i}_{j}" for i in range(state["iteration"] + 1) for j in range(5)]
            assert state["iteration"] > last, (seed, "the writer made no progress")
            last = state["iteration"]


# ----------------------------------------------------------------------- foreign files


def test_random_bytes_file_is_refused_untouched(tmp_path):
    for name, blob in [("random.db", os.urandom(8192)),
                       ("fake_header.db", b"SQLite format 3\x00" + os.urandom(8192 - 16))]:
        path = tmp_path / name
        path.write_bytes(blob)
        before, listing = sha(path), sorted(os.listdir(tmp_path))
        for kw in ({}, {"readonly": True}):
            msg = one_line_store_error(path, **kw)
            assert "not a mobile_mote search store" in msg and "expected" in msg
        assert sha(path) == before and sorted(os.listdir(tmp_path)) == listing


def test_foreign_sqlite_database_is_refused_untouched(tmp_path):
    def make(name, *statements):
        con = sqlite3.connect(tmp_path / name)
        for sql in statements:
            con.execute(sql)
        con.commit()
        con.close()
        return tmp_path / name

    path = make("other.db", "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)",
                "INSERT INTO users(name) VALUES ('ada')")
    other_app = make("other_app.db", "PRAGMA application_id = 1234", "CREATE TABLE candidates(x)")
    for p, words in [(path, "users"), (other_app, "application_id 0x4d2")]:
        before, listing = sha(p), sorted(os.listdir(tmp_path))
        msg = one_line_store_error(p)
        assert "another application" in msg and words in msg
        assert sha(p) == before and sorted(os.listdir(tmp_path)) == listing


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "search.db"
    with SearchStore(path) as st:
        st.put_many([rec("a")])
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.execute(f"PRAGMA user_version = {SearchStore.SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    before = sha(path)
    for kw in ({}, {"readonly": True}):
        msg = one_line_store_error(path, **kw)
        assert "newer" in msg and f"schema version {SearchStore.SCHEMA_VERSION + 1}" in msg and "upgrade" in msg
    assert sha(path) == before


def test_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "search.db"
    path.touch()
    with SearchStore(path) as st:
        st.put_many([rec("a")])
    with SearchStore(path, create=False) as st:
        assert len(st.records()) == 1


def test_missing_and_unwritable_locations(tmp_path):
    assert "no search store" in one_line_store_error(tmp_path / "absent.db", create=False)
    assert "no search store" in one_line_store_error(tmp_path / "absent.db", readonly=True)
    assert not (tmp_path / "absent.db").exists()
    a_file = tmp_path / "plain_file"
    a_file.write_text("x")
    assert "writable" in one_line_store_error(a_file / "search.db")  # below a regular file
    assert "not a file" in one_line_store_error(tmp_path)  # a folder
    with SearchStore(tmp_path / "runs" / "new" / "search.db") as st:  # missing folders are created
        assert st.records() == []
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert "not writable" in one_line_store_error(locked / "search.db")
        finally:
            locked.chmod(0o700)


# --------------------------------------------------------------------- damage and versions


def _damage_middle(path):
    """Overwrite the start of two b-tree pages in the middle of the file (the header stays intact)."""
    blob = bytearray(path.read_bytes())
    page = int.from_bytes(blob[16:18], "big")
    n_pages = len(blob) // page
    assert n_pages >= 6
    for p in (n_pages // 2, n_pages // 2 + 1):
        blob[p * page:p * page + 64] = b"\xab" * 64
    path.write_bytes(bytes(blob))


def _many(n):
    return [rec(f"arch{i}", score=float(i), terms={"pad": "x" * 500, "i": i}) for i in range(n)]


def test_damaged_store_is_refused_before_any_write_and_left_untouched(tmp_path):
    path = tmp_path / "search.db"
    with SearchStore(path) as st:
        st.start_run("r", {"k": 1})
        st.commit_iteration("r", _many(60), 0, {"iteration": 0})
    _damage_middle(path)
    assert sqlite3.connect(path).execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID  # header intact
    before, listing = sha(path), sorted(os.listdir(tmp_path))
    for kw in ({}, {"readonly": True}, {"create": False}):
        msg = one_line_store_error(path, **kw)
        assert "is damaged (sqlite quick_check:" in msg and "left untouched" in msg and "restore it" in msg, msg
    assert sha(path) == before and sorted(os.listdir(tmp_path)) == listing  # no -wal/-shm either


def test_unreadable_rows_are_one_line_store_errors(tmp_path):
    path = tmp_path / "search.db"
    with SearchStore(path) as st:
        st.put_many([rec("a"), rec("b")])
    con = sqlite3.connect(path)  # damage inside rows, which quick_check does not look at
    con.execute("UPDATE candidates SET terms = CAST(x'ff00fe' AS TEXT) WHERE arch = 'a'")
    con.execute("UPDATE candidates SET terms = '{not json' WHERE arch = 'b'")
    con.commit()
    con.close()
    with SearchStore(path, readonly=True) as st:
        for call in (st.records, lambda: st.get(*key(rec("a"))), lambda: st.get(*key(rec("b")))):
            with pytest.raises(StoreError) as ei:
                call()
            assert "\n" not in str(ei.value) and "damaged" in str(ei.value)


def _v1_store(path):
    """A store as schema version 1 wrote it (no claims table)."""
    from mobile_mote.store import _SCHEMA
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(_SCHEMA)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    con.close()
    with SearchStore(path, readonly=True) as st:  # readable as it is
        assert st.records() == [] and st.claims() == []


def test_schema_1_store_is_read_as_is_and_migrated_by_the_first_write(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    con = sqlite3.connect(path)
    con.execute("INSERT INTO estimator_configs VALUES ('h', 'mote', '{}')")
    con.execute("INSERT INTO candidates(space, arch, config_hash, seed, estimator, score, terms, status, created) "
                "VALUES ('nb201', 'old', 'h', 0, 'mote', 2.5, '{}', 'ok', 0)")
    con.commit()
    con.close()
    before = sha(path)
    with SearchStore(path, readonly=True) as st:
        assert st.get("nb201", "old", "h", 0)["score"] == 2.5
    with SearchStore(path) as st:  # opened for writing, only read: still version 1
        assert st.get("nb201", "old", "h", 0)["score"] == 2.5
    assert sha(path) == before
    with SearchStore(path) as st:
        st.put_many([rec("new")])
        claimed, stored, held = st.claim("nb201", ["new", "other"], HASH, 0, limit=5)
        assert claimed == ["other"] and list(stored) == ["new"] and held == []
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SearchStore.SCHEMA_VERSION == 2
    assert con.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # released on close
    con.close()


# ---------------------------------------------------------------------------------- claims


def test_claims_are_exclusive_dropped_when_stored_and_given_back_on_close(tmp_path):
    path = tmp_path / "s.db"
    archs = ["a", "b", "c", "d"]
    a, b = SearchStore(path), SearchStore(path)
    try:
        assert a.claim("nb201", archs, HASH, 0, limit=2) == (["a", "b"], {}, [])
        claimed, stored, held = b.claim("nb201", archs, HASH, 0, limit=5)
        assert claimed == ["c", "d"] and stored == {} and held == ["a", "b"]
        assert a.claim("nb201", archs, HASH, 0, limit=2)[0] == ["a", "b"]  # its own claims stay its own
        a.put_many([rec("a")])  # storing drops the claim
        assert {c["arch"] for c in b.claims()} == {"b", "c", "d"}
        claimed, stored, held = b.claim("nb201", ["a", "b"], HASH, 0, limit=5)
        assert claimed == [] and list(stored) == ["a"] and held == ["b"]
        a.close()  # a closed store's claims are not live (and close gives them back)
        assert b.claim("nb201", ["b"], HASH, 0, limit=5)[0] == ["b"]
        b.release_claims()
        assert b.claims() == []
    finally:
        a.close()
        b.close()


def test_claims_of_dead_processes_and_old_foreign_claims_are_taken_over(tmp_path):
    from mobile_mote import store as store_mod
    path = tmp_path / "s.db"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    with SearchStore(path) as st:
        st.put_many([rec("seed-the-schema")])
        rows = [("dead", "t1", dead.pid, store_mod._HOST, None, now),
                ("old-foreign", "t2", 1, "another-host", None, now - store_mod.CLAIM_TTL_OTHER_HOST_S - 1),
                ("new-foreign", "t3", 1, "another-host", None, now),
                ("live", "t4", os.getppid(), store_mod._HOST, store_mod._proc_start(os.getppid()), now),
                ("reused-pid", "t5", os.getppid(), store_mod._HOST, "1", now)]
        st.con.executemany("INSERT INTO claims VALUES ('nb201', ?, ?, 0, ?, ?, ?, ?, ?)",
                           [(arch, HASH, token, pid, host, start, t) for arch, token, pid, host, start, t in rows])
        claimed, stored, held = st.claim("nb201", [r[0] for r in rows], HASH, 0, limit=10)
        knows_start = store_mod._proc_start(os.getpid()) is not None  # Linux: a reused pid is told apart
        assert claimed == ["dead", "old-foreign"] + ["reused-pid"] * knows_start
        assert held == ["new-foreign", "live"] + ["reused-pid"] * (not knows_start)
