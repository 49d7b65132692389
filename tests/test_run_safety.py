"""Bad input that never ends in a traceback (issue #14): a damaged store is refused untouched, a run in
progress is locked, scorers sharing a store never score a candidate twice, --resume of a missing run is
an error, failed commands leave no folders behind, and a changed setting is named in full on resume."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mobile_mote.cli import main
from mobile_mote.errors import InputError
from mobile_mote.store import SearchStore

# A real but fast search: the MACs "estimator" (no training, no data), MOTE-NAS-EF (no evaluation stage).
SEARCH = ["search", "--space", "nb201", "--estimator", "macs", "--profile", "tiny", "--algorithm", "ef",
          "--device", "cpu", "--quiet"]
FAKE_HASH = "fake0123456789ab"


def search_args(runs, name, *extra):
    return [*SEARCH, "--runs-dir", str(runs), "--name", name, *extra]


def pareto_args(runs, name, store, *extra):
    return ["pareto", "--space", "nb201", "--objectives", "score,macs", "--estimator", "macs", "--profile", "tiny",
            "--device", "cpu", "--quiet", "--runs-dir", str(runs), "--name", name, "--store", str(store), *extra]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> list[str]:
    """Every file and folder under root (relative paths), sorted."""
    return sorted(str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in root.rglob("*"))


def one_error_line(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def damage_middle(path: Path) -> None:
    """Overwrite the first bytes of two pages in the middle of the file; the header stays intact."""
    import sqlite3
    blob = bytearray(path.read_bytes())
    page = int.from_bytes(blob[16:18], "big")
    n = len(blob) // page
    for p in (n // 2, n // 2 + 1):
        blob[p * page:p * page + 64] = b"\xab" * 64
    path.write_bytes(bytes(blob))
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x4D4F5445  # still looks like ours
        try:
            ok = con.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        except sqlite3.DatabaseError:
            ok = False
        assert not ok, "the damage missed every b-tree page; damage other pages"
    finally:
        con.close()


@pytest.fixture
def finished(tmp_path, capsys):
    """runs/ with one finished search `r` (its store runs/r/search.db)."""
    runs = tmp_path / "runs"
    assert main(search_args(runs, "r")) == 0
    capsys.readouterr()
    return runs


# ------------------------------------------------------------------------- 1. damaged store


def test_damaged_store_is_refused_untouched_by_resume_pareto_and_show(tmp_path, finished, capsys):
    db = finished / "r" / "search.db"
    damage_middle(db)
    before, listing = sha(db), tree(tmp_path)
    for argv in (search_args(finished, "r", "--resume"),  # the run's own store
                 pareto_args(finished, "p", db),  # a new run in the shared store
                 pareto_args(finished, "r", db, "--resume")):
        assert main(argv) == 2
        one_error_line(capsys, "search store", "is damaged (sqlite quick_check:", "left untouched",
                       "restore it from a copy or choose another --store/--name")
        assert sha(db) == before and tree(tmp_path) == listing
    assert main(["show", str(finished / "r")]) == 2  # the summary, then one line: the top list cannot be read
    out = capsys.readouterr()
    assert "# Search `r`" in out.out and "unfinished" not in out.out
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "summary above" in err[0] and "is damaged" in err[0]
    (finished / "r" / "summary.md").unlink()  # without summary.md: one line, nothing called unfinished
    listing = tree(tmp_path)
    assert main(["show", str(finished / "r")]) == 2
    out = capsys.readouterr()
    assert "unfinished" not in out.out and len(out.err.strip().splitlines()) == 1 and "is damaged" in out.err
    assert sha(db) == before and tree(tmp_path) == listing


def test_show_without_summary_tells_finished_from_unfinished(tmp_path, finished, capsys):
    store = finished / "r" / "search.db"
    assert main(pareto_args(finished, "p", store, "--generations", "1")) == 0
    (finished / "r" / "summary.md").unlink()
    with SearchStore(store) as st:
        st.start_run("half", {"k": 1})
        st.commit_iteration("half", [], 3, {"iteration": 3, "pool": ["a", "b"]})
    capsys.readouterr()
    assert main(["show", str(finished / "r")]) == 0
    out = capsys.readouterr().out
    assert "finished run(s) without summary.md here: p, r" in out
    assert "unfinished run(s): half" in out and "iteration 3, pool 2" in out


# ------------------------------------------------------------------------- 2. run in progress

_HOLD = textwrap.dedent("""
    import json, sys, time
    from mobile_mote.cli import build_parser
    from mobile_mote.cli.search import spec_from_args
    from mobile_mote.search import run_session
    spec = spec_from_args(build_parser().parse_args(json.loads(sys.argv[1])))
    with run_session(spec, False):
        print("ready", flush=True)
        time.sleep(600)
