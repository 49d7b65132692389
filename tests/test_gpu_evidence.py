"""The GPU evidence run's CPU rehearsal: the device call (tools/gpu_evidence.sh) in a fresh copy of the files a
device call sends plus the carried data folder, with no ../shared beside it and the packages the GPU machine
lacks hidden, at --dry-run settings; and the pieces that need no run."""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("shared_data")
def test_the_rehearsal_measures_every_stage_without_shared_data(tmp_path):
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout: the rehearsal copies what `git ls-files` lists")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "PYTHONPATH")}
    proc = subprocess.run(["bash", str(REPO / "tools" / "gpu_evidence.sh"), "--rehearse", str(out)], capture_output=True,
                          text=True, timeout=900, env={**env, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "rehearsal passed" in proc.stdout
    doc = json.loads((out / "gpu_evidence.json").read_text())
    assert doc["dry_run"] is True and "gpu" in doc and doc["provenance"]
    assert Path(doc["code_root"]) != REPO and not (Path(doc["code_root"]).parent / "shared").exists()
    assert {k: v["status"] for k, v in doc["stages"].items()} == {
        k: "measured" for k in ("speed", "nb201", "released", "macro", "retrain", "search")}
    speed = doc["speed"]
    modes = doc["stages"]["speed"]["modes"]
    assert speed["best"]["mode"] in modes and "graph_workers" not in modes  # refused: one capture per process
    assert all(speed[k]["s_per_cell"] > 0 for k in ("best", "eager_one_at_a_time", "plain_loop"))
    for mode in modes.values():  # every mode scores like the eager loop, inside its cap
        assert mode["max_abs_score_diff_vs_eager"] is not None and mode["max_abs_score_diff_vs_eager"] < 1e-4
        assert mode["cells"] >= 1 and mode["failed"] == 0
    taus = doc["stages"]["nb201"]["kendall_tau"]
    assert set(taus) == {"cifar10", "cifar100", "imagenet16"}
    assert {"mote", "tse", "early_stop_acc", "mote: landscape term"} <= set(taus["cifar100"])
    assert any(k.startswith("fused") for k in taus["cifar100"])
    assert doc["stages"]["released"]["cells"] == doc["stages"]["nb201"]["cells"] > 0
    assert doc["stages"]["macro"]["networks"] > 0 and "macs" in doc["stages"]["macro"]["kendall_tau"]
    assert set(doc["stages"]["retrain"]) >= {"mobilenetv2_100", "mobilenetv3_large_100"}
    assert doc["stages"]["search"]["candidates"] > 0  # read from the run's own store
    recs = [json.loads(x) for x in (out / "gpu_evidence_nb201.jsonl").read_text().splitlines()]
    assert {r["estimator"] for r in recs} == {"mote", "tse", "early_stop_acc", "jacov", "naswot", "zico", "synflow",
                                              "vkdnw", "expressivity", "trainability", "macs"}
    assert all({"arch", "estimator", "score", "terms", "status"} <= set(r) for r in recs)
    assert (out / "gpu_evidence.log").is_file()
    assert doc["total_seconds"] < doc["budget_s"]


def test_an_overrun_keeps_a_readable_record(tmp_path, load_tool):
    ev = load_tool("gpu_evidence")
    assert ev.main(["--dry-run", "--budget-s", "0", "--out-dir", str(tmp_path), "--copy-to", "",
                    "--data", str(tmp_path / "none")]) == 0
    doc = json.loads((tmp_path / "gpu_evidence.json").read_text())
    assert doc["stages"] and all(v["status"] == "not measured" for v in doc["stages"].values())
    assert ev.main(["--dry-run", "--budget-s", "0", "--out-dir", str(tmp_path), "--copy-to", "", "--require-all",
                    "--data", str(tmp_path / "none")]) == 1


def test_a_mode_with_a_failure_is_never_best():
    from mobile_mote.studies.gpu_evidence import best_mode
    modes = {"graph_one_at_a_time": {"cells": 16, "s_per_cell": 0.1, "failed": 3, "error": None},
             "eager_workers": {"cells": 5, "s_per_cell": 0.5, "failed": 0, "error": "DeviceError: oom"},
             "eager_one_at_a_time": {"cells": 8, "s_per_cell": 0.9, "failed": 0, "error": None},
             "none_done": {"cells": 0, "s_per_cell": 0.0, "failed": 0, "error": None}}
    assert best_mode(modes) == "eager_one_at_a_time"
    modes["eager_one_at_a_time"]["failed"] = 1
    assert best_mode(modes) is None


def test_a_stage_stops_inside_its_cap_and_keeps_what_it_scored(monkeypatch):
    from mobile_mote.studies import gpu_evidence as ev
    clock = [0.0]

    class FakeTime:  # a chunk takes 2 s of this clock
        @staticmethod
        def perf_counter():
            return clock[0]
    monkeypatch.setattr(ev, "time", FakeTime)

    closed = []

    def records(archs, step=2, broken=None):  # as score_archs yields: a chunk scored when its first record is asked
        try:
            for i in range(0, len(archs), step):
                if archs[i] == broken:
                    raise RuntimeError("CUDA error: an illegal memory access was encountered")
                clock[0] += 2.0
                yield from ({"arch": a, "status": "ok"} for a in archs[i:i + step])
        finally:
            closed.append(True)
    recs, err = ev._chunks_until(records([str(i) for i in range(20)]), 2, 5.0)
    assert clock[0] == 4.0 and len(recs) == 4 and err is None and closed  # a third chunk would end at 6 s
    recs, err = ev._chunks_until(records([str(i) for i in range(6)], broken="2"), 2, 60.0)
    assert [r["arch"] for r in recs] == ["0", "1"] and "illegal memory access" in err
