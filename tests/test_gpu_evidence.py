"""tools/gpu_evidence.py --dry-run: every stage of the GPU evidence run, on CPU at tiny settings."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path, *extra):
    out, copy = tmp_path / "out", tmp_path / "copy"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "gpu_evidence.py"), "--dry-run", "--out-dir", str(out),
                           "--copy-to", str(copy), *extra], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, copy


@pytest.mark.usefixtures("shared_data")
def test_dry_run_measures_every_stage(tmp_path):
    out, copy = _run(tmp_path)
    doc = json.loads((out / "gpu_evidence.json").read_text())
    assert (copy / "gpu_evidence.json").read_text() == (out / "gpu_evidence.json").read_text()
    assert doc["dry_run"] is True and "gpu" in doc and doc["provenance"]
    assert {k: v["status"] for k, v in doc["stages"].items()} == {
        k: "measured" for k in ("speed", "nb201", "released", "macro", "retrain", "search")}
    speed = doc["speed"]
    assert speed["best"]["mode"] in doc["stages"]["speed"]["modes"]
    assert all(speed[k]["s_per_cell"] > 0 for k in ("best", "eager_one_at_a_time", "plain_loop"))
    for mode in doc["stages"]["speed"]["modes"].values():  # every mode scores like the eager loop
        assert mode["max_abs_score_diff_vs_eager"] is not None and mode["max_abs_score_diff_vs_eager"] < 1e-4
    taus = doc["stages"]["nb201"]["kendall_tau"]
    assert set(taus) == {"cifar10", "cifar100", "imagenet16"}
    assert {"mote", "tse", "early_stop_acc", "mote: landscape term"} <= set(taus["cifar100"])
    assert any(k.startswith("fused") for k in taus["cifar100"])
    assert doc["stages"]["released"]["cells"] == doc["stages"]["nb201"]["cells"] > 0
    assert doc["stages"]["macro"]["networks"] > 0 and "macs" in doc["stages"]["macro"]["kendall_tau"]
    assert set(doc["stages"]["retrain"]) >= {"mobilenetv2_100", "mobilenetv3_large_100"}
    recs = [json.loads(x) for x in (out / "gpu_evidence_nb201.jsonl").read_text().splitlines()]
    assert {r["estimator"] for r in recs} == {"mote", "tse", "early_stop_acc", "jacov", "naswot", "zico", "synflow"}
    assert all({"arch", "estimator", "score", "terms", "status"} <= set(r) for r in recs)


@pytest.mark.usefixtures("shared_data")
def test_an_overrun_keeps_a_readable_record(tmp_path):
    out, _ = _run(tmp_path, "--budget-s", "0")
    doc = json.loads((out / "gpu_evidence.json").read_text())
    assert doc["stages"] and all(v["status"] == "not measured" for v in doc["stages"].values())