""")


def test_a_run_in_progress_is_refused_at_once_and_a_killed_holder_does_not_block(tmp_path, capsys):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, json.dumps(search_args(runs, "busy"))],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "ready"
        listing, db = tree(tmp_path), runs / "busy" / "search.db"
        before = sha(db)
        for extra in ([], ["--resume"]):
            t0 = time.perf_counter()
            assert main(search_args(runs, "busy", *extra)) == 2
            assert time.perf_counter() - t0 < 20  # at once, not after waiting for the other
            one_error_line(capsys, f"run 'busy' is in progress in another process (pid {holder.pid})",
                           "wait for it or choose another --name")
            assert tree(tmp_path) == listing and sha(db) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    assert (runs / "busy" / ".lock").is_file()  # left by the killed holder: stale, harmless
    assert main(search_args(runs, "busy", "--resume")) == 0  # the holder had started the run
    assert (runs / "busy" / "winner.json").is_file() and not (runs / "busy" / ".lock").exists()


def test_same_name_on_one_store_from_another_runs_dir_is_refused(tmp_path, capsys):
    from mobile_mote.cli import build_parser
    from mobile_mote.cli.pareto import pareto_spec_from_args
    from mobile_mote.search import run_session
    store = tmp_path / "shared.db"
    spec = pareto_spec_from_args(build_parser().parse_args(pareto_args(tmp_path / "a", "same", store)))
    with run_session(spec, False):
        listing = tree(tmp_path)
        assert main(pareto_args(tmp_path / "b", "same", store)) == 2
        one_error_line(capsys, f"run 'same' is in progress in another process (pid {os.getpid()})")
        assert tree(tmp_path) == listing  # no b/ left behind
        assert main(pareto_args(tmp_path / "b", "other", store, "--generations", "1")) == 0  # other names run
    assert main(pareto_args(tmp_path / "a", "same", store, "--generations", "1", "--resume")) == 0
    assert not [p for p in tmp_path.rglob("*.lock")]


# ------------------------------------------------------------------- 3. concurrent scorers


class Recording:
    """A scorer that sleeps per candidate and logs what it scored (shared log: the union is checked)."""
    num_processes = 1

    def __init__(self, log, lock, delay=0.01, fail_on=None):
        self.log, self.lock, self.delay, self.fail_on = log, lock, delay, fail_on

    def score(self, archs):
        if self.fail_on is not None and self.fail_on in archs:
            raise RuntimeError("the machine went away")
        time.sleep(self.delay * len(archs))
        with self.lock:
            self.log.extend(archs)
        return [fake_record(a) for a in archs]


def fake_record(arch, score=None):
    return {"space": "nb201", "arch": arch, "estimator": "fake", "score": float(len(arch)) if score is None else score,
            "terms": {}, "config": {"fake": 1}, "config_hash": FAKE_HASH, "seed": 0, "device": "cpu",
            "seconds": 0.0, "status": "ok", "error": None}


def _space_costs_archs(n, seed=0):
    from mobile_mote.search_spaces import get_space
    from mobile_mote.efficiency.constraints import Costs
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(3 * n)))[:n]
    return space, Costs(space), archs


def test_two_threads_sharing_a_store_score_every_candidate_once(tmp_path):
    from mobile_mote.search.scorer import score_candidates
    space, costs, archs = _space_costs_archs(30)
    path = tmp_path / "shared.db"
    SearchStore(path).close()
    log, lock, barrier = [], threading.Lock(), threading.Barrier(2)
    results, errors = {}, []
    orders = {"same": archs, "reversed": archs[::-1]}

    def worker(i, order):
        try:
            with SearchStore(path) as st:
                barrier.wait()
                results[i] = score_candidates(st, Recording(log, lock), space, costs, order, FAKE_HASH, 0)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    for trial, second in orders.items():
        log.clear()
        results.clear()
        with SearchStore(path) as st:  # a clean slate per trial
            st.con.execute("DELETE FROM candidates")
        threads = [threading.Thread(target=worker, args=(0, archs)), threading.Thread(target=worker, args=(1, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sorted(log) == sorted(archs), (trial, len(log), len(set(log)))  # each exactly once
        assert results[0][1] + results[1][1] == len(archs)
        for recs, _ in results.values():
            assert sorted(r["arch"] for r in recs) == sorted(archs)
            assert all(r["score"] == float(len(r["arch"])) and r["macs"] is not None for r in recs)
        with SearchStore(path, readonly=True) as st:
            assert len(st.records(config_hash=FAKE_HASH)) == len(archs) and st.claims() == []


_SCORE_PROCESS = textwrap.dedent("""
    import json, os, sys, time, threading
    sys.path.insert(0, os.path.dirname(sys.argv[4]))
    from test_run_safety import Recording, _space_costs_archs, FAKE_HASH
    from mobile_mote.search.scorer import score_candidates
    from mobile_mote.store import SearchStore
    path, go, out = sys.argv[1], sys.argv[2], sys.argv[3]
    space, costs, archs = _space_costs_archs(24)
    if sys.argv[5] == "reversed":
        archs = archs[::-1]
    log = []
    with SearchStore(path) as st:
        while not os.path.exists(go):
            time.sleep(0.01)
        recs, n = score_candidates(st, Recording(log, threading.Lock(), 0.02), space, costs, archs, FAKE_HASH, 0)
    json.dump({"scored": log, "n": n, "records": len(recs)}, open(out, "w"))
