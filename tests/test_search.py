"""mote search: the algorithm's rules, budgets, the store-backed loop, resume after SIGKILL, bad input."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from mobile_mote.cli import main
from mobile_mote.efficiency.constraints import Constraint, Costs, parse_constraints
from mobile_mote.search import drive
from mobile_mote.search.algorithms import MoteNAS, SearchConfig
from mobile_mote.search.algorithms.mote_nas import RS
from mobile_mote.search_spaces import get_space

# A small but real MOTE configuration: deterministic time so two runs give identical records.
FAST_MOTE = ["--set", "epochs=1", "--set", "points=2", "--set", "images_per_class=4", "--set", "batch_size=20",
             "--set", "time=cost"]


def _drive(space, cfg, constraint, score_fn, seed=0):
    """Run the algorithm through the search driver with an in-memory score function (no store);
    return the state, the scores and per-iteration (iteration, top cells, proposed, B)."""
    costs = Costs(space)
    algo = MoteNAS(space, cfg, lambda a: constraint.admits(costs(a)), [lambda a: constraint.admits(costs(a))])
    algo.start()
    log = []

    def evaluate(archs, _follow):
        log.append((algo.state["iteration"], algo.top_cells(algo.state["pool"], algo.scores), archs,
                    algo.state["batch"]))
        return [{"arch": a, "score": score_fn(a)} for a in archs], len(archs)

    drive(algo, seed, evaluate)
    return algo.state, algo.scores, log, costs


@pytest.mark.parametrize("space_name", ["nb201", "mbv2"])
def test_budget_and_neighbour_rules(space_name):
    space = get_space(space_name)
    budget = 60e6 if space_name == "nb201" else 260e6
    cfg = SearchConfig(k=3, batch_start=2, batch_step=2, iterations="sum")  # 13 iterations
    c = Constraint(max_macs=budget)
    # A synthetic, deterministic score (not an estimate): enough to exercise the search's rules.
    state, scores, log, costs = _drive(space, cfg, c, lambda a: -abs(costs_macs(space, a) - 0.8 * budget), seed=1)
    assert len(log) == cfg.n_iterations() + 1 == 14
    assert all(costs(a)["macs"] <= budget for a in state["pool"])
    for it, top, proposed, batch in log[1:]:
        assert len(proposed) <= 10 * cfg.k
        for a in proposed:
            assert min(space.distance(a, t) for t in top) <= 1.0 + 1e-9
    assert [b for *_, b in log] == [2] * 11 + [4] * 3  # B grows by batch_step after ten iterations
    assert len(set(state["pool"])) == len(state["pool"])


def costs_macs(space, a):
    return space.macs(a)


def test_official_options_change_the_schedule():
    assert SearchConfig(k=20).n_iterations() == 20
    assert SearchConfig(k=5).n_iterations() == 10
    assert SearchConfig(k=5, iterations="sum").n_iterations() == 15
    assert RS.n_iterations(SearchConfig()) == 0


def test_same_seed_same_search():
    space = get_space("nb201")
    cfg = SearchConfig(k=2, batch_start=2, batch_step=2)
    c = Constraint(max_macs=80e6)
    a = _drive(space, cfg, c, lambda x: -space.params(x), seed=5)[0]["pool"]
    b = _drive(space, cfg, c, lambda x: -space.params(x), seed=5)[0]["pool"]
    assert a == b


def test_cheapest_arch_is_the_floor():
    for name in ("nb201", "mbv2", "mbv3"):
        space = get_space(name)
        floor = space.macs(space.cheapest_arch())
        rng = np.random.default_rng(0)
        assert all(space.macs(space.sample(rng)) >= floor for _ in range(50))


def test_budget_parsing():
    cs = parse_constraints("300M,0.2G", "4.5M", "20ms")
    assert [c.max_macs for c in cs] == [2e8, 3e8]
    assert cs[0].max_params == 4.5e6 and cs[0].max_latency_ms == 20.0


def _search_args(tmp_path, shared_data, *extra, name="r"):
    return ["search", "--space", "nb201", "--flops", "60M", "--profile", "tiny", *FAST_MOTE,
            "--batch-start", "2", "--draw-factor", "10", "--draw", "uniform",  # the paper's rule: few candidates
            "--proxy-data", str(shared_data / "proxy_cifar100_10"),
            "--benchmark", str(shared_data / "nb201" / "benchmark.csv"),
            "--runs-dir", str(tmp_path), "--name", name, "--quiet", *extra]


@pytest.mark.usefixtures("torch_one_thread")
def test_search_end_to_end_and_store_reuse(tmp_path, shared_data, capsys):
    assert main(_search_args(tmp_path, shared_data, "--k", "2")) == 0
    run = tmp_path / "r"
    winner = json.loads((run / "winner.json").read_text())
    assert winner["macs"] <= 60e6 and winner["final_accuracy"] > 0
    assert winner["cost_seconds"]["evaluation"] > 0  # the table's 12-epoch training time
    for f in ("summary.md", "summary.json", "score_vs_macs.png", "best_per_iteration.png", "cost.png"):
        assert (run / f).is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scored_this_session"] == summary["candidates"] > 0
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["arch"] == winner["arch"]
    # an existing run is never silently overwritten
    before = (run / "winner.json").read_bytes()
    assert main(_search_args(tmp_path, shared_data, "--k", "2")) == 2
    assert (run / "winner.json").read_bytes() == before
    # --resume of a finished run scores nothing again
    assert main(_search_args(tmp_path, shared_data, "--k", "2", "--resume")) == 0
    again = json.loads((run / "summary.json").read_text())
    assert again["scored_this_session"] == 0 and again["candidates"] == summary["candidates"]
    assert main(["show", str(run)]) == 0
    assert "winner" in capsys.readouterr().out


def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path, shared_data):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = _search_args(tmp_path, shared_data, "--k", "2", name="killed")
    ref_args = _search_args(tmp_path, shared_data, "--k", "2", name="reference")
    cmd = [sys.executable, "-m", "mobile_mote"]
    db = tmp_path / "killed" / "search.db"
    proc = subprocess.Popen(cmd + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    n_before = 0
    while time.time() < deadline:  # kill once some candidates are stored, mid-run
        time.sleep(0.2)
        if db.is_file():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    n_before = con.execute("select count(*) from candidates").fetchone()[0]
            except sqlite3.Error:
                continue
            if n_before >= 12:
                break
        assert proc.poll() is None, "the search finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        n_before = con.execute("select count(*) from candidates").fetchone()[0]
    assert not (tmp_path / "killed" / "winner.json").exists()
    assert subprocess.run(cmd + args + ["--resume"], env=env, capture_output=True).returncode == 0
    assert subprocess.run(cmd + ref_args, env=env, capture_output=True).returncode == 0
    killed = json.loads((tmp_path / "killed" / "summary.json").read_text())
    ref = json.loads((tmp_path / "reference" / "summary.json").read_text())
    assert killed["candidates"] == ref["candidates"]
    assert killed["scored_this_session"] == ref["candidates"] - n_before  # nothing scored twice
    assert killed["winners"][0]["arch"] == ref["winners"][0]["arch"]
    assert killed["winners"][0]["score"] == pytest.approx(ref["winners"][0]["score"])


@pytest.mark.parametrize("extra,needle", [
    (["--flops", "1M"], "smallest achievable"),
    (["--flops", "lots"], "cannot read"),
    (["--estimator", "oracle"], "unknown estimator"),
    (["--space", "resnet"], "unknown search space"),
    (["--params", "4.5Q"], "params budget"),
])
def test_bad_input_is_one_line(tmp_path, shared_data, capsys, extra, needle):
    args = _search_args(tmp_path, shared_data)
    for i in range(0, len(extra), 2):
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_unwritable_and_corrupt_runs_are_refused(tmp_path, shared_data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(_search_args(blocker, shared_data)) == 2
    run = tmp_path / "bad"
    run.mkdir()
    (run / "search.db").write_bytes(b"this is not sqlite" * 100)
    before = (run / "search.db").read_bytes()
    assert main(_search_args(tmp_path, shared_data, name="bad")) == 2
    assert (run / "search.db").read_bytes() == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("mote search: error:") for e in err)


def test_two_processes_give_the_same_search(tmp_path, shared_data):
    """`mote search --processes 2` (accelerate, CPU) finds the same pool, scores and winner as one process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mobile_mote"]
    one = subprocess.run(cmd + _search_args(tmp_path, shared_data, "--k", "2", name="one"), env=env,
                         capture_output=True, text=True)
    two = subprocess.run(cmd + _search_args(tmp_path, shared_data, "--k", "2", "--processes", "2", name="two"),
                         env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s1["candidates"] == s2["candidates"]
    assert s1["winners"][0]["arch"] == s2["winners"][0]["arch"]
    with sqlite3.connect(tmp_path / "one" / "search.db") as c1, sqlite3.connect(tmp_path / "two" / "search.db") as c2:
        q = "select arch, score from candidates order by arch"
        assert c1.execute(q).fetchall() == c2.execute(q).fetchall()


def test_macro_benchmark_mode_reports_true_accuracy_and_rank(tmp_path, capsys, shared_data):
    bench = shared_data / "macro" / "nas-bench-macro_cifar10.json"
    rc = main(["search", "--space", "macro", "--benchmark", str(bench), "--flops", "50M", "--estimator", "macs",
               "--algorithm", "ef", "--profile", "tiny", "--runs-dir", str(tmp_path), "--name", "m", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    line = json.loads(out.splitlines()[0])
    assert line["macs"] <= 50e6
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    w = summary["winners"][0]
    # the truth is the benchmark's mean over its three seeds, and the rank counts every feasible network
    import json as _json
    table = _json.loads(bench.read_text())
    assert w["final_accuracy"] == pytest.approx(table[w["arch"]]["mean_acc"])
    feasible = [v["mean_acc"] for v in table.values() if v["flops"] <= 50e6]
    assert w["feasible_architectures"] == len(feasible)
    assert w["final_rank"] == 1 + sum(v > w["final_accuracy"] for v in feasible)
    assert w["best_feasible_accuracy"] == pytest.approx(max(feasible))
    # ... and among distinct networks (keys of one network share a row): 1,245 under 50 M
    space = get_space("macro")
    nets = {space.network_key(k): v["mean_acc"] for k, v in table.items() if v["flops"] <= 50e6}
    assert w["feasible_networks"] == len(nets) == 1245
    assert w["final_rank_networks"] == 1 + sum(v > w["final_accuracy"] for v in nets.values())
    assert f"of {len(nets)} networks" in line["final_rank"]
    # the search scored one key per network only
    import sqlite3 as _sq
    with _sq.connect(tmp_path / "m" / "search.db") as db:
        archs = [r[0] for r in db.execute("SELECT arch FROM candidates")]
    assert archs and all(space.network_key(a) == a for a in archs)


def test_search_never_draws_two_keys_of_one_network():
    space = get_space("macro")
    cfg = SearchConfig(k=3, batch_start=4, batch_step=0, draw_factor=10, draw="neighbours")
    state, scores, log, costs = _drive(space, cfg, Constraint(max_macs=60e6), lambda a: space.macs(a))
    assert state["pool"] and all(space.network_key(a) == a for a in state["pool"])
    assert len({space.network_key(a) for a in state["pool"]}) == len(state["pool"])


def test_quick_profile_runs_the_fused_zero_cost_estimator():
    from mobile_mote.cli.search import spec_from_args
    from mobile_mote.cli import build_parser
    args = build_parser().parse_args(["search", "--space", "macro", "--flops", "50M", "--profile", "quick"])
    spec = spec_from_args(args)
    assert spec.estimator == "fused" and spec.algorithm == "ef"
    args = build_parser().parse_args(["search", "--space", "macro", "--flops", "50M", "--profile", "tiny"])
    assert spec_from_args(args).estimator == "mote"


@pytest.mark.parametrize("space,extra,needle", [
    ("mbv2", [], "cannot list every architecture of mbv2"),
    ("nb201", ["--latency-device", "nosuchdevice"], "no column 'nosuchdevice'"),
])
def test_latency_table_that_does_not_fit_is_one_line(tmp_path, capsys, shared_data, space, extra, needle):
    table = shared_data / "nb201" / "latency_ms.csv"
    argv = ["search", "--space", space, "--flops", "250M", "--latency", "20ms", "--latency-table", str(table),
            *(extra or ["--latency-device", "pixel2"]), "--estimator", "macs", "--profile", "tiny",
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_latency_table_cells_are_checked(tmp_path, capsys, shared_data):
    import shutil
    src = shared_data / "nb201"
    shutil.copy(src / "benchmark.csv", tmp_path / "benchmark.csv")
    lines = (src / "latency_ms.csv").read_text().splitlines()
    head = lines[0].split(",")
    col = head.index("pixel2")
    row = lines[5].split(",")
    row[col] = "n/a"
    lines[5] = ",".join(row)
    (tmp_path / "latency_ms.csv").write_text("\n".join(lines) + "\n")
    argv = ["search", "--space", "nb201", "--latency", "20ms", "--latency-table", str(tmp_path / "latency_ms.csv"),
            "--latency-device", "pixel2", "--estimator", "macs", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'n/a' is not a positive number" in err
    (tmp_path / "latency_ms.csv").write_text("\n".join(lines[:100]).replace("n/a", "1.0") + "\n")
    assert main(argv) == 2
    assert "lists 99 of the 15625 architectures" in capsys.readouterr().err


def test_nb201_cells_without_12_epoch_figures_rank_last_in_the_evaluation_stage(nb201_benchmark_csv):
    """11 cells of the NB201 table have no 12-epoch columns; a top-k holding one must not crash the stage."""
    import csv

    from mobile_mote.benchmarks.nb201 import NB201Benchmark
    with open(nb201_benchmark_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    bare = next(r["arch"] for r in rows if not r["cifar10_acc12"])
    full = next(r["arch"] for r in rows if r["cifar10_acc12"])
    bench = NB201Benchmark(nb201_benchmark_csv, "cifar10")
    got = bench.short_training(bare)
    assert got["accuracy"] is None and "no 12-epoch cifar10 accuracy" in got["error"] and got["seconds"] == 0.0
    assert bench.short_training(full)["accuracy"] == pytest.approx(float(next(
        r["cifar10_acc12"] for r in rows if r["arch"] == full)))
