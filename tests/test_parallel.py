"""Parallel scoring: 2 CPU processes under accelerate give the same records as one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mobile_mote.parallel import ParallelScorer, launch_command, lpt_shards

PROXY = Path(__file__).resolve().parents[2] / "shared" / "data" / "proxy_cifar100_10"
CONFIG = {"epochs": 1, "batch_size": 32, "points": 2, "images_per_class": 4, "time": "cost"}
TIMING_TERMS = ("epoch_seconds", "train_seconds", "landscape_seconds")

CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|",
    "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
]
BATCHES = [CELLS[:3], CELLS[3:]]
# Batch 3: two candidates that raise when a worker (rank != 0) scores them (LPT puts one on each rank);
# batch 4: an invalid string, and the run goes on.
FAIL_ON_WORKER = ["|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
                  "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|"]
BAD_ARCH = "|not_an_op~0|+|"
# Batch 5: a worker's whole shard breaks (outside the per-candidate guard); then the search itself
# raises on the main process after writing its results: the workers must be told to stop, not hang.
SHARD_FAIL = ["|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
              "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"]

HELPER = textwrap.dedent('''
    import json, sys
    import torch
    torch.set_num_threads(1)
    from mobile_mote.estimators.mote import MOTE
    from mobile_mote.parallel import ParallelScorer
    from mobile_mote.data.proxy_data import load_proxy_data

    out, data_path, plan_path = sys.argv[1:4]
    plan = json.loads(open(plan_path).read())
    data = load_proxy_data(data_path)
    scorer = None
    real_estimate = MOTE.estimate

    def estimate(self, space, arch, *a, **k):  # a candidate that raises in the worker
        if scorer.process_index != 0 and arch in plan["fail_on_worker"]:
            raise RuntimeError("boom on worker")
        return real_estimate(self, space, arch, *a, **k)

    MOTE.estimate = estimate
    real_score_one = ParallelScorer._score_one

    def score_one(self, arch):  # a failure outside the per-candidate guard: the worker's shard breaks
        if self.process_index != 0 and arch in plan["shard_fail"]:
            raise RuntimeError("shard broke")
        return real_score_one(self, arch)

    ParallelScorer._score_one = score_one
    with ParallelScorer("nb201", "mote", plan["config"], data, seed=0, progress=False) as scorer:
        if scorer.is_main:
            results = {"num_processes": scorer.num_processes,
                       "batches": [scorer.score(b) for b in plan["batches"]]}
            with open(out, "w") as f:
                json.dump(results, f)
            raise RuntimeError("search crashed on purpose")
        else:
            scorer.serve()
''')


def _comparable(rec: dict) -> dict:
    rec = {k: v for k, v in rec.items() if k not in ("seconds", "device", "rank")}
    rec["terms"] = {k: v for k, v in rec["terms"].items() if k not in TIMING_TERMS}
    return rec


@pytest.fixture(scope="module")
def proxy_path() -> Path:
    if not PROXY.is_dir():
        pytest.skip(f"proxy data not found at {PROXY} (a fresh clone has no ../shared; CI always has it)")
    return PROXY


@pytest.fixture(scope="module")
def single_process(proxy_path):
    """The reference: the same batches scored in this process, without any launch."""
    import torch
    from accelerate import PartialState

    from mobile_mote.data.proxy_data import load_proxy_data
    assert "WORLD_SIZE" not in os.environ
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    fresh = not PartialState._shared_state
    try:
        with ParallelScorer("nb201", "mote", CONFIG, load_proxy_data(proxy_path), seed=0, progress=False) as s:
            assert (s.is_main, s.num_processes, s.process_index) == (True, 1, 0)
            out = [s.score(b) for b in BATCHES]
    finally:
        torch.set_num_threads(before)
        if fresh:
            PartialState._reset_state()
    return out


@pytest.fixture(scope="module")
def two_processes(proxy_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    script = tmp / "helper.py"
    script.write_text(HELPER)
    plan = {"config": CONFIG, "fail_on_worker": FAIL_ON_WORKER, "shard_fail": SHARD_FAIL,
            "batches": [*BATCHES, FAIL_ON_WORKER, [BAD_ARCH, CELLS[2]], SHARD_FAIL]}
    (tmp / "plan.json").write_text(json.dumps(plan))
    out = tmp / "out.json"
    cmd = launch_command(2, [str(script), str(out), str(proxy_path), str(tmp / "plan.json")], cpu=True, module=None)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "LOCAL_RANK", "RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)  # a hang fails here
    detail = f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert out.is_file(), detail
    # The main process raised at the end on purpose: a non-zero exit, after the workers were released.
    assert proc.returncode != 0 and "search crashed on purpose" in proc.stderr, detail
    return json.loads(out.read_text())


def test_single_process_scores_without_launch(single_process):
    recs = [r for b in single_process for r in b]
    assert [r["arch"] for r in recs] == CELLS
    assert all(r["status"] == "ok" and r["rank"] == 0 for r in recs)
    assert all(isinstance(r["score"], float) for r in recs)


def test_two_cpu_processes_match_one(single_process, two_processes):
    assert two_processes["num_processes"] == 2
    par = two_processes["batches"][:2]
    for got, ref, archs in zip(par, single_process, BATCHES):
        assert [r["arch"] for r in got] == archs  # input order
        assert [_comparable(r) for r in got] == [_comparable(r) for r in ref]
    ranks = {r["rank"] for b in par for r in b}
    assert ranks == {0, 1}, f"both ranks should have scored candidates, saw {ranks}"


def test_failing_candidate_on_worker_is_a_record(two_processes):
    failing, after, shard = two_processes["batches"][2:]
    assert [r["arch"] for r in failing] == FAIL_ON_WORKER
    by_rank = {r["rank"]: r for r in failing}
    assert set(by_rank) == {0, 1}  # LPT puts one candidate on each rank
    assert by_rank[0]["status"] == "ok"
    assert by_rank[1]["status"] == "failed" and by_rank[1]["score"] is None
    assert "boom on worker" in by_rank[1]["error"]
    assert [r["arch"] for r in after] == [BAD_ARCH, CELLS[2]]
    assert after[0]["status"] == "failed" and after[0]["error"] and after[0]["score"] is None
    assert after[1]["status"] == "ok"  # the run went on
    assert [r["arch"] for r in shard] == SHARD_FAIL
    by_rank = {r["rank"]: r for r in shard}
    assert by_rank[0]["status"] == "ok"
    assert by_rank[1]["status"] == "failed" and "shard failed on rank 1" in by_rank[1]["error"]


def test_lpt_shards_balance():
    assert lpt_shards([5, 1, 1, 1, 1, 1], 2) == [0, 1, 1, 1, 1, 1]
    assert lpt_shards([3, 3, 2, 2], 2) == [0, 1, 0, 1]
    assert lpt_shards([1.0] * 3, 1) == [0, 0, 0]


def test_launch_command_shapes():
    cmd = launch_command(3, ["search", "--processes", "3", "--space", "nb201", "--processes=3"], cpu=True)
    assert cmd[:2] == ["env", "CUDA_VISIBLE_DEVICES="]
    i = cmd.index("accelerate.commands.launch")
    assert cmd[i - 2:i] == [sys.executable, "-m"]
    assert cmd[cmd.index("--num_processes") + 1] == "3" and "--multi_gpu" in cmd
    assert cmd[-5:] == ["-m", "mobile_mote", "search", "--space", "nb201"]
    gpu = launch_command(2, ["search"], cpu=False)
    assert gpu[0] == sys.executable and "--num_cpu_threads_per_process" not in gpu
    assert launch_command(1, ["search", "--processes", "1"], cpu=False) == [sys.executable, "-m", "mobile_mote", "search"]


def test_launched_ranks_get_a_long_collective_timeout(monkeypatch):
    """Ranks wait in a broadcast while the main process works alone: NCCL's 10-minute default would end them."""
    from datetime import timedelta

    import accelerate

    from mobile_mote import parallel
    from mobile_mote.errors import InputError
    seen = {}

    class FakeState:
        _shared_state: dict = {}

        def __init__(self, **kw):
            seen.update(kw)
    monkeypatch.setattr(accelerate, "PartialState", FakeState)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MOTE_PG_TIMEOUT_S", raising=False)
    parallel._make_state()
    assert seen["timeout"] == timedelta(seconds=parallel.PROCESS_GROUP_TIMEOUT_S) >= timedelta(hours=24)
    monkeypatch.setenv("MOTE_PG_TIMEOUT_S", "90")
    assert parallel.process_group_timeout() == timedelta(seconds=90)
    monkeypatch.setenv("MOTE_PG_TIMEOUT_S", "soon")
    with pytest.raises(InputError, match="MOTE_PG_TIMEOUT_S"):
        parallel.process_group_timeout()