""")


def test_two_processes_sharing_a_store_score_every_candidate_once(tmp_path):
    path, go = tmp_path / "shared.db", tmp_path / "go"
    SearchStore(path).close()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _SCORE_PROCESS, str(path), str(go), str(tmp_path / f"{i}.json"),
                               __file__, order], env=env)
             for i, order in enumerate(("same", "reversed"))]
    time.sleep(0.5)
    go.touch()
    for p in procs:
        assert p.wait(timeout=240) == 0
    a, b = (json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2))
    _, _, archs = _space_costs_archs(24)
    assert not set(a["scored"]) & set(b["scored"])  # nothing scored twice
    assert sorted(a["scored"] + b["scored"]) == sorted(archs)
    assert a["records"] == b["records"] == 24 and a["n"] + b["n"] == 24


def test_a_claimed_candidate_is_waited_for_and_taken_over_when_its_claimant_goes(tmp_path):
    from mobile_mote.search.scorer import score_candidates
    space, costs, archs = _space_costs_archs(3)
    x, y, z = archs
    path = tmp_path / "shared.db"
    other = SearchStore(path)
    assert other.claim("nb201", [x, z], FAKE_HASH, 0, limit=2)[0] == [x, z]
    log, out = [], {}

    def work():
        with SearchStore(path) as st:
            out["res"] = score_candidates(st, Recording(log, threading.Lock()), space, costs, archs, FAKE_HASH, 0)

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.6)
    assert log == [y] and t.is_alive()  # y scored; x and z waited for
    other.put_many([fake_record(x, score=-1.0)])  # the claimant stores x: it is read back, not scored
    time.sleep(0.6)
    assert log == [y] and t.is_alive()
    other.close()  # the claimant goes without storing z: z is taken over
    t.join(timeout=30)
    assert not t.is_alive() and log == [y, z]
    recs, n = out["res"]
    assert n == 2 and {r["arch"]: r["score"] for r in recs}[x] == -1.0 and len(recs) == 3


def test_a_failing_scorer_gives_its_claims_back(tmp_path):
    from mobile_mote.search.scorer import score_candidates
    space, costs, archs = _space_costs_archs(4)
    path = tmp_path / "shared.db"
    log = []
    with SearchStore(path) as st:
        with pytest.raises(RuntimeError):
            score_candidates(st, Recording(log, threading.Lock(), fail_on=archs[2]), space, costs, archs, FAKE_HASH, 0)
        assert st.claims() == [] and len(st.records()) == 2  # the chunks before the failure are stored
        recs, n = score_candidates(st, Recording(log, threading.Lock()), space, costs, archs, FAKE_HASH, 0)
    assert n == 2 and sorted(log) == sorted(archs) and len(recs) == 4


# ---------------------------------------------------------------------- 4. resume of no run


def test_resume_of_a_run_that_does_not_exist_is_an_error(tmp_path, finished, capsys):
    listing = tree(tmp_path)
    assert main(search_args(finished, "typo", "--resume")) == 2
    one_error_line(capsys, "no run named 'typo' in", "drop --resume to start it")
    db = finished / "r" / "search.db"
    before = sha(db)
    assert main(pareto_args(finished, "typo", db, "--resume")) == 2  # the store exists, the run does not
    one_error_line(capsys, "no run named 'typo' in", "or the store", "drop --resume")
    assert main(pareto_args(finished, "typo", tmp_path / "new" / "store.db", "--resume")) == 2
    one_error_line(capsys, "no run named 'typo'")
    assert tree(tmp_path) == listing and sha(db) == before  # nothing written: no folder, no store
    from mobile_mote.cli import build_parser
    from mobile_mote.cli.search import spec_from_args
    from mobile_mote.search import run
    with pytest.raises(InputError, match="no run named 'typo'"):  # the Python API is as strict
        run(spec_from_args(build_parser().parse_args(search_args(finished, "typo"))), resume=True, progress=False)
    assert tree(tmp_path) == listing


# ------------------------------------------------------------------ 5. no folders left behind


def test_failed_commands_leave_runs_as_it_was(tmp_path, finished, capsys):
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"not a store at all" * 100)
    listing = tree(tmp_path)
    failing = [
        search_args(finished, "r"),  # exists: --resume needed
        search_args(tmp_path / "fresh_runs", "x", "--resume"),  # runs dir and run folder would be new
        pareto_args(finished, "new", foreign),  # a refused store
        pareto_args(tmp_path / "fresh_runs", "new", foreign),
        pareto_args(finished, "deep", tmp_path / "a" / "b" / "s.db", "--resume"),
    ]
    for argv in failing:
        assert main(argv) == 2, argv
        one_error_line(capsys)
        assert tree(tmp_path) == listing, argv


# --------------------------------------------------------------------- 6. resume-diff message


def test_a_resume_with_other_settings_names_them_in_full(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(search_args(runs, "b", "--flops", "100M")) == 0
    capsys.readouterr()
    assert main(search_args(runs, "b", "--flops", "200M", "--resume")) == 2
    one_error_line(capsys, "constraints[0].max_macs: 100000000.0 → 200000000.0", "same settings")
